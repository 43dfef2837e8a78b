//! Checkers and the scheduler against servers on 127.0.0.1 that the tests
//! run themselves; no root needed.

mod support;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use seesaw_healthcheck::checker::CheckContext;
use seesaw_healthcheck::status::State;
use seesaw_healthcheck::tls::{self, TlsClients};
use support::{Harness, check_config, context, run_once};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpSocket, UdpSocket};

const WAIT: Duration = Duration::from_secs(5);

/// Binds a listener with SO_REUSEADDR, so a test can bind the same port
/// again after closing it.
fn listen(addr: SocketAddr) -> TcpListener {
    let socket = TcpSocket::new_v4().unwrap();
    socket.set_reuseaddr(true).unwrap();
    socket.bind(addr).unwrap();
    socket.listen(64).unwrap()
}

/// Serves `reply` to every connection after reading one chunk.
fn serve_tcp(listener: TcpListener, reply: &'static [u8]) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            let Ok((mut stream, _)) = listener.accept().await else {
                return;
            };
            tokio::spawn(async move {
                let mut buffer = [0; 1024];
                let _ = stream.read(&mut buffer).await;
                let _ = stream.write_all(reply).await;
            });
        }
    })
}

/// Serves a fixed HTTP response to every connection.
async fn serve_http(listener: TcpListener, status: &'static str, body: &'static str) {
    loop {
        let Ok((mut stream, _)) = listener.accept().await else {
            return;
        };
        tokio::spawn(async move {
            let mut request = Vec::new();
            let mut buffer = [0; 1024];
            while !request.windows(4).any(|window| window == b"\r\n\r\n") {
                match stream.read(&mut buffer).await {
                    Ok(0) | Err(_) => return,
                    Ok(length) => request.extend_from_slice(&buffer[..length]),
                }
            }
            let response = format!(
                "HTTP/1.1 {status}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = stream.write_all(response.as_bytes()).await;
        });
    }
}

#[tokio::test]
async fn tcp_connect_succeeds_and_refused_fails() {
    let listener = listen("127.0.0.1:0".parse().unwrap());
    let port = listener.local_addr().unwrap().port();
    let config = check_config(&format!(
        r#"{{"type": "TCP", "ip": "127.0.0.1", "port": {port}}}"#
    ));

    let result = run_once(&config, &context()).await;
    assert!(result.success, "{result:?}");
    assert_eq!(result.message, format!("TCP connect to 127.0.0.1:{port}"));

    drop(listener);
    let result = run_once(&config, &context()).await;
    assert!(!result.success);
    assert!(
        result.text().contains("failed to connect"),
        "{}",
        result.text()
    );
    assert!(result.text().contains("refused"), "{}", result.text());
}

#[tokio::test]
async fn tcp_send_receive_compares_prefix() {
    let listener = listen("127.0.0.1:0".parse().unwrap());
    let port = listener.local_addr().unwrap().port();
    serve_tcp(listener, b"+PONG\r\n");

    let good = check_config(&format!(
        r#"{{"type": "TCP", "ip": "127.0.0.1", "port": {port}, "send": "PING\r\n", "receive": "+PONG"}}"#
    ));
    let result = run_once(&good, &context()).await;
    assert!(result.success, "{result:?}");

    let bad = check_config(&format!(
        r#"{{"type": "TCP", "ip": "127.0.0.1", "port": {port}, "send": "PING\r\n", "receive": "-ERR"}}"#
    ));
    let result = run_once(&bad, &context()).await;
    assert!(!result.success);
    assert!(
        result.message.ends_with(r#"unexpected response - "+PON""#),
        "{}",
        result.message
    );
}

#[tokio::test]
async fn udp_echo_succeeds_and_closed_port_fails() {
    let server = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let port = server.local_addr().unwrap().port();
    let config = check_config(&format!(
        r#"{{"type": "UDP", "ip": "127.0.0.1", "port": {port}, "send": "hello", "receive": "hel"}}"#
    ));
    let echo = tokio::spawn(async move {
        let mut buffer = [0; 1500];
        loop {
            let (length, peer) = server.recv_from(&mut buffer).await.unwrap();
            server.send_to(&buffer[..length], peer).await.unwrap();
        }
    });

    let result = run_once(&config, &context()).await;
    assert!(result.success, "{result:?}");

    echo.abort();
    let _ = echo.await;
    let result = run_once(&config, &context()).await;
    assert!(!result.success);
    assert!(
        result.text().contains("failed to read response"),
        "{}",
        result.text()
    );
}

#[tokio::test]
async fn http_checks_status_and_body() {
    let listener = listen("127.0.0.1:0".parse().unwrap());
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(serve_http(listener, "200 OK", "service: ok\n"));

    let config = check_config(&format!(
        r#"{{"type": "HTTP", "ip": "127.0.0.1", "port": {port}, "send": "/healthz", "receive": "ok"}}"#
    ));
    let result = run_once(&config, &context()).await;
    assert!(result.success, "{result:?}");
    assert_eq!(
        result.message,
        format!("HTTP GET to 127.0.0.1:{port}; got 200 OK")
    );

    let wrong_body = check_config(&format!(
        r#"{{"type": "HTTP", "ip": "127.0.0.1", "port": {port}, "receive": "degraded"}}"#
    ));
    let result = run_once(&wrong_body, &context()).await;
    assert!(!result.success);
    assert!(
        result.message.contains("unexpected response"),
        "{}",
        result.message
    );

    let wrong_code = check_config(&format!(
        r#"{{"type": "HTTP", "ip": "127.0.0.1", "port": {port}, "code": 204}}"#
    ));
    let result = run_once(&wrong_code, &context()).await;
    assert!(!result.success);
}

#[tokio::test]
async fn http_request_line_and_host_header() {
    let listener = listen("127.0.0.1:0".parse().unwrap());
    let port = listener.local_addr().unwrap().port();
    let (sender, mut requests) = tokio::sync::mpsc::channel::<String>(4);
    tokio::spawn(async move {
        loop {
            let (mut stream, _) = listener.accept().await.unwrap();
            let mut buffer = vec![0; 4096];
            let length = stream.read(&mut buffer).await.unwrap();
            sender
                .send(String::from_utf8_lossy(&buffer[..length]).into_owned())
                .await
                .unwrap();
            let _ = stream
                .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
                .await;
        }
    });

    let relative = check_config(&format!(
        r#"{{"type": "HTTP", "ip": "127.0.0.1", "port": {port}, "send": "/a?b=c", "method": "HEAD"}}"#
    ));
    assert!(run_once(&relative, &context()).await.success);
    let request = requests.recv().await.unwrap();
    assert!(request.starts_with("HEAD /a?b=c HTTP/1.1\r\n"), "{request}");
    assert!(
        request
            .to_ascii_lowercase()
            .contains(&format!("host: 127.0.0.1:{port}\r\n")),
        "{request}"
    );

    let proxied = check_config(&format!(
        r#"{{"type": "HTTP", "ip": "127.0.0.1", "port": {port}, "send": "http://www.example.com/x", "proxy": true}}"#
    ));
    assert!(run_once(&proxied, &context()).await.success);
    let request = requests.recv().await.unwrap();
    assert!(
        request.starts_with("GET http://www.example.com/x HTTP/1.1\r\n"),
        "{request}"
    );
    assert!(
        request
            .to_ascii_lowercase()
            .contains("host: www.example.com\r\n"),
        "{request}"
    );
}

/// Generates a self-signed certificate for 127.0.0.1 and returns it and its
/// key as PEM.
fn self_signed() -> (String, String) {
    let certified = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_string()]).unwrap();
    (certified.cert.pem(), certified.signing_key.serialize_pem())
}

fn tls_acceptor(cert_pem: &str, key_pem: &str) -> tokio_rustls::TlsAcceptor {
    let certificates = CertificateDer::pem_slice_iter(cert_pem.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .unwrap();
    let key = PrivateKeyDer::from_pem_slice(key_pem.as_bytes()).unwrap();
    let config = rustls::ServerConfig::builder_with_provider(tls::provider())
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(certificates, key)
        .unwrap();
    tokio_rustls::TlsAcceptor::from(Arc::new(config))
}

fn trusting(cert_pem: &str) -> CheckContext {
    let mut roots = rustls::RootCertStore::empty();
    for certificate in CertificateDer::pem_slice_iter(cert_pem.as_bytes()) {
        roots.add(certificate.unwrap()).unwrap();
    }
    CheckContext::new(TlsClients::with_roots(roots))
}

#[tokio::test]
async fn tls_checks_verify_only_when_asked() {
    let (cert_pem, key_pem) = self_signed();
    let acceptor = tls_acceptor(&cert_pem, &key_pem);
    let listener = listen("127.0.0.1:0".parse().unwrap());
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        loop {
            let (stream, _) = listener.accept().await.unwrap();
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let Ok(mut stream) = acceptor.accept(stream).await else {
                    return;
                };
                let mut buffer = [0; 4096];
                let _ = stream.read(&mut buffer).await;
                let _ = stream
                    .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
                    .await;
                let _ = stream.shutdown().await;
            });
        }
    });

    for kind in ["TCP_TLS", "HTTPS"] {
        let verify = check_config(&format!(
            r#"{{"type": "{kind}", "ip": "127.0.0.1", "port": {port}}}"#
        ));
        let no_verify = check_config(&format!(
            r#"{{"type": "{kind}", "ip": "127.0.0.1", "port": {port}, "tls_verify": false}}"#
        ));

        let result = run_once(&verify, &trusting(&cert_pem)).await;
        assert!(result.success, "{kind} with the CA trusted: {result:?}");

        let result = run_once(&verify, &context()).await;
        assert!(!result.success, "{kind} with no CA trusted: {result:?}");
        assert!(
            result.text().contains("TLS handshake failed"),
            "{}",
            result.text()
        );

        let result = run_once(&no_verify, &context()).await;
        assert!(result.success, "{kind} without verification: {result:?}");
    }
}

#[tokio::test]
async fn scheduler_follows_retries_and_recovers() {
    let address: SocketAddr = "127.0.0.1:0".parse().unwrap();
    let listener = listen(address);
    let address = listener.local_addr().unwrap();
    let config = check_config(&format!(
        r#"{{"type": "TCP", "ip": "127.0.0.1", "port": {}, "interval": "100ms", "timeout": "1s", "retries": 2}}"#,
        address.port()
    ));
    let mut harness = Harness::new(context());
    harness.apply(&[config]);

    let healthy = harness.expect_state(State::Healthy, WAIT).await;
    assert_eq!(healthy.id, 1);

    drop(listener);
    let unhealthy = harness.expect_state(State::Unhealthy, WAIT).await;
    let failures = unhealthy.status.failures;
    assert_eq!(
        failures, 3,
        "retries 2 should need 3 failures: {unhealthy:?}"
    );
    assert!(
        unhealthy.status.message.contains("failed to connect"),
        "{unhealthy:?}"
    );

    let listener = listen(address);
    let healthy = harness.expect_state(State::Healthy, WAIT).await;
    assert_eq!(
        healthy.status.failures, failures,
        "one success must be enough: {healthy:?}"
    );
    drop(listener);
}

#[tokio::test]
async fn scheduler_zero_timeout_uses_default() {
    let listener = listen("127.0.0.1:0".parse().unwrap());
    let port = listener.local_addr().unwrap().port();
    let config = check_config(&format!(
        r#"{{"type": "TCP", "ip": "127.0.0.1", "port": {port}, "interval": "1s", "timeout": 0}}"#
    ));
    let mut harness = Harness::new(context());
    harness.apply(&[config]);

    let notification = harness.expect_state(State::Healthy, WAIT).await;
    assert_ne!(notification.status.message, "Timed out");
}

#[tokio::test]
async fn scheduler_overrun_does_not_pile_up() {
    // The server accepts but never replies, so every run takes its whole
    // 400 ms timeout, four times the interval.
    let listener = listen("127.0.0.1:0".parse().unwrap());
    let port = listener.local_addr().unwrap().port();
    let accepted = Arc::new(AtomicUsize::new(0));
    let counter = accepted.clone();
    tokio::spawn(async move {
        let mut open = Vec::new();
        loop {
            let (stream, _) = listener.accept().await.unwrap();
            counter.fetch_add(1, Ordering::SeqCst);
            open.push(stream);
        }
    });
    let config = check_config(&format!(
        r#"{{"type": "TCP", "ip": "127.0.0.1", "port": {port}, "receive": "x",
            "interval": "100ms", "timeout": "400ms"}}"#
    ));
    let mut harness = Harness::new(context());
    harness.apply(&[config]);

    let notification = harness.expect_state(State::Unhealthy, WAIT).await;
    assert_eq!(notification.status.message, "Timed out");
    tokio::time::sleep(Duration::from_millis(2000)).await;
    let connections = accepted.load(Ordering::SeqCst);
    // Sequential runs make at most one connection per 400 ms: about 6 in
    // 2.4 s, where a run per tick would make about 24.
    assert!(connections <= 8, "{connections} connections: runs piled up");
    assert!(
        connections >= 4,
        "only {connections} connections: runs stalled"
    );
}

#[tokio::test]
async fn scheduler_shares_identical_checks() {
    let listener = listen("127.0.0.1:0".parse().unwrap());
    let port = listener.local_addr().unwrap().port();
    let accepted = Arc::new(AtomicUsize::new(0));
    let counter = accepted.clone();
    tokio::spawn(async move {
        loop {
            let _ = listener.accept().await.unwrap();
            counter.fetch_add(1, Ordering::SeqCst);
        }
    });
    let check =
        format!(r#"{{"type": "TCP", "ip": "127.0.0.1", "port": {port}, "interval": "200ms"}}"#);
    let other_port = check.replace("\"interval\": \"200ms\"", "\"interval\": \"300ms\"");
    let mut harness = Harness::new(context());
    harness.apply(&[
        check_config(&check),
        check_config(&check),
        check_config(&other_port),
    ]);
    assert_eq!(harness.scheduler.probe_count(), 2);

    let mut ids = Vec::new();
    for _ in 0..3 {
        ids.push(harness.expect_state(State::Healthy, WAIT).await.id);
    }
    ids.sort();
    assert_eq!(ids, [1, 2, 3]);

    // Dropping one of the two sharing checks keeps their probe running.
    harness.apply(&[check_config(&check)]);
    assert_eq!(harness.scheduler.probe_count(), 1);
    assert_eq!(harness.scheduler.statuses().len(), 1);
    harness.apply(&[]);
    assert_eq!(harness.scheduler.probe_count(), 0);
    assert!(accepted.load(Ordering::SeqCst) >= 2);
}
