//! Every checker against a real server in a network namespace: healthy,
//! then unhealthy after retries + 1 failures once the server stops, then
//! healthy after one success once it is back.
//!
//! The servers are Debian's nginx, dnsmasq and FreeRADIUS, plus TCP and UDP
//! echo services and the kernel's own ICMP and ICMPv6 echo. The checks run
//! from a second namespace, so no packet leaves the pair.
//!
//! The DSR and TUN tests put a VIP on the server's loopback and show that a
//! check of each type reaches it only with its socket mark.

mod support;

use std::net::SocketAddr;
use std::path::Path;
use std::thread;
use std::time::{Duration, Instant};

use seesaw_healthcheck::checker::{CheckContext, CheckResult};
use seesaw_healthcheck::config::CheckConfig;
use seesaw_healthcheck::status::State;
use seesaw_healthcheck::tls::TlsClients;
use support::netns::{
    self, CLIENT_IP, NamespacePair, SERVER_IP, SERVER_IP6, Server, require_program,
};
use support::{Harness, check_config, context};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const RETRIES: u64 = 2;
const WAIT: Duration = Duration::from_secs(15);

/// Runs `check` (JSON without the retries and timing fields) in the client
/// namespace through one unhealthy and healthy cycle. Between the phases it
/// calls `set_server(false)` to stop the server and `set_server(true)` to
/// start it again.
fn cycle(
    pair: &NamespacePair,
    check: &str,
    context: CheckContext,
    set_server: &mut (dyn FnMut(bool) + Send),
) {
    let check =
        format!(r#"{{{check}, "retries": {RETRIES}, "interval": "250ms", "timeout": "1s"}}"#);
    let config = check_config(&check);
    block_on_in(&pair.client, || async {
        let mut harness = Harness::new(context);
        harness.apply(&[config]);

        let healthy = harness.expect_state(State::Healthy, WAIT).await;
        assert_eq!(healthy.status.failures, 0, "{healthy:?}");

        set_server(false);
        let unhealthy = harness.expect_state(State::Unhealthy, WAIT).await;
        assert_eq!(
            unhealthy.status.failures,
            RETRIES + 1,
            "unhealthy after the wrong number of failures: {unhealthy:?}"
        );

        set_server(true);
        let recovered = harness.expect_state(State::Healthy, WAIT).await;
        // The check may fail a few more times while the server starts,
        // but its first success must make it healthy.
        assert_eq!(
            recovered.status.successes,
            unhealthy.status.successes + 1,
            "one success must make it healthy: {recovered:?}"
        );
    });
}

/// Runs the future that `make` returns on a new thread in `namespace`, on a
/// runtime of its own, and returns its output.
fn block_on_in<T, F>(namespace: &str, make: impl FnOnce() -> F + Send) -> T
where
    T: Send,
    F: Future<Output = T>,
{
    thread::scope(|scope| {
        scope
            .spawn(|| {
                netns::enter(namespace);
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .unwrap();
                runtime.block_on(make())
            })
            .join()
            .expect("the thread in the namespace panicked")
    })
}

/// Runs each check once in the client namespace, in order, and returns the
/// results.
fn run_in_client(
    pair: &NamespacePair,
    checks: &[CheckConfig],
    context: &CheckContext,
) -> Vec<CheckResult> {
    block_on_in(&pair.client, || async {
        let mut results = Vec::new();
        for check in checks {
            results.push(support::run_once(check, context).await);
        }
        results
    })
}

/// Polls until `addr` accepts TCP connections in the server namespace,
/// which reaches the VIP of the DSR and TUN tests without a mark.
fn wait_for_tcp(pair: &NamespacePair, addr: SocketAddr, server: &mut Server) {
    let namespace = pair.server.clone();
    let deadline = Instant::now() + WAIT;
    let ready = thread::spawn(move || {
        netns::enter(&namespace);
        while Instant::now() < deadline {
            if std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
                return true;
            }
            thread::sleep(Duration::from_millis(100));
        }
        false
    })
    .join()
    .unwrap();
    assert!(!server.exited(), "the server exited at start");
    assert!(ready, "nothing accepts connections on {addr}");
}

/// TCP and UDP echo services on `ip:port` in the server namespace, on their
/// own thread and runtime; dropping the handle stops them.
struct EchoServer {
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<thread::JoinHandle<()>>,
}

impl EchoServer {
    fn start(pair: &NamespacePair, ip: &str, port: u16) -> EchoServer {
        let address: SocketAddr = format!("{ip}:{port}").parse().unwrap();
        let namespace = pair.server.clone();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let (ready_sender, ready) = std::sync::mpsc::channel();
        let thread = thread::spawn(move || {
            netns::enter(&namespace);
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async move {
                let socket = tokio::net::TcpSocket::new_v4().unwrap();
                socket.set_reuseaddr(true).unwrap();
                socket.bind(address).unwrap();
                let listener = socket.listen(16).unwrap();
                let udp = tokio::net::UdpSocket::bind(address).await.unwrap();
                ready_sender.send(()).unwrap();

                let tcp_echo = async {
                    loop {
                        let (mut stream, _) = listener.accept().await.unwrap();
                        tokio::spawn(async move {
                            let mut buffer = [0; 1024];
                            while let Ok(length) = stream.read(&mut buffer).await {
                                if length == 0 || stream.write_all(&buffer[..length]).await.is_err()
                                {
                                    return;
                                }
                            }
                        });
                    }
                };
                let udp_echo = async {
                    let mut buffer = [0; 1500];
                    loop {
                        let (length, peer) = udp.recv_from(&mut buffer).await.unwrap();
                        let _ = udp.send_to(&buffer[..length], peer).await;
                    }
                };
                tokio::select! {
                    _ = stopped => {}
                    () = tcp_echo => {}
                    () = udp_echo => {}
                }
            });
        });
        ready.recv().expect("the echo server failed to start");
        EchoServer {
            stop: Some(stop),
            thread: Some(thread),
        }
    }
}

impl Drop for EchoServer {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

#[test]
#[ignore = "needs root: network namespaces"]
fn root_tcp_check_cycle() {
    let pair = NamespacePair::new();
    let mut echo = Some(EchoServer::start(&pair, SERVER_IP, 7000));
    let check = format!(
        r#""type": "TCP", "ip": "{SERVER_IP}", "port": 7000, "send": "ping", "receive": "ping""#
    );
    cycle(&pair, &check, context(), &mut |up| {
        echo.take();
        if up {
            echo = Some(EchoServer::start(&pair, SERVER_IP, 7000));
        }
    });
}

#[test]
#[ignore = "needs root: network namespaces"]
fn root_udp_check_cycle() {
    let pair = NamespacePair::new();
    let mut echo = Some(EchoServer::start(&pair, SERVER_IP, 7001));
    let check = format!(
        r#""type": "UDP", "ip": "{SERVER_IP}", "port": 7001, "send": "ping", "receive": "ping""#
    );
    cycle(&pair, &check, context(), &mut |up| {
        echo.take();
        if up {
            echo = Some(EchoServer::start(&pair, SERVER_IP, 7001));
        }
    });
}

#[test]
#[ignore = "needs root: network namespaces"]
fn root_icmp_check_cycle() {
    let pair = NamespacePair::new();
    let check = format!(r#""type": "ICMP_PING", "ip": "{SERVER_IP}""#);
    cycle(&pair, &check, context(), &mut |up| {
        pair.server_sysctl("net.ipv4.icmp_echo_ignore_all", if up { "0" } else { "1" })
    });
}

#[test]
#[ignore = "needs root: network namespaces"]
fn root_icmpv6_check_cycle() {
    let pair = NamespacePair::new();
    let check = format!(r#""type": "ICMP_PING", "ip": "{SERVER_IP6}""#);
    cycle(&pair, &check, context(), &mut |up| {
        pair.server_sysctl("net.ipv6.icmp.echo_ignore_all", if up { "0" } else { "1" })
    });
}

/// Writes a self-signed certificate for the server address and returns a
/// context that trusts it.
fn write_certificate(directory: &Path) -> CheckContext {
    let certified = rcgen::generate_simple_self_signed(vec![SERVER_IP.to_string()]).unwrap();
    let cert_pem = certified.cert.pem();
    std::fs::write(directory.join("cert.pem"), &cert_pem).unwrap();
    std::fs::write(
        directory.join("key.pem"),
        certified.signing_key.serialize_pem(),
    )
    .unwrap();
    CheckContext::new(TlsClients::from_ca_file(&directory.join("cert.pem")))
}

/// Starts nginx in the server namespace with HTTP on `ip:80` and HTTPS on
/// `ip:443`, both serving `/healthz`.
fn start_nginx(pair: &NamespacePair, nginx: &str, directory: &Path, ip: &str) -> Server {
    let config = directory.join("nginx.conf");
    let dir = directory.display();
    std::fs::write(
        &config,
        format!(
            "daemon off;\nmaster_process off;\npid {dir}/nginx.pid;\nerror_log {dir}/error.log;\n\
             events {{}}\n\
             http {{\n  access_log off;\n  client_body_temp_path {dir}/body;\n  proxy_temp_path {dir}/proxy;\n\
               fastcgi_temp_path {dir}/fastcgi;\n  uwsgi_temp_path {dir}/uwsgi;\n  scgi_temp_path {dir}/scgi;\n\
               server {{\n    listen {ip}:80;\n    listen {ip}:443 ssl;\n\
                 ssl_certificate {dir}/cert.pem;\n    ssl_certificate_key {dir}/key.pem;\n\
                 location /healthz {{ return 200 \"serving\\n\"; }}\n  }}\n}}\n"
        ),
    )
    .unwrap();
    let config = config.display().to_string();
    let mut server = pair.spawn(
        &pair.server,
        &[nginx, "-c", &config, "-p", &dir.to_string()],
        &directory.join("nginx.log"),
    );
    wait_for_tcp(pair, format!("{ip}:80").parse().unwrap(), &mut server);
    server
}

#[test]
#[ignore = "needs root: network namespaces"]
fn root_http_and_https_check_cycles() {
    let Some(nginx) = require_program("root_http_and_https_check_cycles", "nginx", "nginx") else {
        return;
    };
    let pair = NamespacePair::new();
    let directory = tempfile::tempdir().unwrap();
    let trusting = write_certificate(directory.path());

    let checks = [
        (
            format!(
                r#""type": "HTTP", "ip": "{SERVER_IP}", "port": 80, "send": "/healthz", "receive": "serving""#
            ),
            context(),
        ),
        (
            format!(
                r#""type": "HTTPS", "ip": "{SERVER_IP}", "port": 443, "send": "/healthz", "receive": "serving""#
            ),
            trusting.clone(),
        ),
        (
            format!(
                r#""type": "HTTPS", "ip": "{SERVER_IP}", "port": 443, "send": "/healthz", "tls_verify": false"#
            ),
            context(),
        ),
        (
            format!(r#""type": "TCP_TLS", "ip": "{SERVER_IP}", "port": 443"#),
            trusting,
        ),
    ];
    for (check, context) in checks {
        let mut server = Some(start_nginx(&pair, &nginx, directory.path(), SERVER_IP));
        cycle(&pair, &check, context, &mut |up| {
            server.take();
            if up {
                server = Some(start_nginx(&pair, &nginx, directory.path(), SERVER_IP));
            }
        });
    }
}

/// Starts dnsmasq in the server namespace on `ip:53` with the records
/// `www.check.test A 198.18.0.99` and `v6.check.test AAAA 2001:db8::99`.
fn start_dnsmasq(pair: &NamespacePair, dnsmasq: &str, directory: &Path, ip: &str) -> Server {
    let log = directory.join("dnsmasq.log");
    let pid_file = directory.join("dnsmasq.pid");
    let pid_option = format!("--pid-file={}", pid_file.display());
    let listen = format!("--listen-address={ip}");
    let mut server = pair.spawn(
        &pair.server,
        &[
            dnsmasq,
            "--keep-in-foreground",
            "--conf-file=/dev/null",
            "--no-resolv",
            "--no-hosts",
            "--bind-interfaces",
            &listen,
            "--user=root",
            &pid_option,
            "--address=/www.check.test/198.18.0.99",
            "--address=/v6.check.test/2001:db8::99",
            "--log-facility=-",
        ],
        &log,
    );
    // dnsmasq logs "started" after it has bound its sockets.
    wait_for_log(&mut server, &log, "started");
    server
}

#[test]
#[ignore = "needs root: network namespaces"]
fn root_dns_check_cycle() {
    let Some(dnsmasq) = require_program("root_dns_check_cycle", "dnsmasq", "dnsmasq") else {
        return;
    };
    let pair = NamespacePair::new();
    let directory = tempfile::tempdir().unwrap();
    let mut server = Some(start_dnsmasq(&pair, &dnsmasq, directory.path(), SERVER_IP));
    let check = format!(
        r#""type": "DNS", "ip": "{SERVER_IP}", "port": 53, "send": "www.check.test", "method": "A", "receive": "198.18.0.99""#
    );
    cycle(&pair, &check, context(), &mut |up| {
        server.take();
        if up {
            server = Some(start_dnsmasq(&pair, &dnsmasq, directory.path(), SERVER_IP));
        }
    });
}

#[test]
#[ignore = "needs root: network namespaces"]
fn root_dns_aaaa_check_cycle() {
    let Some(dnsmasq) = require_program("root_dns_aaaa_check_cycle", "dnsmasq", "dnsmasq") else {
        return;
    };
    let pair = NamespacePair::new();
    let directory = tempfile::tempdir().unwrap();
    let aaaa_check = |answer: &str| {
        format!(
            r#""type": "DNS", "ip": "{SERVER_IP}", "port": 53, "send": "v6.check.test", "method": "AAAA", "receive": "{answer}""#
        )
    };
    let mut server = Some(start_dnsmasq(&pair, &dnsmasq, directory.path(), SERVER_IP));

    let mismatched = check_config(&format!("{{{}}}", aaaa_check("2001:db8::98")));
    let [result] = &run_in_client(&pair, &[mismatched], &context())[..] else {
        unreachable!("one check, one result");
    };
    assert!(!result.success, "{result:?}");
    assert_eq!(
        result.text(),
        "DNS v6.check.test. IN AAAA query to port 53; failed to match answer"
    );

    cycle(&pair, &aaaa_check("2001:db8::99"), context(), &mut |up| {
        server.take();
        if up {
            server = Some(start_dnsmasq(&pair, &dnsmasq, directory.path(), SERVER_IP));
        }
    });
}

/// Copies Debian's FreeRADIUS configuration into `directory` and adds a
/// client for the client namespace, a user `healthcheck` and a user
/// `challenger` who is always sent an Access-Challenge. Rejects
/// are sent at once instead of after FreeRADIUS' default one-second delay,
/// which would exceed the checks' timeout.
fn configure_freeradius(directory: &Path) -> String {
    let confdir = directory.join("raddb");
    let status = std::process::Command::new("cp")
        .args(["-a", "/etc/freeradius/3.0"])
        .arg(&confdir)
        .status()
        .unwrap();
    assert!(status.success(), "failed to copy /etc/freeradius/3.0");
    std::fs::write(
        confdir.join("clients.conf"),
        format!("client checker {{\n  ipaddr = {CLIENT_IP}\n  secret = s3cret\n}}\n"),
    )
    .unwrap();
    std::fs::write(
        confdir.join("mods-config/files/authorize"),
        "healthcheck Cleartext-Password := \"pw\"\n\
         challenger Cleartext-Password := \"pw\", Response-Packet-Type := Access-Challenge\n",
    )
    .unwrap();
    let radiusd = confdir.join("radiusd.conf");
    let settings = std::fs::read_to_string(&radiusd).unwrap();
    assert!(
        settings.contains("reject_delay = 1"),
        "reject_delay not found in {}",
        radiusd.display()
    );
    std::fs::write(
        &radiusd,
        settings.replace("reject_delay = 1", "reject_delay = 0"),
    )
    .unwrap();
    confdir.display().to_string()
}

fn start_freeradius(
    pair: &NamespacePair,
    freeradius: &str,
    directory: &Path,
    confdir: &str,
) -> Server {
    let log = directory.join("freeradius.log");
    let mut server = pair.spawn(
        &pair.server,
        &[freeradius, "-f", "-l", "stdout", "-d", confdir],
        &log,
    );
    wait_for_log(&mut server, &log, "Ready to process requests");
    server
}

/// Waits until `log` contains `text`, for servers without a TCP port to
/// poll.
fn wait_for_log(server: &mut Server, log: &Path, text: &str) {
    let deadline = Instant::now() + WAIT;
    while Instant::now() < deadline {
        let contents = std::fs::read_to_string(log).unwrap_or_default();
        if contents.contains(text) {
            return;
        }
        assert!(!server.exited(), "the server exited at start:\n{contents}");
        thread::sleep(Duration::from_millis(100));
    }
    panic!("{text:?} not found in {} within {WAIT:?}", log.display());
}

#[test]
#[ignore = "needs root: network namespaces"]
fn root_radius_check_cycle() {
    let Some(freeradius) = require_program("root_radius_check_cycle", "freeradius", "freeradius")
    else {
        return;
    };
    let pair = NamespacePair::new();
    let directory = tempfile::tempdir().unwrap();
    let confdir = configure_freeradius(directory.path());
    let mut server = Some(start_freeradius(
        &pair,
        &freeradius,
        directory.path(),
        &confdir,
    ));
    let check = format!(
        r#""type": "RADIUS", "ip": "{SERVER_IP}", "port": 1812, "send": "healthcheck:pw:s3cret", "receive": "accept""#
    );
    cycle(&pair, &check, context(), &mut |up| {
        server.take();
        if up {
            server = Some(start_freeradius(
                &pair,
                &freeradius,
                directory.path(),
                &confdir,
            ));
        }
    });
}

/// Each `receive` value against the reply FreeRADIUS sends: a check is
/// healthy only when the reply type matches, and `any` takes every reply
/// that carries a valid authenticator.
#[test]
#[ignore = "needs root: network namespaces"]
fn root_radius_reply_types() {
    let Some(freeradius) = require_program("root_radius_reply_types", "freeradius", "freeradius")
    else {
        return;
    };
    let pair = NamespacePair::new();
    let directory = tempfile::tempdir().unwrap();
    let confdir = configure_freeradius(directory.path());
    let start = || start_freeradius(&pair, &freeradius, directory.path(), &confdir);
    let radius_check = |send: &str, receive: &str| {
        format!(
            r#""type": "RADIUS", "ip": "{SERVER_IP}", "port": 1812, "send": "{send}", "receive": "{receive}""#
        )
    };
    let mut server = Some(start());

    let mismatches = [
        (
            "healthcheck:wrong:s3cret",
            "accept",
            "got RADIUS Access-Reject response; want accept response",
        ),
        (
            "healthcheck:pw:s3cret",
            "reject",
            "got RADIUS Access-Accept response; want reject response",
        ),
        (
            "challenger:pw:s3cret",
            "accept",
            "got RADIUS Access-Challenge response; want accept response",
        ),
        (
            "healthcheck:pw:s3cret",
            "challenge",
            "got RADIUS Access-Accept response; want challenge response",
        ),
        (
            "healthcheck:pw:other",
            "any",
            "response authenticator mismatch (incorrect secret?)",
        ),
    ];
    let checks: Vec<CheckConfig> = mismatches
        .iter()
        .map(|(send, receive, _)| check_config(&format!("{{{}}}", radius_check(send, receive))))
        .collect();
    let results = run_in_client(&pair, &checks, &context());
    for ((send, receive, expected), result) in mismatches.iter().zip(&results) {
        assert!(!result.success, "{send} with receive={receive}: {result:?}");
        assert_eq!(
            result.text(),
            format!("RADIUS Access-Request to port 1812; {expected}"),
            "{send} with receive={receive}"
        );
    }

    let matches = [
        ("healthcheck:wrong:s3cret", "reject"),
        ("challenger:pw:s3cret", "challenge"),
        ("healthcheck:wrong:s3cret", "any"),
        ("challenger:pw:s3cret", "any"),
        ("healthcheck:pw:s3cret", "any"),
    ];
    for (send, receive) in matches {
        println!("cycle of {send} with receive={receive}");
        cycle(&pair, &radius_check(send, receive), context(), &mut |up| {
            server.take();
            if up {
                server = Some(start());
            }
        });
    }
}

/// The VIP of the DSR and TUN tests, on the server's loopback as on a
/// backend.
const VIP: &str = "198.18.1.1";
/// The socket mark of the marked checks and of the client's routing rule.
const MARK: u32 = 16;
/// The ends of the TUN test's tunnel, a subnet of their own.
const CLIENT_TUNNEL_IP: &str = "198.18.2.1";
const SERVER_TUNNEL_IP: &str = "198.18.2.2";

/// Puts the VIP on the server's loopback and makes the client reach it only
/// through routing table 100, which a rule selects for packets with mark
/// [`MARK`], as the IPVS fwmark service selects one backend on a Seesaw
/// node. For `Mode::Dsr` the table routes the VIP straight to the server;
/// for `Mode::Tun` it routes it into a tunnel to the server.
///
/// NOTE: IPVS encapsulates TUN traffic in IP-in-IP, but the test kernel has
/// no ipip driver, so the tunnel here is VXLAN. The checker does the same
/// in both modes; only the route behind the mark differs.
fn steer_marked_packets_to_vip(pair: &NamespacePair, mode: &str) {
    netns::ip(&[
        "-n",
        &pair.server,
        "addr",
        "add",
        &format!("{VIP}/32"),
        "dev",
        "lo",
    ]);
    let mark = MARK.to_string();
    netns::ip(&[
        "-n",
        &pair.client,
        "rule",
        "add",
        "fwmark",
        &mark,
        "lookup",
        "100",
    ]);
    let vip = format!("{VIP}/32");
    match mode {
        "DSR" => netns::ip(&[
            "-n",
            &pair.client,
            "route",
            "add",
            &vip,
            "via",
            SERVER_IP,
            "table",
            "100",
        ]),
        "TUN" => {
            let ends = [
                (&pair.client, CLIENT_TUNNEL_IP, SERVER_IP),
                (&pair.server, SERVER_TUNNEL_IP, CLIENT_IP),
            ];
            for (namespace, address, remote) in ends {
                netns::ip(&[
                    "-n", namespace, "link", "add", "tun0", "type", "vxlan", "id", "16", "remote",
                    remote, "dstport", "4789", "dev", "eth0",
                ]);
                netns::ip(&[
                    "-n",
                    namespace,
                    "addr",
                    "add",
                    &format!("{address}/24"),
                    "dev",
                    "tun0",
                ]);
                netns::ip(&["-n", namespace, "link", "set", "tun0", "up"]);
            }
            // The probe keeps the client's own address as its source, as on
            // a Seesaw node, so the server replies directly on eth0.
            netns::ip(&[
                "-n",
                &pair.client,
                "route",
                "add",
                &vip,
                "via",
                SERVER_TUNNEL_IP,
                "dev",
                "tun0",
                "src",
                CLIENT_IP,
                "table",
                "100",
            ]);
            // The request arrives on tun0 and the reply leaves on eth0.
            pair.server_sysctl("net.ipv4.conf.all.rp_filter", "0");
            pair.server_sysctl("net.ipv4.conf.tun0.rp_filter", "0");
        }
        other => panic!("unknown mode {other}"),
    }
}

/// Checks `fields` (a check's JSON fields without its mode) once with the
/// mode, the server as host and [`MARK`], and once as a PLAIN check of the
/// VIP without a mark. The marked check must succeed and name its mode and
/// mark; the unmarked one must fail because the VIP is unreachable.
fn assert_mark_steers(pair: &NamespacePair, mode: &str, fields: &[String]) {
    let mut checks = Vec::new();
    for fields in fields {
        checks.push(check_config(&format!(
            r#"{{{fields}, "mode": "{mode}", "host": "{SERVER_IP}", "mark": {MARK}}}"#
        )));
        checks.push(check_config(&format!("{{{fields}}}")));
    }
    let results = run_in_client(pair, &checks, &context());

    for (pair_of_checks, pair_of_results) in checks.chunks(2).zip(results.chunks(2)) {
        let [marked, unmarked] = pair_of_checks else {
            unreachable!("two checks per type");
        };
        let [marked_result, unmarked_result] = pair_of_results else {
            unreachable!("two results per type");
        };
        let port = marked.checker.target().port;
        let description = marked.checker.to_string();
        let unmarked = unmarked.checker.to_string();
        assert!(
            description.ends_with(&format!(
                "{VIP}:{port} {mode} (via {SERVER_IP} mark {MARK})"
            )),
            "{description}"
        );
        assert!(marked_result.success, "{description}: {marked_result:?}");
        assert!(!unmarked_result.success, "{unmarked}: {unmarked_result:?}");
        assert!(
            unmarked_result.text().contains("unreachable"),
            "{unmarked}: {}",
            unmarked_result.text()
        );
    }
}

#[test]
#[ignore = "needs root: network namespaces"]
fn root_dsr_mark_steers_probe() {
    let pair = NamespacePair::new();
    steer_marked_packets_to_vip(&pair, "DSR");
    let listener_on_vip = {
        let server = pair.server.clone();
        thread::spawn(move || {
            netns::enter(&server);
            std::net::TcpListener::bind(format!("{VIP}:7002")).unwrap()
        })
        .join()
        .unwrap()
    };

    let tcp = format!(r#""type": "TCP", "ip": "{VIP}", "port": 7002"#);
    assert_mark_steers(&pair, "DSR", &[tcp]);
    drop(listener_on_vip);
}

/// Starts a server of every type that can run in DSR and TUN mode on the
/// VIP, then checks that the mark steers a check of each type to it.
fn assert_mark_steers_every_type(test: &str, mode: &str) {
    let (Some(nginx), Some(dnsmasq), Some(freeradius)) = (
        require_program(test, "nginx", "nginx"),
        require_program(test, "dnsmasq", "dnsmasq"),
        require_program(test, "freeradius", "freeradius"),
    ) else {
        return;
    };
    let pair = NamespacePair::new();
    steer_marked_packets_to_vip(&pair, mode);
    let directory = tempfile::tempdir().unwrap();
    write_certificate(directory.path());
    let _echo = EchoServer::start(&pair, VIP, 7002);
    let _nginx = start_nginx(&pair, &nginx, directory.path(), VIP);
    let _dnsmasq = start_dnsmasq(&pair, &dnsmasq, directory.path(), VIP);
    let confdir = configure_freeradius(directory.path());
    let _freeradius = start_freeradius(&pair, &freeradius, directory.path(), &confdir);

    let checks = [
        format!(r#""type": "TCP", "ip": "{VIP}", "port": 7002, "send": "ping", "receive": "ping""#),
        format!(r#""type": "UDP", "ip": "{VIP}", "port": 7002, "send": "ping", "receive": "ping""#),
        format!(
            r#""type": "HTTP", "ip": "{VIP}", "port": 80, "send": "/healthz", "receive": "serving""#
        ),
        format!(
            r#""type": "DNS", "ip": "{VIP}", "port": 53, "send": "www.check.test", "method": "A", "receive": "198.18.0.99""#
        ),
        format!(
            r#""type": "RADIUS", "ip": "{VIP}", "port": 1812, "send": "healthcheck:pw:s3cret", "receive": "accept""#
        ),
    ];
    assert_mark_steers(&pair, mode, &checks);

    if mode == "TUN" {
        // The requests came through the tunnel: one per marked check, and
        // more for the TCP handshakes and ARP.
        let output = std::process::Command::new("ip")
            .args(["netns", "exec", &pair.server])
            .args(["cat", "/sys/class/net/tun0/statistics/rx_packets"])
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&output.stdout);
        let received: u64 = text.trim().parse().unwrap_or_else(|_| panic!("{text:?}"));
        assert!(
            received >= checks.len() as u64,
            "only {received} packets came through the tunnel"
        );
    }
}

#[test]
#[ignore = "needs root: network namespaces"]
fn root_dsr_mark_steers_every_type() {
    assert_mark_steers_every_type("root_dsr_mark_steers_every_type", "DSR");
}

#[test]
#[ignore = "needs root: network namespaces"]
fn root_tun_mark_steers_every_type() {
    assert_mark_steers_every_type("root_tun_mark_steers_every_type", "TUN");
}
