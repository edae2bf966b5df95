//! After `101 Switching Protocols`: a byte tunnel both ways (WebSocket and
//! any other upgraded protocol). Each direction is copied by its own future;
//! when one side finishes sending, the other side's write half is shut down
//! (half-close) and the other direction runs until it ends too.

use monoio::io::{AsyncReadRent, AsyncWriteRent, AsyncWriteRentExt, Split, Splitable};

use crate::upstream::UpstreamStream;

/// Tunnel `client` ↔ `upstream`. `pending` holds bytes the client sent after
/// its request head, to be delivered upstream first. Returns the bytes
/// copied (client → upstream, upstream → client).
pub async fn tunnel<S>(client: S, mut upstream: UpstreamStream, pending: Vec<u8>) -> (u64, u64)
where
    S: AsyncReadRent + AsyncWriteRent + Split,
{
    let mut sent = pending.len() as u64;
    if !pending.is_empty() {
        let (res, _) = upstream.write_all(pending).await;
        if res.is_err() {
            return (0, 0);
        }
    }
    let (mut client_read, mut client_write) = client.into_split();
    let (mut up_read, mut up_write) = upstream.into_split();
    let to_upstream = async {
        let n = monoio::io::copy(&mut client_read, &mut up_write)
            .await
            .unwrap_or(0);
        let _ = up_write.shutdown().await;
        n
    };
    let to_client = async {
        let n = monoio::io::copy(&mut up_read, &mut client_write)
            .await
            .unwrap_or(0);
        let _ = client_write.shutdown().await;
        n
    };
    let (a, b) = monoio::join!(to_upstream, to_client);
    sent += a;
    (sent, b)
}
