//! `[[cluster]]`.

use std::collections::HashMap;
use std::net::{SocketAddr, ToSocketAddrs};
use std::path::Path;
use std::time::Duration;

use super::super::file::*;
use super::super::source::Skipped;
use super::super::*;
use super::{defaults, Builder};

type EtcdMetadata = std::sync::Arc<serde_json::Map<String, serde_json::Value>>;
/// The endpoints read under an etcd prefix, and the key and metadata of each.
type EtcdListed = (Vec<EndpointFile>, Vec<(String, Option<EtcdMetadata>)>);

impl Builder<'_> {
    pub(super) fn clusters(
        &mut self,
        file: &[ClusterFile],
        skipped: &Skipped,
        etcd: Option<&Option<super::super::etcd::EtcdConfig>>,
    ) -> Vec<Option<ClusterConfig>> {
        let section_broken = skipped.section("cluster");
        let skipped = &skipped.clusters;
        if file.is_empty() && !section_broken {
            self.error("cluster", "at least one [[cluster]] is required");
        }
        let mut names: HashMap<&str, usize> = HashMap::new();
        let mut out = Vec::new();
        for (i, c) in file.iter().enumerate() {
            let path = format!("cluster[{i}]");
            self.unique_name(
                &mut names,
                &c.name,
                i,
                "cluster",
                &path,
                skipped.contains(&i),
            );
            if skipped.contains(&i) {
                out.push(None);
                continue;
            }
            let mut ok = true;
            // The endpoints: written here, or read from `endpoints_file`.
            let dns = c
                .dns
                .as_ref()
                .and_then(|d| self.dns(d, &format!("{path}.dns")));
            if c.dns.is_some() && (!c.endpoints.is_empty() || c.endpoints_file.is_some()) {
                self.error(
                    format!("{path}.dns"),
                    "give one of `endpoints`, `endpoints_file` and `dns`",
                );
                ok = false;
            }
            if c.etcd.is_some()
                && (!c.endpoints.is_empty() || c.endpoints_file.is_some() || c.dns.is_some())
            {
                self.error(
                    format!("{path}.etcd"),
                    "give one of `endpoints`, `endpoints_file`, `dns` and `etcd`",
                );
                ok = false;
            }
            // etcd: the key and metadata of each listed endpoint.
            let mut from_etcd: Option<Vec<(String, Option<EtcdMetadata>)>> = None;
            let (listed, endpoints_file, where_) = match &c.endpoints_file {
                // (Not read when the cluster is already refused.)
                None if c.etcd.is_some() && ok => {
                    let where_ = format!("{path}.etcd");
                    match self.etcd_endpoints(c, &where_, etcd) {
                        Some((listed, keys)) => {
                            from_etcd = Some(keys);
                            (listed, None, where_)
                        }
                        None => {
                            ok = false;
                            (Vec::new(), None, where_)
                        }
                    }
                }
                None if c.dns.is_some() => match &dns {
                    None => {
                        ok = false;
                        (Vec::new(), None, format!("{path}.dns"))
                    }
                    Some(q) => match super::super::dns::resolve(q) {
                        Ok((list, _)) => (
                            list.into_iter()
                                .map(|(addr, weight)| {
                                    EndpointFile::Weighted(WeightedEndpointFile {
                                        address: addr.to_string(),
                                        weight: Some(i64::from(weight)),
                                        zone: None,
                                    })
                                })
                                .collect(),
                            None,
                            format!("{path}.dns"),
                        ),
                        Err(m) => {
                            self.error(format!("{path}.dns"), m);
                            ok = false;
                            (Vec::new(), None, format!("{path}.dns"))
                        }
                    },
                },
                None => (c.endpoints.clone(), None, format!("{path}.endpoints")),
                Some(f) => {
                    let file = tls::resolve_path(&self.base_dir, f);
                    if !c.endpoints.is_empty() {
                        self.error(
                            format!("{path}.endpoints_file"),
                            "give `endpoints` or `endpoints_file`, not both",
                        );
                        ok = false;
                    }
                    match super::super::discovery::read_endpoints_file(&file) {
                        Ok(list) => (list, Some(file), format!("{path}.endpoints_file")),
                        Err(m) => {
                            self.error(format!("{path}.endpoints_file"), m);
                            ok = false;
                            (Vec::new(), Some(file), format!("{path}.endpoints_file"))
                        }
                    }
                }
            };
            if listed.is_empty() && ok {
                match &c.etcd {
                    Some(e) => self.error(
                        where_.clone(),
                        format!("no endpoint under the prefix {:?} in etcd", e.prefix),
                    ),
                    None => self.error(where_.clone(), "at least one endpoint is required"),
                }
                ok = false;
            }
            let mut endpoints = Vec::new();
            let mut first_host = None;
            for (j, e) in listed.iter().enumerate() {
                let epath = if endpoints_file.is_some() {
                    format!("{where_}: endpoint {}", j + 1)
                } else {
                    format!("{where_}[{j}]")
                };
                let weight = match e {
                    EndpointFile::Address(_) => 1,
                    EndpointFile::Weighted(w) => self.int_in(
                        &format!("{epath}.weight"),
                        w.weight,
                        1,
                        1,
                        MAX_ENDPOINT_WEIGHT,
                    ) as u32,
                };
                let text = e.address();
                let etcd_entry = from_etcd.as_ref().map(|k| &k[j]);
                match resolve_endpoint(text) {
                    Ok((address, host)) => {
                        if let Some((key, _)) = etcd_entry {
                            // Two keys, one address: the first one counts.
                            if endpoints.iter().any(|e: &Endpoint| e.address == address) {
                                super::super::etcd::store::skipped(
                                    key,
                                    &format!("{text} is listed under another key"),
                                );
                                continue;
                            }
                        }
                        if first_host.is_none() {
                            first_host = Some(host);
                        }
                        let zone = match e {
                            EndpointFile::Weighted(w) => w.zone.clone(),
                            EndpointFile::Address(_) => None,
                        };
                        endpoints.push(Endpoint {
                            address,
                            label: text.trim().to_owned(),
                            weight,
                            zone,
                            metadata: etcd_entry.and_then(|(_, m)| m.clone()),
                        });
                    }
                    // A discovered value must not take the cluster down.
                    Err(m) if etcd_entry.is_some() => {
                        let key = etcd_entry.map_or("", |(k, _)| k.as_str());
                        super::super::etcd::store::skipped(key, &m);
                    }
                    Err(m) => {
                        self.error(epath, m);
                        ok = false;
                    }
                }
            }
            if endpoints.is_empty() && ok {
                // Every value under the etcd prefix was skipped.
                self.error(where_.clone(), "no usable endpoint (see the warnings)");
                ok = false;
            }
            let (lb, hash_key, bounded_load) = self.lb_policy(c, &path);
            let connect_timeout = self.timeout(
                &format!("{path}.connect_timeout"),
                c.connect_timeout.as_ref(),
                defaults::CONNECT_TIMEOUT,
            );
            let idle_timeout = self.timeout(
                &format!("{path}.idle_timeout"),
                c.idle_timeout.as_ref(),
                defaults::CLUSTER_IDLE_TIMEOUT,
            );
            let max_idle_per_endpoint = self.int_in(
                &format!("{path}.max_idle_per_endpoint"),
                c.max_idle_per_endpoint,
                defaults::MAX_IDLE_PER_ENDPOINT as u64,
                0,
                u32::MAX as u64,
            ) as usize;
            let tls = match &c.tls {
                None => None,
                Some(t) => {
                    // The first endpoint was unusable (already reported):
                    // a placeholder host avoids a second, consequential
                    // "cannot derive server_name" error. The cluster is
                    // rejected anyway (`ok` is false).
                    let host = first_host
                        .as_deref()
                        .or(if ok { None } else { Some("invalid") });
                    match tls::upstream_tls(t, &format!("{path}.tls"), &self.base_dir, host) {
                        Ok(u) => Some(u),
                        Err(e) => {
                            self.extend(e);
                            ok = false;
                            None
                        }
                    }
                }
            };
            let tls_files = c.tls.as_ref().map(|t| cluster_tls_files(t, &self.base_dir));
            let send_proxy_protocol = match c.send_proxy_protocol.as_deref().map(str::trim) {
                None => None,
                Some("v1") => Some(ProxyVersion::V1),
                Some("v2") => Some(ProxyVersion::V2),
                Some(other) => {
                    self.error(
                        format!("{path}.send_proxy_protocol"),
                        format!(
                            "unknown PROXY protocol version {other:?}: expected \"v1\" or \"v2\""
                        ),
                    );
                    ok = false;
                    None
                }
            };
            let protocol = match c.protocol.as_deref().map(str::trim) {
                None | Some("http/1.1") => UpstreamProtocol::Http1,
                Some("h2") => UpstreamProtocol::H2,
                Some(other) => {
                    self.error(
                        format!("{path}.protocol"),
                        format!("unknown protocol {other:?}: expected \"http/1.1\" or \"h2\""),
                    );
                    ok = false;
                    UpstreamProtocol::Http1
                }
            };
            if protocol == UpstreamProtocol::H2 && send_proxy_protocol.is_some() {
                self.error(
                    format!("{path}.send_proxy_protocol"),
                    "cannot be combined with protocol = \"h2\" (an HTTP/2 connection carries many clients' requests)",
                );
                ok = false;
            }
            match (
                protocol,
                c.health_check.as_ref().map(|h| h.grpc_service.is_some()),
            ) {
                (UpstreamProtocol::H2, Some(false)) => {
                    self.error(
                        format!("{path}.health_check"),
                        "an HTTP check (path) speaks HTTP/1.1: a protocol = \"h2\" cluster needs grpc_service",
                    );
                    ok = false;
                }
                (UpstreamProtocol::Http1, Some(true)) => {
                    self.error(
                        format!("{path}.health_check.grpc_service"),
                        "gRPC checks need protocol = \"h2\" on the cluster",
                    );
                    ok = false;
                }
                _ => {}
            }
            // HTTP/2 over TLS is asked for by ALPN.
            let tls = tls.map(|mut t| {
                if protocol == UpstreamProtocol::H2 {
                    let mut c = (*t.config).clone();
                    c.alpn_protocols = vec![b"h2".to_vec()];
                    t.config = std::sync::Arc::new(c);
                }
                t
            });
            let health_check = c
                .health_check
                .as_ref()
                .and_then(|h| self.health_check(h, &format!("{path}.health_check")));
            let panic_threshold = match c.panic_threshold {
                None => 50.0,
                Some(p) if (0.0..=100.0).contains(&p) => p,
                Some(p) => {
                    self.error(
                        format!("{path}.panic_threshold"),
                        format!("must be a percentage, 0 to 100 (found {p})"),
                    );
                    50.0
                }
            };
            let outlier_detection = c
                .outlier_detection
                .as_ref()
                .and_then(|o| self.outlier(o, &format!("{path}.outlier_detection")));
            let retry_budget = {
                let b = c.retry_budget.clone().unwrap_or_default();
                let ratio = b.ratio.unwrap_or(0.2);
                let min = b.min_per_second.unwrap_or(10.0);
                if !(0.0..=10.0).contains(&ratio) {
                    self.error(
                        format!("{path}.retry_budget.ratio"),
                        format!("must be between 0 and 10 (found {ratio})"),
                    );
                }
                if !(0.0..=100_000.0).contains(&min) {
                    self.error(
                        format!("{path}.retry_budget.min_per_second"),
                        format!("must be between 0 and 100000 (found {min})"),
                    );
                }
                (ratio, min)
            };
            let breakers = c.circuit_breakers.clone().unwrap_or_default();
            let limit = |b: &mut Self, key: &str, v: Option<i64>| {
                v.map(|_| {
                    b.int_in(
                        &format!("{path}.circuit_breakers.{key}"),
                        v,
                        0,
                        0,
                        1_000_000,
                    ) as u32
                })
            };
            let max_requests = limit(self, "max_requests", breakers.max_requests);
            let max_retries = limit(self, "max_retries", breakers.max_retries);
            let max_connections = limit(self, "max_connections", breakers.max_connections);
            let max_pending = limit(self, "max_pending", breakers.max_pending);
            if max_pending.is_some() && max_connections.is_none() {
                self.error(
                    format!("{path}.circuit_breakers.max_pending"),
                    "only with max_connections (requests wait for a connection only under that limit)",
                );
            }
            if max_connections == Some(0) {
                self.error(
                    format!("{path}.circuit_breakers.max_connections"),
                    "must be at least 1",
                );
            }
            let prefer_zone = match &c.prefer_zone {
                None => {
                    if c.zone_min_healthy.is_some() {
                        self.error(format!("{path}.zone_min_healthy"), "only with prefer_zone");
                    }
                    None
                }
                Some(z) => {
                    let share = match c.zone_min_healthy {
                        None => 70.0,
                        Some(p) if (0.0..=100.0).contains(&p) => p,
                        Some(p) => {
                            self.error(
                                format!("{path}.zone_min_healthy"),
                                format!("must be a percentage, 0 to 100 (found {p})"),
                            );
                            70.0
                        }
                    };
                    // (Discovered endpoints come and go: a file without the
                    // zone just routes to every zone.)
                    if c.endpoints_file.is_none()
                        && c.etcd.is_none()
                        && !endpoints
                            .iter()
                            .any(|e| e.zone.as_deref() == Some(z.as_str()))
                        && ok
                    {
                        self.error(
                            format!("{path}.prefer_zone"),
                            format!("no endpoint of the cluster is in zone {z:?}"),
                        );
                    }
                    Some((z.clone(), share / 100.0))
                }
            };
            out.push(ok.then(|| ClusterConfig {
                name: c.name.clone(),
                protocol,
                endpoints,
                lb,
                hash_key,
                bounded_load,
                connect_timeout,
                idle_timeout,
                max_idle_per_endpoint,
                tls,
                tls_files,
                send_proxy_protocol,
                health_check,
                panic_threshold,
                outlier_detection,
                endpoints_file,
                retry_budget,
                max_requests,
                max_retries,
                max_connections,
                max_pending,
                prefer_zone,
                dns,
                etcd: c.etcd.as_ref().map(|e| e.prefix.clone()),
            }));
        }
        out
    }

    /// The endpoints under cluster `c`'s etcd prefix (`where_` is its
    /// path), with the key and metadata of each; `None` when something is
    /// wrong (reported).
    fn etcd_endpoints(
        &mut self,
        c: &ClusterFile,
        where_: &str,
        etcd: Option<&Option<super::super::etcd::EtcdConfig>>,
    ) -> Option<EtcdListed> {
        let prefix = &c.etcd.as_ref()?.prefix;
        if prefix.is_empty() {
            self.error(format!("{where_}.prefix"), "must not be empty");
            return None;
        }
        let client = match etcd {
            None => {
                self.error(where_, "needs an [etcd] section naming the etcd endpoints");
                return None;
            }
            // Broken [etcd]: already reported.
            Some(None) => return None,
            Some(Some(e)) => &e.client,
        };
        match super::super::etcd::store::endpoints(client, prefix) {
            Ok(list) => Some(
                list.into_iter()
                    .map(|(key, e)| {
                        (
                            EndpointFile::Weighted(WeightedEndpointFile {
                                address: e.address,
                                weight: Some(i64::from(e.weight)),
                                zone: e.zone,
                            }),
                            (key, e.metadata.map(std::sync::Arc::new)),
                        )
                    })
                    .unzip(),
            ),
            Err(m) => {
                self.error(where_, m);
                None
            }
        }
    }

    /// `dns` of a cluster (at `path`).
    fn dns(&mut self, d: &DnsFile, path: &str) -> Option<super::super::dns::DnsQuery> {
        use super::super::dns::{system_resolver, DnsQuery, Record};
        let before = self.errors.len();
        let record = match d.record.as_deref().map(str::to_ascii_uppercase).as_deref() {
            None | Some("A") => Record::A,
            Some("AAAA") => Record::Aaaa,
            Some("SRV") => Record::Srv,
            Some(other) => {
                self.error(
                    format!("{path}.record"),
                    format!("{other:?}: expected \"A\", \"AAAA\" or \"SRV\""),
                );
                Record::A
            }
        };
        let port = match (d.port, record) {
            (Some(p), _) if (1..=65535).contains(&p) => p as u16,
            (Some(p), _) => {
                self.error(format!("{path}.port"), format!("{p} is not a port"));
                0
            }
            (None, Record::Srv) => 0,
            (None, _) => {
                self.error(format!("{path}.port"), "required for A and AAAA records");
                0
            }
        };
        if d.name.trim().is_empty() || d.name.len() > 253 {
            self.error(format!("{path}.name"), "must be a DNS name");
        }
        let resolver = match &d.resolver {
            Some(r) => match r.parse::<SocketAddr>() {
                Ok(a) => Some(a),
                Err(_) => {
                    self.error(
                        format!("{path}.resolver"),
                        format!("{r:?} is not \"ip:port\""),
                    );
                    None
                }
            },
            None => {
                let found = system_resolver();
                if found.is_none() {
                    self.error(
                        format!("{path}.resolver"),
                        "no nameserver in /etc/resolv.conf: give `resolver`",
                    );
                }
                found
            }
        };
        let min_ttl = self.duration(
            &format!("{path}.min_ttl"),
            d.min_ttl.as_ref(),
            Duration::from_secs(1),
        );
        let max_ttl = self.timeout(
            &format!("{path}.max_ttl"),
            d.max_ttl.as_ref(),
            Duration::from_secs(300),
        );
        if max_ttl < min_ttl {
            self.error(
                format!("{path}.max_ttl"),
                "must not be shorter than min_ttl",
            );
        }
        let timeout = self.timeout(
            &format!("{path}.timeout"),
            d.timeout.as_ref(),
            Duration::from_secs(2),
        );
        (self.errors.len() == before).then(|| DnsQuery {
            name: d.name.trim().to_owned(),
            port,
            record,
            resolver: resolver.expect("checked above"),
            min_ttl: min_ttl.max(Duration::from_millis(100)),
            max_ttl,
            timeout,
        })
    }

    /// `outlier_detection` of a cluster (at `path`).
    fn outlier(&mut self, o: &OutlierFile, path: &str) -> Option<OutlierDetection> {
        let before = self.errors.len();
        let consecutive_5xx = self.int_in(
            &format!("{path}.consecutive_5xx"),
            o.consecutive_5xx,
            5,
            0,
            10_000,
        ) as u32;
        let consecutive_gateway_errors = self.int_in(
            &format!("{path}.consecutive_gateway_errors"),
            o.consecutive_gateway_errors,
            5,
            0,
            10_000,
        ) as u32;
        let base_ejection_time = self.timeout(
            &format!("{path}.base_ejection_time"),
            o.base_ejection_time.as_ref(),
            Duration::from_secs(30),
        );
        let max_ejection_time = self.timeout(
            &format!("{path}.max_ejection_time"),
            o.max_ejection_time.as_ref(),
            Duration::from_secs(300),
        );
        if max_ejection_time < base_ejection_time {
            self.error(
                format!("{path}.max_ejection_time"),
                "must not be shorter than base_ejection_time",
            );
        }
        let max_ejection_percent = match o.max_ejection_percent {
            None => 10.0,
            Some(p) if (0.0..=100.0).contains(&p) => p,
            Some(p) => {
                self.error(
                    format!("{path}.max_ejection_percent"),
                    format!("must be a percentage, 0 to 100 (found {p})"),
                );
                10.0
            }
        };
        let interval = self.timeout(
            &format!("{path}.interval"),
            o.interval.as_ref(),
            Duration::from_secs(10),
        );
        let success_rate_minimum_hosts = self.int_in(
            &format!("{path}.success_rate_minimum_hosts"),
            o.success_rate_minimum_hosts,
            5,
            0,
            10_000,
        ) as u32;
        let success_rate_request_volume = self.int_in(
            &format!("{path}.success_rate_request_volume"),
            o.success_rate_request_volume,
            100,
            1,
            10_000_000,
        ) as u32;
        let success_rate_stdev_factor = match o.success_rate_stdev_factor {
            None => 1.9,
            Some(f) if f > 0.0 && f <= 10.0 => f,
            Some(f) => {
                self.error(
                    format!("{path}.success_rate_stdev_factor"),
                    format!("must be above 0 and at most 10 (found {f})"),
                );
                1.9
            }
        };
        (self.errors.len() == before).then_some(OutlierDetection {
            consecutive_5xx,
            consecutive_gateway_errors,
            base_ejection_time,
            max_ejection_time,
            max_ejection_percent,
            interval,
            success_rate_minimum_hosts,
            success_rate_request_volume,
            success_rate_stdev_factor,
        })
    }

    /// `health_check` of a cluster (at `path`).
    fn health_check(&mut self, h: &HealthCheckFile, path: &str) -> Option<HealthCheck> {
        let before = self.errors.len();
        if h.grpc_service.is_some() {
            if !h.path.is_empty() {
                self.error(
                    format!("{path}.path"),
                    "a gRPC check (grpc_service) has no path",
                );
            }
        } else if !h.path.starts_with('/')
            || h.path
                .bytes()
                .any(|b| !(0x21..0x7f).contains(&b) || b == b'#')
        {
            self.error(
                format!("{path}.path"),
                format!(
                    "{:?} is not a request path (\"/...\", visible ASCII without #)",
                    h.path
                ),
            );
        }
        if let Some(host) = &h.host {
            if host.is_empty() || host.bytes().any(|b| !(0x21..0x7f).contains(&b)) {
                self.error(format!("{path}.host"), format!("{host:?} is not a host"));
            }
        }
        let interval = self.timeout(
            &format!("{path}.interval"),
            h.interval.as_ref(),
            Duration::from_secs(5),
        );
        let jitter = self.duration(&format!("{path}.jitter"), h.jitter.as_ref(), interval / 10);
        let timeout = self.timeout(
            &format!("{path}.timeout"),
            h.timeout.as_ref(),
            Duration::from_secs(2),
        );
        let healthy_threshold = self.int_in(
            &format!("{path}.healthy_threshold"),
            h.healthy_threshold,
            2,
            1,
            100,
        ) as u32;
        let unhealthy_threshold = self.int_in(
            &format!("{path}.unhealthy_threshold"),
            h.unhealthy_threshold,
            3,
            1,
            100,
        ) as u32;
        let mut expected = Vec::new();
        match &h.expected_statuses {
            None => expected.push((200, 399)),
            Some(list) if list.is_empty() => self.error(
                format!("{path}.expected_statuses"),
                "must list at least one status or range",
            ),
            Some(list) => {
                for (i, s) in list.iter().enumerate() {
                    let parsed = match s.trim().split_once('-') {
                        Some((a, b)) => a
                            .trim()
                            .parse::<u16>()
                            .ok()
                            .zip(b.trim().parse::<u16>().ok()),
                        None => s.trim().parse::<u16>().ok().map(|a| (a, a)),
                    };
                    match parsed {
                        Some((a, b)) if (100..=599).contains(&a) && (a..=599).contains(&b) => {
                            expected.push((a, b))
                        }
                        _ => self.error(
                            format!("{path}.expected_statuses[{i}]"),
                            format!("{s:?} is not a status or a range like \"200-299\""),
                        ),
                    }
                }
            }
        }
        (self.errors.len() == before).then(|| HealthCheck {
            path: h.path.clone(),
            grpc_service: h.grpc_service.clone(),
            host: h.host.clone(),
            interval,
            jitter,
            timeout,
            healthy_threshold,
            unhealthy_threshold,
            expected,
        })
    }
}

/// Largest `weight` of an endpoint (a ring of 100 points per unit of
/// weight stays small).
const MAX_ENDPOINT_WEIGHT: u64 = 1000;

impl Builder<'_> {
    /// `lb`, `hash_key` and `bounded_load` of cluster `c` (at `path`).
    fn lb_policy(
        &mut self,
        c: &ClusterFile,
        path: &str,
    ) -> (LbPolicy, Option<HashKey>, Option<f64>) {
        let name = c.lb.as_deref().map_or("round_robin", str::trim);
        let lb = match LbPolicy::ALL.iter().find(|(n, _)| *n == name) {
            Some(&(_, p)) => p,
            None => {
                let names: Vec<String> = LbPolicy::ALL
                    .iter()
                    .map(|(n, _)| format!("{n:?}"))
                    .collect();
                self.error(
                    format!("{path}.lb"),
                    format!(
                        "unknown load-balancing policy {name:?}: expected one of {}",
                        names.join(", ")
                    ),
                );
                LbPolicy::RoundRobin
            }
        };
        let hash_key = c.hash_key.as_ref().and_then(|k| {
            let mut keys = Vec::new();
            if let Some(h) = &k.header {
                keys.push(HashKey::Header(h.trim().to_ascii_lowercase()));
            }
            if let Some(n) = &k.cookie {
                keys.push(HashKey::Cookie(n.trim().to_owned()));
            }
            if k.client_ip == Some(true) {
                keys.push(HashKey::ClientIp);
            }
            if k.path == Some(true) {
                keys.push(HashKey::Path);
            }
            if let Some(q) = &k.query {
                keys.push(HashKey::Query(q.trim().to_owned()));
            }
            let empty = matches!(
                keys.first(),
                Some(HashKey::Header(s) | HashKey::Cookie(s) | HashKey::Query(s)) if s.is_empty()
            );
            if keys.len() != 1 || empty {
                self.error(
                    format!("{path}.hash_key"),
                    "needs exactly one non-empty key: { header = \"name\" }, { cookie = \"name\" }, \
                     { client_ip = true }, { path = true } or { query = \"name\" }",
                );
                return None;
            }
            keys.pop()
        });
        if lb.is_hashing() && c.hash_key.is_none() {
            self.error(
                format!("{path}.hash_key"),
                format!("lb = {:?} needs a hash_key", lb.name()),
            );
        }
        if !lb.is_hashing() && c.hash_key.is_some() {
            self.error(
                format!("{path}.hash_key"),
                "only used with lb = \"ring_hash\" or \"maglev\"",
            );
        }
        let bounded_load = match c.bounded_load {
            None => None,
            Some(_) if !lb.is_hashing() => {
                self.error(
                    format!("{path}.bounded_load"),
                    "only used with lb = \"ring_hash\" or \"maglev\"",
                );
                None
            }
            Some(f) if f.is_finite() && f > 1.0 && f <= 100.0 => Some(f),
            Some(f) => {
                self.error(
                    format!("{path}.bounded_load"),
                    format!("must be a number above 1 and at most 100, e.g. 1.25 (found {f})"),
                );
                None
            }
        };
        (lb, hash_key, bounded_load)
    }
}

/// The resolved TLS file paths of a cluster (for display only).
pub(super) fn cluster_tls_files(file: &ClusterTlsFile, base_dir: &Path) -> ClusterTlsFiles {
    let mut files = ClusterTlsFiles {
        ca: file.ca.as_deref().map(|p| tls::resolve_path(base_dir, p)),
        cert: file.cert.as_deref().map(|p| tls::resolve_path(base_dir, p)),
        key: file.key.as_deref().map(|p| tls::resolve_path(base_dir, p)),
        insecure_skip_verify: file.insecure_skip_verify,
        spiffe: file.spiffe_id.clone().or_else(|| {
            file.spiffe_trust_domain
                .as_ref()
                .map(|t| format!("trust domain {t}"))
        }),
        fingerprint: 0,
    };
    files.fingerprint = tls_fingerprint(&files);
    files
}

/// A hash of the contents of the cluster's TLS files: pooled connections
/// made under other contents (a certificate or CA rotated in place) are not
/// carried over a reload.
fn tls_fingerprint(files: &ClusterTlsFiles) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    for p in [&files.ca, &files.cert, &files.key].into_iter().flatten() {
        std::fs::read(p).unwrap_or_default().hash(&mut h);
    }
    h.finish()
}

/// Resolve `ip:port` or `host:port` (first address) and return it with the
/// host part as written (without IPv6 brackets).
pub fn resolve_endpoint(text: &str) -> Result<(SocketAddr, String), String> {
    let text = text.trim();
    if let Ok(a) = text.parse::<SocketAddr>() {
        return Ok((a, a.ip().to_string()));
    }
    let forms =
        "expected \"ip:port\" or \"host:port\", e.g. \"127.0.0.1:9000\" or \"app.internal:80\"";
    let Some((host, port)) = text.rsplit_once(':') else {
        return Err(format!("invalid endpoint {text:?}: missing port; {forms}"));
    };
    if host.is_empty() {
        return Err(format!("invalid endpoint {text:?}: missing host; {forms}"));
    }
    if host.contains(':') {
        return Err(format!(
            "invalid endpoint {text:?}: IPv6 addresses need brackets, e.g. \"[::1]:9000\""
        ));
    }
    let Ok(port) = port.parse::<u16>() else {
        return Err(format!(
            "invalid endpoint {text:?}: bad port {port:?}; {forms}"
        ));
    };
    if !tls::is_dns_name(host) {
        return Err(format!(
            "invalid endpoint {text:?}: bad host name {host:?}; {forms}"
        ));
    }
    match (host, port).to_socket_addrs() {
        Ok(mut addrs) => match addrs.next() {
            Some(a) => Ok((a, host.to_owned())),
            None => Err(format!("cannot resolve {host:?}: no addresses")),
        },
        Err(e) => Err(format!("cannot resolve {host:?}: {e}")),
    }
}
