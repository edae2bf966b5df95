//! `Accept-Encoding` negotiation (RFC 9110 §12.5.3).
//!
//! Each element is `coding *( OWS ";" OWS name=value )`; codings compare
//! case-insensitively; a `q` parameter weighs it (`0` … `1`, three decimals
//! at most; `q=0` means "not acceptable"). For each coding ringway offers,
//! its weight is the one given for it by name (`x-gzip` counts as `gzip`),
//! else the one given for `*`, else it is not acceptable. The highest
//! weight wins; ties go to the server's order (`algorithms`).
//!
//! `identity` is only weighed when the client names it: a client that
//! prefers it (`gzip;q=0.5, identity`) gets the body as it is. A missing or
//! empty header means identity only. Elements that do not parse (a bad
//! q-value, an empty coding) are skipped; the rest of the header still
//! counts.

use super::Codec;

/// Weight of a coding, in thousandths (`q=0.5` → 500).
type Weight = u16;

/// The coding to use for a client that sent `values` (every
/// Accept-Encoding field line, in order), among `offered` (server order).
pub fn choose<'a>(values: impl Iterator<Item = &'a [u8]>, offered: &[Codec]) -> Option<Codec> {
    // Weights by name: [gzip, br], then `*` and `identity`.
    let mut named: [Option<Weight>; 2] = [None; 2];
    let mut star: Option<Weight> = None;
    let mut identity: Option<Weight> = None;
    for value in values {
        for element in value.split(|&b| b == b',') {
            let Some((coding, q)) = parse_element(element) else {
                continue;
            };
            let slot =
                if coding.eq_ignore_ascii_case(b"gzip") || coding.eq_ignore_ascii_case(b"x-gzip") {
                    &mut named[0]
                } else if coding.eq_ignore_ascii_case(b"br") {
                    &mut named[1]
                } else if coding == b"*" {
                    &mut star
                } else if coding.eq_ignore_ascii_case(b"identity") {
                    &mut identity
                } else {
                    continue;
                };
            // A coding listed twice: the higher weight counts.
            *slot = Some(slot.map_or(q, |old| old.max(q)));
        }
    }
    let mut best: Option<(Codec, Weight)> = None;
    for &codec in offered {
        let weight = match codec {
            Codec::Gzip => named[0],
            Codec::Brotli => named[1],
        }
        .or(star)
        .unwrap_or(0);
        if weight > 0 && best.is_none_or(|(_, w)| weight > w) {
            best = Some((codec, weight));
        }
    }
    let (codec, weight) = best?;
    match identity {
        Some(i) if i > weight => None,
        _ => Some(codec),
    }
}

/// One list element: the coding and its weight; `None` when it does not
/// parse.
fn parse_element(element: &[u8]) -> Option<(&[u8], Weight)> {
    let mut parts = element.split(|&b| b == b';');
    let coding = trim(parts.next()?);
    if coding.is_empty() || !crate::http::edits::is_token(coding) {
        return None;
    }
    let mut q = 1000;
    for param in parts {
        let param = trim(param);
        let eq = param.iter().position(|&b| b == b'=')?;
        let (name, value) = (trim(&param[..eq]), trim(&param[eq + 1..]));
        if name.eq_ignore_ascii_case(b"q") {
            q = parse_qvalue(value)?;
        }
    }
    Some((coding, q))
}

/// `qvalue = ( "0" [ "." 0*3DIGIT ] ) / ( "1" [ "." 0*3("0") ] )`, in
/// thousandths.
fn parse_qvalue(v: &[u8]) -> Option<Weight> {
    let (whole, frac) = match v.iter().position(|&b| b == b'.') {
        Some(i) => (&v[..i], &v[i + 1..]),
        None => (v, &b""[..]),
    };
    if frac.len() > 3 || !frac.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let mut thousandths: Weight = 0;
    for (i, &d) in frac.iter().enumerate() {
        thousandths += Weight::from(d - b'0') * [100, 10, 1][i];
    }
    match whole {
        b"0" => Some(thousandths),
        b"1" if thousandths == 0 => Some(1000),
        _ => None,
    }
}

fn trim(s: &[u8]) -> &[u8] {
    let start = s
        .iter()
        .position(|&b| b != b' ' && b != b'\t')
        .unwrap_or(s.len());
    let end = s
        .iter()
        .rposition(|&b| b != b' ' && b != b'\t')
        .map_or(start, |i| i + 1);
    &s[start..end]
}
