//! One active check: connect to the endpoint the way requests do (the
//! cluster's TLS and PROXY settings), `GET path` with `Connection: close`,
//! and read the status line; or, with `grpc_service`, a
//! `grpc.health.v1.Health/Check` call over HTTP/2 (SERVING counts as 200,
//! any other answer or status as 503). Bounded by the check's `timeout`.

use std::net::SocketAddr;

use monoio::io::{AsyncReadRent, AsyncWriteRentExt};

use crate::config::{ClusterConfig, Endpoint};
use crate::upstream::connect;

/// The status the endpoint answered, or why there was none.
pub async fn run(cluster: &ClusterConfig, endpoint: &Endpoint) -> Result<u16, String> {
    let hc = cluster.health_check.as_ref().ok_or("no health_check")?;
    if let Some(service) = &hc.grpc_service {
        return match monoio::time::timeout(hc.timeout, grpc_check(cluster, endpoint, service)).await
        {
            Ok(r) => r,
            Err(_) => Err(format!("timeout after {:?}", hc.timeout)),
        };
    }
    let work = async {
        // A PROXY header, when the cluster sends them, names this process
        // as both ends (there is no client).
        let local: SocketAddr = ([127, 0, 0, 1], 0).into();
        let mut up = connect(cluster, endpoint, (local, local))
            .await
            .map_err(|e| e.to_string())?;
        let host = hc.host.as_deref().unwrap_or(&endpoint.label);
        let req = format!(
            "GET {} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: ringway-health/{}\r\nAccept: */*\r\nConnection: close\r\n\r\n",
            hc.path,
            env!("CARGO_PKG_VERSION"),
        );
        let (res, _) = up.write_all(req.into_bytes()).await;
        res.map_err(|e| format!("send: {e}"))?;
        let mut got: Vec<u8> = Vec::with_capacity(512);
        loop {
            if let Some(status) = status_of(&got)? {
                return Ok(status);
            }
            if got.len() > 8192 {
                return Err("no status line in 8 KiB".into());
            }
            let buf = Vec::with_capacity(1024);
            let (res, buf) = up.read(buf).await;
            match res {
                Ok(0) => return Err("closed before a status line".into()),
                Ok(_) => got.extend_from_slice(&buf),
                Err(e) => return Err(format!("read: {e}")),
            }
        }
    };
    match monoio::time::timeout(hc.timeout, work).await {
        Ok(r) => r,
        Err(_) => Err(format!("timeout after {:?}", hc.timeout)),
    }
}

/// `grpc.health.v1.Health/Check` for `service`: 200 when SERVING, 503 for
/// any other serving status or a non-OK `grpc-status`.
async fn grpc_check(
    cluster: &ClusterConfig,
    endpoint: &Endpoint,
    service: &str,
) -> Result<u16, String> {
    let local: SocketAddr = ([127, 0, 0, 1], 0).into();
    let up = connect(cluster, endpoint, (local, local))
        .await
        .map_err(|e| e.to_string())?;
    let (send, conn) = h2::client::handshake(monoio_compat::StreamWrapper::new(up))
        .await
        .map_err(|e| format!("HTTP/2 handshake: {e}"))?;
    monoio::spawn(async move {
        let _ = conn.await;
    });
    let hc = cluster.health_check.as_ref().ok_or("no health_check")?;
    let scheme = if cluster.tls.is_some() {
        "https"
    } else {
        "http"
    };
    let authority = hc.host.as_deref().unwrap_or(&endpoint.label);
    let req = http::Request::builder()
        .method("POST")
        .uri(format!(
            "{scheme}://{authority}/grpc.health.v1.Health/Check"
        ))
        .header("content-type", "application/grpc")
        .header("te", "trailers")
        .header(
            "user-agent",
            concat!("ringway-health/", env!("CARGO_PKG_VERSION")),
        )
        .body(())
        .map_err(|e| e.to_string())?;
    let mut send = send.ready().await.map_err(|e| format!("HTTP/2: {e}"))?;
    let (response, mut stream) = send
        .send_request(req, false)
        .map_err(|e| format!("HTTP/2: {e}"))?;
    stream
        .send_data(bytes::Bytes::from(health_request(service)), true)
        .map_err(|e| format!("HTTP/2: {e}"))?;
    let resp = response.await.map_err(|e| format!("HTTP/2: {e}"))?;
    if resp.status() != http::StatusCode::OK {
        return Ok(resp.status().as_u16());
    }
    let grpc_ok = |h: &http::HeaderMap| h.get("grpc-status").map(|v| v == "0");
    if grpc_ok(resp.headers()) == Some(false) {
        return Ok(503); // a trailers-only error (e.g. NOT_FOUND)
    }
    let mut body = resp.into_body();
    let mut data = Vec::new();
    while let Some(chunk) = body.data().await {
        let chunk = chunk.map_err(|e| format!("HTTP/2: {e}"))?;
        let _ = body.flow_control().release_capacity(chunk.len());
        data.extend_from_slice(&chunk);
        if data.len() > 4096 {
            return Err("health answer over 4 KiB".into());
        }
    }
    let trailers = body.trailers().await.map_err(|e| format!("HTTP/2: {e}"))?;
    if trailers.as_ref().and_then(grpc_ok) != Some(true) {
        return Ok(503);
    }
    Ok(if serving_status(&data) == Some(1) {
        200
    } else {
        503
    })
}

/// A `HealthCheckRequest { service }` as one gRPC message (uncompressed
/// flag, length, protobuf field 1).
fn health_request(service: &str) -> Vec<u8> {
    let mut msg = Vec::with_capacity(service.len() + 3);
    if !service.is_empty() {
        msg.push(0x0a); // field 1, length-delimited
        let mut n = service.len();
        while n >= 0x80 {
            msg.push((n as u8) | 0x80);
            n >>= 7;
        }
        msg.push(n as u8);
        msg.extend_from_slice(service.as_bytes());
    }
    let mut out = Vec::with_capacity(5 + msg.len());
    out.push(0);
    out.extend_from_slice(&(msg.len() as u32).to_be_bytes());
    out.extend_from_slice(&msg);
    out
}

/// The `status` field of a `HealthCheckResponse` message (absent: 0,
/// UNKNOWN); `None` when the message is malformed.
fn serving_status(data: &[u8]) -> Option<u64> {
    let len = u32::from_be_bytes(data.get(1..5)?.try_into().ok()?) as usize;
    if data.first() != Some(&0) {
        return None; // compressed
    }
    let mut msg = data.get(5..5 + len)?;
    let mut status = 0;
    while let Some((&tag, rest)) = msg.split_first() {
        let (value, rest) = varint(rest)?;
        match tag {
            0x08 => status = value,
            _ => return None,
        }
        msg = rest;
    }
    Some(status)
}

fn varint(mut b: &[u8]) -> Option<(u64, &[u8])> {
    let mut v = 0u64;
    for shift in (0..64).step_by(7) {
        let (&byte, rest) = b.split_first()?;
        v |= u64::from(byte & 0x7f) << shift;
        b = rest;
        if byte & 0x80 == 0 {
            return Some((v, b));
        }
    }
    None
}

/// The status code once a whole status line is in `got`.
fn status_of(got: &[u8]) -> Result<Option<u16>, String> {
    let Some(end) = got.windows(2).position(|w| w == b"\r\n") else {
        return Ok(None);
    };
    let line = &got[..end];
    let code = line
        .strip_prefix(b"HTTP/1.1 ")
        .or_else(|| line.strip_prefix(b"HTTP/1.0 "))
        .and_then(|rest| rest.get(..3))
        .and_then(|c| std::str::from_utf8(c).ok())
        .and_then(|c| c.parse::<u16>().ok())
        .filter(|c| (100..600).contains(c))
        .ok_or_else(|| format!("bad status line {:?}", String::from_utf8_lossy(line)))?;
    Ok(Some(code))
}

#[cfg(test)]
mod tests {
    use super::status_of;

    #[test]
    fn grpc_health_messages() {
        assert_eq!(super::health_request(""), vec![0, 0, 0, 0, 0]);
        assert_eq!(
            super::health_request("ab"),
            vec![0, 0, 0, 0, 4, 0x0a, 2, b'a', b'b']
        );
        assert_eq!(super::serving_status(&[0, 0, 0, 0, 2, 0x08, 1]), Some(1));
        assert_eq!(super::serving_status(&[0, 0, 0, 0, 2, 0x08, 2]), Some(2));
        assert_eq!(super::serving_status(&[0, 0, 0, 0, 0]), Some(0));
        assert_eq!(super::serving_status(&[1, 0, 0, 0, 0]), None);
        assert_eq!(super::serving_status(&[0, 0, 0, 0, 5, 0x08]), None);
    }

    #[test]
    fn status_lines() {
        assert_eq!(status_of(b"HTTP/1.1 200 OK\r\n"), Ok(Some(200)));
        assert_eq!(status_of(b"HTTP/1.0 503 x\r\nA: b"), Ok(Some(503)));
        assert_eq!(status_of(b"HTTP/1.1 20"), Ok(None));
        assert!(status_of(b"SSH-2.0-x\r\n").is_err());
        assert!(status_of(b"HTTP/1.1 999 x\r\n").is_err());
    }
}
