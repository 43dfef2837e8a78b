//! The monitoring server's routes, open to every caller: `/healthz` and
//! `/metrics`.

use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use crate::metrics::{self, RequestCounts};
use crate::stats::StatsReceiver;

/// The state the monitoring handlers share.
#[derive(Clone)]
pub struct MonitorState {
    pub stats: StatsReceiver,
    pub requests: Arc<RequestCounts>,
}

/// Returns the monitoring server's routes.
pub fn router(state: MonitorState) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics))
        .fallback(|| async { (StatusCode::NOT_FOUND, "404 page not found\n") })
        .with_state(state)
}

/// Returns 200 `ok` while the last collection reached the engine, and 503
/// with the reason otherwise.
async fn healthz(State(state): State<MonitorState>) -> Response {
    let stats = state.stats.borrow().clone();
    let (status, text) = match stats.as_deref() {
        None => (
            StatusCode::SERVICE_UNAVAILABLE,
            "engine unavailable: no collection has finished yet\n".to_string(),
        ),
        Some(stats) => match &stats.ha {
            Ok(_) => (StatusCode::OK, "ok\n".to_string()),
            Err(failure) => (
                StatusCode::SERVICE_UNAVAILABLE,
                format!("engine unavailable: {failure}\n"),
            ),
        },
    };
    (
        status,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        text,
    )
        .into_response()
}

async fn metrics(State(state): State<MonitorState>) -> Response {
    let stats = state.stats.borrow().clone();
    let text = metrics::render(stats.as_deref(), &state.requests);
    ([(header::CONTENT_TYPE, metrics::CONTENT_TYPE)], text).into_response()
}
