//! `[etcd]` and `[etcd.register]`.

use std::time::Duration;

use super::super::etcd::{EtcdClient, EtcdConfig, EtcdUrl, Registration};
use super::super::file::{EtcdFile, EtcdRegisterFile};
use super::Builder;

/// The shortest `lease_ttl` (keepalives go every third of it).
const MIN_LEASE_TTL: Duration = Duration::from_secs(2);

impl Builder<'_> {
    /// `[etcd]`; `None` when something is wrong (reported).
    pub(super) fn etcd(&mut self, f: &EtcdFile) -> Option<EtcdConfig> {
        let before = self.errors.len();
        if f.endpoints.is_empty() {
            self.error(
                "etcd.endpoints",
                "at least one \"http://host:port\" is required",
            );
        }
        let mut endpoints = Vec::new();
        for (i, e) in f.endpoints.iter().enumerate() {
            match EtcdUrl::parse(e) {
                Ok(u) => endpoints.push(u),
                Err(m) => self.error(format!("etcd.endpoints[{i}]"), m),
            }
        }
        let timeout = self.timeout("etcd.timeout", f.timeout.as_ref(), Duration::from_secs(2));
        let dial_timeout = self.timeout(
            "etcd.dial_timeout",
            f.dial_timeout.as_ref(),
            Duration::from_secs(1),
        );
        let register = f.register.as_ref().and_then(|r| self.etcd_register(r));
        (self.errors.len() == before).then_some(EtcdConfig {
            client: EtcdClient {
                endpoints,
                dial_timeout,
                timeout,
            },
            register,
        })
    }

    fn etcd_register(&mut self, r: &EtcdRegisterFile) -> Option<Registration> {
        let before = self.errors.len();
        let path = "etcd.register";
        if r.key.trim().is_empty() {
            self.error(format!("{path}.key"), "must not be empty");
        }
        if let Err(m) = super::resolve_endpoint(&r.address) {
            self.error(format!("{path}.address"), m);
        }
        let weight = self.int_in(&format!("{path}.weight"), r.weight, 1, 1, 1000);
        let lease_ttl = self.timeout(
            &format!("{path}.lease_ttl"),
            r.lease_ttl.as_ref(),
            Duration::from_secs(10),
        );
        if lease_ttl < MIN_LEASE_TTL || lease_ttl.subsec_nanos() != 0 {
            self.error(
                format!("{path}.lease_ttl"),
                "must be whole seconds, at least \"2s\"",
            );
        }
        let mut value = serde_json::json!({ "address": r.address.trim() });
        if r.weight.is_some() {
            value["weight"] = weight.into();
        }
        if let Some(z) = &r.zone {
            value["zone"] = z.clone().into();
        }
        if let Some(m) = &r.metadata {
            value["metadata"] = serde_json::Value::Object(m.clone());
        }
        (self.errors.len() == before).then(|| Registration {
            key: r.key.clone(),
            value: value.to_string(),
            lease_ttl,
        })
    }
}
