//! The token itself: strict compact-form parsing, the protected header and
//! the signature check. Nothing here looks at claims (`claims.rs`).
//!
//! Strict means: exactly three base64url parts, no padding, no
//! non-canonical trailing bits, header and payload JSON objects without
//! duplicate member names, no `crit`, no key carried or pointed to by the
//! token (`jwk`, `jku`, `x5u`, `x5c`), `alg` never `none`.

use std::fmt;

use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig};
use base64::engine::DecodePaddingMode;
use base64::Engine;
use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;
use serde_json::{Map, Value};

use super::keys::{candidates, Alg, KeyMiss, KeySet};

/// The largest token accepted (the whole compact form).
pub const MAX_TOKEN_BYTES: usize = 8 * 1024;

/// Base64url as a token must be written: no padding, canonical trailing
/// bits.
pub const TOKEN_B64: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::URL_SAFE,
    GeneralPurposeConfig::new()
        .with_encode_padding(false)
        .with_decode_padding_mode(DecodePaddingMode::RequireNone)
        .with_decode_allow_trailing_bits(false),
);

/// Why a token was refused (logged at debug level; the client only sees
/// `invalid_token`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Invalid {
    TooLong,
    NotThreeParts,
    Base64,
    HeaderNotObject,
    PayloadNotObject,
    AlgMissing,
    AlgNone,
    AlgUnsupported,
    Crit,
    EmbeddedKey,
    KidNotString,
    UnknownKid,
    AlgMismatch,
    NoKeyForAlg,
    BadSignature,
    Expired,
    NotYetValid,
    TooOld,
    IssuedInFuture,
    MissingExp,
    BadTimeClaim,
    Issuer,
    Audience,
    MissingClaim,
}

impl Invalid {
    pub fn as_str(self) -> &'static str {
        match self {
            Invalid::TooLong => "token too long",
            Invalid::NotThreeParts => "not three dot-separated parts",
            Invalid::Base64 => "not canonical unpadded base64url",
            Invalid::HeaderNotObject => "header is not a JSON object (or has duplicate members)",
            Invalid::PayloadNotObject => "payload is not a JSON object (or has duplicate members)",
            Invalid::AlgMissing => "no alg",
            Invalid::AlgNone => "alg none",
            Invalid::AlgUnsupported => "unsupported alg",
            Invalid::Crit => "crit header",
            Invalid::EmbeddedKey => "jwk/jku/x5u/x5c header",
            Invalid::KidNotString => "kid is not a string",
            Invalid::UnknownKid => "unknown kid",
            Invalid::AlgMismatch => "alg differs from the key's",
            Invalid::NoKeyForAlg => "no key for alg",
            Invalid::BadSignature => "bad signature",
            Invalid::Expired => "expired",
            Invalid::NotYetValid => "nbf in the future",
            Invalid::TooOld => "iat older than max_age",
            Invalid::IssuedInFuture => "iat in the future",
            Invalid::MissingExp => "no exp",
            Invalid::BadTimeClaim => "exp/nbf/iat not a number",
            Invalid::Issuer => "iss not accepted",
            Invalid::Audience => "aud not accepted",
            Invalid::MissingClaim => "a required claim is missing",
        }
    }
}

impl From<KeyMiss> for Invalid {
    fn from(m: KeyMiss) -> Invalid {
        match m {
            KeyMiss::UnknownKid => Invalid::UnknownKid,
            KeyMiss::AlgMismatch => Invalid::AlgMismatch,
            KeyMiss::NoKeyForAlg => Invalid::NoKeyForAlg,
        }
    }
}

/// A JSON value parsed with duplicate member names refused at every depth
/// (`serde_json::Value` keeps the last one silently).
struct Strict(Value);

impl<'de> Deserialize<'de> for Strict {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(StrictVisitor)
    }
}

struct StrictVisitor;

impl<'de> Visitor<'de> for StrictVisitor {
    type Value = Strict;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_bool<E>(self, v: bool) -> Result<Strict, E> {
        Ok(Strict(Value::Bool(v)))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Strict, E> {
        Ok(Strict(Value::from(v)))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Strict, E> {
        Ok(Strict(Value::from(v)))
    }
    fn visit_f64<E>(self, v: f64) -> Result<Strict, E> {
        Ok(Strict(Value::from(v)))
    }
    fn visit_str<E>(self, v: &str) -> Result<Strict, E> {
        Ok(Strict(Value::String(v.to_owned())))
    }
    fn visit_string<E>(self, v: String) -> Result<Strict, E> {
        Ok(Strict(Value::String(v)))
    }
    fn visit_unit<E>(self) -> Result<Strict, E> {
        Ok(Strict(Value::Null))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Strict, A::Error> {
        let mut out = Vec::new();
        while let Some(Strict(v)) = seq.next_element()? {
            out.push(v);
        }
        Ok(Strict(Value::Array(out)))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Strict, A::Error> {
        let mut out = Map::new();
        while let Some(k) = map.next_key::<String>()? {
            if out.contains_key(&k) {
                return Err(de::Error::custom(format_args!("duplicate member {k:?}")));
            }
            let Strict(v) = map.next_value()?;
            out.insert(k, v);
        }
        Ok(Strict(Value::Object(out)))
    }
}

/// Parse `bytes` as a JSON object, refusing duplicate member names.
pub fn strict_object(bytes: &[u8]) -> Option<Map<String, Value>> {
    match serde_json::from_slice::<Strict>(bytes) {
        Ok(Strict(Value::Object(m))) => Some(m),
        _ => None,
    }
}

/// A token split into its parts, not yet trusted.
#[derive(Debug)]
pub struct Compact<'a> {
    /// `header.payload`: the bytes the signature covers.
    pub signing_input: &'a [u8],
    pub header: &'a [u8],
    pub payload: &'a [u8],
    pub signature: &'a [u8],
}

/// Split the compact form: exactly three non-empty parts.
pub fn split(token: &[u8]) -> Result<Compact<'_>, Invalid> {
    if token.len() > MAX_TOKEN_BYTES {
        return Err(Invalid::TooLong);
    }
    let mut dots = memchr::memchr_iter(b'.', token);
    let (Some(a), Some(b), None) = (dots.next(), dots.next(), dots.next()) else {
        return Err(Invalid::NotThreeParts);
    };
    let c = Compact {
        signing_input: &token[..b],
        header: &token[..a],
        payload: &token[a + 1..b],
        signature: &token[b + 1..],
    };
    if c.header.is_empty() || c.payload.is_empty() || c.signature.is_empty() {
        return Err(Invalid::NotThreeParts);
    }
    Ok(c)
}

pub fn b64(part: &[u8]) -> Result<Vec<u8>, Invalid> {
    TOKEN_B64.decode(part).map_err(|_| Invalid::Base64)
}

/// What the protected header says, once checked.
#[derive(Debug)]
pub struct Header {
    pub alg: Alg,
    pub kid: Option<String>,
}

/// Header members that carry or point to a key: a token must not choose
/// its own key.
const EMBEDDED_KEY_MEMBERS: [&str; 4] = ["jwk", "jku", "x5u", "x5c"];

/// Decode and check the protected header.
pub fn header(part: &[u8]) -> Result<Header, Invalid> {
    let obj = strict_object(&b64(part)?).ok_or(Invalid::HeaderNotObject)?;
    let alg = match obj.get("alg") {
        Some(Value::String(a)) => a,
        _ => return Err(Invalid::AlgMissing),
    };
    if alg.eq_ignore_ascii_case("none") {
        return Err(Invalid::AlgNone);
    }
    let alg = Alg::from_name(alg).ok_or(Invalid::AlgUnsupported)?;
    if obj.contains_key("crit") {
        return Err(Invalid::Crit);
    }
    if EMBEDDED_KEY_MEMBERS.iter().any(|m| obj.contains_key(*m)) {
        return Err(Invalid::EmbeddedKey);
    }
    let kid = match obj.get("kid") {
        None => None,
        Some(Value::String(k)) => Some(k.clone()),
        Some(_) => return Err(Invalid::KidNotString),
    };
    Ok(Header { alg, kid })
}

/// Check the token's signature with the keys of `sets` its header selects,
/// then decode the payload. Returns the claims (not yet checked).
pub fn verify(token: &[u8], sets: &[&KeySet]) -> Result<Map<String, Value>, Invalid> {
    let c = split(token)?;
    let h = header(c.header)?;
    let candidates = candidates(sets, h.alg, h.kid.as_deref())?;
    let sig = b64(c.signature)?;
    if !candidates.iter().any(|k| k.verify(c.signing_input, &sig)) {
        return Err(Invalid::BadSignature);
    }
    strict_object(&b64(c.payload)?).ok_or(Invalid::PayloadNotObject)
}
