//! The request, serialised once before the run starts.

use crate::cli::RunConfig;

/// Serialise the request every connection sends.
pub fn serialize(cfg: &RunConfig) -> Vec<u8> {
    let has = |name: &str| {
        cfg.headers
            .iter()
            .any(|(n, _)| n.eq_ignore_ascii_case(name))
    };
    let mut out = Vec::with_capacity(256 + cfg.body.as_ref().map_or(0, Vec::len));
    out.extend_from_slice(cfg.method.as_bytes());
    out.push(b' ');
    out.extend_from_slice(cfg.target.path.as_bytes());
    out.extend_from_slice(b" HTTP/1.1\r\n");
    let mut header = |name: &str, value: &str| {
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(value.as_bytes());
        out.extend_from_slice(b"\r\n");
    };
    if !has("host") {
        header("Host", &cfg.target.host_header());
    }
    if !has("user-agent") {
        header(
            "User-Agent",
            concat!("ringload/", env!("CARGO_PKG_VERSION")),
        );
    }
    for (name, value) in &cfg.headers {
        header(name, value);
    }
    if let Some(body) = &cfg.body {
        if !has("content-length") && !has("transfer-encoding") {
            header("Content-Length", &body.len().to_string());
        }
    }
    if !cfg.keepalive && !has("connection") {
        header("Connection", "close");
    }
    out.extend_from_slice(b"\r\n");
    if let Some(body) = &cfg.body {
        out.extend_from_slice(body);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::{Cli, Command};
    use clap::Parser;

    fn config(args: &[&str]) -> RunConfig {
        let mut full = vec!["ringload", "run"];
        full.extend_from_slice(args);
        match Cli::try_parse_from(full).unwrap().command {
            Command::Run(r) => r.validate().unwrap(),
            _ => unreachable!(),
        }
    }

    #[test]
    fn get_request() {
        let req = serialize(&config(&["http://127.0.0.1:8080/x?y=1"]));
        let text = String::from_utf8(req).unwrap();
        assert!(text.starts_with("GET /x?y=1 HTTP/1.1\r\nHost: 127.0.0.1:8080\r\n"));
        assert!(text.contains("User-Agent: ringload/"));
        assert!(!text.contains("Content-Length"));
        assert!(!text.contains("Connection"));
        assert!(text.ends_with("\r\n\r\n"));
    }

    #[test]
    fn post_with_body_no_keepalive() {
        let req = serialize(&config(&[
            "http://h/p",
            "-m",
            "POST",
            "--body",
            "abc",
            "-H",
            "Host: other",
            "--no-keepalive",
        ]));
        let text = String::from_utf8(req).unwrap();
        assert!(text.starts_with("POST /p HTTP/1.1\r\n"));
        assert!(text.contains("Host: other\r\n"));
        assert!(!text.contains("Host: h\r\n"));
        assert!(text.contains("Content-Length: 3\r\n"));
        assert!(text.contains("Connection: close\r\n"));
        assert!(text.ends_with("\r\n\r\nabc"));
        // It parses as one complete request.
        let mut headers = [httparse::EMPTY_HEADER; 16];
        let mut r = httparse::Request::new(&mut headers);
        let n = match r.parse(text.as_bytes()).unwrap() {
            httparse::Status::Complete(n) => n,
            httparse::Status::Partial => panic!("partial"),
        };
        assert_eq!(&text.as_bytes()[n..], b"abc");
    }
}
