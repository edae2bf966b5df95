// h2 0.4 over monoio poll-io (readiness): h2c server, 200 "ok" per stream.
use monoio::io::IntoPollIo;
use bytes::Bytes;
fn main() {
    let addr = std::env::args().nth(1).unwrap_or("127.0.0.1:7003".into());
    let mut rt = monoio::RuntimeBuilder::<monoio::IoUringDriver>::new().enable_timer().build().unwrap();
    rt.block_on(async move {
        let l = monoio::net::TcpListener::bind(addr.as_str()).unwrap();
        println!("ready");
        loop {
            let (s, _) = l.accept().await.unwrap();
            s.set_nodelay(true).unwrap();
            monoio::spawn(async move {
                let io = s.into_poll_io().unwrap();
                let mut conn = match h2::server::handshake(io).await { Ok(c) => c, Err(_) => return };
                while let Some(r) = conn.accept().await {
                    let Ok((req, mut respond)) = r else { break };
                    monoio::spawn(async move {
                        drop(req);
                        let resp = http::Response::builder().status(200).header("content-type", "text/plain").body(()).unwrap();
                        if let Ok(mut send) = respond.send_response(resp, false) {
                            let _ = send.send_data(Bytes::from_static(b"ok"), true);
                        }
                    });
                }
            });
        }
    });
}
