//! 256 MiB through the proxy each way, streamed on both ends, with the
//! proxy's peak RSS (VmHWM) bounded.

use std::io::Write;
use std::time::Instant;

use ringway_tests::pattern::Pattern;
use ringway_tests::setup::Setup;

const SIZE: u64 = 256 * 1024 * 1024;
/// The proxy's peak resident memory must stay under this while moving SIZE.
const HWM_LIMIT_KIB: u64 = 64 * 1024;

fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

#[test]
fn upload_256mib_streams_with_bounded_memory() {
    let s = Setup::new("upload-256m", |c| c);
    let before = s.proxy.memory();
    let p = Pattern::new();
    let mut c = s.client();
    let t = Instant::now();
    let head = format!("POST /sink HTTP/1.1\r\nHost: test.local\r\nContent-Length: {SIZE}\r\n\r\n");
    c.send(head.as_bytes());
    {
        let mut w = c.tcp();
        p.write_to(&mut w, SIZE).expect("upload body");
        w.flush().unwrap();
    }
    let r = c.read_response();
    let secs = t.elapsed().as_secs_f64();
    let after = s.proxy.memory();
    println!(
        "256 MiB upload: {secs:.2} s ({:.0} MiB/s); proxy VmRSS {:.1} MiB → {:.1} MiB, VmHWM {:.1} MiB (limit {:.0} MiB)",
        256.0 / secs,
        mib(before.rss_kib),
        mib(after.rss_kib),
        mib(after.hwm_kib),
        mib(HWM_LIMIT_KIB)
    );
    assert_eq!(r.status(), 200, "{r}");
    assert_eq!(
        r.body_str(),
        SIZE.to_string(),
        "the origin counted a different body size: {r}"
    );
    assert_eq!(
        r.header("x-sink-pattern-ok"),
        Some("true"),
        "the body arrived altered: {r}"
    );
    assert!(
        after.hwm_kib < HWM_LIMIT_KIB,
        "proxy VmHWM {:.1} MiB after a 256 MiB upload is over {:.0} MiB: the body is being buffered",
        mib(after.hwm_kib),
        mib(HWM_LIMIT_KIB)
    );
}

#[test]
fn download_256mib_streams_with_bounded_memory() {
    let s = Setup::new("download-256m", |c| c);
    let before = s.proxy.memory();
    let p = Pattern::new();
    let mut c = s.client();
    let t = Instant::now();
    c.send(format!("GET /bytes/{SIZE} HTTP/1.1\r\nHost: test.local\r\n\r\n").as_bytes());
    let head = c.read_head().expect("response head");
    assert_eq!(head.status, 200, "{head:?}");
    let mut offset = 0u64;
    let mut first_bad: Option<u64> = None;
    c.read_body_with(&head, "GET", &mut |b| {
        if first_bad.is_none() && !p.matches(offset, b) {
            first_bad = Some(offset);
        }
        offset += b.len() as u64;
        Ok(())
    })
    .unwrap_or_else(|e| panic!("reading the body failed after {offset} bytes: {e}"));
    let secs = t.elapsed().as_secs_f64();
    let after = s.proxy.memory();
    println!(
        "256 MiB download: {secs:.2} s ({:.0} MiB/s); proxy VmRSS {:.1} MiB → {:.1} MiB, VmHWM {:.1} MiB (limit {:.0} MiB)",
        256.0 / secs,
        mib(before.rss_kib),
        mib(after.rss_kib),
        mib(after.hwm_kib),
        mib(HWM_LIMIT_KIB)
    );
    assert_eq!(offset, SIZE, "body length");
    assert_eq!(
        first_bad, None,
        "the body differs from the origin's from this offset on"
    );
    assert!(
        after.hwm_kib < HWM_LIMIT_KIB,
        "proxy VmHWM {:.1} MiB after a 256 MiB download is over {:.0} MiB: the body is being buffered",
        mib(after.hwm_kib),
        mib(HWM_LIMIT_KIB)
    );
    // The connection is still usable.
    assert_eq!(c.get("/after").status(), 200);
}
