//! ringway integration tests: each test starts its own ringway process and
//! origins on 127.0.0.1 port 0 and talks to them over real sockets.
//!
//! Needs the binary: `cargo build -p ringway` first (or set RINGWAY_BIN).
//! `harness` tests check the test harness itself and need no proxy.

mod accept_balance;
mod aggregate;
mod aliases;
mod auth;
mod balancing;
mod binary_upgrade;
mod bodies;
mod cert_cli;
mod check;
mod compression;
mod concurrency;
mod cors;
mod dashboard;
mod discovery;
mod dns;
mod drain;
mod etcd;
mod examples;
mod filter_metrics;
mod filters;
mod gather;
mod grpc;
mod harness;
mod headers;
mod health;
mod hedging;
mod http2;
mod http2_attacks;
mod http2_upstream;
mod idle_memory;
mod ip_acl;
mod jwt;
mod keepalive;
mod large;
mod lifecycle;
mod matchers;
mod mesh_demo;
mod metrics;
mod mirror;
mod mtls;
mod netns;
mod observability;
mod otlp;
mod proxy_protocol;
mod rate_limit;
mod redirect;
mod reload;
mod retries;
mod rewrite;
mod ring_features;
mod routing;
mod splice;
mod split_accuracy;
mod strict;
mod systemd;
mod timeouts;
mod tls;
mod tls_listener;
mod upgrade;
mod upstream;
mod versioning;
mod weights;
