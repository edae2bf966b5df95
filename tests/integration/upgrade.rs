//! Upgrade (websocket-style): the proxy tunnels raw bytes after a 101.

use std::time::Duration;

use ringway_tests::client::Request;
use ringway_tests::pattern::Pattern;
use ringway_tests::setup::Setup;

const WS_REQUEST: &[u8] = b"GET /ws HTTP/1.1\r\nHost: test.local\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n";

fn read_n(c: &mut ringway_tests::client::Client, n: usize) -> Vec<u8> {
    let mut got = Vec::new();
    while got.len() < n {
        let more = c
            .wire()
            .read_some()
            .unwrap_or_else(|e| panic!("tunnel read after {} of {n} bytes: {e}", got.len()));
        assert!(
            !more.is_empty(),
            "tunnel closed after {} of {n} bytes",
            got.len()
        );
        got.extend(more);
    }
    got
}

#[test]
fn websocket_upgrade_is_tunnelled() {
    let s = Setup::new("upgrade", |c| c);
    let mut c = s.client();
    c.send(WS_REQUEST);
    let h = c.read_head().expect("101 head");
    assert_eq!(h.status, 101, "{h:?}");
    assert!(h.has_token("connection", "upgrade"), "{h:?}");
    assert_eq!(h.header("upgrade"), Some("websocket"), "{h:?}");

    let rec = s.origin.last_request().unwrap();
    assert_eq!(
        rec.header("upgrade"),
        Some("websocket"),
        "Upgrade must reach the origin: {}",
        rec.raw_str()
    );
    assert!(
        rec.headers_all("connection")
            .iter()
            .any(|v| v.to_ascii_lowercase().contains("upgrade")),
        "Connection: upgrade must reach the origin: {}",
        rec.raw_str()
    );

    for msg in [
        &b"hello tunnel"[..],
        b"\x81\x05hello",
        b"GET / HTTP/1.1\r\n\r\n",
    ] {
        c.send(msg);
        assert_eq!(read_n(&mut c, msg.len()), msg, "echo through the tunnel");
    }
    // 1 MiB in 16 KiB round trips.
    let p = Pattern::new();
    let data = p.vec(1024 * 1024);
    for piece in data.chunks(16 * 1024) {
        c.send(piece);
        assert!(
            read_n(&mut c, piece.len()) == piece,
            "tunnelled bytes differ"
        );
    }
    // Closing our side ends the tunnel.
    c.shutdown_write();
    c.assert_closed(Duration::from_secs(5), "tunnel after the client's FIN");
    assert_eq!(s.origin.request_count(), 1);
}

#[test]
fn upgrade_declined_by_origin_stays_http() {
    let s = Setup::new("upgrade-declined", |c| c);
    let mut c = s.client();
    // The origin answers /echo normally, ignoring Upgrade.
    let r = c.request(
        &Request::get("/echo")
            .header("Connection", "Upgrade")
            .header("Upgrade", "websocket"),
    );
    assert_eq!(r.status(), 200, "{r}");
    let r = c.get("/after");
    assert_eq!(r.header("x-echo-target"), Some("/after"), "{r}");
}
