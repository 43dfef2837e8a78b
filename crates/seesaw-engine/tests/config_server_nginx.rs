//! The notifier against nginx (Debian's nginx 1.22) serving the cluster
//! config over HTTPS on loopback, with certificates from a CA the test
//! makes.
//!
//! Needs nginx. Without it the tests print why and pass, unless
//! SEESAW_REQUIRE_ORACLES=1 is set, when they fail. nginx runs as the
//! test's own user, in one process (`master_process off`), with every file
//! it writes inside the test's temporary directory.

mod support;

use std::fs;
use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use seesaw_engine::notifier::{Notifier, Outcome, Source};
use support::*;

/// Returns the nginx binary, or `None` after saying why the test skips.
/// Panics instead when the environment requires the oracles.
fn find_nginx() -> Option<PathBuf> {
    let candidates = std::env::var_os("PATH")
        .map(|path| std::env::split_paths(&path).collect::<Vec<_>>())
        .unwrap_or_default()
        .into_iter()
        .chain([PathBuf::from("/usr/sbin")])
        .map(|dir| dir.join("nginx"));
    for candidate in candidates {
        let runs = Command::new(&candidate)
            .arg("-v")
            .output()
            .is_ok_and(|output| output.status.success());
        if runs {
            return Some(candidate);
        }
    }
    if std::env::var("SEESAW_REQUIRE_ORACLES").as_deref() == Ok("1") {
        panic!("nginx is not installed and SEESAW_REQUIRE_ORACLES=1");
    }
    eprintln!("SKIPPED: nginx is not installed (apt-get install nginx)");
    None
}

/// Returns a TCP port on loopback that was free a moment ago.
fn free_port() -> u16 {
    TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// An nginx process with three HTTPS servers for [`SERVER_NAME`]: one
/// that serves the config correctly, one with the wrong Content-Type, and
/// one whose certificate comes from a CA the node does not trust.
struct Nginx {
    child: Child,
    dir: PathBuf,
    /// The correct server.
    port: u16,
    wrong_type_port: u16,
    other_ca_port: u16,
}

impl Nginx {
    /// Starts nginx in `dir`, serving `config` (cluster.pb text) as the
    /// binary config of [`CLUSTER_NAME`], with `pki`'s certificate.
    fn start(nginx: &Path, dir: &Path, pki: &TestPki, config: &str) -> Nginx {
        let (cert, key) = pki.write_server_files(dir, "server");
        let other_pki = TestPki::with_ca_name("other test CA", SERVER_NAME);
        let (other_cert, other_key) = other_pki.write_server_files(dir, "other");
        for sub in ["www/config", "temp"] {
            fs::create_dir_all(dir.join(sub)).unwrap();
        }
        let (port, wrong_type_port, other_ca_port) = (free_port(), free_port(), free_port());

        let server = |port: u16, cert: &Path, key: &Path, content_type: &str| {
            format!(
                "  server {{\n    listen 127.0.0.1:{port} ssl;\n    server_name {SERVER_NAME};\n    \
                 ssl_certificate {};\n    ssl_certificate_key {};\n    root {};\n    \
                 location /config/ {{\n      types {{ }}\n      default_type {content_type};\n    }}\n  }}\n",
                cert.display(),
                key.display(),
                dir.join("www").display()
            )
        };
        let temp = dir.join("temp");
        let temp_paths: String = ["client_body", "proxy", "fastcgi", "uwsgi", "scgi"]
            .iter()
            .map(|kind| format!("  {kind}_temp_path {};\n", temp.join(kind).display()))
            .collect();
        let conf = format!(
            "daemon off;\nmaster_process off;\nerror_log {dir}/error.log info;\npid {dir}/nginx.pid;\n\
             events {{\n  worker_connections 64;\n}}\n\
             http {{\n  access_log {dir}/access.log;\n{temp_paths}{}{}{}}}\n",
            server(port, &cert, &key, "application/x-protobuffer"),
            server(wrong_type_port, &cert, &key, "application/octet-stream"),
            server(
                other_ca_port,
                &other_cert,
                &other_key,
                "application/x-protobuffer"
            ),
            dir = dir.display(),
        );
        let conf_file = dir.join("nginx.conf");
        fs::write(&conf_file, conf).unwrap();

        let mut nginx = Nginx {
            child: Command::new(nginx)
                .arg("-p")
                .arg(dir)
                .arg("-c")
                .arg(&conf_file)
                .arg("-e")
                .arg(dir.join("error.log"))
                .stdin(Stdio::null())
                .spawn()
                .expect("failed to start nginx"),
            dir: dir.to_path_buf(),
            port,
            wrong_type_port,
            other_ca_port,
        };
        nginx.serve(config);
        nginx.wait_until_listening();
        nginx
    }

    /// Serves `config` from now on. The file is replaced by a rename, so a
    /// request never reads half of it.
    fn serve(&self, config: &str) {
        let path = self.dir.join("www/config").join(CLUSTER_NAME);
        let temporary = path.with_extension("new");
        fs::write(&temporary, cluster_binary(config)).unwrap();
        fs::rename(&temporary, &path).unwrap();
    }

    fn wait_until_listening(&mut self) {
        let deadline = Instant::now() + DEADLINE;
        for port in [self.port, self.wrong_type_port, self.other_ca_port] {
            while TcpStream::connect((Ipv4Addr::LOCALHOST, port)).is_err() {
                if let Some(status) = self.child.try_wait().unwrap() {
                    panic!("nginx exited with {status}:\n{}", self.error_log());
                }
                assert!(
                    Instant::now() < deadline,
                    "nginx did not listen on {port}:\n{}",
                    self.error_log()
                );
                std::thread::sleep(Duration::from_millis(20));
            }
        }
    }

    fn error_log(&self) -> String {
        fs::read_to_string(self.dir.join("error.log")).unwrap_or_default()
    }

    /// Stops nginx by its PID and waits for it to exit.
    fn stop(&mut self) {
        if self.child.try_wait().unwrap().is_none() {
            self.child.kill().unwrap();
            self.child.wait().unwrap();
        }
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Starts nginx serving `served` and a notifier whose cluster.pb is
/// `disk`, with the config servers on `port` of nginx as `choose_port`
/// picks it.
async fn start_lab(
    nginx_binary: &Path,
    dir: &Path,
    disk: &str,
    served: &str,
    choose_port: fn(&Nginx) -> u16,
) -> (Nginx, Notifier) {
    fs::write(dir.join("cluster.pb"), disk).unwrap();
    let pki = TestPki::new(SERVER_NAME);
    pki.write_ca(&dir.join("ca.crt"));
    let nginx = Nginx::start(nginx_binary, dir, &pki, served);

    let mut notifier = start(options(dir, choose_port(&nginx))).await;
    let first = next(&mut notifier).await;
    assert_eq!(summary(&first), (Source::Disk, 1));
    (nginx, notifier)
}

#[tokio::test]
async fn nginx_config_fetched_then_server_stops() {
    let Some(nginx_binary) = find_nginx() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("cluster.pb");
    let (mut nginx, mut notifier) = start_lab(
        &nginx_binary,
        dir.path(),
        &cluster_text(1, 1, None),
        &cluster_text(3, 1, None),
        |nginx| nginx.port,
    )
    .await;

    notifier.handle.reload().unwrap();
    let fetched = next(&mut notifier).await;
    assert_eq!(summary(&fetched), (Source::Server, 3));
    let detail = format!(
        "https://{SERVER_NAME}:{}/config/{CLUSTER_NAME} (127.0.0.1)",
        nginx.port
    );
    assert_eq!(fetched.source_detail, detail);

    // A changed config on the server is fetched on the next reload.
    nginx.serve(&cluster_text(5, 2, None));
    notifier.handle.reload().unwrap();
    let changed = next(&mut notifier).await;
    assert_eq!(summary(&changed), (Source::Server, 5));

    // With nginx gone, a reload fails and the fetched config stays.
    nginx.stop();
    let status = reload_and_wait(&notifier.handle).await;
    let errors = status.last_errors();
    assert_eq!(
        errors[0], "all config server requests failed:",
        "{errors:?}"
    );
    assert!(
        errors[1].starts_with(&format!("fetch failed from {detail}: failed to connect: ")),
        "{errors:?}"
    );
    assert!(matches!(
        status.last_attempt.unwrap().outcome,
        Outcome::Failed { .. }
    ));
    assert_eq!(status.in_force.source, Source::Server);
    assert_eq!(status.in_force.source_detail, detail);
    assert_no_notification(&mut notifier);

    // The disk keeps the last good config for the next start, and the
    // archive each config it replaced: the one from disk, then the first
    // fetched.
    let saved = fs::read_to_string(&file).unwrap();
    assert!(saved.contains("web4.test"), "{saved}");
    let archived: Vec<String> = archived(dir.path())
        .iter()
        .map(|path| fs::read_to_string(path).unwrap())
        .collect();
    assert_eq!(archived.len(), 2, "{archived:?}");
    assert!(
        archived
            .iter()
            .any(|text| text.contains("web0.test") && !text.contains("web1.test"))
    );
    assert!(
        archived
            .iter()
            .any(|text| text.contains("web2.test") && !text.contains("web3.test"))
    );
}

/// Starts nginx and a notifier on the port `choose_port` picks, reloads,
/// checks that the config from disk stays in force, and returns the
/// reload's errors. Returns `None` when nginx is missing.
async fn failed_reload(choose_port: fn(&Nginx) -> u16) -> Option<Vec<String>> {
    let nginx_binary = find_nginx()?;
    let dir = tempfile::tempdir().unwrap();
    let (_nginx, mut notifier) = start_lab(
        &nginx_binary,
        dir.path(),
        &cluster_text(1, 1, None),
        &cluster_text(3, 1, None),
        choose_port,
    )
    .await;

    let status = reload_and_wait(&notifier.handle).await;

    assert_eq!(status.in_force.source, Source::Disk);
    assert_no_notification(&mut notifier);
    Some(status.last_errors())
}

#[tokio::test]
async fn nginx_wrong_content_type_rejected() {
    let Some(errors) = failed_reload(|nginx| nginx.wrong_type_port).await else {
        return;
    };
    assert!(
        errors[1].ends_with(
            "unexpected Content-Type: \"application/octet-stream\", expected \"application/x-protobuffer\""
        ),
        "{errors:?}"
    );
}

#[tokio::test]
async fn nginx_certificate_from_other_ca_rejected() {
    let Some(errors) = failed_reload(|nginx| nginx.other_ca_port).await else {
        return;
    };
    assert!(
        errors[1].ends_with("TLS handshake failed: invalid peer certificate: UnknownIssuer"),
        "{errors:?}"
    );
}

#[tokio::test]
async fn nginx_unknown_cluster_is_not_found() {
    let Some(nginx_binary) = find_nginx() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    fs::write(dir.path().join("cluster.pb"), cluster_text(1, 1, None)).unwrap();
    let pki = TestPki::new(SERVER_NAME);
    pki.write_ca(&dir.path().join("ca.crt"));
    let nginx = Nginx::start(&nginx_binary, dir.path(), &pki, &cluster_text(3, 1, None));
    let mut options = options(dir.path(), nginx.port);
    options.cluster_name = "other".to_string();
    let mut notifier = start(options).await;
    next(&mut notifier).await;

    let status = reload_and_wait(&notifier.handle).await;

    let errors = status.last_errors();
    assert!(
        errors[1].ends_with("received HTTP status 404 Not Found"),
        "{errors:?}"
    );
    assert_no_notification(&mut notifier);
}
