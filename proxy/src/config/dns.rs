//! DNS discovery: `dns = { name = "orders.svc", port = 8080 }` on a cluster
//! takes its endpoints from A, AAAA or SRV records, resolved with every
//! configuration build and again when their TTL runs out
//! (`server::discovery`; a changed answer is applied like a reload).
//!
//! A small blocking client (UDP, one query, `timeout`; messages encoded and
//! decoded with hickory-proto), used by the build and the discovery thread
//! only, never by a worker. The resolver is `resolver`, else the first
//! `nameserver` of `/etc/resolv.conf`.

use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::str::FromStr;
use std::time::{Duration, Instant};

use hickory_proto::op::{Message, MessageType, OpCode, Query, ResponseCode};
use hickory_proto::rr::{Name, RData, RecordType};

/// What a cluster's `dns` asks.
#[derive(Debug, Clone, PartialEq)]
pub struct DnsQuery {
    pub name: String,
    /// A / AAAA: the port of every endpoint; SRV: from the records.
    pub port: u16,
    pub record: Record,
    pub resolver: SocketAddr,
    pub min_ttl: Duration,
    pub max_ttl: Duration,
    pub timeout: Duration,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Record {
    A,
    Aaaa,
    Srv,
}

/// One resolved endpoint: address and weight (SRV weight, else 1).
pub type Resolved = (SocketAddr, u32);

/// Resolve `q`: the endpoints (sorted, without repeats) and how long the
/// answer may be kept (the smallest TTL, within `min_ttl`..=`max_ttl`).
pub fn resolve(q: &DnsQuery) -> Result<(Vec<Resolved>, Duration), String> {
    let deadline = Instant::now() + q.timeout;
    let (mut out, ttl) = match q.record {
        Record::A | Record::Aaaa => {
            let (ips, ttl) = lookup_ips(q, &q.name, deadline)?;
            (
                ips.into_iter()
                    .map(|ip| ((ip, q.port).into(), 1))
                    .collect::<Vec<_>>(),
                ttl,
            )
        }
        Record::Srv => {
            let m = exchange(q, &q.name, RecordType::SRV, deadline)?;
            let mut ttl = u32::MAX;
            let mut out = Vec::new();
            for rec in &m.answers {
                if let RData::SRV(srv) = &rec.data {
                    ttl = ttl.min(rec.ttl);
                    let target = srv.target.to_utf8();
                    // Addresses given alongside, else asked for.
                    let mut ips: Vec<IpAddr> = m
                        .additionals
                        .iter()
                        .filter(|a| a.name.to_utf8().eq_ignore_ascii_case(&target))
                        .filter_map(|a| match &a.data {
                            RData::A(v4) => Some(IpAddr::V4(v4.0)),
                            RData::AAAA(v6) => Some(IpAddr::V6(v6.0)),
                            _ => None,
                        })
                        .collect();
                    if ips.is_empty() {
                        let (found, t) = lookup_ips(q, &target, deadline)?;
                        ttl = ttl.min(t.as_secs() as u32);
                        ips = found;
                    }
                    let weight = u32::from(srv.weight).clamp(1, 1000);
                    out.extend(ips.into_iter().map(|ip| ((ip, srv.port).into(), weight)));
                }
            }
            (out, Duration::from_secs(u64::from(ttl)))
        }
    };
    out.sort();
    out.dedup_by_key(|e| e.0);
    if out.is_empty() {
        return Err(format!("{}: no {:?} records", q.name, q.record));
    }
    Ok((out, ttl.clamp(q.min_ttl, q.max_ttl)))
}

fn lookup_ips(
    q: &DnsQuery,
    name: &str,
    deadline: Instant,
) -> Result<(Vec<IpAddr>, Duration), String> {
    let rtype = match q.record {
        Record::Aaaa => RecordType::AAAA,
        _ => RecordType::A,
    };
    let m = exchange(q, name, rtype, deadline)?;
    let mut ttl = u32::MAX;
    let ips: Vec<IpAddr> = m
        .answers
        .iter()
        .filter_map(|r| {
            let ip = match &r.data {
                RData::A(v4) => IpAddr::V4(v4.0),
                RData::AAAA(v6) => IpAddr::V6(v6.0),
                _ => return None,
            };
            ttl = ttl.min(r.ttl);
            Some(ip)
        })
        .collect();
    Ok((ips, Duration::from_secs(u64::from(ttl))))
}

/// One query and its answer over UDP.
fn exchange(
    q: &DnsQuery,
    name: &str,
    rtype: RecordType,
    deadline: Instant,
) -> Result<Message, String> {
    let fqdn = if name.ends_with('.') {
        name.to_owned()
    } else {
        format!("{name}.")
    };
    let qname = Name::from_str(&fqdn).map_err(|e| format!("{name:?}: {e}"))?;
    let id = (Instant::now().elapsed().subsec_nanos() as u16) ^ (std::process::id() as u16);
    let mut msg = Message::new(id, MessageType::Query, OpCode::Query);
    msg.metadata.recursion_desired = true;
    msg.add_query(Query::query(qname, rtype));
    let bytes = msg.to_vec().map_err(|e| e.to_string())?;
    let local: SocketAddr = if q.resolver.is_ipv4() {
        ([0, 0, 0, 0], 0).into()
    } else {
        (std::net::Ipv6Addr::UNSPECIFIED, 0).into()
    };
    let sock = UdpSocket::bind(local).map_err(|e| e.to_string())?;
    sock.connect(q.resolver)
        .map_err(|e| format!("resolver {}: {e}", q.resolver))?;
    sock.send(&bytes)
        .map_err(|e| format!("resolver {}: {e}", q.resolver))?;
    let mut buf = [0u8; 4096];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(format!(
                "resolver {}: no answer for {name} in time",
                q.resolver
            ));
        }
        sock.set_read_timeout(Some(left))
            .map_err(|e| e.to_string())?;
        let n = sock
            .recv(&mut buf)
            .map_err(|e| format!("resolver {}: {e}", q.resolver))?;
        let Ok(answer) = Message::from_vec(&buf[..n]) else {
            continue;
        };
        if answer.metadata.id != id {
            continue;
        }
        if answer.metadata.response_code != ResponseCode::NoError {
            return Err(format!(
                "resolver {}: {name}: {}",
                q.resolver, answer.metadata.response_code
            ));
        }
        return Ok(answer);
    }
}

/// The first `nameserver` of `/etc/resolv.conf`, port 53.
pub fn system_resolver() -> Option<SocketAddr> {
    let text = std::fs::read_to_string("/etc/resolv.conf").ok()?;
    text.lines()
        .filter_map(|l| l.trim().strip_prefix("nameserver"))
        .find_map(|ip| ip.trim().parse::<IpAddr>().ok())
        .map(|ip| (ip, 53).into())
}
