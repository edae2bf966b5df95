//! The few protobuf encodings OTLP needs, written straight into a buffer
//! (no generated types, no allocation): varints, length-delimited fields,
//! fixed64, and `KeyValue` attributes whose sizes are computed up front.
//!
//! Field numbers are those of `opentelemetry/proto/{common,resource,trace}`
//! v1; the tests decode the output with the official definitions.

/// Wire types.
const VARINT: u8 = 0;
const FIXED64: u8 = 1;
const LEN: u8 = 2;

pub fn varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

pub fn varint_len(mut v: u64) -> usize {
    let mut n = 1;
    while v >= 0x80 {
        v >>= 7;
        n += 1;
    }
    n
}

fn tag(out: &mut Vec<u8>, field: u32, wire: u8) {
    varint(out, ((field as u64) << 3) | wire as u64);
}

fn tag_len(field: u32) -> usize {
    varint_len((field as u64) << 3)
}

/// Size of a length-delimited field holding `len` bytes.
pub fn field_len(field: u32, len: usize) -> usize {
    tag_len(field) + varint_len(len as u64) + len
}

pub fn bytes(out: &mut Vec<u8>, field: u32, b: &[u8]) {
    tag(out, field, LEN);
    varint(out, b.len() as u64);
    out.extend_from_slice(b);
}

/// The header of a length-delimited field whose `len` bytes follow.
pub fn len_header(out: &mut Vec<u8>, field: u32, len: usize) {
    tag(out, field, LEN);
    varint(out, len as u64);
}

pub fn uint(out: &mut Vec<u8>, field: u32, v: u64) {
    tag(out, field, VARINT);
    varint(out, v);
}

pub fn fixed64(out: &mut Vec<u8>, field: u32, v: u64) {
    tag(out, field, FIXED64);
    out.extend_from_slice(&v.to_le_bytes());
}

/// An attribute value.
#[derive(Debug, Clone, Copy)]
pub enum Value<'a> {
    Str(&'a [u8]),
    Int(i64),
    Bool(bool),
}

impl Value<'_> {
    /// Size of the encoded `AnyValue` message.
    fn len(&self) -> usize {
        match self {
            Value::Str(s) => field_len(1, s.len()),
            Value::Bool(_) => tag_len(2) + 1,
            Value::Int(i) => tag_len(3) + varint_len(*i as u64),
        }
    }

    fn write(&self, out: &mut Vec<u8>) {
        match *self {
            Value::Str(s) => bytes(out, 1, s),
            Value::Bool(b) => uint(out, 2, b as u64),
            Value::Int(i) => uint(out, 3, i as u64),
        }
    }
}

/// A `KeyValue` as field `field` of the enclosing message (9 in `Span`,
/// 1 in `Resource`).
pub fn attribute(out: &mut Vec<u8>, field: u32, key: &str, value: Value<'_>) {
    let v = value.len();
    let kv = field_len(1, key.len()) + field_len(2, v);
    len_header(out, field, kv);
    bytes(out, 1, key.as_bytes());
    len_header(out, 2, v);
    value.write(out);
}

/// Size of [`attribute`]'s output.
pub fn attribute_len(field: u32, key: &str, value: Value<'_>) -> usize {
    let kv = field_len(1, key.len()) + field_len(2, value.len());
    field_len(field, kv)
}

/// Decode 32 lower-case hex digits (or 16) into bytes; `None` when not hex.
pub fn hex_id<const N: usize>(hex: &[u8]) -> Option<[u8; N]> {
    if hex.len() != 2 * N {
        return None;
    }
    let mut out = [0u8; N];
    for (i, pair) in hex.chunks_exact(2).enumerate() {
        let d = |c: u8| match c {
            b'0'..=b'9' => Some(c - b'0'),
            b'a'..=b'f' => Some(c - b'a' + 10),
            b'A'..=b'F' => Some(c - b'A' + 10),
            _ => None,
        };
        out[i] = (d(pair[0])? << 4) | d(pair[1])?;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varints_and_sizes_agree() {
        for v in [
            0u64,
            1,
            127,
            128,
            300,
            16_383,
            16_384,
            u32::MAX as u64,
            u64::MAX,
        ] {
            let mut out = Vec::new();
            varint(&mut out, v);
            assert_eq!(out.len(), varint_len(v), "{v}");
        }
        let mut out = Vec::new();
        varint(&mut out, 300);
        assert_eq!(out, [0xac, 0x02]);
        for value in [
            Value::Str(b"GET"),
            Value::Str(&[b'x'; 200]),
            Value::Int(200),
            Value::Int(-1),
            Value::Bool(true),
        ] {
            let mut out = Vec::new();
            attribute(&mut out, 9, "http.request.method", value);
            assert_eq!(out.len(), attribute_len(9, "http.request.method", value));
        }
    }

    #[test]
    fn hex_ids() {
        assert_eq!(hex_id::<2>(b"0aFf"), Some([0x0a, 0xff]));
        assert_eq!(hex_id::<2>(b"0aF"), None);
        assert_eq!(hex_id::<2>(b"0aFg"), None);
    }
}
