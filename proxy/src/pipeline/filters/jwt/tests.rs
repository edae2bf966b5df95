//! The attacks first (each must be refused), then the RFC examples, then
//! claims, rules, sources, forwarding and the cache.

use std::path::Path;

use base64::Engine;
use ring::rand::SystemRandom;
use ring::signature::{self, EcdsaKeyPair, Ed25519KeyPair, KeyPair, RsaKeyPair};
use serde_json::json;

use super::config::JwtFile;
use super::filter::{Clock, JwtFilter};
use super::keys::{self, Alg, Key, KeySet};
use super::verify::{self, Invalid, TOKEN_B64};
use crate::http::head::parse_request_head;
use crate::http::{HeadLimits, RequestHead};
use crate::pipeline::filters::{FilterState, Flow, RequestCx};

// RFC 7515 appendix A.1 (HS256), A.2 (RS256), A.3 (ES256).
const A1_KEY: &str =
    "AyM1SysPpbyDfgZld3umj1qzKObwVMkoqQ-EstJQLr_T-1qS0gZH75aKtMN3Yj0iPS4hcgUuTwjAzZr1Z9CAow";
const A1_TOKEN: &str = "eyJ0eXAiOiJKV1QiLA0KICJhbGciOiJIUzI1NiJ9.eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFtcGxlLmNvbS9pc19yb290Ijp0cnVlfQ.dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
const A2_N: &str = "ofgWCuLjybRlzo0tZWJjNiuSfb4p4fAkd_wWJcyQoTbji9k0l8W26mPddxHmfHQp-Vaw-4qPCJrcS2mJPMEzP1Pt0Bm4d4QlL-yRT-SFd2lZS-pCgNMsD1W_YpRPEwOWvG6b32690r2jZ47soMZo9wGzjb_7OMg0LOL-bSf63kpaSHSXndS5z5rexMdbBYUsLA9e-KXBdQOS-UTo7WTBEMa2R2CapHg665xsmtdVMTBQY4uDZlxvb3qCo5ZwKh9kG4LT6_I5IhlJH7aGhyxXFvUK-DWNmoudF8NAco9_h9iaGNj8q2ethFkMLs91kzk2PAcDTW9gb54h4FRWyuXpoQ";
const A2_E: &str = "AQAB";
const A2_D: &str = "Eq5xpGnNCivDflJsRQBXHx1hdR1k6Ulwe2JZD50LpXyWPEAeP88vLNO97IjlA7_GQ5sLKMgvfTeXZx9SE-7YwVol2NXOoAJe46sui395IW_GO-pWJ1O0BkTGoVEn2bKVRUCgu-GjBVaYLU6f3l9kJfFNS3E0QbVdxzubSu3Mkqzjkn439X0M_V51gfpRLI9JYanrC4D4qAdGcopV_0ZHHzQlBjudU2QvXt4ehNYTCBr6XCLQUShb1juUO1ZdiYoFaFQT5Tw8bGUl_x_jTj3ccPDVZFD9pIuhLhBOneufuBiB4cS98l2SR_RQyGWSeWjnczT0QU91p1DhOVRuOopznQ";
const A2_P: &str = "4BzEEOtIpmVdVEZNCqS7baC4crd0pqnRH_5IB3jw3bcxGn6QLvnEtfdUdiYrqBdss1l58BQ3KhooKeQTa9AB0Hw_Py5PJdTJNPY8cQn7ouZ2KKDcmnPGBY5t7yLc1QlQ5xHdwW1VhvKn-nXqhJTBgIPgtldC-KDV5z-y2XDwGUc";
const A2_Q: &str = "uQPEfgmVtjL0Uyyx88GZFF1fOunH3-7cepKmtH4pxhtCoHqpWmT8YAmZxaewHgHAjLYsp1ZSe7zFYHj7C6ul7TjeLQeZD_YwD66t62wDmpe_HlB-TnBA-njbglfIsRLtXlnDzQkv5dTltRJ11BKBBypeeF6689rjcJIDEz9RWdc";
const A2_DP: &str = "BwKfV3Akq5_MFZDFZCnW-wzl-CCo83WoZvnLQwCTeDv8uzluRSnm71I3QCLdhrqE2e9YkxvuxdBfpT_PI7Yz-FOKnu1R6HsJeDCjn12Sk3vmAktV2zb34MCdy7cpdTh_YVr7tss2u6vneTwrA86rZtu5Mbr1C1XsmvkxHQAdYo0";
const A2_DQ: &str = "h_96-mK1R_7glhsum81dZxjTnYynPbZpHziZjeeHcXYsXaaMwkOlODsWa7I9xXDoRwbKgB719rrmI2oKr6N3Do9U0ajaHF-NKJnwgjMd2w9cjz3_-kyNlxAr2v4IKhGNpmM5iIgOS1VZnOZ68m6_pbLBSp3nssTdlqvd0tIiTHU";
const A2_QI: &str = "IYd7DHOhrWvxkwPQsRM2tOgrjbcrfvtQJipd-DlcxyVuuM9sQLdgjVk2oy26F0EmpScGLq2MowX7fhd_QJQ3ydy5cY7YIBi87w93IKLEdfnbJtoOPLUW0ITrJReOgo1cq9SbsxYawBgfp_gh6A5603k2-ZQwVK0JKSHuLFkuQ3U";
const A2_TOKEN: &str = "eyJhbGciOiJSUzI1NiJ9.eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFtcGxlLmNvbS9pc19yb290Ijp0cnVlfQ.cC4hiUPoj9Eetdgtv3hF80EGrhuB__dzERat0XF9g2VtQgr9PJbu3XOiZj5RZmh7AAuHIm4Bh-0Qc_lF5YKt_O8W2Fp5jujGbds9uJdbF9CUAr7t1dnZcAcQjbKBYNX4BAynRFdiuB--f_nZLgrnbyTyWzO75vRK5h6xBArLIARNPvkSjtQBMHlb1L07Qe7K0GarZRmB_eSN9383LcOLn6_dO--xi12jzDwusC-eOkHWEsqtFZESc6BfI7noOPqvhJ1phCnvWh6IeYI2w9QOYEUipUTI8np6LbgGY9Fs98rqVt5AXLIhWkWywlVmtVrBp0igcN_IoypGlUPQGe77Rw";
const A3_X: &str = "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU";
const A3_Y: &str = "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0";
const A3_TOKEN: &str = "eyJhbGciOiJFUzI1NiJ9.eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFtcGxlLmNvbS9pc19yb290Ijp0cnVlfQ.DtEhU3ljbEg8L38VWAfUAqOyKAM6-Xx-F4GawxaepmXFCgfTjDxw5djxLa8ISlSApmWQxfKTUJqPP3-Kg6NU1Q";
/// The examples' `exp`.
const A_EXP: u64 = 1_300_819_380;
// RFC 8037 appendix A.4 (Ed25519).
const ED_X: &str = "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo";
const ED_TOKEN: &str = "eyJhbGciOiJFZERTQSJ9.RXhhbXBsZSBvZiBFZDI1NTE5IHNpZ25pbmc.hgyY0il_MGCjP0JzlnLWG1PPOt7-09PGcvMg3AIbQR6dWbhijcNR4ki4iylGjg5BhVsPt9g7sVvpAr_MuM0KAg";

/// The P-256 group order n.
const P256_N: &str = "ffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551";

/// "Now" for tests with minted tokens.
const NOW: u64 = 1_700_000_000;

fn d(s: &str) -> Vec<u8> {
    keys_b64(s)
}

fn keys_b64(s: &str) -> Vec<u8> {
    TOKEN_B64.decode(s).expect("test base64url")
}

fn e(b: &[u8]) -> String {
    TOKEN_B64.encode(b)
}

fn hex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

/// Keys of every kind, with their signers.
struct Fx {
    hmac: Vec<u8>,
    es256: EcdsaKeyPair,
    es384: EcdsaKeyPair,
    ed: Ed25519KeyPair,
    rsa: RsaKeyPair,
    rng: SystemRandom,
}

impl Fx {
    fn new() -> Fx {
        let rng = SystemRandom::new();
        let ec = |alg: &'static signature::EcdsaSigningAlgorithm| {
            let pkcs8 = EcdsaKeyPair::generate_pkcs8(alg, &rng).unwrap();
            EcdsaKeyPair::from_pkcs8(alg, pkcs8.as_ref(), &rng).unwrap()
        };
        let ed = Ed25519KeyPair::from_pkcs8(Ed25519KeyPair::generate_pkcs8(&rng).unwrap().as_ref())
            .unwrap();
        let rsa = RsaKeyPair::from_components(&ring::rsa::KeyPairComponents {
            public_key: ring::rsa::PublicKeyComponents {
                n: d(A2_N),
                e: d(A2_E),
            },
            d: d(A2_D),
            p: d(A2_P),
            q: d(A2_Q),
            dP: d(A2_DP),
            dQ: d(A2_DQ),
            qInv: d(A2_QI),
        })
        .unwrap();
        Fx {
            hmac: d(A1_KEY),
            es256: ec(&signature::ECDSA_P256_SHA256_FIXED_SIGNING),
            es384: ec(&signature::ECDSA_P384_SHA384_FIXED_SIGNING),
            ed,
            rsa,
            rng,
        }
    }

    fn ec_jwk(kp: &EcdsaKeyPair, crv: &str, kid: &str) -> serde_json::Value {
        let p = kp.public_key().as_ref();
        let n = (p.len() - 1) / 2;
        json!({"kty": "EC", "crv": crv, "kid": kid, "x": e(&p[1..1 + n]), "y": e(&p[1 + n..])})
    }

    /// kids: hs (HS256), es (ES256), es384, ed (EdDSA), rs (RS256),
    /// ps (PS256, the same RSA key).
    fn jwks(&self) -> serde_json::Value {
        json!({"keys": [
            {"kty": "oct", "kid": "hs", "alg": "HS256", "k": e(&self.hmac)},
            Fx::ec_jwk(&self.es256, "P-256", "es"),
            Fx::ec_jwk(&self.es384, "P-384", "es384"),
            {"kty": "OKP", "crv": "Ed25519", "kid": "ed", "x": e(self.ed.public_key().as_ref())},
            {"kty": "RSA", "kid": "rs", "alg": "RS256", "n": A2_N, "e": A2_E},
            {"kty": "RSA", "kid": "ps", "alg": "PS256", "n": A2_N, "e": A2_E},
            {"kty": "RSA", "kid": "enc", "use": "enc", "n": A2_N, "e": A2_E},
        ]})
    }

    fn key_set(&self) -> KeySet {
        keys::parse_jwks(self.jwks().to_string().as_bytes()).unwrap()
    }

    /// The signature of `input` under `alg` with this fixture's key.
    fn sign(&self, alg: &str, input: &[u8]) -> Vec<u8> {
        let rsa = |enc: &'static dyn signature::RsaEncoding| {
            let mut sig = vec![0; self.rsa.public().modulus_len()];
            self.rsa.sign(enc, &self.rng, input, &mut sig).unwrap();
            sig
        };
        match alg {
            "HS256" => {
                let k = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, &self.hmac);
                ring::hmac::sign(&k, input).as_ref().to_vec()
            }
            "ES256" => self.es256.sign(&self.rng, input).unwrap().as_ref().to_vec(),
            "ES384" => self.es384.sign(&self.rng, input).unwrap().as_ref().to_vec(),
            "EdDSA" => self.ed.sign(input).as_ref().to_vec(),
            "RS256" => rsa(&signature::RSA_PKCS1_SHA256),
            "PS256" => rsa(&signature::RSA_PSS_SHA256),
            other => panic!("no test signer for {other}"),
        }
    }

    /// A token with this header and payload, signed for `header.alg`.
    fn token(&self, header: serde_json::Value, payload: serde_json::Value) -> String {
        let alg = header["alg"].as_str().unwrap().to_owned();
        self.raw_token(&header.to_string(), &payload.to_string(), &alg)
    }

    fn raw_token(&self, header: &str, payload: &str, alg: &str) -> String {
        let input = format!("{}.{}", e(header.as_bytes()), e(payload.as_bytes()));
        let sig = self.sign(alg, input.as_bytes());
        format!("{input}.{}", e(&sig))
    }
}

fn claims() -> serde_json::Value {
    json!({"sub": "alice", "exp": NOW + 600, "iat": NOW - 10, "iss": "https://issuer.test", "aud": "orders"})
}

fn check(token: &str, set: &KeySet) -> Result<(), Invalid> {
    let c = verify::verify(token.as_bytes(), &[set])?;
    super::claims::ClaimChecks {
        leeway: 60,
        ..Default::default()
    }
    .check(&c, NOW)
    .map(|_| ())
}

// ---- attacks -------------------------------------------------------------

#[test]
fn alg_none_is_refused_in_every_letter_case() {
    let fx = Fx::new();
    let set = fx.key_set();
    let payload = e(claims().to_string().as_bytes());
    for none in ["none", "None", "NONE", "nOnE", "NoNe"] {
        for kid in [None, Some("hs"), Some("rs")] {
            let mut h = json!({"alg": none});
            if let Some(k) = kid {
                h["kid"] = json!(k);
            }
            let head = e(h.to_string().as_bytes());
            // Empty signature, as `none` tokens are written.
            let t = format!("{head}.{payload}.");
            assert_eq!(check(&t, &set), Err(Invalid::NotThreeParts), "{t}");
            // With some signature bytes.
            let t = format!("{head}.{payload}.{}", e(b"x"));
            assert_eq!(check(&t, &set), Err(Invalid::AlgNone), "{t}");
            // No third part at all.
            let t = format!("{head}.{payload}");
            assert_eq!(check(&t, &set), Err(Invalid::NotThreeParts), "{t}");
        }
    }
}

#[test]
fn hs256_signed_with_a_public_key_is_refused() {
    let fx = Fx::new();
    let set = fx.key_set();
    // Attacker's secrets: the RSA modulus, the JWK text, the EC point.
    let secrets: Vec<Vec<u8>> = vec![
        d(A2_N),
        json!({"kty": "RSA", "n": A2_N, "e": A2_E})
            .to_string()
            .into_bytes(),
        fx.es256.public_key().as_ref().to_vec(),
        fx.ed.public_key().as_ref().to_vec(),
    ];
    for secret in &secrets {
        for kid in [None, Some("rs"), Some("ps"), Some("es"), Some("ed")] {
            let mut h = json!({"alg": "HS256"});
            if let Some(k) = kid {
                h["kid"] = json!(k);
            }
            let input = format!(
                "{}.{}",
                e(h.to_string().as_bytes()),
                e(claims().to_string().as_bytes())
            );
            let k = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, secret);
            let t = format!(
                "{input}.{}",
                e(ring::hmac::sign(&k, input.as_bytes()).as_ref())
            );
            let want = match kid {
                // Without a kid the HS256 key is tried: wrong secret.
                None => Invalid::BadSignature,
                Some(_) => Invalid::AlgMismatch,
            };
            assert_eq!(check(&t, &set), Err(want), "kid {kid:?}");
        }
    }
    // Against a set with only asymmetric keys there is no HS256 key at all.
    let only_rsa = KeySet {
        keys: vec![Key::rsa(&d(A2_N), &d(A2_E), Alg::Rs256, None).unwrap()],
    };
    let input = format!(
        "{}.{}",
        e(br#"{"alg":"HS256"}"#),
        e(claims().to_string().as_bytes())
    );
    let k = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, &d(A2_N));
    let t = format!(
        "{input}.{}",
        e(ring::hmac::sign(&k, input.as_bytes()).as_ref())
    );
    assert_eq!(check(&t, &only_rsa), Err(Invalid::NoKeyForAlg));
}

#[test]
fn a_token_cannot_pick_another_algorithm_for_a_key() {
    let fx = Fx::new();
    let set = fx.key_set();
    // PS256 signature presented as RS256 with the PS256 key's kid, and the
    // reverse.
    let t = fx.raw_token(
        r#"{"alg":"RS256","kid":"ps"}"#,
        &claims().to_string(),
        "RS256",
    );
    assert_eq!(check(&t, &set), Err(Invalid::AlgMismatch));
    let t = fx.raw_token(
        r#"{"alg":"PS256","kid":"rs"}"#,
        &claims().to_string(),
        "PS256",
    );
    assert_eq!(check(&t, &set), Err(Invalid::AlgMismatch));
    // ES384 header against the ES256 key.
    let t = fx.raw_token(
        r#"{"alg":"ES384","kid":"es"}"#,
        &claims().to_string(),
        "ES384",
    );
    assert_eq!(check(&t, &set), Err(Invalid::AlgMismatch));
    // An unsupported name, and the right name in the wrong case.
    let t = fx.raw_token(
        r#"{"alg":"ES512","kid":"es"}"#,
        &claims().to_string(),
        "ES256",
    );
    assert_eq!(check(&t, &set), Err(Invalid::AlgUnsupported));
    let t = fx.raw_token(
        r#"{"alg":"es256","kid":"es"}"#,
        &claims().to_string(),
        "ES256",
    );
    assert_eq!(check(&t, &set), Err(Invalid::AlgUnsupported));
    // The `enc` key is not a signing key: its kid is unknown.
    let t = fx.raw_token(
        r#"{"alg":"RS256","kid":"enc"}"#,
        &claims().to_string(),
        "RS256",
    );
    assert_eq!(check(&t, &set), Err(Invalid::UnknownKid));
}

#[test]
fn ecdsa_signatures_with_zero_or_out_of_range_scalars_are_refused() {
    let fx = Fx::new();
    let set = fx.key_set();
    let good = fx.token(json!({"alg": "ES256", "kid": "es"}), claims());
    assert_eq!(check(&good, &set), Ok(()));
    let (input, sig) = good.rsplit_once('.').unwrap();
    let sig = d(sig);
    let (r, s) = sig.split_at(32);
    let n = hex(P256_N);
    let zero = [0u8; 32];
    let ones = [0xffu8; 32];
    let mut n_plus_s = n.clone();
    // n + 1 (still 32 bytes: n's last byte is 0x51).
    n_plus_s[31] += 1;
    let forged: [(&str, Vec<u8>); 7] = [
        ("r = 0", [&zero[..], s].concat()),
        ("s = 0", [r, &zero[..]].concat()),
        ("r = s = 0", [&zero[..], &zero[..]].concat()),
        ("s = n", [r, &n[..]].concat()),
        ("s = n + 1", [r, &n_plus_s[..]].concat()),
        ("s = 2^256 - 1", [r, &ones[..]].concat()),
        ("r = n", [&n[..], s].concat()),
    ];
    for (what, sig) in forged {
        let t = format!("{input}.{}", e(&sig));
        assert_eq!(check(&t, &set), Err(Invalid::BadSignature), "{what}");
    }
    // An ASN.1 DER signature is not the JOSE form.
    let der = EcdsaKeyPair::from_pkcs8(
        &signature::ECDSA_P256_SHA256_ASN1_SIGNING,
        EcdsaKeyPair::generate_pkcs8(&signature::ECDSA_P256_SHA256_ASN1_SIGNING, &fx.rng)
            .unwrap()
            .as_ref(),
        &fx.rng,
    )
    .unwrap()
    .sign(&fx.rng, input.as_bytes())
    .unwrap();
    let t = format!("{input}.{}", e(der.as_ref()));
    assert_eq!(check(&t, &set), Err(Invalid::BadSignature));
}

#[test]
fn truncated_extended_and_empty_signatures_are_refused() {
    let fx = Fx::new();
    let set = fx.key_set();
    for (alg, kid) in [
        ("HS256", "hs"),
        ("ES256", "es"),
        ("ES384", "es384"),
        ("EdDSA", "ed"),
        ("RS256", "rs"),
        ("PS256", "ps"),
    ] {
        let good = fx.token(json!({"alg": alg, "kid": kid}), claims());
        assert_eq!(check(&good, &set), Ok(()), "{alg}");
        let (input, sig) = good.rsplit_once('.').unwrap();
        let sig = d(sig);
        let cases = [
            ("truncated", sig[..sig.len() - 1].to_vec()),
            ("extended", [&sig[..], &[0u8][..]].concat()),
            ("first byte flipped", {
                let mut s = sig.clone();
                s[0] ^= 1;
                s
            }),
        ];
        for (what, s) in cases {
            let t = format!("{input}.{}", e(&s));
            assert_eq!(check(&t, &set), Err(Invalid::BadSignature), "{alg} {what}");
        }
        let t = format!("{input}.");
        assert_eq!(check(&t, &set), Err(Invalid::NotThreeParts), "{alg} empty");
        // Another payload under the same signature.
        let other = format!(
            "{}.{}.{}",
            input.split('.').next().unwrap(),
            e(json!({"sub": "mallory", "exp": NOW + 600})
                .to_string()
                .as_bytes()),
            e(&sig)
        );
        assert_eq!(
            check(&other, &set),
            Err(Invalid::BadSignature),
            "{alg} payload swap"
        );
    }
}

#[test]
fn unknown_kid_is_refused() {
    let fx = Fx::new();
    let set = fx.key_set();
    let t = fx.token(json!({"alg": "ES256", "kid": "nope"}), claims());
    assert_eq!(check(&t, &set), Err(Invalid::UnknownKid));
    let t = fx.token(json!({"alg": "ES256", "kid": 7}), claims());
    assert_eq!(check(&t, &set), Err(Invalid::KidNotString));
    // Without a kid, the keys of the token's algorithm are tried.
    let t = fx.token(json!({"alg": "ES256"}), claims());
    assert_eq!(check(&t, &set), Ok(()));
}

#[test]
fn keys_carried_by_the_token_and_crit_are_refused() {
    let fx = Fx::new();
    let set = fx.key_set();
    let jwk = Fx::ec_jwk(&fx.es256, "P-256", "es");
    for (member, value) in [
        ("jwk", jwk),
        ("jku", json!("https://evil.test/jwks.json")),
        ("x5u", json!("https://evil.test/cert.pem")),
        ("x5c", json!(["MIIB"])),
    ] {
        let mut h = json!({"alg": "ES256", "kid": "es"});
        h[member] = value;
        let t = fx.token(h, claims());
        assert_eq!(check(&t, &set), Err(Invalid::EmbeddedKey), "{member}");
    }
    for crit in [json!(["exp"]), json!([]), json!(["b64"])] {
        let t = fx.token(
            json!({"alg": "ES256", "kid": "es", "crit": crit, "b64": false}),
            claims(),
        );
        assert_eq!(check(&t, &set), Err(Invalid::Crit));
    }
}

#[test]
fn non_canonical_base64url_and_padding_are_refused() {
    let fx = Fx::new();
    let set = fx.key_set();
    let good = fx.token(json!({"alg": "ES256", "kid": "es"}), claims());
    assert_eq!(check(&good, &set), Ok(()));
    let (input, sig) = good.rsplit_once('.').unwrap();
    // 64 bytes are 86 characters: the last one carries 2 unused bits.
    assert_eq!(sig.len(), 86);
    let alphabet = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let last = sig.as_bytes()[85];
    let pos = alphabet.iter().position(|&c| c == last).unwrap();
    for bits in 1..4 {
        let mut s = sig.as_bytes().to_vec();
        s[85] = alphabet[pos ^ bits];
        let t = format!("{input}.{}", String::from_utf8(s).unwrap());
        assert_eq!(
            check(&t, &set),
            Err(Invalid::Base64),
            "trailing bits {bits}"
        );
    }
    // Padding, the standard alphabet, whitespace.
    let cases = [
        format!("{input}.{sig}=="),
        format!("{input}.{}", sig.replace('-', "+").replace('_', "/")),
        format!("{input}.{} ", sig),
        format!(
            "{input}.{}",
            base64::engine::general_purpose::URL_SAFE.encode(d(sig))
        ),
    ];
    for t in &cases {
        if t.ends_with(sig) {
            continue; // the replacement changed nothing
        }
        assert_eq!(check(t, &set), Err(Invalid::Base64), "{t}");
    }
    // Padding on the header or the payload.
    let (h, rest) = good.split_once('.').unwrap();
    let (p, s) = rest.split_once('.').unwrap();
    let padded = |x: &str| {
        let mut x = x.to_owned();
        while !x.len().is_multiple_of(4) {
            x.push('=');
        }
        x
    };
    if !h.len().is_multiple_of(4) {
        assert_eq!(
            check(&format!("{}.{p}.{s}", padded(h)), &set),
            Err(Invalid::Base64)
        );
    }
    if !p.len().is_multiple_of(4) {
        // The signature covers the bytes as sent: a re-signed padded
        // payload is still refused.
        let input = format!("{h}.{}", padded(p));
        let t = format!("{input}.{}", e(&fx.sign("ES256", input.as_bytes())));
        assert_eq!(check(&t, &set), Err(Invalid::Base64));
    }
    // Four parts, two parts, a dot too many.
    assert_eq!(
        check(&format!("{good}.x"), &set),
        Err(Invalid::NotThreeParts)
    );
    assert_eq!(
        check(&format!("{h}.{p}"), &set),
        Err(Invalid::NotThreeParts)
    );
    assert_eq!(
        check(&format!("{h}..{p}.{s}"), &set),
        Err(Invalid::NotThreeParts)
    );
}

#[test]
fn header_and_payload_must_be_json_objects_without_duplicates() {
    let fx = Fx::new();
    let set = fx.key_set();
    let claims_text = claims().to_string();
    for header in [
        r#"{"alg":"ES256","kid":"es","kid":"hs"}"#,
        r#"{"alg":"ES256","alg":"none","kid":"es"}"#,
        r#"["ES256"]"#,
        r#""ES256""#,
        r#"{"alg":"ES256","kid":"es"} x"#,
        "not json",
    ] {
        let t = fx.raw_token(header, &claims_text, "ES256");
        assert_eq!(check(&t, &set), Err(Invalid::HeaderNotObject), "{header}");
    }
    let h = r#"{"alg":"ES256","kid":"es"}"#;
    let exp = NOW + 600;
    for payload in [
        format!(r#"{{"sub":"alice","sub":"admin","exp":{exp}}}"#),
        format!(r#"{{"sub":"alice","exp":{exp},"exp":{}}}"#, NOW + 999_999),
        format!(r#"{{"exp":{exp},"x":{{"role":"a","role":"b"}}}}"#),
        format!(r#"{{"exp":{exp},"x":[{{"a":1,"a":2}}]}}"#),
        "[1,2]".to_owned(),
        "\"text\"".to_owned(),
        "42".to_owned(),
        "null".to_owned(),
        "Example of Ed25519 signing".to_owned(),
        format!(r#"{{"exp":{exp}}}{{}}"#),
    ] {
        let t = fx.raw_token(h, &payload, "ES256");
        assert_eq!(check(&t, &set), Err(Invalid::PayloadNotObject), "{payload}");
    }
}

#[test]
fn oversized_tokens_are_refused_before_parsing() {
    let fx = Fx::new();
    let set = fx.key_set();
    let mut c = claims();
    c["pad"] = json!("x".repeat(verify::MAX_TOKEN_BYTES));
    let t = fx.token(json!({"alg": "HS256", "kid": "hs"}), c);
    assert_eq!(check(&t, &set), Err(Invalid::TooLong));
}

#[test]
fn time_claims_with_leeway() {
    let fx = Fx::new();
    let set = fx.key_set();
    let h = json!({"alg": "HS256", "kid": "hs"});
    let with = |c: serde_json::Value| check(&fx.token(h.clone(), c), &set);
    assert_eq!(with(json!({"exp": NOW - 61})), Err(Invalid::Expired));
    assert_eq!(with(json!({"exp": NOW - 60})), Err(Invalid::Expired));
    assert_eq!(with(json!({"exp": NOW - 59})), Ok(()));
    assert_eq!(
        with(json!({"exp": NOW + 10, "nbf": NOW + 61})),
        Err(Invalid::NotYetValid)
    );
    assert_eq!(with(json!({"exp": NOW + 10, "nbf": NOW + 60})), Ok(()));
    assert_eq!(with(json!({"sub": "a"})), Err(Invalid::MissingExp));
    assert_eq!(with(json!({"exp": "tomorrow"})), Err(Invalid::BadTimeClaim));
    assert_eq!(
        with(json!({"exp": NOW + 10, "nbf": null})),
        Err(Invalid::BadTimeClaim)
    );
    assert_eq!(with(json!({"exp": (NOW + 10) as f64 + 0.5})), Ok(()));
}

#[test]
fn issuer_audience_max_age_and_required_claims() {
    let fx = Fx::new();
    let set = fx.key_set();
    let checks = super::claims::ClaimChecks {
        leeway: 0,
        max_age: Some(300),
        issuers: vec!["https://issuer.test".into()].into(),
        audiences: vec!["orders".into(), "billing".into()].into(),
        required: vec!["sub".into()].into(),
    };
    let h = json!({"alg": "ES256", "kid": "es"});
    let run = |c: serde_json::Value| {
        let t = fx.token(h.clone(), c);
        checks.check(&verify::verify(t.as_bytes(), &[&set])?, NOW)
    };
    let base = claims();
    assert!(run(base.clone()).is_ok());
    let mut c = base.clone();
    c["iss"] = json!("https://evil.test");
    assert_eq!(run(c), Err(Invalid::Issuer));
    let mut c = base.clone();
    c["iss"] = json!(["https://issuer.test"]);
    assert_eq!(run(c), Err(Invalid::Issuer));
    let mut c = base.clone();
    c["aud"] = json!("other");
    assert_eq!(run(c), Err(Invalid::Audience));
    let mut c = base.clone();
    c["aud"] = json!(["other", "billing"]);
    assert!(run(c).is_ok());
    let mut c = base.clone();
    c.as_object_mut().unwrap().remove("aud");
    assert_eq!(run(c), Err(Invalid::Audience));
    let mut c = base.clone();
    c["iat"] = json!(NOW - 301);
    assert_eq!(run(c), Err(Invalid::TooOld));
    let mut c = base.clone();
    c["iat"] = json!(NOW + 5);
    assert_eq!(run(c), Err(Invalid::IssuedInFuture));
    let mut c = base.clone();
    c.as_object_mut().unwrap().remove("sub");
    assert_eq!(run(c), Err(Invalid::MissingClaim));
    // The cache deadline is the earlier of exp and iat + max_age.
    assert_eq!(run(base).unwrap(), (NOW - 10 + 300) as f64);
}

// ---- the RFC examples ------------------------------------------------------

fn rfc_set() -> KeySet {
    let jwks = json!({"keys": [
        {"kty": "oct", "k": A1_KEY},
        {"kty": "RSA", "n": A2_N, "e": A2_E},
        {"kty": "EC", "crv": "P-256", "x": A3_X, "y": A3_Y},
        {"kty": "OKP", "crv": "Ed25519", "x": ED_X},
    ]});
    keys::parse_jwks(jwks.to_string().as_bytes()).unwrap()
}

#[test]
fn rfc7515_examples_verify_at_their_time_and_expire_after() {
    let set = rfc_set();
    let checks = super::claims::ClaimChecks::default();
    for t in [A1_TOKEN, A2_TOKEN, A3_TOKEN] {
        let c = verify::verify(t.as_bytes(), &[&set]).expect(t);
        assert_eq!(c["iss"], "joe");
        assert_eq!(c["http://example.com/is_root"], true);
        assert!(checks.check(&c, A_EXP - 1).is_ok(), "{t}");
        assert_eq!(checks.check(&c, A_EXP), Err(Invalid::Expired));
        assert_eq!(checks.check(&c, NOW), Err(Invalid::Expired));
    }
}

#[test]
fn rfc8037_ed25519_example_signature_verifies() {
    let set = rfc_set();
    let (input, sig) = ED_TOKEN.rsplit_once('.').unwrap();
    let key = Key::ed25519(&d(ED_X), None).unwrap();
    assert!(key.verify(input.as_bytes(), &d(sig)));
    assert!(!key.verify(b"eyJhbGciOiJFZERTQSJ9.eA", &d(sig)));
    // Its payload is text, not claims: the whole token is refused after
    // the signature check passed.
    assert_eq!(
        verify::verify(ED_TOKEN.as_bytes(), &[&set]),
        Err(Invalid::PayloadNotObject)
    );
}

// ---- keys ------------------------------------------------------------------

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

fn der_uint(be: &[u8]) -> Vec<u8> {
    let mut v = be.to_vec();
    if v[0] & 0x80 != 0 {
        v.insert(0, 0);
    }
    der(0x02, &v)
}

/// A PEM SubjectPublicKeyInfo for `algorithm` (DER of the
/// AlgorithmIdentifier contents) and the key bytes.
pub(super) fn spki_pem(algorithm: &[u8], key: &[u8]) -> String {
    let bits = [&[0u8][..], key].concat();
    let spki = der(0x30, &[der(0x30, algorithm), der(0x03, &bits)].concat());
    let b64 = base64::engine::general_purpose::STANDARD.encode(spki);
    let mut pem = String::from("-----BEGIN PUBLIC KEY-----\n");
    for line in b64.as_bytes().chunks(64) {
        pem.push_str(std::str::from_utf8(line).unwrap());
        pem.push('\n');
    }
    pem.push_str("-----END PUBLIC KEY-----\n");
    pem
}

const RSA_ALG_ID: &[u8] = &[
    0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01, 0x05, 0x00,
];
const EC_P256_ALG_ID: &[u8] = &[
    0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, 0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d,
    0x03, 0x01, 0x07,
];
const EC_P384_ALG_ID: &[u8] = &[
    0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, 0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x22,
];
const ED25519_ALG_ID: &[u8] = &[0x06, 0x03, 0x2b, 0x65, 0x70];

#[test]
fn pem_public_keys_of_each_type() {
    let fx = Fx::new();
    let rsa_pkcs1 = der(0x30, &[der_uint(&d(A2_N)), der_uint(&d(A2_E))].concat());
    let cases = [
        (spki_pem(RSA_ALG_ID, &rsa_pkcs1), None, Alg::Rs256, "RS256"),
        (
            spki_pem(RSA_ALG_ID, &rsa_pkcs1),
            Some(Alg::Ps256),
            Alg::Ps256,
            "PS256",
        ),
        (
            spki_pem(EC_P256_ALG_ID, fx.es256.public_key().as_ref()),
            None,
            Alg::Es256,
            "ES256",
        ),
        (
            spki_pem(EC_P384_ALG_ID, fx.es384.public_key().as_ref()),
            None,
            Alg::Es384,
            "ES384",
        ),
        (
            spki_pem(ED25519_ALG_ID, fx.ed.public_key().as_ref()),
            None,
            Alg::EdDsa,
            "EdDSA",
        ),
    ];
    for (pem, alg, want, name) in cases {
        let key = keys::parse_pem(pem.as_bytes(), alg, Some("k")).expect(name);
        assert_eq!(key.alg, want);
        let set = KeySet { keys: vec![key] };
        let t = fx.token(json!({"alg": name, "kid": "k"}), claims());
        assert_eq!(check(&t, &set), Ok(()), "{name}");
    }
    // A key cannot be given another family's algorithm.
    let ec = spki_pem(EC_P256_ALG_ID, fx.es256.public_key().as_ref());
    assert!(keys::parse_pem(ec.as_bytes(), Some(Alg::Hs256), None).is_err());
    assert!(keys::parse_pem(ec.as_bytes(), Some(Alg::Es384), None).is_err());
    let rsa = spki_pem(RSA_ALG_ID, &rsa_pkcs1);
    assert!(keys::parse_pem(rsa.as_bytes(), Some(Alg::Es256), None).is_err());
    assert!(keys::parse_pem(
        b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
        None,
        None
    )
    .is_err());
}

#[test]
fn weak_keys_and_bad_jwks_are_refused_at_load() {
    assert!(Key::hmac(b"short", Alg::Hs256, None).is_err());
    assert!(Key::hmac(&[7; 32], Alg::Hs384, None).is_err());
    assert!(Key::hmac(&[7; 32], Alg::Hs256, None).is_ok());
    assert!(Key::rsa(&[0xff; 128], &[1, 0, 1], Alg::Rs256, None).is_err());
    assert!(Key::rsa(&d(A2_N), &d(A2_E), Alg::Es256, None).is_err());
    // A leading zero byte on the modulus is accepted (and stripped).
    let n0 = [&[0u8][..], &d(A2_N)].concat();
    let k = Key::rsa(&n0, &d(A2_E), Alg::Rs256, None).unwrap();
    let (input, sig) = A2_TOKEN.rsplit_once('.').unwrap();
    assert!(k.verify(input.as_bytes(), &d(sig)));
    for bad in [
        r#"{"keys": [{"kty": "EC", "crv": "P-256", "x": "AAAA"}]}"#,
        r#"{"keys": [{"kty": "RSA", "n": 5, "e": "AQAB"}]}"#,
        r#"{"keys": [{"kty": "EC", "crv": "P-256", "alg": "ES384", "x": "AA", "y": "AA"}]}"#,
        r#"{"keys": [{"kty": "oct", "k": "c2hvcnQ"}]}"#,
        r#"{"keys": "none"}"#,
        "[]",
    ] {
        assert!(keys::parse_jwks(bad.as_bytes()).is_err(), "{bad}");
    }
    // Keys ringway does not verify with are skipped.
    let skipped = r#"{"keys": [{"kty": "EC", "crv": "P-521", "x": "AA", "y": "AA"}, {"kty": "OKP", "crv": "X25519", "x": "AA"}]}"#;
    assert!(keys::parse_jwks(skipped.as_bytes())
        .unwrap()
        .keys
        .is_empty());
}

// ---- the filter ------------------------------------------------------------

struct Files {
    dir: std::path::PathBuf,
}

impl Files {
    fn new(label: &str) -> Files {
        static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let dir = std::env::temp_dir().join(format!(
            "ringway-jwt-{label}-{}-{}",
            std::process::id(),
            N.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir).unwrap();
        Files { dir }
    }
    fn write(&self, name: &str, data: impl AsRef<[u8]>) {
        std::fs::write(self.dir.join(name), data).unwrap();
    }
}

impl Drop for Files {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Build a filter from TOML keys (after `type = "jwt"`), with the fixture's
/// JWKS as `jwks.json` beside it, at the fixed time NOW.
fn filter(fx: &Fx, toml_keys: &str) -> JwtFilter {
    let files = Files::new("filter");
    files.write("jwks.json", fx.jwks().to_string());
    let file: JwtFile = toml::from_str(toml_keys).expect("jwt keys parse");
    let mut p = Vec::new();
    let built = file.build(&files.dir, &mut p);
    assert!(p.is_empty(), "{p:?}");
    let mut f = built.unwrap();
    f.clock = Clock::Fixed(NOW);
    f
}

fn run(raw: &[u8], f: &JwtFilter, state: &mut FilterState) -> Flow {
    state.clear();
    let mut head = RequestHead::default();
    let limits = HeadLimits {
        max_head_bytes: 64 * 1024,
        max_headers: 100,
    };
    assert!(parse_request_head(raw, &limits, &mut head).unwrap());
    let mut cx = RequestCx {
        buf: raw,
        head: &head,
        client: "192.0.2.7:5555".parse().unwrap(),
        listener: "l",
        tls: None,
        route: "r",
        request_id: b"rid",
        state,
    };
    f.on_request(&mut cx)
}

fn get(extra: &str) -> Vec<u8> {
    format!("GET /orders?x=1 HTTP/1.1\r\nHost: a\r\n{extra}\r\n").into_bytes()
}

fn status(flow: &Flow) -> u16 {
    match flow {
        Flow::Continue => 0,
        Flow::Respond(r) => r.status,
        Flow::Reject(e) => panic!("unexpected reject {e:?}"),
    }
}

fn challenge(state: &FilterState) -> Option<String> {
    state
        .response
        .get(b"www-authenticate")
        .map(|v| String::from_utf8(v.to_vec()).unwrap())
}

#[test]
fn filter_answers_401_403_and_forwards_claims() {
    let fx = Fx::new();
    let f = filter(
        &fx,
        r#"
        jwks_file = "jwks.json"
        issuers = ["https://issuer.test"]
        audiences = ["orders"]
        realm = "orders"
        rules = [{ claim = "scope", contains = "read:orders" }, { claim = "role", any_of = ["admin", "ops"] }]
        forward_claims = { sub = "x-user-id", email = "X-User-Email", tenant = "x-tenant" }
        claims_to_vars = ["sub", "tenant"]
        "#,
    );
    let mut st = FilterState::default();
    let spoof = "x-user-id: root\r\nx-user-email: root@evil\r\n";

    // No token: 401 without an error code; spoofed fields removed anyway.
    let flow = run(&get(spoof), &f, &mut st);
    assert_eq!(status(&flow), 401);
    assert_eq!(challenge(&st).as_deref(), Some(r#"Bearer realm="orders""#));
    assert!(st.request.drops(b"x-user-id") && st.request.drops(b"x-user-email"));

    // A bad token: 401 invalid_token; spoofed fields removed.
    let flow = run(
        &get(&format!("{spoof}Authorization: Bearer a.b.c\r\n")),
        &f,
        &mut st,
    );
    assert_eq!(status(&flow), 401);
    assert_eq!(
        challenge(&st).as_deref(),
        Some(r#"Bearer realm="orders", error="invalid_token""#)
    );
    assert!(st.request.drops(b"x-user-id"));

    // Valid, with the scope and role: forwarded with the claim fields.
    let mut c = claims();
    c["scope"] = json!("openid read:orders write:orders");
    c["role"] = json!(["viewer", "ops"]);
    c["email"] = json!("alice@example.com");
    c["tenant"] = json!(42);
    let t = fx.token(json!({"alg": "ES256", "kid": "es"}), c.clone());
    let flow = run(
        &get(&format!("{spoof}Authorization: Bearer {t}\r\n")),
        &f,
        &mut st,
    );
    assert!(matches!(flow, Flow::Continue), "{flow:?}");
    assert_eq!(st.request.get(b"x-user-id"), Some(&b"alice"[..]));
    assert_eq!(
        st.request.get(b"x-user-email"),
        Some(&b"alice@example.com"[..])
    );
    assert_eq!(st.request.get(b"x-tenant"), Some(&b"42"[..]));
    assert_eq!(st.vars.get("sub"), Some(&b"alice"[..]));
    assert_eq!(st.vars.get("tenant"), Some(&b"42"[..]));
    assert!(challenge(&st).is_none());

    // Valid but without the scope: 403 insufficient_scope, nothing forwarded.
    let mut c2 = c.clone();
    c2["scope"] = json!("read:orders-archive");
    let t = fx.token(json!({"alg": "ES256", "kid": "es"}), c2);
    let flow = run(
        &get(&format!("{spoof}Authorization: Bearer {t}\r\n")),
        &f,
        &mut st,
    );
    assert_eq!(status(&flow), 403);
    assert_eq!(
        challenge(&st).as_deref(),
        Some(r#"Bearer realm="orders", error="insufficient_scope""#)
    );
    assert_eq!(st.request.get(b"x-user-id"), None);
    assert!(st.request.drops(b"x-user-id"));
    let mut c3 = c.clone();
    c3["role"] = json!("viewer");
    let t = fx.token(json!({"alg": "ES256", "kid": "es"}), c3);
    assert_eq!(
        status(&run(
            &get(&format!("Authorization: Bearer {t}\r\n")),
            &f,
            &mut st
        )),
        403
    );

    // Two Authorization fields, another scheme, lower-case scheme.
    let t = fx.token(json!({"alg": "ES256", "kid": "es"}), c.clone());
    let two = format!("Authorization: Bearer {t}\r\nAuthorization: Bearer {t}\r\n");
    assert_eq!(status(&run(&get(&two), &f, &mut st)), 401);
    assert!(challenge(&st).unwrap().contains("invalid_token"));
    assert_eq!(
        status(&run(&get("Authorization: Basic YTpi\r\n"), &f, &mut st)),
        401
    );
    assert_eq!(challenge(&st).as_deref(), Some(r#"Bearer realm="orders""#));
    let lower = format!("authorization: bearer {t}\r\n");
    assert!(matches!(run(&get(&lower), &f, &mut st), Flow::Continue));
}

#[test]
fn rules_equals_and_contains_on_arrays() {
    let fx = Fx::new();
    let f = filter(
        &fx,
        r#"
        jwks_file = "jwks.json"
        rules = [{ claim = "tenant", equals = "acme" }, { claim = "scp", contains = "read" }, { claim = "n", equals = "7" }]
        "#,
    );
    let mut st = FilterState::default();
    let h = json!({"alg": "EdDSA", "kid": "ed"});
    let try_claims = |st: &mut FilterState, c: serde_json::Value| {
        let t = fx.token(h.clone(), c);
        status(&run(
            &get(&format!("Authorization: Bearer {t}\r\n")),
            &f,
            st,
        ))
    };
    let exp = NOW + 100;
    assert_eq!(
        try_claims(
            &mut st,
            json!({"exp": exp, "tenant": "acme", "scp": ["write", "read"], "n": 7})
        ),
        0
    );
    assert_eq!(
        try_claims(
            &mut st,
            json!({"exp": exp, "tenant": "acme", "scp": ["reader"], "n": 7})
        ),
        403
    );
    assert_eq!(
        try_claims(
            &mut st,
            json!({"exp": exp, "tenant": "ACME", "scp": "read", "n": 7})
        ),
        403
    );
    assert_eq!(
        try_claims(
            &mut st,
            json!({"exp": exp, "tenant": "acme", "scp": "read", "n": "7"})
        ),
        0
    );
    assert_eq!(
        try_claims(
            &mut st,
            json!({"exp": exp, "tenant": "acme", "scp": "read"})
        ),
        403
    );
}

#[test]
fn token_from_header_cookie_and_query() {
    let fx = Fx::new();
    let t = fx.token(json!({"alg": "RS256", "kid": "rs"}), claims());
    let mut st = FilterState::default();

    let f = filter(&fx, "jwks_file = \"jwks.json\"\nfrom_header = \"X-Token\"");
    assert!(matches!(
        run(&get(&format!("x-token: {t}\r\n")), &f, &mut st),
        Flow::Continue
    ));
    assert!(
        st.request.drops(b"x-token"),
        "strip (default) drops the field"
    );
    let f = filter(
        &fx,
        "jwks_file = \"jwks.json\"\nfrom_header = \"X-Token\"\nstrip = false",
    );
    assert!(matches!(
        run(&get(&format!("x-token: {t}\r\n")), &f, &mut st),
        Flow::Continue
    ));
    assert!(!st.request.drops(b"x-token"), "strip = false keeps it");
    assert_eq!(
        status(&run(
            &get(&format!("Authorization: Bearer {t}\r\n")),
            &f,
            &mut st
        )),
        401
    );

    let f = filter(&fx, "jwks_file = \"jwks.json\"\nfrom_cookie = \"jwt\"");
    let cookie = format!("Cookie: a=1; jwt={t}; b=2\r\n");
    assert!(matches!(run(&get(&cookie), &f, &mut st), Flow::Continue));
    assert!(!st.request.drops(b"cookie"));
    let twice = format!("Cookie: jwt={t}\r\nCookie: jwt={t}\r\n");
    assert_eq!(status(&run(&get(&twice), &f, &mut st)), 401);
    assert!(challenge(&st).unwrap().contains("invalid_token"));
    assert_eq!(status(&run(&get("Cookie: jwt2=x\r\n"), &f, &mut st)), 401);
    assert!(!challenge(&st).unwrap().contains("error"));

    let f = filter(
        &fx,
        "jwks_file = \"jwks.json\"\nfrom_query = \"access_token\"",
    );
    let raw = format!("GET /o?a=1&access_token={t}&b=2 HTTP/1.1\r\nHost: a\r\n\r\n");
    assert!(matches!(run(raw.as_bytes(), &f, &mut st), Flow::Continue));
    let raw = "GET /o?access_token=&b=2 HTTP/1.1\r\nHost: a\r\n\r\n";
    assert_eq!(status(&run(raw.as_bytes(), &f, &mut st)), 401);
}

#[test]
fn the_cache_never_outlives_exp_and_is_per_filter() {
    let fx = Fx::new();
    let mut f = filter(&fx, "jwks_file = \"jwks.json\"\nleeway = 0\ncache_size = 2");
    let mut st = FilterState::default();
    let t = fx.token(
        json!({"alg": "PS256", "kid": "ps"}),
        json!({"exp": NOW + 10, "sub": "a"}),
    );
    let req = get(&format!("Authorization: Bearer {t}\r\n"));
    assert!(matches!(run(&req, &f, &mut st), Flow::Continue));
    assert_eq!(super::cache::len(f.id), 1);
    // A hit is served from the cache (even with no keys left).
    let keys = std::mem::take(&mut f.keys);
    assert!(matches!(run(&req, &f, &mut st), Flow::Continue));
    // At exp the hit is refused and the entry goes.
    f.clock = Clock::Fixed(NOW + 10);
    assert_eq!(status(&run(&req, &f, &mut st)), 401);
    assert_eq!(super::cache::len(f.id), 0);
    f.keys = keys;
    // Another filter (other id) does not see this one's entries.
    f.clock = Clock::Fixed(NOW);
    assert!(matches!(run(&req, &f, &mut st), Flow::Continue));
    let mut other = filter(&fx, "jwks_file = \"jwks.json\"\nissuers = [\"x\"]");
    other.clock = Clock::Fixed(NOW);
    assert_eq!(status(&run(&req, &other, &mut st)), 401);
    // Full: cleared.
    for i in 0..3 {
        let t = fx.token(
            json!({"alg": "HS256", "kid": "hs"}),
            json!({"exp": NOW + 10, "i": i}),
        );
        assert!(matches!(
            run(&get(&format!("Authorization: Bearer {t}\r\n")), &f, &mut st),
            Flow::Continue
        ));
        assert!(super::cache::len(f.id) <= 2);
    }
    // cache_size = 0: nothing kept.
    let off = filter(&fx, "jwks_file = \"jwks.json\"\ncache_size = 0");
    assert!(matches!(run(&req, &off, &mut st), Flow::Continue));
    assert_eq!(super::cache::len(off.id), 0);
}

#[test]
fn config_problems_are_reported_by_key() {
    let fx = Fx::new();
    let files = Files::new("config");
    files.write("jwks.json", fx.jwks().to_string());
    files.write("short.bin", b"0123456789");
    files.write("secret.bin", [9u8; 48]);
    let problems = |text: &str| {
        let file: JwtFile = toml::from_str(text).unwrap();
        let mut p = Vec::new();
        let built = file.build(&files.dir, &mut p);
        assert_eq!(built.is_none(), !p.is_empty());
        p.into_iter().map(|(k, _)| k).collect::<Vec<_>>()
    };
    assert_eq!(problems(""), [""]);
    assert_eq!(
        problems("jwks_file = \"jwks.json\"\nfrom_header = \"a\"\nfrom_cookie = \"b\""),
        ["from_cookie"]
    );
    assert_eq!(problems("jwks_file = \"missing.json\""), ["jwks_file"]);
    assert_eq!(
        problems("keys = [{ hmac_secret_file = \"short.bin\" }, { hmac_secret_file = \"secret.bin\", alg = \"RS256\" }, { pem = \"x\", hmac_secret_file = \"y\" }, { hmac_secret_file = \"secret.bin\", alg = \"none\" }]"),
        ["keys[0].hmac_secret_file", "keys[1].hmac_secret_file", "keys[2]", "keys[3].alg"]
    );
    assert!(problems(
        "keys = [{ hmac_secret_file = \"secret.bin\", alg = \"HS384\", kid = \"s\" }]"
    )
    .is_empty());
    assert_eq!(
        problems("jwks_file = \"jwks.json\"\nrules = [{ claim = \"a\" }, { claim = \"b\", equals = \"x\", contains = \"y\" }]\nclaims_to_vars = [\"a.b\"]\nforward_claims = { sub = \"bad name\", x = \"content-length\" }\nrealm = 'a\"b'\nleeway = -1"),
        ["leeway", "rules[0]", "rules[1]", "forward_claims.sub", "forward_claims.x", "claims_to_vars[0]", "realm"]
    );
    assert_eq!(
        problems("jwks_url = \"http://idp.test/jwks\""),
        ["jwks_url"]
    );
    assert_eq!(
        problems(
            "jwks_url = \"https://idp.test/jwks\"\njwks_refresh = 0\njwks_ca = \"missing.pem\""
        ),
        ["jwks_refresh", "jwks_ca"]
    );
    assert_eq!(
        problems("jwks_file = \"jwks.json\"\njwks_refresh = \"1m\""),
        ["jwks_refresh"]
    );
    // Relative paths resolve against the base directory; absolute ones not.
    let abs = files.dir.join("jwks.json");
    assert!(problems(&format!("jwks_file = {:?}", abs.display().to_string())).is_empty());
    let _ = Path::new("");
}

// ---- jwks_url pieces (the fetch itself: tests/integration/jwt.rs) ----------

#[test]
fn a_config_check_starts_no_jwks_fetcher() {
    // No test in this binary calls `allow_fetching` (only `ringway run`
    // does): building a filter with a `jwks_url` must not start a thread,
    // so `ringway check` sends nothing anywhere.
    use super::remote::{FetchConfig, RemoteJwks};
    let tls = rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(rustls::RootCertStore::empty())
    .with_no_client_auth();
    let remote = RemoteJwks::start(FetchConfig {
        url: "https://127.0.0.1:9/jwks".into(),
        host: "127.0.0.1".into(),
        port: 9,
        target: "/jwks".into(),
        tls: std::sync::Arc::new(tls),
        refresh: std::time::Duration::from_secs(60),
    })
    .unwrap();
    assert!(!remote.is_fetching());
    assert!(remote.keys().is_none());
}

#[test]
fn jwks_urls_are_https_with_a_host() {
    use super::remote::parse_url;
    assert_eq!(
        parse_url("https://IdP.test/.well-known/jwks.json?v=1"),
        Ok(("idp.test".into(), 443, "/.well-known/jwks.json?v=1".into()))
    );
    assert_eq!(
        parse_url("https://127.0.0.1:8443"),
        Ok(("127.0.0.1".into(), 8443, "/".into()))
    );
    assert_eq!(
        parse_url("https://[::1]:9000/k"),
        Ok(("::1".into(), 9000, "/k".into()))
    );
    for bad in [
        "http://idp.test/jwks",
        "https://",
        "https://user@idp.test/",
        "https://idp.test:0/",
        "https://idp.test:x/",
        "https://idp.test/a b",
        "https://idp.test/a#frag",
    ] {
        assert!(parse_url(bad).is_err(), "{bad}");
    }
}

#[test]
fn jwks_responses_by_length_chunked_or_close() {
    use super::remote::body_of;
    let doc = br#"{"keys":[]}"#;
    let cl = [&b"HTTP/1.1 200 OK\r\nContent-Length: 11\r\n\r\n"[..], doc].concat();
    assert_eq!(body_of(&cl).unwrap(), doc);
    let chunked = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\n{\"key\r\n6;x=y\r\ns\":[]}\r\n0\r\n\r\n";
    assert_eq!(body_of(chunked).unwrap(), doc);
    let close = [&b"HTTP/1.1 200 OK\r\n\r\n"[..], doc].concat();
    assert_eq!(body_of(&close).unwrap(), doc);
    assert!(body_of(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n").is_err());
    assert!(body_of(b"HTTP/1.1 200 OK\r\nContent-Length: 20\r\n\r\n{}").is_err());
    assert!(body_of(b"HTTP/1.1 200 OK\r\nContent-Length: 99999999\r\n\r\n").is_err());
    assert!(body_of(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nab").is_err());
}
