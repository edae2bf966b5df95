//! gRPC through ringway, both sides real: tonic's `grpc.health.v1` server
//! behind a `protocol = "h2"` cluster, tonic's client in front of an h2
//! listener. Unary calls, a status carried in a trailers-only answer, and a
//! server stream whose messages arrive one by one as the server sends them.
//! (tonic's tokio runtime runs in this test process: it is a peer.)

use std::net::SocketAddr;
use std::time::Duration;

use ringway_tests::config::{q, Config};
use ringway_tests::dir::TestDir;
use ringway_tests::proxy::Proxy;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::server::HealthReporter;

struct GrpcServer {
    addr: SocketAddr,
    reporter: HealthReporter,
    rt: tokio::runtime::Runtime,
}

fn grpc_server() -> GrpcServer {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let listener = rt
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    let addr = listener.local_addr().unwrap();
    let (reporter, service) = tonic_health::server::health_reporter();
    rt.block_on(reporter.set_service_status("orders", tonic_health::ServingStatus::Serving));
    rt.spawn(
        tonic::transport::Server::builder()
            .add_service(service)
            .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener)),
    );
    GrpcServer { addr, reporter, rt }
}

fn check(name: &str) -> HealthCheckRequest {
    HealthCheckRequest {
        service: name.to_string(),
    }
}

#[test]
fn grpc_unary_status_and_streaming_calls_cross_ringway() {
    let server = grpc_server();
    let dir = TestDir::new("grpc");
    let cfg = Config::new()
        .listener_with("grpc", &[("protocols", r#"["h2"]"#)])
        .route("grpc", "/", "health", &[("timeout", &q("10s"))])
        .cluster("health", &[server.addr], &[("protocol", r#""h2""#)]);
    let proxy = Proxy::start(&dir, &cfg);
    let url = format!("http://{}", proxy.addr("grpc"));
    let reporter = server.reporter.clone();
    server.rt.block_on(async move {
        let channel = tonic::transport::Endpoint::from_shared(url)
            .unwrap()
            .connect_timeout(Duration::from_secs(5))
            .connect()
            .await
            .expect("connect through ringway");
        let mut client = HealthClient::new(channel);

        // Unary: the answer and its OK status (in the trailers).
        let r = client.check(check("orders")).await.expect("unary call");
        assert_eq!(r.into_inner().status, ServingStatus::Serving as i32);
        let r = client.check(check("")).await.expect("unary call");
        assert_eq!(r.into_inner().status, ServingStatus::Serving as i32);

        // A status without a message: NOT_FOUND in a trailers-only answer.
        let e = client
            .check(check("nope"))
            .await
            .expect_err("unknown service");
        assert_eq!(e.code(), tonic::Code::NotFound, "{e:?}");

        // Server streaming: the first message at once, the next when the
        // server's state changes (nothing buffered in between).
        let mut stream = client
            .watch(check("orders"))
            .await
            .expect("watch call")
            .into_inner();
        let first = tokio::time::timeout(Duration::from_secs(5), stream.message())
            .await
            .expect("first message in time")
            .expect("stream ok")
            .expect("a message");
        assert_eq!(first.status, ServingStatus::Serving as i32);
        reporter
            .set_service_status("orders", tonic_health::ServingStatus::NotServing)
            .await;
        let second = tokio::time::timeout(Duration::from_secs(5), stream.message())
            .await
            .expect("second message in time")
            .expect("stream ok")
            .expect("a message");
        assert_eq!(second.status, ServingStatus::NotServing as i32);

        // Many concurrent calls on one client connection.
        let mut calls = Vec::new();
        for _ in 0..50 {
            let mut c = client.clone();
            calls.push(tokio::spawn(async move { c.check(check("")).await }));
        }
        for call in calls {
            let r = call.await.unwrap().expect("concurrent call");
            assert_eq!(r.into_inner().status, ServingStatus::Serving as i32);
        }
    });
}
