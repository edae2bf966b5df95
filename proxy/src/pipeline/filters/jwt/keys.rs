//! Verification keys and the algorithm each one allows.
//!
//! The key decides the algorithm, never the token: an RSA key allows one of
//! RS256/384/512 or PS256/384/512, a P-256 key ES256, a P-384 key ES384, an
//! Ed25519 key EdDSA, an HMAC secret one of HS256/384/512. A token is checked
//! only against keys whose algorithm equals its `alg`. Every signature check
//! is `ring`'s (HMAC tags compared in constant time by `ring::hmac::verify`).
//!
//! Sources: a JWKS document (RFC 7517: RSA `n`/`e`, EC P-256/P-384 `x`/`y`,
//! OKP Ed25519 `x`, oct `k`), PEM SubjectPublicKeyInfo public keys, and HMAC
//! secret files. All are read when the configuration loads.

use std::fmt;

use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig};
use base64::engine::DecodePaddingMode;
use base64::Engine;
use ring::signature::{self, RsaPublicKeyComponents, UnparsedPublicKey};
use serde_json::Value;

/// Base64url as JWK members are written (padding tolerated: these come from
/// configuration, not from requests).
const JWK_B64: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::URL_SAFE,
    GeneralPurposeConfig::new()
        .with_encode_padding(false)
        .with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// A JWS algorithm ringway verifies (RFC 7518 §3.1, RFC 8037 §3.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Alg {
    Rs256,
    Rs384,
    Rs512,
    Ps256,
    Ps384,
    Ps512,
    Es256,
    Es384,
    EdDsa,
    Hs256,
    Hs384,
    Hs512,
}

/// The key type an algorithm needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Family {
    Rsa,
    P256,
    P384,
    Ed25519,
    Hmac,
}

impl Alg {
    pub const ALL: [Alg; 12] = [
        Alg::Rs256,
        Alg::Rs384,
        Alg::Rs512,
        Alg::Ps256,
        Alg::Ps384,
        Alg::Ps512,
        Alg::Es256,
        Alg::Es384,
        Alg::EdDsa,
        Alg::Hs256,
        Alg::Hs384,
        Alg::Hs512,
    ];

    /// The algorithm named exactly `name` (JOSE names are case-sensitive).
    pub fn from_name(name: &str) -> Option<Alg> {
        Alg::ALL.into_iter().find(|a| a.name() == name)
    }

    pub fn name(self) -> &'static str {
        match self {
            Alg::Rs256 => "RS256",
            Alg::Rs384 => "RS384",
            Alg::Rs512 => "RS512",
            Alg::Ps256 => "PS256",
            Alg::Ps384 => "PS384",
            Alg::Ps512 => "PS512",
            Alg::Es256 => "ES256",
            Alg::Es384 => "ES384",
            Alg::EdDsa => "EdDSA",
            Alg::Hs256 => "HS256",
            Alg::Hs384 => "HS384",
            Alg::Hs512 => "HS512",
        }
    }

    fn family(self) -> Family {
        match self {
            Alg::Rs256 | Alg::Rs384 | Alg::Rs512 | Alg::Ps256 | Alg::Ps384 | Alg::Ps512 => {
                Family::Rsa
            }
            Alg::Es256 => Family::P256,
            Alg::Es384 => Family::P384,
            Alg::EdDsa => Family::Ed25519,
            Alg::Hs256 | Alg::Hs384 | Alg::Hs512 => Family::Hmac,
        }
    }

    fn rsa_params(self) -> &'static signature::RsaParameters {
        match self {
            Alg::Rs384 => &signature::RSA_PKCS1_2048_8192_SHA384,
            Alg::Rs512 => &signature::RSA_PKCS1_2048_8192_SHA512,
            Alg::Ps256 => &signature::RSA_PSS_2048_8192_SHA256,
            Alg::Ps384 => &signature::RSA_PSS_2048_8192_SHA384,
            Alg::Ps512 => &signature::RSA_PSS_2048_8192_SHA512,
            _ => &signature::RSA_PKCS1_2048_8192_SHA256,
        }
    }

    fn hmac(self) -> ring::hmac::Algorithm {
        match self {
            Alg::Hs384 => ring::hmac::HMAC_SHA384,
            Alg::Hs512 => ring::hmac::HMAC_SHA512,
            _ => ring::hmac::HMAC_SHA256,
        }
    }
}

/// The public half (or HMAC secret) of one key.
#[derive(Clone)]
enum Material {
    Rsa(RsaPublicKeyComponents<Vec<u8>>),
    /// An uncompressed EC point (`04 || x || y`).
    Ec(Vec<u8>),
    Ed25519(Vec<u8>),
    Hmac(ring::hmac::Key),
}

/// One verification key: the algorithm it allows and its `kid`, if any.
#[derive(Clone)]
pub struct Key {
    pub kid: Option<Box<str>>,
    pub alg: Alg,
    material: Material,
}

impl fmt::Debug for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never print key material (an HMAC secret is one).
        f.debug_struct("Key")
            .field("kid", &self.kid)
            .field("alg", &self.alg.name())
            .finish()
    }
}

fn strip_leading_zeros(mut b: &[u8]) -> &[u8] {
    while let [0, rest @ ..] = b {
        b = rest;
    }
    b
}

fn family_error(alg: Alg, what: &str) -> String {
    format!("algorithm {} cannot be used with {what}", alg.name())
}

impl Key {
    /// An RSA public key (big-endian modulus and exponent).
    pub fn rsa(n: &[u8], e: &[u8], alg: Alg, kid: Option<&str>) -> Result<Key, String> {
        if alg.family() != Family::Rsa {
            return Err(family_error(alg, "an RSA key"));
        }
        let (n, e) = (strip_leading_zeros(n), strip_leading_zeros(e));
        if n.len() < 256 {
            return Err(format!(
                "RSA modulus of {} bits: at least 2048 are required",
                n.len() * 8
            ));
        }
        if n.len() > 1024 || e.is_empty() || e.len() > 4 {
            return Err("RSA key out of range (modulus up to 8192 bits, a small exponent)".into());
        }
        Ok(Key {
            kid: kid.map(Into::into),
            alg,
            material: Material::Rsa(RsaPublicKeyComponents {
                n: n.to_vec(),
                e: e.to_vec(),
            }),
        })
    }

    /// An EC public key as an uncompressed point on P-256 (ES256) or P-384
    /// (ES384).
    pub fn ec(point: &[u8], alg: Alg, kid: Option<&str>) -> Result<Key, String> {
        let coord = match alg.family() {
            Family::P256 => 32,
            Family::P384 => 48,
            _ => return Err(family_error(alg, "an EC key")),
        };
        if point.len() != 1 + 2 * coord || point[0] != 4 {
            return Err(format!(
                "EC point for {} must be uncompressed, {} bytes",
                alg.name(),
                1 + 2 * coord
            ));
        }
        Ok(Key {
            kid: kid.map(Into::into),
            alg,
            material: Material::Ec(point.to_vec()),
        })
    }

    /// An Ed25519 public key (32 bytes).
    pub fn ed25519(x: &[u8], kid: Option<&str>) -> Result<Key, String> {
        if x.len() != signature::ED25519_PUBLIC_KEY_LEN {
            return Err("an Ed25519 public key is 32 bytes".into());
        }
        Ok(Key {
            kid: kid.map(Into::into),
            alg: Alg::EdDsa,
            material: Material::Ed25519(x.to_vec()),
        })
    }

    /// An HMAC secret; at least as long as the hash output (RFC 7518 §3.2).
    pub fn hmac(secret: &[u8], alg: Alg, kid: Option<&str>) -> Result<Key, String> {
        let min = match alg {
            Alg::Hs256 => 32,
            Alg::Hs384 => 48,
            Alg::Hs512 => 64,
            _ => return Err(family_error(alg, "an HMAC secret")),
        };
        if secret.len() < min {
            return Err(format!(
                "an {} secret must be at least {min} bytes (found {})",
                alg.name(),
                secret.len()
            ));
        }
        Ok(Key {
            kid: kid.map(Into::into),
            alg,
            material: Material::Hmac(ring::hmac::Key::new(alg.hmac(), secret)),
        })
    }

    /// Whether `sig` is this key's signature of `msg` under its algorithm.
    pub fn verify(&self, msg: &[u8], sig: &[u8]) -> bool {
        match &self.material {
            Material::Rsa(c) => c.verify(self.alg.rsa_params(), msg, sig).is_ok(),
            Material::Ec(point) => {
                let alg: &'static dyn signature::VerificationAlgorithm = match self.alg {
                    Alg::Es384 => &signature::ECDSA_P384_SHA384_FIXED,
                    _ => &signature::ECDSA_P256_SHA256_FIXED,
                };
                UnparsedPublicKey::new(alg, point).verify(msg, sig).is_ok()
            }
            Material::Ed25519(x) => UnparsedPublicKey::new(&signature::ED25519, x)
                .verify(msg, sig)
                .is_ok(),
            Material::Hmac(k) => ring::hmac::verify(k, msg, sig).is_ok(),
        }
    }
}

/// The keys one filter verifies against.
#[derive(Debug, Clone, Default)]
pub struct KeySet {
    pub keys: Vec<Key>,
}

/// Why no key was tried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyMiss {
    /// The token's `kid` names no key.
    UnknownKid,
    /// The key its `kid` names allows another algorithm.
    AlgMismatch,
    /// Without a `kid`: no key allows the token's algorithm.
    NoKeyForAlg,
}

/// The keys of `sets` a token with `alg` and `kid` may be verified with:
/// with a `kid`, the keys of that `kid` (each must allow `alg`); without,
/// every key that allows `alg`.
pub fn candidates<'a>(
    sets: &[&'a KeySet],
    alg: Alg,
    kid: Option<&str>,
) -> Result<Vec<&'a Key>, KeyMiss> {
    let all = || sets.iter().flat_map(|s| s.keys.iter());
    match kid {
        Some(kid) => {
            let named: Vec<&Key> = all().filter(|k| k.kid.as_deref() == Some(kid)).collect();
            if named.is_empty() {
                return Err(KeyMiss::UnknownKid);
            }
            let allowed: Vec<&Key> = named.into_iter().filter(|k| k.alg == alg).collect();
            if allowed.is_empty() {
                return Err(KeyMiss::AlgMismatch);
            }
            Ok(allowed)
        }
        None => {
            let allowed: Vec<&Key> = all().filter(|k| k.alg == alg).collect();
            if allowed.is_empty() {
                return Err(KeyMiss::NoKeyForAlg);
            }
            Ok(allowed)
        }
    }
}

fn member<'a>(jwk: &'a serde_json::Map<String, Value>, name: &str) -> Result<&'a str, String> {
    match jwk.get(name) {
        Some(Value::String(s)) => Ok(s),
        Some(_) => Err(format!("`{name}` must be a string")),
        None => Err(format!("`{name}` is missing")),
    }
}

fn b64_member(jwk: &serde_json::Map<String, Value>, name: &str) -> Result<Vec<u8>, String> {
    let text = member(jwk, name)?;
    JWK_B64
        .decode(text)
        .map_err(|e| format!("`{name}` is not base64url: {e}"))
}

/// One JWK (RFC 7517 §4, RFC 7518 §6, RFC 8037 §2). `Ok(None)`: a key that
/// is not for signatures (`use` other than `sig`) or of a type ringway does
/// not verify with (P-521, X25519, …): skipped.
pub fn parse_jwk(jwk: &serde_json::Map<String, Value>) -> Result<Option<Key>, String> {
    if let Some(u) = jwk.get("use") {
        if u.as_str() != Some("sig") {
            return Ok(None);
        }
    }
    let kid = match jwk.get("kid") {
        None => None,
        Some(Value::String(s)) => Some(s.as_str()),
        Some(_) => return Err("`kid` must be a string".into()),
    };
    let alg = match jwk.get("alg") {
        None => None,
        Some(Value::String(s)) => match Alg::from_name(s) {
            Some(a) => Some(a),
            None => return Ok(None),
        },
        Some(_) => return Err("`alg` must be a string".into()),
    };
    let key = match member(jwk, "kty")? {
        "RSA" => Key::rsa(
            &b64_member(jwk, "n")?,
            &b64_member(jwk, "e")?,
            alg.unwrap_or(Alg::Rs256),
            kid,
        )?,
        "EC" => {
            let default = match member(jwk, "crv")? {
                "P-256" => Alg::Es256,
                "P-384" => Alg::Es384,
                _ => return Ok(None),
            };
            let alg = alg.unwrap_or(default);
            if alg != default {
                return Err(family_error(alg, &format!("a {} key", member(jwk, "crv")?)));
            }
            let (x, y) = (b64_member(jwk, "x")?, b64_member(jwk, "y")?);
            let mut point = Vec::with_capacity(1 + x.len() + y.len());
            point.push(4);
            point.extend_from_slice(&x);
            point.extend_from_slice(&y);
            if x.len() != y.len() {
                return Err("`x` and `y` differ in length".into());
            }
            Key::ec(&point, alg, kid)?
        }
        "OKP" => {
            if member(jwk, "crv")? != "Ed25519" {
                return Ok(None);
            }
            if alg.is_some_and(|a| a != Alg::EdDsa) {
                return Err(family_error(alg.unwrap_or(Alg::EdDsa), "an Ed25519 key"));
            }
            Key::ed25519(&b64_member(jwk, "x")?, kid)?
        }
        "oct" => Key::hmac(&b64_member(jwk, "k")?, alg.unwrap_or(Alg::Hs256), kid)?,
        _ => return Ok(None),
    };
    Ok(Some(key))
}

/// A JWKS document: `{"keys": [ … ]}`. Keys that are skipped (see
/// [`parse_jwk`]) are left out; a malformed key is an error naming its index.
pub fn parse_jwks(bytes: &[u8]) -> Result<KeySet, String> {
    let doc: Value = serde_json::from_slice(bytes).map_err(|e| format!("not JSON: {e}"))?;
    let Some(list) = doc.get("keys").and_then(Value::as_array) else {
        return Err("expected a JSON object with a `keys` array".into());
    };
    let mut set = KeySet::default();
    for (i, k) in list.iter().enumerate() {
        let Some(obj) = k.as_object() else {
            return Err(format!("keys[{i}] is not an object"));
        };
        if let Some(key) = parse_jwk(obj).map_err(|e| format!("keys[{i}]: {e}"))? {
            set.keys.push(key);
        }
    }
    Ok(set)
}

const OID_RSA: &str = "1.2.840.113549.1.1.1";
const OID_EC: &str = "1.2.840.10045.2.1";
const OID_P256: &str = "1.2.840.10045.3.1.7";
const OID_P384: &str = "1.3.132.0.34";
const OID_ED25519: &str = "1.3.101.112";

/// A PEM `PUBLIC KEY` (SubjectPublicKeyInfo). `alg`: the algorithm the key
/// allows; when `None`, ES256 / ES384 / EdDSA from the curve, RS256 for RSA.
pub fn parse_pem(text: &[u8], alg: Option<Alg>, kid: Option<&str>) -> Result<Key, String> {
    use x509_parser::prelude::FromDer;
    use x509_parser::public_key::PublicKey;
    use x509_parser::x509::SubjectPublicKeyInfo;

    let (_, pem) =
        x509_parser::pem::parse_x509_pem(text).map_err(|_| "not a PEM file".to_string())?;
    if pem.label != "PUBLIC KEY" {
        return Err(format!(
            "expected a \"PUBLIC KEY\" PEM block (SubjectPublicKeyInfo), found {:?}",
            pem.label
        ));
    }
    let (rest, spki) = SubjectPublicKeyInfo::from_der(&pem.contents)
        .map_err(|_| "not a DER SubjectPublicKeyInfo".to_string())?;
    if !rest.is_empty() {
        return Err("trailing bytes after the SubjectPublicKeyInfo".into());
    }
    let oid = spki.algorithm.algorithm.to_id_string();
    match oid.as_str() {
        OID_RSA => match spki.parsed() {
            Ok(PublicKey::RSA(rsa)) => {
                Key::rsa(rsa.modulus, rsa.exponent, alg.unwrap_or(Alg::Rs256), kid)
            }
            _ => Err("malformed RSA public key".into()),
        },
        OID_EC => {
            let curve = spki
                .algorithm
                .parameters
                .as_ref()
                .and_then(|p| p.as_oid().ok())
                .map(|o| o.to_id_string());
            let default = match curve.as_deref() {
                Some(OID_P256) => Alg::Es256,
                Some(OID_P384) => Alg::Es384,
                _ => return Err("EC keys must be on P-256 or P-384".into()),
            };
            let alg = alg.unwrap_or(default);
            if alg != default {
                return Err(family_error(alg, "this EC key's curve"));
            }
            Key::ec(&spki.subject_public_key.data, alg, kid)
        }
        OID_ED25519 => {
            if alg.is_some_and(|a| a != Alg::EdDsa) {
                return Err(family_error(alg.unwrap_or(Alg::EdDsa), "an Ed25519 key"));
            }
            Key::ed25519(&spki.subject_public_key.data, kid)
        }
        other => Err(format!(
            "unsupported key type (OID {other}): RSA, EC P-256/P-384 or Ed25519"
        )),
    }
}
