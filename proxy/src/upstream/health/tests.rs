use super::*;

#[test]
fn thresholds_move_an_endpoint_out_and_back() {
    let c = HealthCell::default();
    assert!(c.is_healthy(), "a new endpoint starts in the rotation");
    // Two failures of three needed: still healthy; a pass resets the streak.
    assert_eq!(c.record(false, 503, 2, 3), None);
    assert_eq!(c.record(false, 0, 2, 3), None);
    assert_eq!(c.record(true, 200, 2, 3), None);
    assert_eq!(c.record(false, 503, 2, 3), None);
    assert_eq!(c.record(false, 503, 2, 3), None);
    assert!(c.is_healthy());
    assert_eq!(c.record(false, 503, 2, 3), Some(false));
    assert!(!c.is_healthy());
    assert_eq!(c.transitions_down.load(Ordering::Relaxed), 1);
    // Back after two passes in a row.
    assert_eq!(c.record(true, 200, 2, 3), None);
    assert_eq!(c.record(false, 0, 2, 3), None);
    assert_eq!(c.record(true, 200, 2, 3), None);
    assert_eq!(c.record(true, 200, 2, 3), Some(true));
    assert!(c.is_healthy());
    assert_eq!(c.passes.load(Ordering::Relaxed), 4);
    assert_eq!(c.failures.load(Ordering::Relaxed), 6);
    assert_eq!(c.last_status.load(Ordering::Relaxed), 200);
}

#[test]
fn cells_survive_a_new_generation_and_go_with_their_endpoint() {
    let text = |eps: &str| {
        format!(
            "[[listener]]\nname = \"l\"\naddress = \"127.0.0.1:0\"\n[[route]]\ncluster = \"hc-test\"\n[[cluster]]\nname = \"hc-test\"\nendpoints = [{eps}]\nhealth_check = {{ path = \"/healthz\" }}\n"
        )
    };
    let a = Config::parse(&text("\"127.0.0.1:9001\", \"127.0.0.1:9002\""), None).unwrap();
    let h = registry().cluster(&a.clusters[0]).unwrap();
    for _ in 0..3 {
        h.cells[1].record(false, 0, 2, 3);
    }
    assert!(!h.is_healthy(1));
    assert_eq!(h.healthy_count(), 1);
    // A reload that keeps 9002 and adds 9003: 9002 stays unhealthy, 9003
    // starts healthy.
    let b = Config::parse(&text("\"127.0.0.1:9002\", \"127.0.0.1:9003\""), None).unwrap();
    let h2 = registry().cluster(&b.clusters[0]).unwrap();
    assert!(!h2.is_healthy(0));
    assert!(h2.is_healthy(1));
    assert!(Arc::ptr_eq(&h.cells[1], &h2.cells[0]));
    // 9001 is forgotten once no configuration names it.
    registry().retain(&b);
    let again = Config::parse(&text("\"127.0.0.1:9001\""), None).unwrap();
    let h3 = registry().cluster(&again.clusters[0]).unwrap();
    assert!(!Arc::ptr_eq(&h.cells[0], &h3.cells[0]));
    // Without a health_check: no cells.
    let plain = Config::parse(
        "[[listener]]\nname = \"l\"\naddress = \"127.0.0.1:0\"\n[[route]]\ncluster = \"c\"\n[[cluster]]\nname = \"c\"\nendpoints = [\"127.0.0.1:9001\"]\n",
        None,
    )
    .unwrap();
    assert!(registry().cluster(&plain.clusters[0]).is_none());
}
