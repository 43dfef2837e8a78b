//! The main job as a test: the sample GKE pair serving on a real kernel,
//! through every step `cargo xtask lab` shows (crates/xtask/lab/pair.sh):
//! election, show commands, traffic to every VIP, a killed engine
//! restarted without dropping a connection, an unchanged reload, a
//! vserver removed from cluster.pb and restored, a broken cluster.pb, failover of a killed master, the old master rejoining as
//! backup, and an unhealthy backend leaving IPVS.

mod lab;

#[test]
#[ignore = "needs the kernel lab: runs the two-node pair with IPVS in namespaces"]
fn kernel_pair_serves_fails_over_and_drops_unhealthy_backends() {
    lab::require_lab();
    let fixtures = lab::repository().join("crates/seesaw-config/tests/fixtures");
    let stdout = lab::run_scenario(
        "pair.sh",
        &[
            fixtures.join("cluster/gke-manual.pb"),
            fixtures.join("ini/gke-manual-seesaw.cfg"),
            fixtures.join("ini/gke-manual-seesaw-peer.cfg"),
        ],
    );
    lab::expect_steps(
        &stdout,
        &[
            "n1 is LEADER, n2 is BACKUP",
            "IPVS unchanged",
            "the connection opened before the kill completed: HTTP/1.0 200 OK",
            "no change sent to the NCC",
            "the other 4 services stay",
            "restored: all 6 services are back",
            "IPVS untouched; the good file is back",
            "every VIP answered again through n2",
            "n1 is BACKUP, n2 stays LEADER",
            "none reached admin-1",
            "every step succeeded",
        ],
    );
}
