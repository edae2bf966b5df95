//! `type = "ip_acl"` (and `ip_acl = {…}` on a `[[listener]]`): the file form.
//!
//! ```toml
//! [[route.filters]]
//! type = "ip_acl"
//! allow = ["10.0.0.0/8", "127.0.0.1", "::1/128"]
//! deny = ["10.1.2.0/24"]
//! ```
//!
//! Entries are addresses or CIDR blocks, IPv4 or IPv6. `deny` wins over
//! `allow`; a non-empty `allow` denies every address it does not hold. A
//! denied client gets `403 Forbidden` (see [`super::acl`]).

use std::sync::Arc;

use serde::Deserialize;

use super::acl::{Cidr, IpAcl};
use super::filter::IpAclFilter;
use crate::pipeline::filters::Problems;

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a table with allow and/or deny")]
pub struct IpAclFile {
    #[serde(default)]
    pub allow: Vec<String>,
    #[serde(default)]
    pub deny: Vec<String>,
}

impl IpAclFile {
    /// Compile the lists (problems are keyed `allow[i]` / `deny[i]`, or ``
    /// when both lists are empty).
    pub fn compile(&self, p: &mut Problems) -> Option<IpAcl> {
        let before = p.len();
        if self.allow.is_empty() && self.deny.is_empty() {
            p.push((
                String::new(),
                "an ip_acl needs at least one of allow, deny".into(),
            ));
        }
        let mut list = |key: &str, items: &[String]| -> Vec<Cidr> {
            let mut out = Vec::with_capacity(items.len());
            for (i, item) in items.iter().enumerate() {
                match Cidr::parse(item) {
                    Ok(c) => out.push(c),
                    Err(m) => p.push((format!("{key}[{i}]"), m)),
                }
            }
            out
        };
        let allow = list("allow", &self.allow);
        let deny = list("deny", &self.deny);
        (p.len() == before).then_some(IpAcl { allow, deny })
    }

    pub fn build(&self, p: &mut Problems) -> Option<IpAclFilter> {
        self.compile(p)
            .map(|acl| IpAclFilter { acl: Arc::new(acl) })
    }
}
