//! `type = "jwt"`: tokens minted here (ES256 with a fresh key, RS256 with
//! the RFC 7515 A.2 key) against a real ringway and origin. Valid tokens
//! reach the origin with the forwarded claim fields (spoofed copies gone);
//! attacks get 401 and never reach it; a token without the scope gets 403;
//! refusals keep the connection open.

use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine;
use ring::rand::SystemRandom;
use ring::signature::{self, EcdsaKeyPair, KeyPair, RsaKeyPair};
use serde_json::json;

use ringway_tests::client::{Client, Request, Response};
use ringway_tests::config::Config;
use ringway_tests::dir::TestDir;
use ringway_tests::origin::Origin;
use ringway_tests::proxy::Proxy;

// RFC 7515 appendix A.2: a 2048-bit RSA key with its private parts.
const N: &str = "ofgWCuLjybRlzo0tZWJjNiuSfb4p4fAkd_wWJcyQoTbji9k0l8W26mPddxHmfHQp-Vaw-4qPCJrcS2mJPMEzP1Pt0Bm4d4QlL-yRT-SFd2lZS-pCgNMsD1W_YpRPEwOWvG6b32690r2jZ47soMZo9wGzjb_7OMg0LOL-bSf63kpaSHSXndS5z5rexMdbBYUsLA9e-KXBdQOS-UTo7WTBEMa2R2CapHg665xsmtdVMTBQY4uDZlxvb3qCo5ZwKh9kG4LT6_I5IhlJH7aGhyxXFvUK-DWNmoudF8NAco9_h9iaGNj8q2ethFkMLs91kzk2PAcDTW9gb54h4FRWyuXpoQ";
const E: &str = "AQAB";
const D: &str = "Eq5xpGnNCivDflJsRQBXHx1hdR1k6Ulwe2JZD50LpXyWPEAeP88vLNO97IjlA7_GQ5sLKMgvfTeXZx9SE-7YwVol2NXOoAJe46sui395IW_GO-pWJ1O0BkTGoVEn2bKVRUCgu-GjBVaYLU6f3l9kJfFNS3E0QbVdxzubSu3Mkqzjkn439X0M_V51gfpRLI9JYanrC4D4qAdGcopV_0ZHHzQlBjudU2QvXt4ehNYTCBr6XCLQUShb1juUO1ZdiYoFaFQT5Tw8bGUl_x_jTj3ccPDVZFD9pIuhLhBOneufuBiB4cS98l2SR_RQyGWSeWjnczT0QU91p1DhOVRuOopznQ";
const P: &str = "4BzEEOtIpmVdVEZNCqS7baC4crd0pqnRH_5IB3jw3bcxGn6QLvnEtfdUdiYrqBdss1l58BQ3KhooKeQTa9AB0Hw_Py5PJdTJNPY8cQn7ouZ2KKDcmnPGBY5t7yLc1QlQ5xHdwW1VhvKn-nXqhJTBgIPgtldC-KDV5z-y2XDwGUc";
const Q: &str = "uQPEfgmVtjL0Uyyx88GZFF1fOunH3-7cepKmtH4pxhtCoHqpWmT8YAmZxaewHgHAjLYsp1ZSe7zFYHj7C6ul7TjeLQeZD_YwD66t62wDmpe_HlB-TnBA-njbglfIsRLtXlnDzQkv5dTltRJ11BKBBypeeF6689rjcJIDEz9RWdc";
const DP: &str = "BwKfV3Akq5_MFZDFZCnW-wzl-CCo83WoZvnLQwCTeDv8uzluRSnm71I3QCLdhrqE2e9YkxvuxdBfpT_PI7Yz-FOKnu1R6HsJeDCjn12Sk3vmAktV2zb34MCdy7cpdTh_YVr7tss2u6vneTwrA86rZtu5Mbr1C1XsmvkxHQAdYo0";
const DQ: &str = "h_96-mK1R_7glhsum81dZxjTnYynPbZpHziZjeeHcXYsXaaMwkOlODsWa7I9xXDoRwbKgB719rrmI2oKr6N3Do9U0ajaHF-NKJnwgjMd2w9cjz3_-kyNlxAr2v4IKhGNpmM5iIgOS1VZnOZ68m6_pbLBSp3nssTdlqvd0tIiTHU";
const QI: &str = "IYd7DHOhrWvxkwPQsRM2tOgrjbcrfvtQJipd-DlcxyVuuM9sQLdgjVk2oy26F0EmpScGLq2MowX7fhd_QJQ3ydy5cY7YIBi87w93IKLEdfnbJtoOPLUW0ITrJReOgo1cq9SbsxYawBgfp_gh6A5603k2-ZQwVK0JKSHuLFkuQ3U";

const ISS: &str = "https://issuer.test";

fn d(s: &str) -> Vec<u8> {
    B64.decode(s).unwrap()
}

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// The signing side: an ES256 key (kid "es", in the JWKS file) and the RSA
/// key (kid "rs", as a PEM public key).
struct Issuer {
    es: EcdsaKeyPair,
    rsa: RsaKeyPair,
    rng: SystemRandom,
}

impl Issuer {
    fn new() -> Issuer {
        let rng = SystemRandom::new();
        let alg = &signature::ECDSA_P256_SHA256_FIXED_SIGNING;
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(alg, &rng).unwrap();
        let es = EcdsaKeyPair::from_pkcs8(alg, pkcs8.as_ref(), &rng).unwrap();
        let rsa = RsaKeyPair::from_components(&ring::rsa::KeyPairComponents {
            public_key: ring::rsa::PublicKeyComponents { n: d(N), e: d(E) },
            d: d(D),
            p: d(P),
            q: d(Q),
            dP: d(DP),
            dQ: d(DQ),
            qInv: d(QI),
        })
        .unwrap();
        Issuer { es, rsa, rng }
    }

    fn jwks(&self) -> String {
        let p = self.es.public_key().as_ref();
        json!({"keys": [{"kty": "EC", "crv": "P-256", "kid": "es", "x": B64.encode(&p[1..33]), "y": B64.encode(&p[33..])}]})
            .to_string()
    }

    /// The RSA public key as a PEM SubjectPublicKeyInfo.
    fn rsa_pem(&self) -> String {
        fn der(tag: u8, body: &[u8]) -> Vec<u8> {
            let mut out = vec![tag];
            match body.len() {
                n if n < 0x80 => out.push(n as u8),
                n if n < 0x100 => out.extend_from_slice(&[0x81, n as u8]),
                n => out.extend_from_slice(&[0x82, (n >> 8) as u8, n as u8]),
            }
            out.extend_from_slice(body);
            out
        }
        let uint = |b: Vec<u8>| der(0x02, &[&[0u8][..], &b].concat());
        let pkcs1 = der(0x30, &[uint(d(N)), der(0x02, &d(E))].concat());
        let alg_id = [
            0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01, 0x05, 0x00,
        ];
        let bits = [&[0u8][..], &pkcs1].concat();
        let spki = der(0x30, &[der(0x30, &alg_id), der(0x03, &bits)].concat());
        let b64 = base64::engine::general_purpose::STANDARD.encode(spki);
        let lines: Vec<&str> = b64
            .as_bytes()
            .chunks(64)
            .map(|l| std::str::from_utf8(l).unwrap())
            .collect();
        format!(
            "-----BEGIN PUBLIC KEY-----\n{}\n-----END PUBLIC KEY-----\n",
            lines.join("\n")
        )
    }

    fn sign(&self, alg: &str, input: &[u8]) -> Vec<u8> {
        match alg {
            "ES256" => self.es.sign(&self.rng, input).unwrap().as_ref().to_vec(),
            "RS256" => {
                let mut sig = vec![0; self.rsa.public().modulus_len()];
                self.rsa
                    .sign(&signature::RSA_PKCS1_SHA256, &self.rng, input, &mut sig)
                    .unwrap();
                sig
            }
            other => panic!("no signer for {other}"),
        }
    }

    fn raw(&self, header: &str, payload: &str, alg: &str) -> String {
        let input = format!("{}.{}", B64.encode(header), B64.encode(payload));
        let sig = self.sign(alg, input.as_bytes());
        format!("{input}.{}", B64.encode(sig))
    }

    fn token(&self, header: serde_json::Value, claims: serde_json::Value) -> String {
        let alg = header["alg"].as_str().unwrap().to_owned();
        self.raw(&header.to_string(), &claims.to_string(), &alg)
    }
}

fn claims() -> serde_json::Value {
    json!({"sub": "alice", "email": "alice@example.com", "iss": ISS, "aud": "orders", "exp": now() + 600, "scope": "openid read:orders"})
}

struct Jwt {
    proxy: Proxy,
    origin: Origin,
    issuer: Issuer,
    _dir: TestDir,
}

/// A proxy whose every route runs one jwt filter with `extra` keys; the
/// key files are written beside the config (relative paths).
fn start(label: &str, extra: &str) -> Jwt {
    let dir = TestDir::new(label);
    let issuer = Issuer::new();
    dir.write("jwks.json", issuer.jwks());
    dir.write("rsa.pem", issuer.rsa_pem());
    let origin = Origin::start();
    let filter = format!(
        r#"[{{ type = "jwt", jwks_file = "jwks.json", keys = [{{ pem = "rsa.pem", alg = "RS256", kid = "rs" }}], issuers = ["{ISS}"], audiences = ["orders"], forward_claims = {{ sub = "x-user-id", email = "x-user-email" }}{extra} }}]"#
    );
    let config = Config::simple(origin.addr()).all_routes("filters", &filter);
    let proxy = Proxy::start(&dir, &config);
    Jwt {
        proxy,
        origin,
        issuer,
        _dir: dir,
    }
}

impl Jwt {
    fn client(&self) -> Client {
        Client::connect(self.proxy.addr("public"))
    }
}

fn bearer(token: &str) -> Request {
    Request::get("/orders/7")
        .header("Authorization", &format!("Bearer {token}"))
        .header("X-User-Id", "root")
        .header("X-User-Email", "root@evil.test")
}

fn assert_invalid(r: &Response, what: &str) {
    assert_eq!(r.status(), 401, "{what}: {r}");
    assert_eq!(
        r.header("www-authenticate"),
        Some(r#"Bearer realm="ringway", error="invalid_token""#),
        "{what}: {r}"
    );
}

#[test]
fn valid_es256_and_rs256_tokens_reach_the_origin_with_claim_fields() {
    let s = start("jwt-valid", "");
    let mut c = s.client();
    for (alg, kid) in [("ES256", "es"), ("RS256", "rs")] {
        let t = s
            .issuer
            .token(json!({"alg": alg, "kid": kid, "typ": "JWT"}), claims());
        let r = c.request(&bearer(&t));
        assert_eq!(r.status(), 200, "{alg}: {r}");
        let seen = s.origin.last_request().expect("the origin saw the request");
        assert_eq!(
            seen.headers_all("x-user-id"),
            ["alice"],
            "{alg}: {}",
            seen.raw_str()
        );
        assert_eq!(
            seen.headers_all("x-user-email"),
            ["alice@example.com"],
            "{alg}"
        );
        // The token itself does not go on (`strip` defaults to true).
        assert!(seen.header("authorization").is_none(), "{alg}");
    }
    assert_eq!(s.origin.request_count(), 2);
}

#[test]
fn attacks_get_401_and_never_reach_the_origin() {
    let s = start("jwt-attacks", "");
    let i = &s.issuer;
    let good = i.token(json!({"alg": "ES256", "kid": "es"}), claims());
    let (input, sig) = good.rsplit_once('.').unwrap();
    let sig = d(sig);
    let payload = B64.encode(claims().to_string());

    let hs_with_rsa_modulus = {
        let input = format!("{}.{payload}", B64.encode(r#"{"alg":"HS256","kid":"rs"}"#));
        let k = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, &d(N));
        format!(
            "{input}.{}",
            B64.encode(ring::hmac::sign(&k, input.as_bytes()))
        )
    };
    let hs_with_pem_text = {
        let input = format!("{}.{payload}", B64.encode(r#"{"alg":"HS256"}"#));
        let k = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, i.rsa_pem().as_bytes());
        format!(
            "{input}.{}",
            B64.encode(ring::hmac::sign(&k, input.as_bytes()))
        )
    };
    let mut expired = claims();
    expired["exp"] = json!(now() - 3600);
    let mut early = claims();
    early["nbf"] = json!(now() + 3600);
    let mut wrong_iss = claims();
    wrong_iss["iss"] = json!("https://evil.test");
    let mut wrong_aud = claims();
    wrong_aud["aud"] = json!(["billing"]);
    let last = B64.encode(&sig).chars().last().unwrap();
    let alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let idx = alphabet.find(last).unwrap();
    let non_canonical = {
        let mut s = B64.encode(&sig);
        s.pop();
        s.push(alphabet.as_bytes()[idx ^ 1] as char);
        format!("{input}.{s}")
    };

    let attacks: Vec<(&str, String)> = vec![
        (
            "alg none",
            format!("{}.{payload}.", B64.encode(r#"{"alg":"none"}"#)),
        ),
        (
            "alg NoNe",
            format!(
                "{}.{payload}.{}",
                B64.encode(r#"{"alg":"NoNe","kid":"es"}"#),
                B64.encode(b"sig")
            ),
        ),
        ("HS256 signed with the RSA modulus", hs_with_rsa_modulus),
        ("HS256 signed with the PEM text", hs_with_pem_text),
        (
            "ECDSA s = 0",
            format!(
                "{input}.{}",
                B64.encode([&sig[..32], &[0u8; 32][..]].concat())
            ),
        ),
        (
            "ECDSA r = 0",
            format!(
                "{input}.{}",
                B64.encode([&[0u8; 32][..], &sig[32..]].concat())
            ),
        ),
        (
            "truncated signature",
            format!("{input}.{}", B64.encode(&sig[..63])),
        ),
        (
            "extended signature",
            format!("{input}.{}", B64.encode([&sig[..], &[0][..]].concat())),
        ),
        (
            "unknown kid",
            i.token(json!({"alg": "ES256", "kid": "other"}), claims()),
        ),
        (
            "jku header",
            i.token(
                json!({"alg": "ES256", "kid": "es", "jku": "https://evil.test/k"}),
                claims(),
            ),
        ),
        (
            "jwk header",
            i.token(
                json!({"alg": "ES256", "kid": "es", "jwk": {"kty": "EC"}}),
                claims(),
            ),
        ),
        (
            "crit header",
            i.token(
                json!({"alg": "ES256", "kid": "es", "crit": ["exp"]}),
                claims(),
            ),
        ),
        ("non-canonical base64url", non_canonical),
        ("padding", format!("{good}==")),
        (
            "expired",
            i.token(json!({"alg": "ES256", "kid": "es"}), expired),
        ),
        (
            "nbf in the future",
            i.token(json!({"alg": "ES256", "kid": "es"}), early),
        ),
        (
            "wrong iss",
            i.token(json!({"alg": "ES256", "kid": "es"}), wrong_iss),
        ),
        (
            "wrong aud",
            i.token(json!({"alg": "RS256", "kid": "rs"}), wrong_aud),
        ),
        (
            "payload not an object",
            i.raw(r#"{"alg":"ES256","kid":"es"}"#, "[1]", "ES256"),
        ),
        (
            "duplicate sub",
            i.raw(
                r#"{"alg":"ES256","kid":"es"}"#,
                &format!(
                    r#"{{"sub":"alice","sub":"admin","iss":"{ISS}","aud":"orders","exp":{}}}"#,
                    now() + 600
                ),
                "ES256",
            ),
        ),
        (
            "RS256 token with the ES256 kid",
            i.token(json!({"alg": "RS256", "kid": "es"}), claims()),
        ),
        ("too long", format!("{good}{}", "A".repeat(9000))),
    ];
    // All on one connection: every 401 keeps it open.
    let mut c = s.client();
    for (what, token) in &attacks {
        let r = c.request(&bearer(token));
        assert_invalid(&r, what);
    }
    let r = c.request(&Request::get("/orders/7").header("X-User-Id", "root"));
    assert_eq!(r.status(), 401, "{r}");
    assert_eq!(
        r.header("www-authenticate"),
        Some(r#"Bearer realm="ringway""#),
        "{r}"
    );
    assert_eq!(s.origin.request_count(), 0, "an attack reached the origin");
}

#[test]
fn a_valid_token_without_the_scope_gets_403() {
    let s = start(
        "jwt-scope",
        r#", rules = [{ claim = "scope", contains = "write:orders" }]"#,
    );
    let mut c = s.client();
    let t = s
        .issuer
        .token(json!({"alg": "ES256", "kid": "es"}), claims());
    let r = c.request(&bearer(&t));
    assert_eq!(r.status(), 403, "{r}");
    assert_eq!(
        r.header("www-authenticate"),
        Some(r#"Bearer realm="ringway", error="insufficient_scope""#),
        "{r}"
    );
    assert_eq!(s.origin.request_count(), 0);
    let mut cl = claims();
    cl["scope"] = json!("read:orders write:orders");
    let t = s.issuer.token(json!({"alg": "ES256", "kid": "es"}), cl);
    let r = c.request(&bearer(&t));
    assert_eq!(r.status(), 200, "{r}");
    assert_eq!(s.origin.request_count(), 1);
}

#[test]
fn a_401_keeps_the_connection_for_the_next_valid_request() {
    let s = start("jwt-keepalive", "");
    let mut c = s.client();
    let r = c.request(&bearer("not.a.token"));
    assert_invalid(&r, "garbage");
    assert_eq!(r.header("connection"), None, "{r}");
    let t = s
        .issuer
        .token(json!({"alg": "RS256", "kid": "rs"}), claims());
    let r = c.request(&bearer(&t));
    assert_eq!(r.status(), 200, "{r}");
    // The same token again (from the worker's cache).
    let r = c.request(&bearer(&t));
    assert_eq!(r.status(), 200, "{r}");
    assert_eq!(s.origin.request_count(), 2);
    let seen = s.origin.last_request().unwrap();
    assert_eq!(seen.headers_all("x-user-id"), ["alice"]);
}

// ---- jwks_url ----------------------------------------------------------------

/// A tiny HTTPS server for one JWKS document, which the test can change.
struct JwksServer {
    addr: std::net::SocketAddr,
    body: std::sync::Arc<std::sync::Mutex<String>>,
    fetches: std::sync::Arc<std::sync::atomic::AtomicUsize>,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

impl JwksServer {
    fn start(ca: &ringway_tests::certs::Ca, body: String) -> JwksServer {
        use std::io::{Read, Write};
        use std::sync::atomic::Ordering;
        use std::sync::{Arc, Mutex};

        let leaf = ca.issue(&["127.0.0.1"]);
        let tls = Arc::new(
            rustls::ServerConfig::builder_with_provider(Arc::new(
                rustls::crypto::ring::default_provider(),
            ))
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(vec![leaf.cert()], leaf.key())
            .unwrap(),
        );
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let server = JwksServer {
            addr,
            body: Arc::new(Mutex::new(body)),
            fetches: Default::default(),
            stop: Default::default(),
        };
        let (body, fetches, stop) = (
            server.body.clone(),
            server.fetches.clone(),
            server.stop.clone(),
        );
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                if stop.load(Ordering::Relaxed) {
                    return;
                }
                let Ok(tcp) = conn else { continue };
                let _ = tcp.set_read_timeout(Some(std::time::Duration::from_secs(5)));
                let conn = rustls::ServerConnection::new(tls.clone()).unwrap();
                let mut s = rustls::StreamOwned::new(conn, tcp);
                let mut head = Vec::new();
                let mut byte = [0u8; 1];
                while !head.ends_with(b"\r\n\r\n") && head.len() < 8192 {
                    match s.read(&mut byte) {
                        Ok(1) => head.push(byte[0]),
                        _ => break,
                    }
                }
                fetches.fetch_add(1, Ordering::Relaxed);
                let body = body.lock().unwrap().clone();
                let reply = format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = s.write_all(reply.as_bytes());
                s.conn.send_close_notify();
                let _ = s.flush();
            }
        });
        server
    }

    fn set(&self, body: String) {
        *self.body.lock().unwrap() = body;
    }

    fn fetches(&self) -> usize {
        self.fetches.load(std::sync::atomic::Ordering::Relaxed)
    }
}

impl Drop for JwksServer {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        let _ = std::net::TcpStream::connect(self.addr);
    }
}

/// A fresh ES256 key and its JWKS entry under `kid`.
fn es_key(kid: &str) -> (EcdsaKeyPair, serde_json::Value) {
    let rng = SystemRandom::new();
    let alg = &signature::ECDSA_P256_SHA256_FIXED_SIGNING;
    let pkcs8 = EcdsaKeyPair::generate_pkcs8(alg, &rng).unwrap();
    let kp = EcdsaKeyPair::from_pkcs8(alg, pkcs8.as_ref(), &rng).unwrap();
    let p = kp.public_key().as_ref();
    let jwk = json!({"kty": "EC", "crv": "P-256", "kid": kid, "x": B64.encode(&p[1..33]), "y": B64.encode(&p[33..])});
    (kp, jwk)
}

fn es_token(kp: &EcdsaKeyPair, kid: &str) -> String {
    let header = json!({"alg": "ES256", "kid": kid}).to_string();
    let input = format!(
        "{}.{}",
        B64.encode(header),
        B64.encode(claims().to_string())
    );
    let sig = kp.sign(&SystemRandom::new(), input.as_bytes()).unwrap();
    format!("{input}.{}", B64.encode(sig.as_ref()))
}

fn jwks_of(keys: &[&serde_json::Value]) -> String {
    json!({ "keys": keys }).to_string()
}

/// A proxy whose routes verify against `jwks_url` only.
fn start_remote(
    label: &str,
    server: &JwksServer,
    ca: &ringway_tests::certs::Ca,
    refresh: &str,
) -> (Proxy, Origin, TestDir) {
    let dir = TestDir::new(label);
    ca.write_pem(dir.path(), "idp-ca.pem");
    let origin = Origin::start();
    let filter = format!(
        r#"[{{ type = "jwt", jwks_url = "https://{}/jwks.json", jwks_ca = "idp-ca.pem", jwks_refresh = "{refresh}", issuers = ["{ISS}"], forward_claims = {{ sub = "x-user-id" }} }}]"#,
        server.addr
    );
    let config = Config::simple(origin.addr()).all_routes("filters", &filter);
    let proxy = Proxy::start(&dir, &config);
    (proxy, origin, dir)
}

/// Send `token` until the status is `want` (or time runs out); returns
/// the last status.
fn until_status(proxy: &Proxy, token: &str, want: u16, within: std::time::Duration) -> u16 {
    let deadline = std::time::Instant::now() + within;
    loop {
        let mut c = Client::connect(proxy.addr("public"));
        let status = c.request(&bearer(token)).status();
        if status == want || std::time::Instant::now() > deadline {
            return status;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}

#[test]
fn jwks_url_rotation_new_kid_accepted_removed_key_refused() {
    let ca = ringway_tests::certs::Ca::new("jwks idp ca");
    let (k1, jwk1) = es_key("k1");
    let (k2, jwk2) = es_key("k2");
    let server = JwksServer::start(&ca, jwks_of(&[&jwk1]));
    let (proxy, origin, _dir) = start_remote("jwt-jwks-rotation", &server, &ca, "1s");
    let t1 = es_token(&k1, "k1");
    let t2 = es_token(&k2, "k2");
    let wait = std::time::Duration::from_secs(10);

    assert_eq!(
        until_status(&proxy, &t1, 200, wait),
        200,
        "k1 never accepted"
    );
    assert_eq!(
        origin.last_request().unwrap().headers_all("x-user-id"),
        ["alice"]
    );
    assert_eq!(
        Client::connect(proxy.addr("public"))
            .request(&bearer(&t2))
            .status(),
        401
    );

    // Rotation: k2 in, k1 out. The k1 token was cached as valid: the new
    // set generation must still refuse it.
    server.set(jwks_of(&[&jwk2]));
    assert_eq!(
        until_status(&proxy, &t2, 200, wait),
        200,
        "k2 never accepted"
    );
    let r = Client::connect(proxy.addr("public")).request(&bearer(&t1));
    assert_eq!(r.status(), 401, "the removed key still works: {r}");

    // A broken document: the last good set stays.
    server.set("not json".into());
    let seen = server.fetches();
    let deadline = std::time::Instant::now() + wait;
    while server.fetches() < seen + 2 && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert!(
        server.fetches() >= seen + 2,
        "no refetch after the bad document"
    );
    let r = Client::connect(proxy.addr("public")).request(&bearer(&t2));
    assert_eq!(r.status(), 200, "the last good set was dropped: {r}");
    assert!(
        proxy.wait_stderr_contains("JWKS fetch failed", std::time::Duration::from_secs(5)),
        "{}",
        proxy.stderr()
    );
}

#[test]
fn jwks_url_unknown_kid_triggers_an_early_refetch() {
    let ca = ringway_tests::certs::Ca::new("jwks idp ca");
    let (k1, jwk1) = es_key("k1");
    let (k2, jwk2) = es_key("k2");
    let server = JwksServer::start(&ca, jwks_of(&[&jwk1]));
    // Refresh every 20 s: an early refetch may come 5 s after the last
    // fetch at the soonest, well before the next scheduled one.
    let (proxy, _origin, _dir) = start_remote("jwt-jwks-refetch", &server, &ca, "20s");
    let wait = std::time::Duration::from_secs(10);
    assert_eq!(until_status(&proxy, &es_token(&k1, "k1"), 200, wait), 200);
    let fetched = server.fetches();
    assert_eq!(fetched, 1);

    server.set(jwks_of(&[&jwk1, &jwk2]));
    let t2 = es_token(&k2, "k2");
    let started = std::time::Instant::now();
    assert_eq!(
        until_status(&proxy, &t2, 200, std::time::Duration::from_secs(15)),
        200,
        "the unknown kid did not cause a refetch"
    );
    assert!(started.elapsed() < std::time::Duration::from_secs(15));
    // Rate-limited: many unknown-kid requests, few fetches.
    assert!(
        server.fetches() <= fetched + 2,
        "{} fetches",
        server.fetches()
    );
}
