//! SPIFFE IDs (`spiffe://trust-domain/path`), parsed and validated as the
//! SPIFFE ID specification says, strictly: anything a peer could use to make
//! two different strings name the same workload (case, ports, dot segments,
//! percent-encoding, empty segments, queries) is refused, not normalised.
//!
//! * trust domain: 1..=255 bytes of `a-z`, `0-9`, `.`, `-`, `_` (no
//!   uppercase, no port, no user info);
//! * path: empty, or `/`-separated segments of `a-z A-Z 0-9 . - _`, each
//!   non-empty and neither `.` nor `..` (so no trailing `/` either);
//! * no query, no fragment; the whole ID at most 2048 bytes.
//!
//! mTLS authorization compares [`SpiffeId`]s built here, so a string that
//! parses names exactly one workload.

use std::fmt;

/// The longest SPIFFE ID accepted, in bytes (SPIFFE ID spec §2.3).
pub const MAX_ID_BYTES: usize = 2048;
/// The longest trust domain accepted, in bytes (SPIFFE ID spec §2.1).
pub const MAX_TRUST_DOMAIN_BYTES: usize = 255;

const SCHEME: &str = "spiffe://";

/// A valid SPIFFE ID.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SpiffeId {
    trust_domain: String,
    /// Empty, or `/seg/seg…`.
    path: String,
}

impl SpiffeId {
    /// Parses and validates `text`; the error says what is wrong.
    pub fn parse(text: &str) -> Result<SpiffeId, String> {
        let bad = |why: String| format!("invalid SPIFFE ID {text:?}: {why}");
        if text.len() > MAX_ID_BYTES {
            return Err(bad(format!(
                "{} bytes, at most {MAX_ID_BYTES} are allowed",
                text.len()
            )));
        }
        let Some(rest) = text.strip_prefix(SCHEME) else {
            return Err(match text.split_once("://") {
                Some((scheme, _)) if scheme.eq_ignore_ascii_case("spiffe") => {
                    bad("the scheme must be lowercase \"spiffe\"".into())
                }
                Some((scheme, _)) => {
                    bad(format!("the scheme is {scheme:?}, it must be \"spiffe\""))
                }
                None => bad("it must start with \"spiffe://\"".into()),
            });
        };
        if rest.contains('?') {
            return Err(bad("a query (\"?\") is not allowed".into()));
        }
        if rest.contains('#') {
            return Err(bad("a fragment (\"#\") is not allowed".into()));
        }
        let (trust_domain, path) = match rest.find('/') {
            Some(i) => rest.split_at(i),
            None => (rest, ""),
        };
        validate_trust_domain(trust_domain).map_err(bad)?;
        validate_path(path).map_err(bad)?;
        Ok(SpiffeId {
            trust_domain: trust_domain.to_owned(),
            path: path.to_owned(),
        })
    }

    /// The ID of a trust domain itself (`spiffe://example.org`, no path),
    /// as written in a CA certificate.
    pub fn for_trust_domain(trust_domain: &str) -> Result<SpiffeId, String> {
        validate_trust_domain(trust_domain)?;
        Ok(SpiffeId {
            trust_domain: trust_domain.to_owned(),
            path: String::new(),
        })
    }

    /// `example.org` in `spiffe://example.org/ns/prod`.
    pub fn trust_domain(&self) -> &str {
        &self.trust_domain
    }

    /// `/ns/prod` in `spiffe://example.org/ns/prod`; empty for a trust
    /// domain ID.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// The path segments (`["ns", "prod"]`).
    pub fn segments(&self) -> impl Iterator<Item = &str> {
        self.path.split('/').skip(1)
    }
}

impl fmt::Display for SpiffeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{SCHEME}{}{}", self.trust_domain, self.path)
    }
}

/// Checks a trust domain name (`example.org`): 1..=255 bytes of lowercase
/// letters, digits, `.`, `-`, `_`. The error says what is wrong.
pub fn validate_trust_domain(td: &str) -> Result<(), String> {
    if td.is_empty() {
        return Err("the trust domain is empty".into());
    }
    if td.len() > MAX_TRUST_DOMAIN_BYTES {
        return Err(format!(
            "the trust domain is {} bytes, at most {MAX_TRUST_DOMAIN_BYTES} are allowed",
            td.len()
        ));
    }
    if td.contains("://") {
        return Err(format!(
            "the trust domain {td:?} contains a scheme; write the name alone (example.org)"
        ));
    }
    for c in td.chars() {
        let why = match c {
            'a'..='z' | '0'..='9' | '.' | '-' | '_' => continue,
            'A'..='Z' => "uppercase letters are not allowed (write it in lowercase)",
            ':' => "a port (\":\") is not allowed",
            '@' => "user info (\"@\") is not allowed",
            '/' => "a path is not allowed",
            '%' => "percent-encoding is not allowed",
            _ => "only a-z, 0-9, '.', '-' and '_' are allowed",
        };
        return Err(format!("the trust domain {td:?} has {c:?}: {why}"));
    }
    Ok(())
}

/// Checks the path part (`""` or `/seg/seg`).
fn validate_path(path: &str) -> Result<(), String> {
    if path.is_empty() {
        return Ok(());
    }
    for segment in path.split('/').skip(1) {
        match segment {
            "" => {
                return Err(format!(
                    "the path {path:?} has an empty segment (\"//\" or a trailing \"/\")"
                ))
            }
            "." | ".." => {
                return Err(format!(
                    "the path {path:?} has a {segment:?} segment; dot segments are not allowed"
                ))
            }
            _ => {}
        }
        if let Some(c) = segment
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_')))
        {
            let why = if c == '%' {
                "percent-encoding is not allowed"
            } else {
                "only a-z, A-Z, 0-9, '.', '-' and '_' are allowed in a segment"
            };
            return Err(format!("the path {path:?} has {c:?}: {why}"));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(text: &str, why: &str) {
        match SpiffeId::parse(text) {
            Ok(id) => panic!("{text:?} was accepted as {id:?}"),
            Err(e) => assert!(e.contains(why), "{text:?}: error {e:?} lacks {why:?}"),
        }
    }

    #[test]
    fn spiffe_id_valid() {
        let id = SpiffeId::parse("spiffe://example.org/ns/prod/sa/orders").unwrap();
        assert_eq!(id.trust_domain(), "example.org");
        assert_eq!(id.path(), "/ns/prod/sa/orders");
        assert_eq!(
            id.segments().collect::<Vec<_>>(),
            ["ns", "prod", "sa", "orders"]
        );
        assert_eq!(id.to_string(), "spiffe://example.org/ns/prod/sa/orders");
        // Segments may hold uppercase, dots, dashes, underscores.
        let id = SpiffeId::parse("spiffe://my_td-1.example/Svc.v2/a-b_c").unwrap();
        assert_eq!(id.trust_domain(), "my_td-1.example");
        // A trust domain ID has no path.
        let id = SpiffeId::parse("spiffe://example.org").unwrap();
        assert_eq!(id.path(), "");
        assert_eq!(id, SpiffeId::for_trust_domain("example.org").unwrap());
    }

    #[test]
    fn spiffe_id_wrong_scheme() {
        refused("https://example.org/ns/prod", "it must be \"spiffe\"");
        refused("SPIFFE://example.org/ns/prod", "lowercase");
        refused("Spiffe://example.org/a", "lowercase");
        refused("spiffe:/example.org/a", "must start with");
        refused("example.org/ns/prod", "must start with");
        refused("", "must start with");
    }

    #[test]
    fn spiffe_id_bad_trust_domain() {
        refused("spiffe://Example.org/a", "uppercase");
        refused("spiffe://example.org:443/a", "port");
        refused("spiffe://user@example.org/a", "user info");
        refused("spiffe:///a", "empty");
        refused("spiffe://", "empty");
        refused("spiffe://exa%6Dple.org/a", "percent");
        refused("spiffe://exämple.org/a", "only a-z");
        refused("spiffe://example org/a", "only a-z");
    }

    #[test]
    fn spiffe_id_bad_path() {
        refused("spiffe://example.org/ns//orders", "empty segment");
        refused("spiffe://example.org/ns/prod/", "empty segment");
        refused("spiffe://example.org/", "empty segment");
        refused("spiffe://example.org/ns/../admin", "dot segments");
        refused("spiffe://example.org/ns/./admin", "dot segments");
        refused("spiffe://example.org/..", "dot segments");
        refused("spiffe://example.org/ns/prod?x=1", "query");
        refused("spiffe://example.org?x", "query");
        refused("spiffe://example.org/ns#frag", "fragment");
        refused("spiffe://example.org/ns/pr%6Fd", "percent");
        refused("spiffe://example.org/ns/a b", "only a-z");
        refused("spiffe://example.org/ns/a\\b", "only a-z");
    }

    #[test]
    fn spiffe_id_too_long() {
        let prefix = "spiffe://example.org/";
        let ok = format!("{prefix}{}", "a".repeat(MAX_ID_BYTES - prefix.len()));
        assert!(SpiffeId::parse(&ok).is_ok());
        let long = format!("{ok}a");
        refused(&long, "at most 2048");
        let td = "a".repeat(256);
        refused(&format!("spiffe://{td}/x"), "at most 255");
        assert!(SpiffeId::parse(&format!("spiffe://{}/x", "a".repeat(255))).is_ok());
    }

    #[test]
    fn trust_domain_validation() {
        assert!(validate_trust_domain("example.org").is_ok());
        assert!(validate_trust_domain("prod_mesh-2.internal").is_ok());
        for (td, why) in [
            ("", "empty"),
            ("Example.org", "uppercase"),
            ("spiffe://example.org", "scheme"),
            ("example.org/ns", "path"),
            ("example.org:8443", "port"),
            ("a@example.org", "user info"),
            ("exa mple", "only a-z"),
        ] {
            let e = validate_trust_domain(td).unwrap_err();
            assert!(e.contains(why), "{td:?}: {e}");
        }
        assert!(validate_trust_domain(&"a".repeat(256))
            .unwrap_err()
            .contains("at most 255"));
    }
}
