//! One active check: connect to the endpoint the way requests do (the
//! cluster's TLS and PROXY settings), `GET path` with `Connection: close`,
//! and read the status line. Bounded by the check's `timeout`.

use std::net::SocketAddr;

use monoio::io::{AsyncReadRent, AsyncWriteRentExt};

use crate::config::{ClusterConfig, Endpoint};
use crate::upstream::connect;

/// The status the endpoint answered, or why there was none.
pub async fn run(cluster: &ClusterConfig, endpoint: &Endpoint) -> Result<u16, String> {
    let hc = cluster.health_check.as_ref().ok_or("no health_check")?;
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
    fn status_lines() {
        assert_eq!(status_of(b"HTTP/1.1 200 OK\r\n"), Ok(Some(200)));
        assert_eq!(status_of(b"HTTP/1.0 503 x\r\nA: b"), Ok(Some(503)));
        assert_eq!(status_of(b"HTTP/1.1 20"), Ok(None));
        assert!(status_of(b"SSH-2.0-x\r\n").is_err());
        assert!(status_of(b"HTTP/1.1 999 x\r\n").is_err());
    }
}
