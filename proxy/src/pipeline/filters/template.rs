//! Header value templates: `"$client_ip"`, `"req-$request_id"`,
//! `"$var.sub"`, … compiled once per configuration generation, rendered per
//! request straight into a [`HeaderEdits`] arena (no allocation).
//!
//! | name          | value                                                  |
//! |---------------|--------------------------------------------------------|
//! | `$client_ip`  | the client's IP address                                |
//! | `$request_id` | the request id (the client's X-Request-Id, or ringway's) |
//! | `$route`      | the matched route's name                               |
//! | `$host`       | the Host header value (empty when absent)              |
//! | `$path`       | the request path, no query                             |
//! | `$var.NAME`   | the per-request variable NAME (empty when unset)       |
//! | `$tls_sni`    | the server name the TLS client asked for (request phase; empty on plain listeners) |
//! | `$tls_version`| `TLSv1.3` / `TLSv1.2` (request phase; empty on plain listeners) |
//! | `$$`          | a literal `$`                                          |
//!
//! `${name}` may be written where the name runs into following text
//! (`${route}-v2`). Anything else after `$` is a configuration error.

use std::net::IpAddr;

use crate::http::HeaderEdits;

/// One piece of a template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Part {
    Literal(Box<[u8]>),
    ClientIp,
    RequestId,
    Route,
    Host,
    Path,
    Var(Box<str>),
    TlsSni,
    TlsVersion,
}

/// A compiled template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    parts: Box<[Part]>,
}

/// The request facts a template can read.
pub struct TemplateInput<'a> {
    pub client_ip: IpAddr,
    pub request_id: &'a [u8],
    pub route: &'a str,
    pub host: &'a [u8],
    pub path: &'a [u8],
    pub vars: &'a super::context::Vars,
    /// TLS facts (request phase on a TLS listener).
    pub tls: Option<&'a super::context::TlsFacts>,
}

fn is_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_' || c == '-'
}

impl Template {
    /// Compile `text`. The error names what is wrong.
    pub fn parse(text: &str) -> Result<Template, String> {
        let mut parts = Vec::new();
        let mut lit = String::new();
        let mut rest = text;
        while let Some(i) = rest.find('$') {
            lit.push_str(&rest[..i]);
            rest = &rest[i + 1..];
            if let Some(r) = rest.strip_prefix('$') {
                lit.push('$');
                rest = r;
                continue;
            }
            let (name, after) = if let Some(r) = rest.strip_prefix('{') {
                let end = r
                    .find('}')
                    .ok_or_else(|| format!("unclosed `${{` in {text:?}"))?;
                (&r[..end], &r[end + 1..])
            } else {
                // `$var.NAME` keeps its dot; other names stop at non-name chars.
                let end = match rest.strip_prefix("var.") {
                    Some(v) => 4 + v.find(|c: char| !is_name_char(c)).unwrap_or(v.len()),
                    None => rest.find(|c: char| !is_name_char(c)).unwrap_or(rest.len()),
                };
                (&rest[..end], &rest[end..])
            };
            let part = match name {
                "client_ip" => Part::ClientIp,
                "request_id" => Part::RequestId,
                "route" => Part::Route,
                "host" => Part::Host,
                "path" => Part::Path,
                "tls_sni" => Part::TlsSni,
                "tls_version" => Part::TlsVersion,
                n => match n.strip_prefix("var.") {
                    Some(v) if !v.is_empty() && v.chars().all(is_name_char) => Part::Var(v.into()),
                    _ => {
                        return Err(format!(
                        "unknown variable `${n}` in {text:?} (known: $client_ip, $request_id, $route, $host, $path, $tls_sni, $tls_version, $var.NAME; `$$` for a literal `$`)"
                    ))
                    }
                },
            };
            if !lit.is_empty() {
                parts.push(Part::Literal(std::mem::take(&mut lit).into_bytes().into()));
            }
            parts.push(part);
            rest = after;
        }
        lit.push_str(rest);
        if !lit.is_empty() {
            parts.push(Part::Literal(lit.into_bytes().into()));
        }
        if !crate::http::edits::is_field_value(text.as_bytes()) {
            return Err("must not contain control characters (CR, LF, NUL, ...)".into());
        }
        Ok(Template {
            parts: parts.into(),
        })
    }

    /// Whether rendering reads `$host` or `$path`.
    pub fn reads_request_line(&self) -> bool {
        self.parts
            .iter()
            .any(|p| matches!(p, Part::Host | Part::Path))
    }

    /// The value when the template has no variables.
    pub fn literal(&self) -> Option<&[u8]> {
        match &*self.parts {
            [] => Some(b""),
            [Part::Literal(l)] => Some(l),
            _ => None,
        }
    }

    /// Render into `edits` as a `set` (or `add` when `append`) of `name`.
    /// Returns false when the rendered value was refused (a variable held a
    /// control character).
    pub fn render_into(
        &self,
        edits: &mut HeaderEdits,
        name: &[u8],
        append: bool,
        input: &TemplateInput<'_>,
    ) -> bool {
        let start = edits.begin_value();
        for part in self.parts.iter() {
            match part {
                Part::Literal(l) => edits.push_value(l),
                Part::ClientIp => push_ip(edits, input.client_ip),
                Part::RequestId => edits.push_value(input.request_id),
                Part::Route => edits.push_value(input.route.as_bytes()),
                Part::Host => edits.push_value(input.host),
                Part::Path => edits.push_value(input.path),
                Part::Var(v) => edits.push_value(input.vars.get(v).unwrap_or_default()),
                Part::TlsSni => {
                    let sni = input.tls.and_then(|t| t.sni.as_deref()).unwrap_or_default();
                    edits.push_value(sni.as_bytes())
                }
                Part::TlsVersion => {
                    edits.push_value(input.tls.map_or("", |t| t.version).as_bytes())
                }
            }
        }
        edits.finish_value(start, name, append)
    }
}

fn push_ip(edits: &mut HeaderEdits, ip: IpAddr) {
    use std::io::Write as _;
    let mut buf = [0u8; 48];
    let mut cur = std::io::Cursor::new(&mut buf[..]);
    let _ = write!(cur, "{}", ip.to_canonical());
    let n = cur.position() as usize;
    edits.push_value(&buf[..n]);
}

#[cfg(test)]
mod tests {
    use super::super::context::Vars;
    use super::*;

    fn render(t: &str, vars: &Vars) -> String {
        let t = Template::parse(t).unwrap();
        let mut e = HeaderEdits::new();
        let input = TemplateInput {
            client_ip: "::ffff:10.1.2.3".parse().unwrap(),
            request_id: b"rid",
            route: "api",
            host: b"a.test",
            path: b"/p",
            vars,
            tls: None,
        };
        assert!(t.render_into(&mut e, b"x", false, &input));
        String::from_utf8(e.get(b"x").unwrap().to_vec()).unwrap()
    }

    #[test]
    fn variables_and_literals() {
        let mut vars = Vars::default();
        vars.set("sub", b"alice");
        assert_eq!(render("plain", &vars), "plain");
        assert_eq!(render("", &vars), "");
        assert_eq!(render("$client_ip", &vars), "10.1.2.3");
        assert_eq!(
            render("$route/$request_id@$host$path", &vars),
            "api/rid@a.test/p"
        );
        assert_eq!(render("u=$var.sub;", &vars), "u=alice;");
        assert_eq!(render("u=$var.none", &vars), "u=");
        assert_eq!(render("${route}-v2 costs $$5", &vars), "api-v2 costs $5");
        assert!(Template::parse("$path").unwrap().reads_request_line());
        assert!(!Template::parse("$route").unwrap().reads_request_line());
        assert_eq!(
            Template::parse("a$$b").unwrap().literal(),
            Some(&b"a$b"[..])
        );
    }

    #[test]
    fn bad_templates_are_refused() {
        for t in [
            "$nope",
            "$",
            "${route",
            "$var.",
            "${var.a b}",
            "a\r\nb",
            "$var",
        ] {
            assert!(Template::parse(t).is_err(), "{t:?}");
        }
    }

    #[test]
    fn injected_variable_values_are_refused() {
        let mut vars = Vars::default();
        vars.set("evil", b"a\r\nx-admin: 1");
        let t = Template::parse("$var.evil").unwrap();
        let mut e = HeaderEdits::new();
        let input = TemplateInput {
            client_ip: "127.0.0.1".parse().unwrap(),
            request_id: b"",
            route: "r",
            host: b"",
            path: b"",
            vars: &vars,
            tls: None,
        };
        assert!(!t.render_into(&mut e, b"x", false, &input));
        assert!(e.is_empty());
    }
}
