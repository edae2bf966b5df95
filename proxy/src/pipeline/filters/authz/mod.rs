//! `type = "authz"`: authorization by the client's identity, the SPIFFE ID
//! (else DNS name) of the certificate it presented on an mTLS listener
//! (`tls.client_ca`).
//!
//! ```toml
//! [[route.filters]]
//! type = "authz"
//! allow_trust_domains = ["example.org"]
//! allow_prefixes = ["spiffe://example.org/ns/prod/"]
//! allow_ids = ["spiffe://example.org/ns/ops/sa/admin"]
//! deny_ids = ["spiffe://example.org/ns/prod/sa/batch"]
//! ```
//!
//! Decision, in order: no verified client certificate → 403; an identity
//! any `deny_*` list matches → 403; when some `allow_*` list is set, an
//! identity none of them matches → 403; else the request goes on. Combine
//! it with the route's `methods` and path matchers to say who may do what.
//! A refused request never reaches the upstream.

use serde::Deserialize;

use super::context::RequestCx;
use super::reply::LocalReply;
use super::{Flow, Problems};

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a table of allow_* / deny_* lists")]
pub struct AuthzFile {
    #[serde(default)]
    pub allow_ids: Vec<String>,
    #[serde(default)]
    pub allow_prefixes: Vec<String>,
    #[serde(default)]
    pub allow_trust_domains: Vec<String>,
    #[serde(default)]
    pub deny_ids: Vec<String>,
    #[serde(default)]
    pub deny_prefixes: Vec<String>,
    #[serde(default)]
    pub deny_trust_domains: Vec<String>,
}

/// One compiled list set.
#[derive(Debug, Clone, Default)]
struct Lists {
    ids: Vec<String>,
    prefixes: Vec<String>,
    trust_domains: Vec<String>,
}

impl Lists {
    fn is_empty(&self) -> bool {
        self.ids.is_empty() && self.prefixes.is_empty() && self.trust_domains.is_empty()
    }

    fn matches(&self, id: &str) -> bool {
        self.ids.iter().any(|i| i == id)
            || self.prefixes.iter().any(|p| id.starts_with(p.as_str()))
            || trust_domain(id).is_some_and(|td| self.trust_domains.iter().any(|t| t == td))
    }
}

#[derive(Debug, Clone)]
pub struct AuthzFilter {
    allow: Lists,
    deny: Lists,
}

/// The trust domain of a SPIFFE ID (`spiffe://TD/...`).
fn trust_domain(id: &str) -> Option<&str> {
    let rest = id.strip_prefix("spiffe://")?;
    Some(rest.split('/').next().unwrap_or(rest))
}

/// A well-formed SPIFFE ID (`cert::spiffe`'s rules: lowercase trust
/// domain, no empty, `.` or `..` segment, no query or fragment).
pub fn valid_spiffe_id(id: &str) -> bool {
    crate::cert::spiffe::SpiffeId::parse(id).is_ok()
}

fn valid_trust_domain(td: &str) -> bool {
    crate::cert::spiffe::validate_trust_domain(td).is_ok()
}

impl AuthzFile {
    pub fn build(&self, p: &mut Problems) -> Option<AuthzFilter> {
        let before = p.len();
        let ids = |key: &str, list: &[String], p: &mut Problems| {
            for (i, id) in list.iter().enumerate() {
                let dns = !id.contains(':')
                    && !id.is_empty()
                    && id
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b".-*".contains(&b));
                if !valid_spiffe_id(id) && !dns {
                    p.push((
                        format!("{key}[{i}]"),
                        format!("{id:?} is neither a SPIFFE ID (spiffe://trust-domain/path) nor a DNS name"),
                    ));
                }
            }
            list.to_vec()
        };
        let prefixes = |key: &str, list: &[String], p: &mut Problems| {
            for (i, pre) in list.iter().enumerate() {
                let ok = pre.ends_with('/') && valid_spiffe_id(pre.trim_end_matches('/'));
                if !ok {
                    p.push((
                        format!("{key}[{i}]"),
                        format!("{pre:?}: expected a SPIFFE ID prefix ending in '/', e.g. \"spiffe://example.org/ns/prod/\""),
                    ));
                }
            }
            list.to_vec()
        };
        let domains = |key: &str, list: &[String], p: &mut Problems| {
            for (i, td) in list.iter().enumerate() {
                if !valid_trust_domain(td) {
                    p.push((
                        format!("{key}[{i}]"),
                        format!("{td:?} is not a trust domain (lowercase letters, digits, '.', '-', '_'; no scheme)"),
                    ));
                }
            }
            list.to_vec()
        };
        let allow = Lists {
            ids: ids("allow_ids", &self.allow_ids, p),
            prefixes: prefixes("allow_prefixes", &self.allow_prefixes, p),
            trust_domains: domains("allow_trust_domains", &self.allow_trust_domains, p),
        };
        let deny = Lists {
            ids: ids("deny_ids", &self.deny_ids, p),
            prefixes: prefixes("deny_prefixes", &self.deny_prefixes, p),
            trust_domains: domains("deny_trust_domains", &self.deny_trust_domains, p),
        };
        if allow.is_empty() && deny.is_empty() {
            p.push((
                String::new(),
                "an authz filter needs at least one allow_* or deny_* list".into(),
            ));
        }
        (p.len() == before).then_some(AuthzFilter { allow, deny })
    }
}

impl AuthzFilter {
    /// Whether `id` (the client's identity, `None` without a verified
    /// certificate) may go on.
    pub fn allows(&self, id: Option<&str>) -> bool {
        let Some(id) = id.filter(|i| !i.is_empty()) else {
            return false;
        };
        if self.deny.matches(id) {
            return false;
        }
        self.allow.is_empty() || self.allow.matches(id)
    }

    pub fn on_request(&self, cx: &mut RequestCx<'_>) -> Flow {
        let id = cx.tls.and_then(|t| t.peer.as_ref()).map(|p| p.id.as_str());
        if self.allows(id) {
            Flow::Continue
        } else {
            Flow::Respond(LocalReply::text(403, "403 Forbidden\n"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn filter(toml_text: &str) -> Result<AuthzFilter, Problems> {
        let f: AuthzFile = toml::from_str(toml_text).unwrap();
        let mut p = Vec::new();
        f.build(&mut p).ok_or(p)
    }

    #[test]
    fn decisions() {
        let f = filter(
            r#"
            allow_trust_domains = ["example.org"]
            allow_ids = ["spiffe://partner.net/ns/x/sa/billing"]
            deny_prefixes = ["spiffe://example.org/ns/batch/"]
            deny_ids = ["spiffe://example.org/ns/prod/sa/old"]
            "#,
        )
        .unwrap();
        assert!(f.allows(Some("spiffe://example.org/ns/prod/sa/web")));
        assert!(f.allows(Some("spiffe://partner.net/ns/x/sa/billing")));
        // No certificate, or one without a usable SAN.
        assert!(!f.allows(None));
        assert!(!f.allows(Some("")));
        // Another trust domain, and look-alikes of the allowed one.
        assert!(!f.allows(Some("spiffe://evil.org/ns/prod/sa/web")));
        assert!(!f.allows(Some("spiffe://example.org.evil.org/ns/prod")));
        assert!(!f.allows(Some("spiffe://partner.net/ns/x/sa/billing2")));
        assert!(!f.allows(Some("example.org")));
        // Denied ones, although the trust domain is allowed.
        assert!(!f.allows(Some("spiffe://example.org/ns/batch/sa/job")));
        assert!(!f.allows(Some("spiffe://example.org/ns/prod/sa/old")));
        // Deny only: everyone else with an identity passes.
        let f = filter(r#"deny_trust_domains = ["evil.org"]"#).unwrap();
        assert!(f.allows(Some("spiffe://example.org/a")));
        assert!(f.allows(Some("api.internal")));
        assert!(!f.allows(Some("spiffe://evil.org/a")));
        assert!(!f.allows(None));
    }

    #[test]
    fn problems_name_the_key() {
        let p = filter("").unwrap_err();
        assert_eq!(p[0].0, "");
        let p = filter(
            r#"
            allow_ids = ["http://example.org/x", "spiffe://Example.org/x", "spiffe://example.org/a//b", "spiffe://example.org/../x"]
            allow_prefixes = ["spiffe://example.org/ns"]
            allow_trust_domains = ["spiffe://example.org"]
            "#,
        )
        .unwrap_err();
        let keys: Vec<&str> = p.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(
            keys,
            [
                "allow_ids[0]",
                "allow_ids[1]",
                "allow_ids[2]",
                "allow_ids[3]",
                "allow_prefixes[0]",
                "allow_trust_domains[0]"
            ]
        );
    }
}
