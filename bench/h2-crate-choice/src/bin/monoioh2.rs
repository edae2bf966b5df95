// monoio-http 0.3's h2 fork: h2c server, 200 "ok" per stream.
use bytes::Bytes;
fn main() {
    let addr = std::env::args().nth(1).unwrap_or("127.0.0.1:7002".into());
    let mut rt = monoio::RuntimeBuilder::<monoio::IoUringDriver>::new().enable_timer().build().unwrap();
    rt.block_on(async move {
        let l = monoio::net::TcpListener::bind(addr.as_str()).unwrap();
        println!("ready");
        loop {
            let (s, _) = l.accept().await.unwrap();
            s.set_nodelay(true).unwrap();
            monoio::spawn(async move {
                let mut conn = match monoio_http::h2::server::handshake(s).await { Ok(c) => c, Err(_) => return };
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
