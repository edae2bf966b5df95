//! Chain tests: phases, order, and the file form of the first filters.

use std::net::SocketAddr;

use super::*;
use crate::http::head::parse_request_head;
use crate::http::HeadLimits;

fn head(raw: &[u8]) -> RequestHead {
    let mut h = RequestHead::default();
    let limits = HeadLimits {
        max_head_bytes: 64 * 1024,
        max_headers: 100,
    };
    assert!(parse_request_head(raw, &limits, &mut h).unwrap());
    h
}

fn chain(toml_filters: &str) -> Vec<Filter> {
    #[derive(serde::Deserialize)]
    struct F {
        filters: Vec<FilterFile>,
    }
    let f: F = toml::from_str(toml_filters).expect("filters parse");
    f.filters
        .iter()
        .map(|f| {
            let mut p = Vec::new();
            let built = f.build(&mut p);
            assert!(p.is_empty(), "{p:?}");
            built.unwrap()
        })
        .collect()
}

fn client() -> SocketAddr {
    "192.0.2.7:5555".parse().unwrap()
}

#[test]
fn request_phase_runs_in_order_until_an_answer() {
    let filters = chain(
        r#"
[[filters]]
type = "headers"
request_set = { "x-a" = "1" }
response_set = { "x-route" = "$route", "x-host" = "$host$path" }
[[filters]]
type = "direct_response"
status = 418
body = "teapot"
[[filters]]
type = "headers"
request_set = { "x-never" = "1" }
"#,
    );
    let raw = b"GET /p?q=1 HTTP/1.1\r\nHost: h.test\r\n\r\n";
    let h = head(raw);
    let mut state = FilterState::default();
    let mut cx = RequestCx {
        buf: raw,
        head: &h,
        client: client(),
        listener: "l",
        tls: None,
        route: "r1",
        request_id: b"rid",
        state: &mut state,
    };
    assert_eq!(cx.query(), Some(&b"q=1"[..]));
    assert_eq!(cx.path(), b"/p");
    let (flow, ran) = run_request(&filters, &mut cx);
    assert_eq!(ran, 2);
    let Flow::Respond(reply) = flow else {
        panic!("expected a local reply")
    };
    assert_eq!(reply.status, 418);
    assert_eq!(state.request.get(b"x-a"), Some(&b"1"[..]));
    assert_eq!(state.request.get(b"x-never"), None);
    // The response phase of the two filters that ran.
    let mut rcx = ResponseCx {
        status: 418,
        upstream: None,
        client: client(),
        route: "r1",
        state: &mut state,
    };
    assert!(matches!(
        run_response(&filters, ran, &mut rcx),
        Flow::Continue
    ));
    assert_eq!(state.response.get(b"x-route"), Some(&b"r1"[..]));
    assert_eq!(state.response.get(b"x-host"), Some(&b"h.test/p"[..]));
}

#[test]
fn empty_chain_continues() {
    let raw = b"GET / HTTP/1.1\r\nHost: a\r\n\r\n";
    let h = head(raw);
    let mut state = FilterState::default();
    let mut cx = RequestCx {
        buf: raw,
        head: &h,
        client: client(),
        listener: "l",
        tls: None,
        route: "r",
        request_id: b"",
        state: &mut state,
    };
    let (flow, ran) = run_request(&[], &mut cx);
    assert!(matches!(flow, Flow::Continue));
    assert_eq!(ran, 0);
    assert!(cx.state.request.is_empty());
}

#[test]
fn bad_filter_files_name_their_keys() {
    #[derive(serde::Deserialize)]
    struct F {
        #[allow(dead_code)]
        filters: Vec<FilterFile>,
    }
    let unknown = toml::from_str::<F>("[[filters]]\ntype = \"nope\"\n")
        .err()
        .unwrap();
    assert!(unknown.to_string().contains("unknown variant"), "{unknown}");
    let key = toml::from_str::<F>("[[filters]]\ntype = \"headers\"\nrequest_sett = {}\n")
        .err()
        .unwrap();
    assert!(key.to_string().contains("request_sett"), "{key}");

    let problems = |text: &str| -> Problems {
        #[derive(serde::Deserialize)]
        struct G {
            filters: Vec<FilterFile>,
        }
        let g: G = toml::from_str(text).unwrap();
        let mut p = Vec::new();
        assert!(g.filters[0].build(&mut p).is_none());
        p
    };
    let p =
        problems("[[filters]]\ntype = \"headers\"\nrequest_set = { \"content-length\" = \"1\" }\n");
    assert_eq!(p[0].0, "request_set.content-length");
    let p = problems("[[filters]]\ntype = \"headers\"\nresponse_add = { \"x\" = \"$nope\" }\n");
    assert_eq!(p[0].0, "response_add.x");
    let p = problems("[[filters]]\ntype = \"headers\"\nrequest_remove = [\"bad name\"]\n");
    assert_eq!(p[0].0, "request_remove[0]");
    let p = problems("[[filters]]\ntype = \"headers\"\n");
    assert_eq!(p[0].0, "");
    let p = problems("[[filters]]\ntype = \"direct_response\"\nstatus = 99\n");
    assert_eq!(p[0].0, "status");
    let p = problems("[[filters]]\ntype = \"direct_response\"\nstatus = 204\nbody = \"x\"\n");
    assert_eq!(p[0].0, "body");
}

#[test]
fn checks_answer_417_and_413() {
    let h = head(b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 10\r\n\r\n");
    assert!(run_checks(Some(100), &h).is_ok());
    assert_eq!(run_checks(Some(5), &h).unwrap_err().status(), Some(413));
    let h = head(b"POST / HTTP/1.1\r\nHost: a\r\nExpect: fancy\r\nContent-Length: 1\r\n\r\n");
    assert_eq!(run_checks(None, &h).unwrap_err().status(), Some(417));
}
