//! The `seesaw_ecu` binary on loopback ports, against the fake engine on
//! a Unix socket in a temporary directory, driven by an HTTP(S) client
//! with a test CA, test tokens and test client certificates.

mod support;

use seesaw_ipc::engine_proto::OverrideState;
use seesaw_ipc::fake_engine::{FakeEngine, ServedEngine};
use support::*;

/// A fake engine serving [`engine_reads`] and an ECU connected to it.
struct Setup {
    pki: Pki,
    engine: FakeEngine,
    _served: ServedEngine,
    ecu: Ecu,
}

impl Setup {
    fn start() -> Setup {
        let pki = Pki::new();
        let engine = FakeEngine::new();
        engine.set_reads(engine_reads());
        let served = engine.serve(&pki.path("engine.sock")).unwrap();
        let ecu = Ecu::start(&pki, &pki.path("engine.sock"), &[]);
        Setup {
            pki,
            engine,
            _served: served,
            ecu,
        }
    }

    /// Sends `call` over TLS, with no client certificate.
    async fn control(&self, call: Call<'_>) -> Reply {
        call.tls(self.pki.client_tls(None))
            .send(self.ecu.control())
            .await
            .unwrap()
    }

    /// Sends `call` over TLS with `token`.
    async fn as_user(&self, token: &str, call: Call<'_>) -> Reply {
        self.control(call.token(token)).await
    }

    /// Posts an override of the `kind` object `name` to `state` with
    /// `token`.
    async fn override_as(&self, token: &str, kind: &str, name: &str, state: &str) -> Reply {
        let path = format!("/api/v1/override/{kind}");
        let body = serde_json::json!({ "name": name, "state": state }).to_string();
        self.as_user(token, Call::post(&path, &body)).await
    }

    async fn monitor(&self, path: &str) -> Reply {
        Call::get(path).send(self.ecu.monitor).await.unwrap()
    }

    /// Waits for a collection that reached the engine.
    async fn wait_for_collection(&self) {
        let collected = eventually(|| async { self.monitor("/healthz").await.status == 200 }).await;
        assert!(collected, "/healthz never became 200:\n{}", self.ecu.log());
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn healthz_and_metrics_need_no_auth() {
    let setup = Setup::start();
    setup.wait_for_collection().await;

    let healthz = setup.monitor("/healthz").await;
    let metrics = setup.monitor("/metrics").await;

    assert_eq!(healthz.status, 200);
    assert_eq!(healthz.body, "ok\n");
    assert_eq!(metrics.status, 200);
    assert!(
        metrics
            .content_type
            .starts_with("text/plain; version=0.0.4"),
        "{}",
        metrics.content_type
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn metrics_report_engine_state() {
    let setup = Setup::start();
    setup.wait_for_collection().await;

    let text = setup.monitor("/metrics").await.body;
    let samples = parse_samples(&text);

    let web = r#"vserver="web@example",service="192.0.2.10:80/TCP""#;
    let web1 =
        format!(r#"{web},destination="web@example/192.0.2.21:80/TCP",backend="web1.example.com.""#);
    let check =
        r#"id="12",type="HTTP",backend="web2.example.com.",ip="192.0.2.22",port="80",mode="PLAIN""#;
    let expected = [
        ("seesaw_engine_up".to_string(), 1.0),
        (r#"seesaw_ha_state{state="LEADER"}"#.to_string(), 1.0),
        (r#"seesaw_ha_state{state="BACKUP"}"#.to_string(), 0.0),
        ("seesaw_ha_transitions_total".to_string(), 2.0),
        ("seesaw_ha_advertisements_sent_total".to_string(), 120.0),
        (
            "seesaw_ha_state_since_timestamp_seconds".to_string(),
            SINCE_MS as f64 / 1000.0,
        ),
        ("seesaw_config_loaded".to_string(), 1.0),
        (
            "seesaw_config_last_update_timestamp_seconds".to_string(),
            SINCE_MS as f64 / 1000.0,
        ),
        ("seesaw_config_last_attempt_errors".to_string(), 0.0),
        ("seesaw_config_warnings".to_string(), 1.0),
        (
            r#"seesaw_config_source_info{source="disk"}"#.to_string(),
            1.0,
        ),
        (r#"seesaw_cluster_info{site="example"}"#.to_string(), 1.0),
        (
            r#"seesaw_vserver_enabled{vserver="web@example"}"#.to_string(),
            1.0,
        ),
        (
            r#"seesaw_vserver_enabled{vserver="dns@example"}"#.to_string(),
            0.0,
        ),
        (
            r#"seesaw_vserver_override{vserver="dns@example",state="disabled"}"#.to_string(),
            1.0,
        ),
        (format!("seesaw_service_healthy{{{web}}}"), 1.0),
        (format!("seesaw_service_backends{{{web}}}"), 2.0),
        (format!("seesaw_service_healthy_backends{{{web}}}"), 1.0),
        (
            format!(r#"seesaw_service_watermark{{{web},watermark="low"}}"#),
            0.5,
        ),
        (format!("seesaw_service_connections_total{{{web}}}"), 14.0),
        (
            format!(r#"seesaw_service_bytes_total{{{web},direction="in"}}"#),
            14000.0,
        ),
        (
            format!(r#"seesaw_service_packets_total{{{web},direction="out"}}"#),
            120.0,
        ),
        (format!("seesaw_destination_healthy{{{web1}}}"), 1.0),
        (format!("seesaw_destination_weight{{{web1}}}"), 1.0),
        (
            format!("seesaw_destination_active_connections{{{web1}}}"),
            2.0,
        ),
        (
            format!("seesaw_destination_connections_total{{{web1}}}"),
            7.0,
        ),
        (
            format!(r#"seesaw_destination_bytes_total{{{web1},direction="out"}}"#),
            6000.0,
        ),
        (
            format!(r#"seesaw_check_state{{{check},state="unhealthy"}}"#),
            1.0,
        ),
        (format!("seesaw_check_duration_seconds{{{check}}}"), 0.025),
        (format!("seesaw_check_failures_total{{{check}}}"), 9.0),
        (format!("seesaw_check_successes_total{{{check}}}"), 1.0),
    ];
    for (series, value) in &expected {
        assert_eq!(sample(&samples, series), *value, "{series} in:\n{text}");
    }
    assert!(
        sample(&samples, "seesaw_ecu_collections_total") >= 1.0,
        "{text}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn metrics_pass_promtool() {
    let setup = Setup::start();
    setup.wait_for_collection().await;
    // One 401 and one 200, so that the request counter has samples too.
    setup.control(Call::get("/api/v1/ha")).await;
    setup.as_user(READER_TOKEN, Call::get("/api/v1/ha")).await;

    let text = setup.monitor("/metrics").await.body;
    if !promtool_found() {
        return;
    }
    let (passed, output) = promtool_check(&text);

    assert!(passed, "promtool check metrics failed:\n{output}\n{text}");
    assert!(
        text.contains(r#"seesaw_ecu_control_requests_total{code="401"} 1"#),
        "{text}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn engine_down_is_503_and_up_0() {
    let pki = Pki::new();
    let socket = pki.path("engine.sock");
    let mut ecu = Ecu::start(&pki, &socket, &[]);
    let monitor = ecu.monitor;
    let healthz = || async { Call::get("/healthz").send(monitor).await.unwrap() };

    let down =
        eventually(|| async { healthz().await.body.starts_with("engine unavailable: ") }).await;
    let before = healthz().await;
    let metrics_down = Call::get("/metrics").send(monitor).await.unwrap().body;
    let engine = FakeEngine::new();
    engine.set_reads(engine_reads());
    let served = engine.serve(&socket).unwrap();
    let up = eventually(|| async { healthz().await.status == 200 }).await;
    served.stop();
    let down_again = eventually(|| async { healthz().await.status == 503 }).await;

    assert!(down, "{}", ecu.log());
    assert_eq!(before.status, 503, "{}", before.body);
    assert!(
        metrics_down.contains("\nseesaw_engine_up 0\n"),
        "{metrics_down}"
    );
    assert!(!metrics_down.contains("seesaw_vserver_"), "{metrics_down}");
    assert!(up, "{}", ecu.log());
    assert!(down_again, "{}", ecu.log());
    assert!(ecu.is_running(), "{}", ecu.log());
}

#[tokio::test(flavor = "multi_thread")]
async fn control_without_credentials_is_401() {
    let setup = Setup::start();

    let read = setup.control(Call::get("/api/v1/vservers")).await;
    let failover = setup.control(Call::post("/api/v1/failover", "")).await;
    let unknown_path = setup.control(Call::get("/api/v1/nothing")).await;
    let wrong_token = setup
        .as_user("not-a-token-0123456789", Call::post("/api/v1/failover", ""))
        .await;

    assert_eq!(read.status, 401, "{}", read.body);
    assert_eq!(
        read.www_authenticate.as_deref(),
        Some("Bearer realm=\"seesaw_ecu\"")
    );
    assert_eq!(failover.status, 401, "{}", failover.body);
    assert_eq!(unknown_path.status, 401, "{}", unknown_path.body);
    assert_eq!(wrong_token.status, 401, "{}", wrong_token.body);
    assert_eq!(wrong_token.json()["error"], "invalid token");
    assert_eq!(setup.engine.calls().failovers, 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn reader_reads_but_cannot_failover() {
    let setup = Setup::start();

    let whoami = setup
        .as_user(READER_TOKEN, Call::get("/api/v1/whoami"))
        .await;
    let vservers = setup
        .as_user(READER_TOKEN, Call::get("/api/v1/vservers"))
        .await;
    let failover = setup
        .as_user(READER_TOKEN, Call::post("/api/v1/failover", ""))
        .await;
    let reload = setup
        .as_user(READER_TOKEN, Call::post("/api/v1/config/reload", ""))
        .await;

    assert_eq!(whoami.json()["name"], "bob");
    assert_eq!(whoami.json()["role"], "reader");
    assert_eq!(whoami.json()["method"], "token");
    assert_eq!(vservers.status, 200, "{}", vservers.body);
    assert_schema("vservers", &vservers);
    assert_eq!(failover.status, 403, "{}", failover.body);
    assert!(
        failover.json()["error"]
            .as_str()
            .unwrap()
            .contains("needs the admin role"),
        "{}",
        failover.body
    );
    assert_eq!(reload.status, 403, "{}", reload.body);
    let calls = setup.engine.calls();
    assert_eq!(calls.failovers, 0);
    assert_eq!(calls.config_reloads, 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn json_api_mirrors_show_commands() {
    let setup = Setup::start();
    let get = |path: &'static str| setup.as_user(READER_TOKEN, Call::get(path));

    let cases = [
        ("/api/v1/ha", "ha"),
        ("/api/v1/config/status", "config_status"),
        ("/api/v1/warnings", "warnings"),
        ("/api/v1/version", "version"),
        ("/api/v1/nodes", "nodes"),
        ("/api/v1/nodes/node2.example.com.", "nodes"),
        ("/api/v1/vlans", "vlans"),
        ("/api/v1/vlans/100", "vlans"),
        ("/api/v1/bgp/neighbors", "bgp_neighbors"),
        ("/api/v1/bgp/neighbors/192.0.2.254", "bgp_neighbors"),
        ("/api/v1/vservers", "vservers"),
        ("/api/v1/vservers/web@example", "vservers"),
        ("/api/v1/destinations", "destinations"),
        (
            "/api/v1/destinations/web@example/192.0.2.21:80/TCP",
            "destinations",
        ),
        ("/api/v1/backends", "backends"),
        ("/api/v1/backends/web2.example.com.", "backends"),
    ];
    for (path, definition) in cases {
        let reply = get(path).await;
        assert_eq!(reply.status, 200, "{path}: {}", reply.body);
        assert_eq!(reply.content_type, "application/json", "{path}");
        assert_schema(definition, &reply);
    }

    let ha = get("/api/v1/ha").await.json();
    let node = get("/api/v1/nodes/node2.example.com.").await.json();
    let destination = get("/api/v1/destinations/web@example/192.0.2.21:80/TCP")
        .await
        .json();
    let backend = get("/api/v1/backends/web2.example.com.").await.json();
    let source = get("/api/v1/config/source").await.json();
    let missing = get("/api/v1/destinations/nosuch").await;

    assert_eq!(ha["state"], "LEADER");
    assert_eq!(ha["transitions"], 2);
    assert_eq!(node["nodes"].as_array().unwrap().len(), 1);
    assert_eq!(node["nodes"][0]["priority"], 1);
    assert_eq!(
        destination["destinations"][0]["backend"],
        "web1.example.com."
    );
    assert_eq!(destination["destinations"][0]["stats"]["bytes_in"], 7000);
    assert_eq!(backend["backends"][0]["destinations"][0]["healthy"], false);
    assert_eq!(source["source"], "disk");
    assert_eq!(missing.status, 404, "{}", missing.body);
    assert_eq!(missing.json()["error"], "destination 'nosuch...' not found");
}

#[tokio::test(flavor = "multi_thread")]
async fn admin_failover_reaches_engine() {
    let setup = Setup::start();

    let failover = setup
        .as_user(ADMIN_TOKEN, Call::post("/api/v1/failover", ""))
        .await;
    let reload = setup
        .as_user(ADMIN_TOKEN, Call::post("/api/v1/config/reload", ""))
        .await;
    let source = setup
        .as_user(
            ADMIN_TOKEN,
            Call::post("/api/v1/config/source", r#"{"source": "server"}"#),
        )
        .await;

    assert_eq!(failover.status, 200, "{}", failover.body);
    assert_eq!(failover.json()["message"], "failover requested");
    assert_eq!(reload.status, 200, "{}", reload.body);
    assert_eq!(source.status, 200, "{}", source.body);
    assert_eq!(source.json()["previous"], "disk");
    let calls = setup.engine.calls();
    assert_eq!(calls.failovers, 1);
    assert_eq!(calls.config_reloads, 1);
    assert_eq!(calls.config_sources, ["server"]);
    assert!(
        setup
            .ecu
            .log()
            .contains("failover requested by \"alice\" (admin, by token)"),
        "{}",
        setup.ecu.log()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn admin_overrides_reach_engine() {
    let setup = Setup::start();

    let vserver = setup
        .override_as(ADMIN_TOKEN, "vserver", "dns@example", "enabled")
        .await;
    let backend = setup
        .override_as(ADMIN_TOKEN, "backend", "web2.example.com.", "disabled")
        .await;
    let destination = setup
        .override_as(
            ADMIN_TOKEN,
            "destination",
            "web@example/192.0.2.21:80/TCP",
            "default",
        )
        .await;
    let unknown = setup
        .override_as(ADMIN_TOKEN, "vserver", "nosuch@example", "enabled")
        .await;
    let bad_state = setup
        .override_as(ADMIN_TOKEN, "vserver", "dns@example", "off")
        .await;
    let bad_body = setup
        .as_user(
            ADMIN_TOKEN,
            Call::post("/api/v1/override/vserver", "dns@example"),
        )
        .await;

    assert_eq!(vserver.status, 200, "{}", vserver.body);
    assert_eq!(backend.status, 200, "{}", backend.body);
    assert_eq!(destination.status, 200, "{}", destination.body);
    assert_eq!(unknown.status, 404, "{}", unknown.body);
    assert_eq!(unknown.json()["error"], "No such vserver - nosuch@example");
    assert_eq!(bad_state.status, 400, "{}", bad_state.body);
    assert_eq!(bad_body.status, 400, "{}", bad_body.body);
    let calls = setup.engine.calls();
    assert_eq!(calls.vserver_overrides.len(), 1);
    assert_eq!(calls.vserver_overrides[0].vserver, "dns@example");
    assert_eq!(calls.vserver_overrides[0].state(), OverrideState::Enabled);
    assert_eq!(calls.backend_overrides[0].hostname, "web2.example.com.");
    assert_eq!(calls.backend_overrides[0].state(), OverrideState::Disabled);
    assert_eq!(calls.destination_overrides[0].vserver, "web@example");
    assert_eq!(
        calls.destination_overrides[0].destination,
        "web@example/192.0.2.21:80/TCP"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn engine_errors_map_to_statuses() {
    let setup = Setup::start();
    setup.engine.set_control_error(Some((
        tonic::Code::FailedPrecondition,
        "reload request already queued",
    )));

    let reload = setup
        .as_user(ADMIN_TOKEN, Call::post("/api/v1/config/reload", ""))
        .await;
    setup
        .engine
        .set_control_error(Some((tonic::Code::PermissionDenied, "insufficient access")));
    let failover = setup
        .as_user(ADMIN_TOKEN, Call::post("/api/v1/failover", ""))
        .await;

    assert_eq!(reload.status, 409, "{}", reload.body);
    assert_eq!(
        reload.json()["error"],
        "config reload failed: reload request already queued"
    );
    assert_eq!(failover.status, 502, "{}", failover.body);
}

#[tokio::test(flavor = "multi_thread")]
async fn engine_unreachable_is_503_on_api() {
    let pki = Pki::new();
    let ecu = Ecu::start(&pki, &pki.path("engine.sock"), &[]);

    let reply = Call::get("/api/v1/vservers")
        .token(READER_TOKEN)
        .tls(pki.client_tls(None))
        .send(ecu.control())
        .await
        .unwrap();

    assert_eq!(reply.status, 503, "{}", reply.body);
    assert!(
        reply.json()["error"]
            .as_str()
            .unwrap()
            .starts_with("engine unavailable: "),
        "{}",
        reply.body
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn operator_overrides_granted_vserver_only() {
    let setup = Setup::start();

    let granted = setup
        .override_as(OPERATOR_TOKEN, "vserver", "web@example", "disabled")
        .await;
    let not_granted = setup
        .override_as(OPERATOR_TOKEN, "vserver", "dns@example", "enabled")
        .await;
    let backend = setup
        .override_as(OPERATOR_TOKEN, "backend", "web2.example.com.", "disabled")
        .await;
    let failover = setup
        .as_user(OPERATOR_TOKEN, Call::post("/api/v1/failover", ""))
        .await;

    assert_eq!(granted.status, 200, "{}", granted.body);
    assert_eq!(not_granted.status, 403, "{}", not_granted.body);
    assert_eq!(
        not_granted.json()["error"],
        "user \"carol\" is not authorized to control \"dns@example\""
    );
    assert_eq!(backend.status, 403, "{}", backend.body);
    assert_eq!(failover.status, 403, "{}", failover.body);
    let calls = setup.engine.calls();
    assert_eq!(calls.vserver_overrides.len(), 1);
    assert_eq!(calls.vserver_overrides[0].vserver, "web@example");
    assert!(calls.backend_overrides.is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn operator_denied_without_grant_support() {
    let setup = Setup::start();
    let mut reads = engine_reads();
    reads.access_grants = None;
    setup.engine.set_reads(reads);

    let reply = setup
        .override_as(OPERATOR_TOKEN, "vserver", "web@example", "disabled")
        .await;

    assert_eq!(reply.status, 403, "{}", reply.body);
    assert!(setup.engine.calls().vserver_overrides.is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn client_certificate_authenticates() {
    let setup = Setup::start();
    let admin_tls = setup.pki.client_tls(Some(&setup.pki.admin));
    let reader_tls = setup.pki.client_tls(Some(&setup.pki.reader));
    let stranger_tls = setup.pki.client_tls(Some(&setup.pki.stranger));
    let control = setup.ecu.control();

    let send = |call: Call<'static>, tls| call.tls(tls).send(control);

    let whoami = send(Call::get("/api/v1/whoami"), admin_tls.clone())
        .await
        .unwrap();
    let admin_failover = send(Call::post("/api/v1/failover", ""), admin_tls)
        .await
        .unwrap();
    let reader_read = send(Call::get("/api/v1/ha"), reader_tls.clone())
        .await
        .unwrap();
    let reader_failover = send(Call::post("/api/v1/failover", ""), reader_tls)
        .await
        .unwrap();
    let stranger = send(Call::get("/api/v1/whoami"), stranger_tls).await;

    assert_eq!(whoami.status, 200, "{}", whoami.body);
    assert_eq!(whoami.json()["name"], "alice");
    assert_eq!(whoami.json()["role"], "admin");
    assert_eq!(whoami.json()["method"], "certificate");
    assert_eq!(admin_failover.status, 200, "{}", admin_failover.body);
    assert_eq!(reader_read.status, 200, "{}", reader_read.body);
    assert_eq!(reader_failover.status, 403, "{}", reader_failover.body);
    // TLS 1.3 reports a rejected client certificate after the handshake,
    // so the failure may come with the request instead.
    assert!(stranger.is_err(), "{stranger:?}");
    assert_eq!(setup.engine.calls().failovers, 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn servers_keep_their_own_paths() {
    let setup = Setup::start();

    let api_on_monitor = setup.monitor("/api/v1/vservers").await;
    let metrics_on_control = setup.as_user(READER_TOKEN, Call::get("/metrics")).await;
    let plain_http_on_control = Call::get("/api/v1/ha")
        .token(READER_TOKEN)
        .send(setup.ecu.control())
        .await;

    assert_eq!(api_on_monitor.status, 404, "{}", api_on_monitor.body);
    assert_eq!(
        metrics_on_control.status, 404,
        "{}",
        metrics_on_control.body
    );
    assert!(
        plain_http_on_control.is_err() || plain_http_on_control.as_ref().unwrap().status == 400,
        "{plain_http_on_control:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn missing_certificate_disables_control_only() {
    let pki = Pki::new();
    let missing = pki.path("missing.crt");
    let ecu = Ecu::start(
        &pki,
        &pki.path("engine.sock"),
        &[format!("-cert_file={}", missing.display())],
    );

    let healthz = Call::get("/healthz").send(ecu.monitor).await.unwrap();

    assert_eq!(ecu.control, None, "{}", ecu.log());
    assert!(
        ecu.log().contains("disabling the ECU control server"),
        "{}",
        ecu.log()
    );
    assert_eq!(healthz.status, 503, "{}", healthz.body);
}

#[test]
fn sigterm_stops_cleanly() {
    let pki = Pki::new();
    let mut ecu = Ecu::start(&pki, &pki.path("engine.sock"), &[]);

    let status = ecu.terminate();

    assert!(status.success(), "{status}:\n{}", ecu.log());
    assert!(ecu.log().contains("shutdown complete"), "{}", ecu.log());
}

#[test]
fn go_flags_are_accepted() {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_seesaw_ecu"))
        .arg("-help")
        .output()
        .unwrap();
    let help = String::from_utf8_lossy(&output.stdout);

    assert!(output.status.success());
    for flag in [
        "--control_address",
        "--monitor_address",
        "--log_dir",
        "--token_file",
        "--ca_file",
    ] {
        assert!(help.contains(flag), "{flag} missing from:\n{help}");
    }
}
