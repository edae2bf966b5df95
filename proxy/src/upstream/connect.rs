//! Opening a new upstream connection: TCP connect with a timeout, then the
//! TLS handshake when the cluster asks for it.

use monoio::net::TcpStream;

use super::stream::UpstreamStream;
use crate::config::{ClusterConfig, Endpoint};
use crate::error::{ErrorKind, ProxyError};

/// Connect to `endpoint` of `cluster`. The connect timeout covers the TCP
/// connect and the TLS handshake together.
pub async fn connect(
    cluster: &ClusterConfig,
    endpoint: &Endpoint,
) -> Result<UpstreamStream, ProxyError> {
    let work = async {
        let tcp = TcpStream::connect_addr(endpoint.address)
            .await
            .map_err(|e| ProxyError::new(ErrorKind::ConnectFailed).with_cause(e))?;
        let _ = tcp.set_nodelay(true);
        match &cluster.tls {
            None => Ok(UpstreamStream::Plain(tcp)),
            Some(tls) => {
                let fd = std::os::fd::AsRawFd::as_raw_fd(&tcp);
                let connector = monoio_rustls::TlsConnector::from(tls.config.clone());
                let stream = connector
                    .connect(tls.server_name.clone(), tcp)
                    .await
                    .map_err(|e| {
                        ProxyError::new(ErrorKind::UpstreamTls)
                            .with_cause(std::io::Error::other(e.to_string()))
                    })?;
                Ok(UpstreamStream::Tls(Box::new(stream), fd))
            }
        }
    };
    match monoio::time::timeout(cluster.connect_timeout, work).await {
        Ok(result) => result,
        Err(_) => Err(ProxyError::new(ErrorKind::ConnectTimeout)),
    }
}
