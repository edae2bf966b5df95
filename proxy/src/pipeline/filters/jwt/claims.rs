//! Claim checks after the signature: time (`exp`, `nbf`, `iat` with
//! `max_age`, all with `leeway`), issuer, audience, required claims; then
//! the route's rules (a failed rule is 403, not 401); and how a claim is
//! written into a header or a variable.

use serde_json::{Map, Value};

use super::verify::Invalid;

/// The 401 checks on the claims.
#[derive(Debug, Clone, Default)]
pub struct ClaimChecks {
    /// Seconds of clock skew allowed on `exp`, `nbf` and `iat`.
    pub leeway: u64,
    /// `iat` must be at most this many seconds ago.
    pub max_age: Option<u64>,
    /// When not empty, `iss` must be one of these.
    pub issuers: Box<[Box<str>]>,
    /// When not empty, `aud` (a string or an array) must hold one of these.
    pub audiences: Box<[Box<str>]>,
    pub required: Box<[Box<str>]>,
}

fn time_claim(claims: &Map<String, Value>, name: &str) -> Result<Option<f64>, Invalid> {
    match claims.get(name) {
        None => Ok(None),
        Some(Value::Number(n)) => n.as_f64().map(Some).ok_or(Invalid::BadTimeClaim),
        Some(_) => Err(Invalid::BadTimeClaim),
    }
}

impl ClaimChecks {
    /// Check the claims at `now` (seconds since the epoch). Returns the time
    /// until which the token stays valid (for the cache): `exp + leeway`,
    /// or earlier when `max_age` ends first.
    pub fn check(&self, claims: &Map<String, Value>, now: u64) -> Result<f64, Invalid> {
        let now = now as f64;
        let leeway = self.leeway as f64;
        let exp = time_claim(claims, "exp")?.ok_or(Invalid::MissingExp)?;
        let mut valid_until = exp + leeway;
        if now >= valid_until {
            return Err(Invalid::Expired);
        }
        if let Some(nbf) = time_claim(claims, "nbf")? {
            if now + leeway < nbf {
                return Err(Invalid::NotYetValid);
            }
        }
        let iat = time_claim(claims, "iat")?;
        if let Some(max_age) = self.max_age {
            let iat = iat.ok_or(Invalid::MissingClaim)?;
            if iat > now + leeway {
                return Err(Invalid::IssuedInFuture);
            }
            let until = iat + max_age as f64 + leeway;
            if now >= until {
                return Err(Invalid::TooOld);
            }
            valid_until = valid_until.min(until);
        }
        if !self.issuers.is_empty() {
            let ok = matches!(claims.get("iss"), Some(Value::String(iss))
                if self.issuers.iter().any(|i| **i == **iss));
            if !ok {
                return Err(Invalid::Issuer);
            }
        }
        if !self.audiences.is_empty() {
            let wanted = |a: &Value| {
                a.as_str()
                    .is_some_and(|a| self.audiences.iter().any(|w| **w == *a))
            };
            let ok = match claims.get("aud") {
                Some(Value::Array(list)) => list.iter().any(wanted),
                Some(a) => wanted(a),
                None => false,
            };
            if !ok {
                return Err(Invalid::Audience);
            }
        }
        if self
            .required
            .iter()
            .any(|c| matches!(claims.get(&**c), None | Some(Value::Null)))
        {
            return Err(Invalid::MissingClaim);
        }
        Ok(valid_until)
    }
}

/// What a rule asks of its claim.
#[derive(Debug, Clone)]
pub enum Test {
    /// A space-separated string (`scope`) holding the word, or an array
    /// holding the string.
    Contains(Box<str>),
    /// The string is one of these, or the array holds one of them.
    AnyOf(Box<[Box<str>]>),
    /// The string equals this (a number or boolean claim: its JSON text).
    Equals(Box<str>),
}

/// `{ claim = "scope", contains = "read:orders" }`.
#[derive(Debug, Clone)]
pub struct Rule {
    pub claim: Box<str>,
    pub test: Test,
}

impl Rule {
    pub fn holds(&self, claims: &Map<String, Value>) -> bool {
        let Some(v) = claims.get(&*self.claim) else {
            return false;
        };
        match &self.test {
            Test::Contains(word) => match v {
                Value::String(s) => s.split(' ').any(|w| w == &**word),
                Value::Array(list) => list.iter().any(|e| e.as_str() == Some(word)),
                _ => false,
            },
            Test::AnyOf(set) => {
                let is_one = |s: &str| set.iter().any(|w| **w == *s);
                match v {
                    Value::String(s) => is_one(s),
                    Value::Array(list) => list.iter().any(|e| e.as_str().is_some_and(is_one)),
                    _ => false,
                }
            }
            Test::Equals(want) => match v {
                Value::String(s) => **s == **want,
                Value::Number(n) => want.parse::<serde_json::Number>().ok().as_ref() == Some(n),
                Value::Bool(b) => **want == *if *b { "true" } else { "false" },
                _ => false,
            },
        }
    }
}

/// A claim as a header value or variable: a string as it is, anything else
/// (number, boolean, array, object) as compact JSON, into `out`. `false`
/// when absent or `null`.
pub fn render(claims: &Map<String, Value>, name: &str, out: &mut Vec<u8>) -> bool {
    out.clear();
    match claims.get(name) {
        None | Some(Value::Null) => false,
        Some(Value::String(s)) => {
            out.extend_from_slice(s.as_bytes());
            true
        }
        Some(other) => serde_json::to_writer(&mut *out, other).is_ok(),
    }
}
