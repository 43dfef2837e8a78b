//! The config notifier against real files and an in-process HTTPS config
//! server on loopback: start-up order, reload triggers, the last good
//! config staying in force, saving fetched configs, and the peer fallback.

mod support;

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use seesaw_engine::notifier::{
    Notifier, NotifierOptions, Outcome, PeerConfig, PeerConfigSource, ReloadError, Source, Trigger,
    source::BoxFuture,
};
use support::*;

/// Writes `text` as the node's cluster.pb and the test CA next to it.
fn setup(dir: &Path, text: &str) -> TestPki {
    std::fs::write(dir.join("cluster.pb"), text).unwrap();
    let pki = TestPki::new(SERVER_NAME);
    pki.write_ca(&dir.join("ca.crt"));
    pki
}

/// Starts a notifier on the node in `dir` whose reloads read cluster.pb,
/// and takes the first notification.
async fn start_on_disk(dir: &Path) -> Notifier {
    start_on_disk_with(options(dir, 1)).await
}

async fn start_on_disk_with(mut options: NotifierOptions) -> Notifier {
    options.source_after_start = Source::Disk;
    let mut notifier = start(options).await;
    let first = next(&mut notifier).await;
    assert_eq!(first.source, Source::Disk);
    notifier
}

#[tokio::test]
async fn disk_source_loads_at_start() {
    let dir = tempfile::tempdir().unwrap();
    setup(dir.path(), &cluster_text(3, 1, None));
    let mut notifier = start(options(dir.path(), 1)).await;

    let first = next(&mut notifier).await;
    assert_eq!(summary(&first), (Source::Disk, 3));
    assert_eq!(
        first.source_detail,
        dir.path().join("cluster.pb").display().to_string()
    );
    assert!(!first.metadata_only);

    let status = notifier.handle.status();
    assert_eq!(status.in_force.source, Source::Disk);
    assert_eq!(status.attempts, 1);
    assert!(status.last_errors().is_empty());
    assert!(status.last_failure.is_none());
    assert_eq!(
        status.source,
        Source::Server,
        "a node with a config server reloads from it"
    );
}

#[tokio::test]
async fn changed_file_is_picked_up() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("cluster.pb");
    setup(dir.path(), &cluster_text(3, 1, None));
    let mut options = options(dir.path(), 1);
    options.file_poll_interval = Some(Duration::from_millis(50));
    let mut notifier = start_on_disk_with(options).await;

    replace_file(&file, &cluster_text(4, 1, None));

    let changed = next(&mut notifier).await;
    assert_eq!(summary(&changed), (Source::Disk, 4));
    let status = notifier.handle.status();
    let attempt = status.last_attempt.unwrap();
    assert_eq!(attempt.trigger, Trigger::FileChange);
    assert_eq!(
        attempt.outcome,
        Outcome::Applied {
            metadata_only: false
        }
    );
}

#[tokio::test(start_paused = true)]
async fn file_changes_read_from_disk_while_source_is_server() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("cluster.pb");
    setup(dir.path(), &cluster_text(3, 1, None));
    let mut options = options(dir.path(), 1);
    options.file_poll_interval = Some(Duration::from_millis(50));
    let mut notifier = start(options).await;
    next(&mut notifier).await;

    replace_file(&file, &cluster_text(4, 1, None));
    let changed = next(&mut notifier).await;

    assert_eq!(summary(&changed), (Source::Disk, 4));
    assert_eq!(notifier.handle.source(), Source::Server, "the source stays");
    let status = notifier.handle.status();
    assert_eq!(status.last_attempt.unwrap().trigger, Trigger::FileChange);
}

#[tokio::test]
async fn unchanged_reload_sends_nothing() {
    let dir = tempfile::tempdir().unwrap();
    setup(dir.path(), &cluster_text(3, 1, None));
    let mut notifier = start_on_disk(dir.path()).await;

    let status = reload_and_wait(&notifier.handle).await;

    let attempt = status.last_attempt.unwrap();
    assert_eq!(attempt.trigger, Trigger::Reload);
    assert_eq!(attempt.outcome, Outcome::Unchanged);
    assert_no_notification(&mut notifier);
}

#[tokio::test]
async fn broken_file_keeps_last_good() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("cluster.pb");
    setup(dir.path(), &cluster_text(3, 1, None));
    let mut notifier = start_on_disk(dir.path()).await;

    // A misspelt field on line 7, column 3.
    let broken = cluster_text(3, 1, None).replacen("  rp:", "  rpp:", 1);
    std::fs::write(&file, &broken).unwrap();
    let status = reload_and_wait(&notifier.handle).await;

    let errors = status.last_errors();
    let expected = format!("{}:7:3: unknown field 'rpp' in Vserver", file.display());
    assert!(errors[0].starts_with(&expected), "{errors:?}");
    assert!(errors[0].contains("did you mean 'rp'?"), "{errors:?}");
    assert_eq!(status.in_force.source, Source::Disk);
    assert_eq!(status.last_failure.unwrap().outcome.errors(), errors);
    assert_no_notification(&mut notifier);

    // A fixed file is applied, and the failure stays on record.
    replace_file(&file, &cluster_text(5, 1, None));
    notifier.handle.reload().unwrap();
    let fixed = next(&mut notifier).await;
    assert_eq!(summary(&fixed), (Source::Disk, 5));
    let status = notifier.handle.status();
    assert!(status.last_failure.is_some());
}

#[tokio::test]
async fn invalid_config_keeps_last_good() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("cluster.pb");
    setup(dir.path(), &cluster_text(3, 1, None));
    let mut notifier = start_on_disk(dir.path()).await;

    // Two vservers on one VIP and port.
    let text = cluster_text(2, 1, None).replace("10.0.1.2/16", "10.0.1.1/16");
    std::fs::write(&file, text).unwrap();
    let status = reload_and_wait(&notifier.handle).await;

    let errors = status.last_errors();
    assert!(
        errors[0].starts_with(&format!("{}:", file.display())),
        "{errors:?}"
    );
    assert!(
        errors[0].contains("both serve 10.0.1.1:80/TCP"),
        "{errors:?}"
    );
    assert_no_notification(&mut notifier);
}

#[tokio::test]
async fn second_reload_is_already_queued() {
    let dir = tempfile::tempdir().unwrap();
    setup(dir.path(), &cluster_text(1, 1, None));
    let notifier = start_on_disk(dir.path()).await;

    // The test runtime has one thread, so the notifier cannot take the
    // first request before the second is made.
    assert_eq!(notifier.handle.reload(), Ok(()));
    let error = notifier.handle.reload().unwrap_err();
    assert_eq!(error, ReloadError::AlreadyQueued);
    assert_eq!(error.to_string(), "reload request already queued");
}

#[tokio::test]
async fn thousand_vservers_in_one_notification() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("cluster.pb");
    setup(dir.path(), &cluster_text(1, 1, None));
    let mut notifier = start_on_disk(dir.path()).await;

    std::fs::write(&file, cluster_text(1000, 1, None)).unwrap();
    notifier.handle.reload().unwrap();
    let added = next(&mut notifier).await;
    assert_eq!(summary(&added), (Source::Disk, 1000));

    std::fs::write(&file, cluster_text(1000, 2, None)).unwrap();
    notifier.handle.reload().unwrap();
    let changed = next(&mut notifier).await;
    assert!(
        changed
            .cluster
            .vservers
            .values()
            .all(|v| v.backends.values().all(|b| b.weight == 2))
    );

    std::fs::write(&file, cluster_text(0, 1, None)).unwrap();
    notifier.handle.reload().unwrap();
    let removed = next(&mut notifier).await;
    assert_eq!(summary(&removed), (Source::Disk, 0));
}

#[tokio::test]
async fn metadata_change_is_metadata_only() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("cluster.pb");
    setup(dir.path(), &cluster_text(2, 1, Some(100)));
    let mut notifier = start_on_disk(dir.path()).await;

    std::fs::write(&file, cluster_text(2, 1, Some(200))).unwrap();
    notifier.handle.reload().unwrap();
    let update = next(&mut notifier).await;

    assert!(update.metadata_only);
    assert_eq!(update.cluster.status.last_update, Some(200));
    assert_eq!(
        notifier.handle.status().in_force.cluster_status.last_update,
        Some(200)
    );
}

#[tokio::test]
async fn source_none_fails_and_keeps_config() {
    let dir = tempfile::tempdir().unwrap();
    setup(dir.path(), &cluster_text(1, 1, None));
    let mut notifier = start_on_disk(dir.path()).await;

    let before = notifier.handle.status().attempts;
    assert_eq!(notifier.handle.set_source(Source::None), Source::Disk);
    let status = wait_for_attempts(&notifier.handle, before + 1).await;

    assert_eq!(status.source, Source::None);
    assert_eq!(
        status.last_errors(),
        vec![
            "the config source is none: set disk, server or peer with `config source`".to_string()
        ]
    );
    assert_no_notification(&mut notifier);
}

#[tokio::test(start_paused = true)]
async fn interval_checks_the_source() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("cluster.pb");
    setup(dir.path(), &cluster_text(1, 1, None));
    let mut options = options(dir.path(), 1);
    // Shorter than the wait's deadline, which also runs on the paused clock.
    options.config_interval = Duration::from_secs(10);
    let mut notifier = start_on_disk_with(options).await;

    std::fs::write(&file, cluster_text(2, 1, None)).unwrap();
    // With the clock paused, the wait jumps to the next interval tick.
    let changed = next(&mut notifier).await;

    assert_eq!(summary(&changed), (Source::Disk, 2));
    let attempt = notifier.handle.status().last_attempt.unwrap();
    assert_eq!(attempt.trigger, Trigger::Interval);
}

#[tokio::test]
async fn nothing_loads_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let pki = TestPki::new(SERVER_NAME);
    pki.write_ca(&dir.path().join("ca.crt"));

    let error = match Notifier::start(options(dir.path(), 1)).await {
        Ok(_) => panic!("the notifier started without a config"),
        Err(error) => error,
    };

    let sources: Vec<Source> = error.failures.iter().map(|(source, _)| *source).collect();
    assert_eq!(sources, vec![Source::Disk, Source::Server]);
    assert!(
        error.failures[0].1[0].contains("cannot read the cluster configuration"),
        "{error}"
    );
    assert!(
        error
            .to_string()
            .starts_with("failed to load any cluster config: disk: "),
        "{error}"
    );
}

/// Starts a notifier on the node in `dir`, with `disk` as its cluster.pb
/// and a config server that replies with `reply`, and takes the first
/// notification.
async fn start_with_server(dir: &Path, disk: &str, reply: Reply) -> (TestServer, Notifier) {
    let pki = setup(dir, disk);
    let server = TestServer::start(&pki, reply).await;
    let mut notifier = start(options(dir, server.port)).await;
    let first = next(&mut notifier).await;
    assert_eq!(first.source, Source::Disk);
    (server, notifier)
}

#[tokio::test]
async fn server_config_is_saved_to_disk() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("cluster.pb");
    let (server, mut notifier) = start_with_server(
        dir.path(),
        &cluster_text(1, 1, Some(100)),
        Reply::config(&cluster_text(3, 1, Some(200))),
    )
    .await;

    notifier.handle.reload().unwrap();
    let fetched = next(&mut notifier).await;

    assert_eq!(summary(&fetched), (Source::Server, 3));
    let url = format!(
        "https://{SERVER_NAME}:{}/config/{CLUSTER_NAME} (127.0.0.1)",
        server.port
    );
    assert_eq!(fetched.source_detail, url);
    let request = server.requests.lock().unwrap()[0].clone();
    assert!(
        request.starts_with(&format!("GET /config/{CLUSTER_NAME} HTTP/1.1\r\n")),
        "{request}"
    );
    assert!(
        request
            .to_ascii_lowercase()
            .contains("connection: close\r\n"),
        "{request}"
    );

    // The save follows the notification; wait for the file to change.
    let saved = wait_for_file(&file, |text| text.contains("web2.test")).await;
    let reloaded =
        seesaw_config::cluster::load_cluster_text(&file, &saved, &fetched_context()).unwrap();
    assert_eq!(reloaded.cluster, *fetched.cluster);
    let archive = archived(dir.path());
    assert_eq!(archive.len(), 1, "{archive:?}");
    assert_eq!(
        std::fs::read_to_string(&archive[0]).unwrap(),
        cluster_text(1, 1, Some(100))
    );
}

/// Returns the node context of the tests' seesaw.cfg.
fn fetched_context() -> seesaw_config::cluster::NodeContext {
    seesaw_config::check::context_of(&node_config(&[SERVER_NAME]))
}

/// Waits until `file` contains text that `done` accepts, and returns it.
async fn wait_for_file(file: &Path, done: impl Fn(&str) -> bool) -> String {
    let waited = async {
        loop {
            if let Ok(text) = std::fs::read_to_string(file)
                && done(&text)
            {
                return text;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    };
    tokio::time::timeout(DEADLINE, waited)
        .await
        .unwrap_or_else(|_| panic!("{} did not change within {DEADLINE:?}", file.display()))
}

#[tokio::test]
async fn out_of_date_server_config_ignored() {
    let dir = tempfile::tempdir().unwrap();
    let (server, mut notifier) = start_with_server(
        dir.path(),
        &cluster_text(1, 1, Some(200)),
        Reply::config(&cluster_text(3, 1, Some(100))),
    )
    .await;

    let status = reload_and_wait(&notifier.handle).await;

    let errors = status.last_errors();
    assert_eq!(errors.len(), 1);
    assert!(
        errors[0].starts_with("ignoring out-of-date config from https://"),
        "{errors:?}"
    );
    assert!(
        errors[0].contains("its last_updated 100 is older than 200"),
        "{errors:?}"
    );
    assert_no_notification(&mut notifier);

    // Equal times are accepted.
    server.set_reply(Reply::config(&cluster_text(3, 1, Some(200))));
    notifier.handle.reload().unwrap();
    assert_eq!(summary(&next(&mut notifier).await), (Source::Server, 3));
}

#[tokio::test]
async fn server_metadata_change_not_archived() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("cluster.pb");
    // The server stops when dropped, so it is held to the end.
    let (_server, mut notifier) = start_with_server(
        dir.path(),
        &cluster_text(2, 1, Some(100)),
        Reply::config(&cluster_text(2, 1, Some(300))),
    )
    .await;

    notifier.handle.reload().unwrap();
    let update = next(&mut notifier).await;

    assert!(update.metadata_only);
    wait_for_file(&file, |text| text.contains("300")).await;
    assert!(
        archived(dir.path()).is_empty(),
        "a metadata-only save archives nothing"
    );
}

#[tokio::test]
async fn server_used_when_disk_is_broken() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("cluster.pb");
    let pki = setup(dir.path(), "this is not a cluster\n");
    let server = TestServer::start(&pki, Reply::config(&cluster_text(2, 1, None))).await;

    let mut notifier = start(options(dir.path(), server.port)).await;

    let first = next(&mut notifier).await;
    assert_eq!(summary(&first), (Source::Server, 2));
    let status = notifier.handle.status();
    let failure = status.last_failure.unwrap();
    assert_eq!(
        (failure.trigger, failure.source),
        (Trigger::Start, Source::Disk)
    );
    assert!(failure.outcome.errors()[0].starts_with(&format!("{}:1:", file.display())));

    // The broken file is archived and replaced by the fetched config.
    let saved = std::fs::read_to_string(&file).unwrap();
    assert!(saved.contains("web1.test"), "{saved}");
    let archive = archived(dir.path());
    assert_eq!(archive.len(), 1);
    assert_eq!(
        std::fs::read_to_string(&archive[0]).unwrap(),
        "this is not a cluster\n"
    );
}

#[tokio::test]
async fn invalid_server_reply_keeps_last_good() {
    let dir = tempfile::tempdir().unwrap();
    // The server stops when dropped, so it is held to the end.
    let (_server, mut notifier) = start_with_server(
        dir.path(),
        &cluster_text(1, 1, None),
        Reply {
            status: 200,
            content_type: "application/x-protobuffer".to_string(),
            body: b"not protobuf".to_vec(),
        },
    )
    .await;

    let status = reload_and_wait(&notifier.handle).await;

    let errors = status.last_errors();
    assert_eq!(errors[0], "all config server requests failed:");
    assert!(
        errors[1].contains("invalid configuration: invalid binary protobuf Cluster"),
        "{errors:?}"
    );
    assert_eq!(status.in_force.source, Source::Disk);
    assert_no_notification(&mut notifier);
}

/// A peer hook that fails, counting its calls.
struct FailingPeer(AtomicUsize);

impl PeerConfigSource for FailingPeer {
    fn fetch(&self) -> BoxFuture<'_, Result<PeerConfig, String>> {
        self.0.fetch_add(1, Ordering::SeqCst);
        Box::pin(async { Err("the peer is unreachable".to_string()) })
    }
}

/// A peer hook that returns a fixed config.
struct FixedPeer(Vec<u8>);

impl PeerConfigSource for FixedPeer {
    fn fetch(&self) -> BoxFuture<'_, Result<PeerConfig, String>> {
        let bytes = self.0.clone();
        Box::pin(async move {
            Ok(PeerConfig {
                bytes,
                detail: "peer 10.0.0.3".to_string(),
            })
        })
    }
}

#[tokio::test]
async fn peer_without_hook_fails_clearly() {
    let dir = tempfile::tempdir().unwrap();
    setup(dir.path(), &cluster_text(1, 1, None));
    let mut notifier = start_on_disk(dir.path()).await;

    let before = notifier.handle.status().attempts;
    notifier.handle.set_source(Source::Peer);
    let status = wait_for_attempts(&notifier.handle, before + 1).await;

    assert_eq!(status.last_attempt.as_ref().unwrap().source, Source::Peer);
    assert_eq!(
        status.last_errors(),
        vec![
            "no peer config source: seesaw.cfg sets no peer_ipv4 to fetch the cluster config from"
                .to_string()
        ]
    );
    assert_no_notification(&mut notifier);
}

#[tokio::test]
async fn peer_failures_fall_back_to_server() {
    let dir = tempfile::tempdir().unwrap();
    let pki = setup(dir.path(), &cluster_text(1, 1, None));
    let server = TestServer::start(&pki, Reply::config(&cluster_text(2, 1, None))).await;
    let mut notifier = start_on_disk_with(options(dir.path(), server.port)).await;
    let peer = Arc::new(FailingPeer(AtomicUsize::new(0)));
    notifier.handle.set_peer(Some(peer.clone()));

    let before = notifier.handle.status().attempts;
    notifier.handle.set_source(Source::Peer);
    wait_for_attempts(&notifier.handle, before + 1).await;
    let status = reload_and_wait(&notifier.handle).await;
    assert_eq!(status.last_attempt.as_ref().unwrap().source, Source::Peer);
    assert_eq!(
        status.last_errors(),
        vec!["the peer is unreachable".to_string()]
    );
    assert_no_notification(&mut notifier);

    // The third failure in a row falls back to the config server.
    notifier.handle.reload().unwrap();
    let fetched = next(&mut notifier).await;
    assert_eq!(summary(&fetched), (Source::Server, 2));
    assert_eq!(peer.0.load(Ordering::SeqCst), 3);
    assert_eq!(
        notifier.handle.source(),
        Source::Peer,
        "the source itself stays peer"
    );
}

#[tokio::test]
async fn peer_config_is_applied_and_saved() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("cluster.pb");
    setup(dir.path(), &cluster_text(1, 1, None));
    let mut notifier = start_on_disk(dir.path()).await;
    let peer = FixedPeer(cluster_binary(&cluster_text(4, 1, None)));
    notifier.handle.set_peer(Some(Arc::new(peer)));

    notifier.handle.set_source(Source::Peer);
    let synced = next(&mut notifier).await;

    assert_eq!(summary(&synced), (Source::Peer, 4));
    assert_eq!(synced.source_detail, "peer 10.0.0.3");
    wait_for_file(&file, |text| text.contains("web3.test")).await;
}

#[tokio::test]
async fn peer_is_tried_first_at_start() {
    let dir = tempfile::tempdir().unwrap();
    setup(dir.path(), &cluster_text(1, 1, None));
    let mut options = options(dir.path(), 1);
    options.peer = Some(Arc::new(FixedPeer(cluster_binary(&cluster_text(
        2, 1, None,
    )))));

    let mut notifier = start(options).await;

    assert_eq!(summary(&next(&mut notifier).await), (Source::Peer, 2));
}

#[tokio::test]
async fn default_server_means_disk_reloads() {
    let dir = tempfile::tempdir().unwrap();
    let options = NotifierOptions::new(&node_config(&[]), dir.path().join("cluster.pb"));
    assert_eq!(
        options.config_servers,
        vec!["seesaw-config.example.com".to_string()]
    );
    assert_eq!(options.source_after_start, Source::Disk);
    assert_eq!(options.config_interval, Duration::from_secs(60));
    assert_eq!(options.config_server_port, 10255);
    assert_eq!(options.config_server_timeout, Duration::from_secs(20));
}

#[tokio::test]
async fn reset_source_returns_to_default() {
    let dir = tempfile::tempdir().unwrap();
    setup(dir.path(), &cluster_text(1, 1, None));
    let notifier = start(options(dir.path(), 1)).await;
    assert_eq!(notifier.handle.source(), Source::Server);

    notifier.handle.set_source(Source::Disk);
    wait_for_attempts(&notifier.handle, 2).await;
    let previous = notifier.handle.reset_source();
    let status = wait_for_attempts(&notifier.handle, 3).await;

    assert_eq!(previous, Source::Disk);
    assert_eq!(notifier.handle.source(), Source::Server);
    assert_eq!(status.source, Source::Server);
    assert_eq!(status.last_attempt.unwrap().source, Source::Server);
}
