//! Request dispatch: method + path → response.

use std::fmt::Write as _;

use super::{json, prometheus, AdminState, RingStats};

/// Content type of `/metrics` (Prometheus text exposition format 0.0.4).
pub const PROMETHEUS_CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";
pub const JSON_CONTENT_TYPE: &str = "application/json";
pub const TEXT_CONTENT_TYPE: &str = "text/plain; charset=utf-8";
pub const HTML_CONTENT_TYPE: &str = "text/html; charset=utf-8";

/// The endpoints, for the index page and 404s.
pub const ENDPOINTS: [(&str, &str); 10] = [
    ("/metrics", "Prometheus text format 0.0.4"),
    ("/stats", "the same statistics as JSON"),
    ("/live", "200 while the process runs"),
    ("/ready", "200, or 503 while draining"),
    (
        "/config",
        "effective configuration as JSON (secrets redacted)",
    ),
    (
        "/workers",
        "per-worker core, driver, load, applied generation and io_uring stats as JSON",
    ),
    (
        "/clusters",
        "clusters and endpoints: weight, source, active health, counts",
    ),
    (
        "/dashboard",
        "live dashboard (HTML, refreshes every second)",
    ),
    (
        "/dashboard.json",
        "what the dashboard shows, with five minutes of per-route history",
    ),
    (
        "/reload",
        "POST: load the config file again; 400 with its problems when invalid",
    ),
];

/// What a handler needs: the shared state and a way to get fresh ring
/// figures (sampling is done on demand, only by the endpoints that show
/// them).
pub struct Context<'a> {
    pub state: &'a AdminState,
    pub rings: &'a dyn Fn() -> Vec<Option<RingStats>>,
    /// The routes' recent history (kept by the sampler thread).
    pub history: &'a std::sync::Mutex<super::history::History>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    pub status: u16,
    pub content_type: &'static str,
    pub body: Vec<u8>,
    /// Send `Allow: GET, HEAD` (405); `Allow: POST` for `/reload`.
    pub allow: bool,
}

impl Response {
    pub fn new(status: u16, content_type: &'static str, body: impl Into<Vec<u8>>) -> Response {
        Response {
            status,
            content_type,
            body: body.into(),
            allow: false,
        }
    }

    pub fn text(status: u16, body: impl Into<Vec<u8>>) -> Response {
        Response::new(status, TEXT_CONTENT_TYPE, body)
    }

    fn json(value: &serde_json::Value) -> Response {
        let mut body = serde_json::to_vec_pretty(value).unwrap_or_else(|_| b"null".to_vec());
        body.push(b'\n');
        Response::new(200, JSON_CONTENT_TYPE, body)
    }

    /// The whole HTTP/1.1 response (`head_only`: for HEAD, no body).
    pub fn to_bytes(&self, head_only: bool) -> Vec<u8> {
        let mut head = format!(
            "HTTP/1.1 {} {}\r\nContent-Type: {}\r\nContent-Length: {}\r\nCache-Control: no-store\r\nConnection: close\r\n",
            self.status,
            reason(self.status),
            self.content_type,
            self.body.len()
        );
        if self.allow {
            head.push_str(
                if self.status == 405 && self.body.starts_with(b"method not allowed: use POST") {
                    "Allow: POST\r\n"
                } else {
                    "Allow: GET, HEAD\r\n"
                },
            );
        }
        head.push_str("\r\n");
        let mut out = head.into_bytes();
        if !head_only {
            out.extend_from_slice(&self.body);
        }
        out
    }
}

pub fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        400 => "Bad Request",
        500 => "Internal Server Error",
        404 => "Not Found",
        405 => "Method Not Allowed",
        431 => "Request Header Fields Too Large",
        503 => "Service Unavailable",
        _ => "",
    }
}

fn index() -> String {
    let mut s = String::from("ringway admin\n\n");
    for (path, what) in ENDPOINTS {
        let m = if path == "/reload" { "POST" } else { "GET " };
        let _ = writeln!(s, "  {m} {path:<16} {what}");
    }
    let _ = writeln!(
        s,
        "  POST /routes/NAME/weights?CLUSTER=WEIGHT&...  set a split route's weights on every worker"
    );
    s
}

/// Answer one request (with its query string).
pub fn handle_query(ctx: &Context<'_>, method: &str, path: &str, query: &str) -> Response {
    if let Some(route) = path
        .strip_prefix("/routes/")
        .and_then(|r| r.strip_suffix("/weights"))
    {
        return weights(ctx, method, route, query);
    }
    handle(ctx, method, path)
}

/// `POST /routes/NAME/weights?cluster=weight&...`: the split route's new
/// weights, on every worker at once.
fn weights(ctx: &Context<'_>, method: &str, route: &str, query: &str) -> Response {
    if method != "POST" {
        let mut r = Response::text(405, "method not allowed: use POST\n");
        r.allow = true;
        return r;
    }
    let Some(set_weights) = &ctx.state.weights else {
        return Response::text(
            503,
            "weights cannot be changed: ringway runs without a config file\n",
        );
    };
    if route.is_empty() || route.contains('/') {
        return Response::text(404, "usage: POST /routes/NAME/weights?CLUSTER=WEIGHT&...\n");
    }
    let mut set: Vec<(String, u32)> = Vec::new();
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let Some((cluster, w)) = pair.split_once('=') else {
            return Response::text(400, format!("{pair:?}: expected CLUSTER=WEIGHT\n"));
        };
        let Ok(w) = w.parse::<u32>() else {
            return Response::text(
                400,
                format!("{cluster}: weight {w:?} is not a whole number\n"),
            );
        };
        if w > 1_000_000 {
            return Response::text(400, format!("{cluster}: weight {w} is over 1000000\n"));
        }
        if set.iter().any(|(c, _)| c == cluster) {
            return Response::text(400, format!("{cluster}: given twice\n"));
        }
        set.push((cluster.to_string(), w));
    }
    if set.is_empty() {
        return Response::text(400, "usage: POST /routes/NAME/weights?CLUSTER=WEIGHT&...\n");
    }
    match set_weights(route, &set) {
        Ok(msg) => Response::text(200, msg),
        Err((status, msg)) => Response::text(status, msg),
    }
}

/// Answer one request.
pub fn handle(ctx: &Context<'_>, method: &str, path: &str) -> Response {
    let known = path == "/" || ENDPOINTS.iter().any(|(p, _)| *p == path);
    if !known {
        return Response::text(404, format!("not found: {path}\n\n{}", index()));
    }
    if path == "/reload" {
        if method != "POST" {
            let mut r = Response::text(405, "method not allowed: use POST\n");
            r.allow = true;
            return r;
        }
        return match &ctx.state.reload {
            None => Response::text(503, "reload is not available\n"),
            Some(reload) => match reload() {
                Ok(msg) => Response::text(200, msg),
                Err((status, msg)) => Response::text(status, msg),
            },
        };
    }
    if method != "GET" && method != "HEAD" {
        let mut r = Response::text(405, "method not allowed: use GET\n");
        r.allow = true;
        return r;
    }
    let state = ctx.state;
    match path {
        "/metrics" => Response::new(
            200,
            PROMETHEUS_CONTENT_TYPE,
            prometheus::render(state, &(ctx.rings)()),
        ),
        "/stats" => Response::json(&json::stats(state)),
        "/live" => Response::text(200, "live\n"),
        "/ready" => {
            if state.draining.is_set() {
                Response::text(503, "draining\n")
            } else {
                Response::text(200, "ready\n")
            }
        }
        "/config" => {
            // Config and generation from one snapshot: never a mix.
            let current = state.registry.load();
            let mut v = json::config(&current.config);
            v["generation"] = serde_json::json!(current.generation);
            Response::json(&v)
        }
        "/workers" => Response::json(&json::workers(state, &(ctx.rings)())),
        "/clusters" => Response::json(&json::clusters(state)),
        "/dashboard" => Response::new(200, HTML_CONTENT_TYPE, super::dashboard::PAGE),
        "/dashboard.json" => {
            let rings = (ctx.rings)();
            let history = ctx.history.lock().unwrap_or_else(|e| e.into_inner());
            Response::json(&super::dashboard::data(state, &rings, &history))
        }
        _ => Response::text(200, index()),
    }
}
