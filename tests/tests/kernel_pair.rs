//! The main job as a test: the sample GKE pair serving on a real kernel,
//! through every step `cargo xtask lab` shows (crates/xtask/lab/pair.sh).
//! The steps are the election, the watchdog's five daemons and the ECU's
//! /healthz on each node, and the show commands and IPVS checked against
//! cluster.pb. Then come traffic to every VIP spread by WLC, a killed
//! engine restarted without dropping a connection, an unchanged reload, a
//! vserver removed from cluster.pb and restored, and a broken cluster.pb.
//! Last come the failover of a killed master, the old master rejoining as
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
            // The watchdog's children and the ECU, on both nodes.
            "every watchdog child runs on n1",
            "n1: GET http://127.0.0.1:10257/healthz -> 200 ok",
            "every watchdog child runs on n2",
            "n2: GET http://127.0.0.1:10257/healthz -> 200 ok",
            // The show step, checked against cluster.pb.
            "checked: State: LEADER",
            "checked: State: BACKUP",
            "checked: 4 vservers: admin-control-plane, admin-ingress-controller, \
             user-1-control-plane, user-1-ingress-controller",
            "checked: admin-control-plane on 100.115.222.143, TCP/443 healthy and active",
            "checked: 4 backends of admin-control-plane healthy and active: \
             admin-1, admin-2, admin-3, admin-4",
            "checked: 6 services and 22 destinations, as in cluster.pb",
            "the show commands and IPVS match cluster.pb on both nodes",
            // Traffic spread by WLC.
            "checked: every service reached only its destinations, and at least two of them",
            "every service answered from at least two of its backends",
            "IPVS unchanged",
            "the connection opened before the kill completed: HTTP/1.0 200 OK",
            "no change sent to the NCC",
            "the other 4 services stay",
            "restored: all 6 services are back",
            "IPVS untouched; the good file is back",
            "every VIP answered again through n2",
            "n1 is BACKUP, n2 stays LEADER",
            // The unhealthy backend.
            "100.115.222.163 is in no service on n2",
            "no connection reached admin-1",
            "admin-1 is healthy again: 100.115.222.163 is back in every service of n2",
            "every step succeeded",
        ],
    );
}
