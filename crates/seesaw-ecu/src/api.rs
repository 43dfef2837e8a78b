//! The control server's routes: the read-only JSON API, which returns
//! what `seesaw -o json` prints for the same show command, and the
//! control operations. Every request must authenticate (see [`crate::auth`]).
//!
//! Each request opens its own connection to the engine, as the original
//! ECU did, and runs the shell's code for the command on a blocking
//! thread.

use std::path::PathBuf;
use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::{Path, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Router};
use seesaw_cli::OverrideState;
use seesaw_cli::engine::{Engine, GrpcEngine};
use seesaw_cli::exec::{Executor, Format};
use seesaw_cli::render::Clock;
use seesaw_cli::tree::{Action, OverrideTarget};
use seesaw_ipc::EngineClient;
use seesaw_ipc::engine_proto::Empty;
use serde::Deserialize;
use serde_json::json;

use crate::auth::{Identity, Role, TokenFile, authenticate};
use crate::metrics::RequestCounts;
use crate::serve::PeerCertificate;

/// The state the control server's handlers share.
#[derive(Clone)]
pub struct ControlState {
    pub engine_socket: PathBuf,
    /// For the calls made without the shell's code.
    pub engine: EngineClient,
    pub tokens: Arc<TokenFile>,
    pub requests: Arc<RequestCounts>,
}

/// Returns the control server's routes.
pub fn router(state: ControlState) -> Router {
    Router::new()
        .route("/api/v1/whoami", get(whoami))
        .route("/api/v1/ha", get(show_ha))
        .route("/api/v1/config/status", get(config_status))
        .route(
            "/api/v1/config/source",
            get(config_source).post(set_config_source),
        )
        .route("/api/v1/config/reload", post(config_reload))
        .route("/api/v1/warnings", get(show_warnings))
        .route("/api/v1/version", get(show_version))
        .route("/api/v1/nodes", get(show_nodes))
        .route("/api/v1/nodes/{name}", get(show_nodes))
        .route("/api/v1/vlans", get(show_vlans))
        .route("/api/v1/vlans/{vlan}", get(show_vlans))
        .route("/api/v1/bgp/neighbors", get(show_neighbors))
        .route("/api/v1/bgp/neighbors/{ip}", get(show_neighbors))
        .route("/api/v1/vservers", get(show_vservers))
        .route("/api/v1/vservers/{name}", get(show_vservers))
        .route("/api/v1/destinations", get(show_destinations))
        .route("/api/v1/destinations/{*name}", get(show_destinations))
        .route("/api/v1/backends", get(show_backends))
        .route("/api/v1/backends/{name}", get(show_backends))
        .route("/api/v1/failover", post(failover))
        .route("/api/v1/override/vserver", post(override_vserver))
        .route("/api/v1/override/backend", post(override_backend))
        .route("/api/v1/override/destination", post(override_destination))
        .fallback(not_found)
        .layer(middleware::from_fn_with_state(
            state.clone(),
            require_identity,
        ))
        .layer(middleware::from_fn_with_state(
            state.clone(),
            count_response,
        ))
        .with_state(state)
}

/// A failed request: its status and the message of its JSON body.
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub message: String,
}

impl ApiError {
    fn new(status: StatusCode, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            message: message.into(),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut response =
            (self.status, json_body(&json!({ "error": self.message }))).into_response();
        if self.status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"seesaw_ecu\""),
            );
        }
        response
    }
}

type ApiResult = Result<Response, ApiError>;

/// Returns `text` as an `application/json` body.
fn json_response(text: String) -> Response {
    (
        [(header::CONTENT_TYPE, "application/json")],
        Body::from(text),
    )
        .into_response()
}

fn json_body(value: &serde_json::Value) -> Response {
    json_response(seesaw_cli::json::to_text(value))
}

async fn count_response(
    State(state): State<ControlState>,
    request: Request,
    next: Next,
) -> Response {
    let response = next.run(request).await;
    state.requests.count(response.status().as_u16());
    response
}

/// Authenticates the request and adds the caller's [`Identity`] to it, or
/// returns 401.
async fn require_identity(
    State(state): State<ControlState>,
    mut request: Request,
    next: Next,
) -> Response {
    let certificate = request
        .extensions()
        .get::<PeerCertificate>()
        .and_then(|peer| peer.0.clone());
    let authorization = request
        .headers()
        .get(header::AUTHORIZATION)
        .map(|value| value.as_bytes());
    match authenticate(authorization, certificate.as_ref(), &state.tokens) {
        Ok(identity) => {
            request.extensions_mut().insert(identity);
            next.run(request).await
        }
        Err(error) => {
            tracing::debug!(
                "rejected {} {}: {error}",
                request.method(),
                request.uri().path()
            );
            ApiError::new(StatusCode::UNAUTHORIZED, error.to_string()).into_response()
        }
    }
}

/// Fails with 403 unless the caller has `role` or a higher one.
fn require(identity: &Identity, role: Role, what: &str) -> Result<(), ApiError> {
    if identity.role >= role {
        return Ok(());
    }
    tracing::warn!(
        "{what} denied for {identity}: it needs the {} role",
        role.name()
    );
    Err(ApiError::new(
        StatusCode::FORBIDDEN,
        format!(
            "{identity} may not {what}: it needs the {} role",
            role.name()
        ),
    ))
}

async fn not_found(request: Request) -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        format!(
            "no such endpoint: {} {}",
            request.method(),
            request.uri().path()
        ),
    )
}

async fn whoami(Extension(identity): Extension<Identity>) -> Response {
    json_body(&json!({
        "name": identity.name,
        "role": identity.role.name(),
        "method": identity.method.name(),
    }))
}

/// Maps an engine call's gRPC failure to the HTTP status of the reply.
fn engine_status(code: tonic::Code) -> StatusCode {
    use tonic::Code;
    match code {
        Code::Unavailable | Code::DeadlineExceeded | Code::Cancelled => {
            StatusCode::SERVICE_UNAVAILABLE
        }
        Code::FailedPrecondition | Code::AlreadyExists | Code::Aborted => StatusCode::CONFLICT,
        Code::InvalidArgument | Code::OutOfRange => StatusCode::BAD_REQUEST,
        Code::NotFound => StatusCode::NOT_FOUND,
        _ => StatusCode::BAD_GATEWAY,
    }
}

/// Runs `work` on a blocking thread with a new connection to the engine.
/// When `work` fails, the status is that of the failed engine call, or
/// 404 when no call failed, as when a show command selects nothing.
async fn with_engine<T: Send + 'static>(
    state: &ControlState,
    work: impl FnOnce(&mut GrpcEngine) -> Result<T, String> + Send + 'static,
) -> Result<T, ApiError> {
    let socket = state.engine_socket.clone();
    let joined = tokio::task::spawn_blocking(move || {
        let mut engine = GrpcEngine::dial(&socket).map_err(|error| {
            ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                format!("engine unavailable: {error}"),
            )
        })?;
        work(&mut engine).map_err(|message| {
            let status = engine
                .last_failure()
                .map_or(StatusCode::NOT_FOUND, engine_status);
            ApiError::new(status, message.trim_end())
        })
    })
    .await;
    joined.unwrap_or_else(|error| {
        Err(ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("the engine call did not finish: {error}"),
        ))
    })
}

/// Runs a show command as `seesaw -o json` does, for a reader or above.
async fn show(
    state: &ControlState,
    identity: &Identity,
    action: Action,
    argument: Option<String>,
) -> ApiResult {
    require(identity, Role::Reader, "read the engine's state")?;
    let output = with_engine(state, move |engine| {
        let mut executor = Executor {
            engine,
            format: Format::Json,
            clock: Clock::system,
        };
        let arguments: Vec<&str> = argument.iter().map(String::as_str).collect();
        let outcome = executor.show(action, &arguments, Format::Json);
        match outcome.error {
            Some(error) => Err(error),
            None => Ok(outcome.output),
        }
    })
    .await?;
    Ok(json_response(output))
}

async fn show_ha(
    State(state): State<ControlState>,
    Extension(id): Extension<Identity>,
) -> ApiResult {
    show(&state, &id, Action::ShowHa, None).await
}

async fn config_status(
    State(state): State<ControlState>,
    Extension(id): Extension<Identity>,
) -> ApiResult {
    show(&state, &id, Action::ConfigStatus, None).await
}

async fn show_warnings(
    State(state): State<ControlState>,
    Extension(id): Extension<Identity>,
) -> ApiResult {
    show(&state, &id, Action::ShowWarnings, None).await
}

async fn show_version(
    State(state): State<ControlState>,
    Extension(id): Extension<Identity>,
) -> ApiResult {
    show(&state, &id, Action::ShowVersion, None).await
}

async fn show_nodes(
    State(state): State<ControlState>,
    Extension(id): Extension<Identity>,
    name: Option<Path<String>>,
) -> ApiResult {
    show(&state, &id, Action::ShowNodes, name.map(|Path(n)| n)).await
}

async fn show_vlans(
    State(state): State<ControlState>,
    Extension(id): Extension<Identity>,
    vlan: Option<Path<String>>,
) -> ApiResult {
    show(&state, &id, Action::ShowVlans, vlan.map(|Path(v)| v)).await
}

async fn show_neighbors(
    State(state): State<ControlState>,
    Extension(id): Extension<Identity>,
    ip: Option<Path<String>>,
) -> ApiResult {
    show(&state, &id, Action::ShowBgpNeighbors, ip.map(|Path(ip)| ip)).await
}

async fn show_vservers(
    State(state): State<ControlState>,
    Extension(id): Extension<Identity>,
    name: Option<Path<String>>,
) -> ApiResult {
    show(&state, &id, Action::ShowVservers, name.map(|Path(n)| n)).await
}

async fn show_destinations(
    State(state): State<ControlState>,
    Extension(id): Extension<Identity>,
    name: Option<Path<String>>,
) -> ApiResult {
    show(&state, &id, Action::ShowDestinations, name.map(|Path(n)| n)).await
}

async fn show_backends(
    State(state): State<ControlState>,
    Extension(id): Extension<Identity>,
    name: Option<Path<String>>,
) -> ApiResult {
    show(&state, &id, Action::ShowBackends, name.map(|Path(n)| n)).await
}

async fn config_source(
    State(state): State<ControlState>,
    Extension(id): Extension<Identity>,
) -> ApiResult {
    require(&id, Role::Reader, "read the config source")?;
    let source = with_engine(&state, |engine| {
        engine.config_source("").map_err(|error| error.to_string())
    })
    .await?;
    Ok(json_body(&json!({ "source": source })))
}

/// Parses a request's JSON body.
fn parse_body<T: serde::de::DeserializeOwned>(body: &Bytes) -> Result<T, ApiError> {
    serde_json::from_slice(body).map_err(|error| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            format!("invalid request body: {error}"),
        )
    })
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SourceRequest {
    source: String,
}

async fn set_config_source(
    State(state): State<ControlState>,
    Extension(id): Extension<Identity>,
    body: Bytes,
) -> ApiResult {
    require(&id, Role::Admin, "change the config source")?;
    let SourceRequest { source } = parse_body(&body)?;
    if source.is_empty() {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "missing source: use disk, peer or server",
        ));
    }
    let requested = source.clone();
    let previous = with_engine(&state, move |engine| {
        engine
            .config_source(&requested)
            .map_err(|error| format!("failed to change the config source: {error}"))
    })
    .await
    .inspect_err(|error| {
        tracing::warn!("config source change by {id} failed: {}", error.message)
    })?;
    tracing::info!("config source set to {source} (was {previous}) by {id}");
    Ok(json_body(
        &json!({ "source": source, "previous": previous }),
    ))
}

async fn config_reload(
    State(state): State<ControlState>,
    Extension(id): Extension<Identity>,
) -> ApiResult {
    require(&id, Role::Admin, "reload the config")?;
    with_engine(&state, |engine| {
        engine
            .config_reload()
            .map_err(|error| format!("config reload failed: {error}"))
    })
    .await
    .inspect_err(|error| tracing::warn!("config reload by {id} failed: {}", error.message))?;
    tracing::info!("config reload requested by {id}");
    Ok(json_body(&json!({ "message": "config reload requested" })))
}

async fn failover(
    State(state): State<ControlState>,
    Extension(id): Extension<Identity>,
) -> ApiResult {
    require(&id, Role::Admin, "request a failover")?;
    with_engine(&state, |engine| {
        engine
            .failover()
            .map_err(|error| format!("failover request failed: {error}"))
    })
    .await
    .inspect_err(|error| tracing::warn!("failover by {id} failed: {}", error.message))?;
    tracing::info!("failover requested by {id}");
    Ok(json_body(&json!({ "message": "failover requested" })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct OverrideRequest {
    /// The vserver name, the backend hostname or the destination name.
    name: String,
    /// `default`, `disabled` or `enabled`.
    state: String,
}

fn parse_override_state(state: &str) -> Result<OverrideState, ApiError> {
    match state {
        "default" => Ok(OverrideState::Default),
        "disabled" => Ok(OverrideState::Disabled),
        "enabled" => Ok(OverrideState::Enabled),
        other => Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            format!("invalid override state {other:?}: use default, disabled or enabled"),
        )),
    }
}

/// Sends an override through the shell's code, which checks that the
/// engine reports the target first.
async fn apply_override(
    state: &ControlState,
    identity: &Identity,
    target: OverrideTarget,
    body: &Bytes,
) -> ApiResult {
    let kind = target.name();
    let request: OverrideRequest = parse_body(body)?;
    let override_state = parse_override_state(&request.state)?;
    let name = request.name.clone();
    with_engine(state, move |engine| {
        let mut executor = Executor {
            engine,
            format: Format::Json,
            clock: Clock::system,
        };
        let outcome = executor.run(Action::Override(target, override_state), &[&name]);
        match outcome.error {
            Some(error) => Err(error),
            None => Ok(()),
        }
    })
    .await
    .inspect_err(|error| {
        tracing::warn!(
            "{kind} override of {:?} by {identity} failed: {}",
            request.name,
            error.message
        )
    })?;
    tracing::info!(
        "{kind} override of {:?} set to {} by {identity}",
        request.name,
        request.state
    );
    Ok(json_body(&json!({
        "message": format!("{kind} {} override set to {}", request.name, request.state),
    })))
}

async fn override_backend(
    State(state): State<ControlState>,
    Extension(id): Extension<Identity>,
    body: Bytes,
) -> ApiResult {
    require(&id, Role::Admin, "override a backend")?;
    apply_override(&state, &id, OverrideTarget::Backend, &body).await
}

async fn override_destination(
    State(state): State<ControlState>,
    Extension(id): Extension<Identity>,
    body: Bytes,
) -> ApiResult {
    require(&id, Role::Admin, "override a destination")?;
    apply_override(&state, &id, OverrideTarget::Destination, &body).await
}

/// Overrides a vserver: admins may override any, operators those whose
/// access grants name them, as the engine's own access control allows.
async fn override_vserver(
    State(state): State<ControlState>,
    Extension(id): Extension<Identity>,
    body: Bytes,
) -> ApiResult {
    require(&id, Role::Operator, "override a vserver")?;
    if id.role == Role::Operator {
        let request: OverrideRequest = parse_body(&body)?;
        check_grant(&state, &id, &request.name).await?;
    }
    apply_override(&state, &id, OverrideTarget::Vserver, &body).await
}

/// Fails with 403 unless an access grant of `vserver` names the caller.
async fn check_grant(
    state: &ControlState,
    identity: &Identity,
    vserver: &str,
) -> Result<(), ApiError> {
    let mut engine = state.engine.clone();
    let grants = match engine.access_grants(Empty {}).await {
        Ok(reply) => reply.into_inner(),
        Err(status) if status.code() == tonic::Code::Unimplemented => {
            tracing::warn!(
                "vserver override of {vserver:?} denied for {identity}: the engine does not report access grants"
            );
            return Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "the engine does not report access grants, so only admins may override vservers",
            ));
        }
        Err(status) => {
            return Err(ApiError::new(
                engine_status(status.code()),
                format!(
                    "failed to read the access grants: {}",
                    seesaw_ipc::CallError::new("AccessGrants", status)
                ),
            ));
        }
    };

    let granted = grants
        .grants
        .iter()
        .find(|grant| grant.vserver == vserver && grant.user == identity.name);
    match granted {
        Some(grant) => {
            tracing::info!(
                "vserver override of {vserver:?} allowed for {identity} by grant {}",
                grant.source
            );
            Ok(())
        }
        None => {
            tracing::warn!(
                "vserver override of {vserver:?} denied for {identity}: no access grant"
            );
            Err(ApiError::new(
                StatusCode::FORBIDDEN,
                format!(
                    "user {:?} is not authorized to control {vserver:?}",
                    identity.name
                ),
            ))
        }
    }
}
