//! htpasswd files: `user:hash` per line, `#` comments and blank lines
//! skipped.
//!
//! Accepted hashes (what `htpasswd -B`, `htpasswd -2`/`-5`, `mkpasswd` and
//! `openssl passwd -5`/`-6` write):
//! - bcrypt `$2y$`, `$2b$`, `$2a$`, cost 4 to [`MAX_BCRYPT_COST`];
//! - SHA-crypt `$5$` (SHA-256) and `$6$` (SHA-512), up to
//!   [`MAX_SHA_CRYPT_ROUNDS`] rounds.
//!
//! Refused, with the line: Apache MD5 (`$apr1$`) and MD5-crypt (`$1$`)
//! (MD5 is fast: a stolen file is brute-forced), `{SHA}` (one unsalted
//! SHA-1), traditional DES crypt (only 8 characters of the password count),
//! bcrypt `$2x$` (the buggy pre-2011 variant), plain text, and anything
//! else. The costs are capped because a verify runs on a worker thread and
//! holds every connection of that worker while it runs.

use std::collections::HashMap;
use std::str::FromStr;

/// Highest bcrypt cost accepted (cost 14 is about a second per verify).
pub const MAX_BCRYPT_COST: u32 = 14;
/// Highest SHA-crypt `rounds=` accepted (about half a second per verify).
pub const MAX_SHA_CRYPT_ROUNDS: u32 = 1_000_000;

/// A password hash of an accepted scheme.
#[derive(Clone)]
pub enum PasswordHash {
    Bcrypt(Box<str>),
    ShaCrypt(Box<str>),
}

impl std::fmt::Debug for PasswordHash {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print the hash itself.
        f.write_str(match self {
            PasswordHash::Bcrypt(_) => "Bcrypt(..)",
            PasswordHash::ShaCrypt(_) => "ShaCrypt(..)",
        })
    }
}

impl PasswordHash {
    /// Check the hash's scheme and shape (not the password: that would
    /// cost a verify per entry at load).
    pub fn parse(text: &str) -> Result<PasswordHash, String> {
        let refused = |why: &str| Err(format!("{why}; {REMEDY}"));
        if let Some(rest) = text.strip_prefix('$') {
            let scheme = rest.split('$').next().unwrap_or("");
            return match scheme {
                "2y" | "2b" | "2a" => bcrypt_hash(text),
                "5" | "6" => sha_crypt_hash(text, scheme == "6"),
                "apr1" => refused("Apache MD5 (\"$apr1$\") is refused: MD5 is fast, a stolen file is brute-forced quickly"),
                "1" => refused("MD5-crypt (\"$1$\") is refused: MD5 is fast, a stolen file is brute-forced quickly"),
                "2x" => refused("bcrypt \"$2x$\" is refused: it marks hashes of the buggy pre-2011 implementation"),
                _ => refused(&format!("unsupported hash scheme \"${scheme}$\"")),
            };
        }
        if text.starts_with("{SHA}") {
            return refused("\"{SHA}\" is refused: one unsalted SHA-1, fast to brute-force");
        }
        if text.len() == 13 && text.bytes().all(is_crypt_char) {
            return refused("traditional DES crypt is refused: only the first 8 characters of a password count, and it is fast to brute-force");
        }
        refused(
            "not a password hash (a plain-text password? anyone who reads the file could log in)",
        )
    }

    /// Whether `password` matches. Slow by design (see the module docs).
    pub fn verify(&self, password: &[u8]) -> bool {
        match self {
            PasswordHash::Bcrypt(h) => bcrypt::verify(password, h).unwrap_or(false),
            PasswordHash::ShaCrypt(h) => {
                use sha_crypt::PasswordVerifier as _;
                sha_crypt::ShaCrypt::default()
                    .verify_password(password, &**h)
                    .is_ok()
            }
        }
    }
}

const REMEDY: &str = "use bcrypt (`htpasswd -B`) or SHA-512-crypt (`openssl passwd -6`)";

/// `./0-9A-Za-z`: the crypt(3) base-64 alphabet.
fn is_crypt_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'.' || b == b'/'
}

fn bcrypt_hash(text: &str) -> Result<PasswordHash, String> {
    let parts = bcrypt::HashParts::from_str(text).map_err(|e| {
        format!("malformed bcrypt hash ({e}): expected \"$2y$CC$\" and 53 characters")
    })?;
    let cost = parts.get_cost();
    if !(4..=MAX_BCRYPT_COST).contains(&cost) {
        return Err(format!(
            "bcrypt cost {cost} is outside 4..={MAX_BCRYPT_COST}: a verify runs on a worker thread and stalls its other connections"
        ));
    }
    Ok(PasswordHash::Bcrypt(text.into()))
}

/// `$5$[rounds=N$]salt$hash` / `$6$…`: salt of 1–16 characters, hash of
/// 43 (SHA-256) or 86 (SHA-512) crypt characters.
fn sha_crypt_hash(text: &str, sha512: bool) -> Result<PasswordHash, String> {
    let bad = |what: &str| {
        Err(format!(
            "malformed SHA-crypt hash ({what}): expected \"${}$[rounds=N$]salt$hash\"",
            if sha512 { 6 } else { 5 }
        ))
    };
    let fields: Vec<&str> = text[3..].split('$').collect();
    let (rounds, salt, hash) = match fields.as_slice() {
        [r, s, h] if r.starts_with("rounds=") => (Some(*r), *s, *h),
        [s, h] => (None, *s, *h),
        _ => return bad("wrong number of '$' fields"),
    };
    if let Some(r) = rounds {
        match r["rounds=".len()..].parse::<u32>() {
            Ok(n) if (1000..=MAX_SHA_CRYPT_ROUNDS).contains(&n) => {}
            Ok(n) => {
                return Err(format!(
                    "SHA-crypt rounds={n} is outside 1000..={MAX_SHA_CRYPT_ROUNDS}: a verify runs on a worker thread and stalls its other connections"
                ))
            }
            Err(_) => return bad("rounds is not a number"),
        }
    }
    if salt.is_empty() || salt.len() > 16 || !salt.bytes().all(|b| b.is_ascii_graphic()) {
        return bad("the salt must be 1 to 16 characters");
    }
    let want = if sha512 { 86 } else { 43 };
    if hash.len() != want || !hash.bytes().all(is_crypt_char) {
        return bad(&format!(
            "the hash must be {want} characters of [./0-9A-Za-z]"
        ));
    }
    Ok(PasswordHash::ShaCrypt(text.into()))
}

/// The users of an htpasswd file, in file order.
#[derive(Debug, Clone, Default)]
pub struct Htpasswd {
    pub users: Vec<(Box<str>, PasswordHash)>,
    pub index: HashMap<Box<str>, u32>,
}

/// Parse an htpasswd file. Problems come back as (line number, message);
/// messages never quote a hash or a password.
pub fn parse(text: &str) -> Result<Htpasswd, Vec<(usize, String)>> {
    let mut out = Htpasswd::default();
    let mut problems = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line_no = n + 1;
        let line = line.trim_end_matches('\r').trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let Some((user, hash)) = line.split_once(':') else {
            problems.push((line_no, "expected `user:hash`".to_string()));
            continue;
        };
        if user.is_empty() || user.chars().any(char::is_control) {
            problems.push((
                line_no,
                "the user name is empty or has a control character".into(),
            ));
            continue;
        }
        let hash = match PasswordHash::parse(hash.trim()) {
            Ok(h) => h,
            Err(m) => {
                problems.push((line_no, format!("user {user:?}: {m}")));
                continue;
            }
        };
        if out.index.contains_key(user) {
            problems.push((line_no, format!("user {user:?} is listed twice")));
            continue;
        }
        out.index.insert(user.into(), out.users.len() as u32);
        out.users.push((user.into(), hash));
    }
    if problems.is_empty() {
        Ok(out)
    } else {
        Err(problems)
    }
}
