//! Opening a new upstream connection: TCP connect with a timeout, the PROXY
//! protocol header when the cluster sends one, then the TLS handshake when
//! the cluster asks for it.

use std::net::SocketAddr;

use monoio::io::AsyncWriteRentExt;
use monoio::net::TcpStream;

use super::stream::UpstreamStream;
use crate::config::{ClusterConfig, Endpoint, ProxyVersion};
use crate::error::{ErrorKind, ProxyError};
use crate::http::proxy_protocol::{write_proxy_v1, write_proxy_v2};

/// Connect to `endpoint` of `cluster`. The connect timeout covers the TCP
/// connect, the PROXY header and the TLS handshake together. `proxy_addrs`
/// (source, destination) are what a PROXY header says, when the cluster
/// sends one (it precedes the TLS ClientHello).
pub async fn connect(
    cluster: &ClusterConfig,
    endpoint: &Endpoint,
    proxy_addrs: (SocketAddr, SocketAddr),
) -> Result<UpstreamStream, ProxyError> {
    let work = async {
        let mut tcp = TcpStream::connect_addr(endpoint.address)
            .await
            .map_err(|e| ProxyError::new(ErrorKind::ConnectFailed).with_cause(e))?;
        let _ = tcp.set_nodelay(true);
        // Upstream connections are pooled and reused: their operations
        // name a registered slot (`fixed_files`).
        tcp.register_fixed();
        if let Some(version) = cluster.send_proxy_protocol {
            let (src, dst) = proxy_addrs;
            let mut header = Vec::with_capacity(64);
            match version {
                ProxyVersion::V1 => write_proxy_v1(&mut header, src, dst),
                ProxyVersion::V2 => write_proxy_v2(&mut header, src, dst),
            }
            let (res, _) = tcp.write_all(header).await;
            res.map_err(|e| ProxyError::new(ErrorKind::ConnectFailed).with_cause(e))?;
        }
        match &cluster.tls {
            None => Ok(UpstreamStream::plain(tcp)),
            Some(tls) => {
                let fd = std::os::fd::AsRawFd::as_raw_fd(&tcp);
                let connector = monoio_rustls::TlsConnector::from(tls.config.clone());
                let stream = connector
                    .connect(tls.server_name.clone(), tcp)
                    .await
                    .map_err(|e| {
                        // Into the io::Error it wraps: its message names the
                        // cause (a certificate check, an alert), where the
                        // wrapper's own says only "io error".
                        ProxyError::new(ErrorKind::UpstreamTls).with_cause(std::io::Error::from(e))
                    })?;
                Ok(UpstreamStream::tls(stream, fd))
            }
        }
    };
    match monoio::time::timeout(cluster.connect_timeout, work).await {
        Ok(result) => result,
        Err(_) => Err(ProxyError::new(ErrorKind::ConnectTimeout)),
    }
}
