//! Header edits that filters ask for and the head writers apply.
//!
//! # Why
//! A filter that adds or removes a header must not copy the whole head: the
//! head writers (`rewrite::write_request_head`, `write_response_head`, local
//! replies) already walk every field once. [`HeaderEdits`] is the list of
//! changes they consult on that walk: a field of the original head is dropped
//! when an edit `set`s or `remove`s its name, and the `set` / `add` fields are
//! written after the original ones.
//!
//! # Semantics (normalised when an edit is recorded)
//! - `remove(name)`: the original fields of that name are dropped, and so are
//!   earlier `set` / `add` edits of it.
//! - `set(name, value)`: like `remove(name)`, then one field `name: value`.
//! - `add(name, value)`: one more field, originals kept.
//!
//! Names compare case-insensitively. Names and values are stored in one byte
//! arena; the struct is kept per connection and [`clear`](HeaderEdits::clear)ed
//! per request, so steady state does not allocate. An empty list costs one
//! length check per field.
//!
//! Names and values are checked when recorded: a name must be an RFC 9110
//! token and a value must not hold CR, LF or NUL (header injection). An edit
//! that fails the check is not recorded and the call returns `false`.

use std::ops::Range;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    /// Drop originals of this name; write nothing.
    Remove,
    /// Drop originals of this name; write this field.
    Set,
    /// Write this field.
    Add,
}

#[derive(Debug, Clone)]
struct Edit {
    op: Op,
    name: Range<usize>,
    value: Range<usize>,
}

/// Changes to one head. See the module docs.
#[derive(Debug, Clone, Default)]
pub struct HeaderEdits {
    edits: Vec<Edit>,
    arena: Vec<u8>,
    /// Some edit drops originals (a `set` or a `remove`): writers check
    /// every field only then.
    drops: bool,
}

/// tchar (RFC 9110 §5.6.2): `!#$%&'*+-.^_`|~`, digits, letters.
const TCHAR: [bool; 256] = {
    let mut t = [false; 256];
    let mut b = 0;
    while b < 256 {
        let c = b as u8;
        t[b] = c.is_ascii_alphanumeric()
            || matches!(
                c,
                b'!' | b'#'
                    | b'$'
                    | b'%'
                    | b'&'
                    | b'\''
                    | b'*'
                    | b'+'
                    | b'-'
                    | b'.'
                    | b'^'
                    | b'_'
                    | b'`'
                    | b'|'
                    | b'~'
            );
        b += 1;
    }
    t
};

/// Whether `name` is a valid field name (RFC 9110 token; methods are
/// tokens too).
pub fn is_token(name: &[u8]) -> bool {
    !name.is_empty() && name.iter().all(|&b| TCHAR[b as usize])
}

/// Whether `value` can be written as a field value (no CR, LF or NUL; other
/// control characters but HTAB are refused too).
pub fn is_field_value(value: &[u8]) -> bool {
    value
        .iter()
        .all(|&b| b == b'\t' || (b >= 0x20 && b != 0x7f))
}

impl HeaderEdits {
    pub fn new() -> Self {
        Self::default()
    }

    /// No edits: writers skip every check.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.edits.is_empty()
    }

    /// Forget every edit (keeps the storage).
    #[inline]
    pub fn clear(&mut self) {
        self.edits.clear();
        self.arena.clear();
        self.drops = false;
    }

    /// Drop the original fields named `name` and earlier edits of it.
    pub fn remove(&mut self, name: &[u8]) -> bool {
        if !is_token(name) {
            return false;
        }
        self.forget(name);
        let name = self.store(name);
        self.edits.push(Edit {
            op: Op::Remove,
            name,
            value: 0..0,
        });
        self.drops = true;
        true
    }

    /// Replace every field named `name` with `name: value`.
    pub fn set(&mut self, name: &[u8], value: &[u8]) -> bool {
        if !is_token(name) || !is_field_value(value) {
            return false;
        }
        self.forget(name);
        let name = self.store(name);
        let value = self.store(value);
        self.edits.push(Edit {
            op: Op::Set,
            name,
            value,
        });
        self.drops = true;
        true
    }

    /// Append `name: value`, keeping the fields already there.
    pub fn add(&mut self, name: &[u8], value: &[u8]) -> bool {
        if !is_token(name) || !is_field_value(value) {
            return false;
        }
        let name = self.store(name);
        let value = self.store(value);
        self.edits.push(Edit {
            op: Op::Add,
            name,
            value,
        });
        true
    }

    /// Start a value written piece by piece into the arena (templates):
    /// call [`push_value`](Self::push_value) for each piece, then
    /// [`finish_value`](Self::finish_value).
    pub fn begin_value(&self) -> usize {
        self.arena.len()
    }

    /// Append a piece of the value started at `begin_value`.
    #[inline]
    pub fn push_value(&mut self, piece: &[u8]) {
        self.arena.extend_from_slice(piece);
    }

    /// Record the value written since `start` as a `set` (`add` when
    /// `append`) of `name`. The pieces are checked as a whole; a bad value
    /// is discarded and `false` returned.
    pub fn finish_value(&mut self, start: usize, name: &[u8], append: bool) -> bool {
        let ok = is_token(name) && is_field_value(&self.arena[start..]);
        if !ok {
            self.arena.truncate(start);
            return false;
        }
        // Move the value behind the name: store the name after it and keep
        // both ranges (the arena is append-only within a request).
        if !append {
            self.forget(name);
            self.drops = true;
        }
        let value = start..self.arena.len();
        let name = self.store(name);
        self.edits.push(Edit {
            op: if append { Op::Add } else { Op::Set },
            name,
            value,
        });
        true
    }

    /// Whether an original field named `name` is to be dropped.
    #[inline]
    pub fn drops(&self, name: &[u8]) -> bool {
        self.drops
            && self
                .edits
                .iter()
                .any(|e| e.op != Op::Add && self.arena[e.name.clone()].eq_ignore_ascii_case(name))
    }

    /// The fields to write after the original ones, in the order recorded.
    pub fn fields(&self) -> impl Iterator<Item = (&[u8], &[u8])> {
        self.edits
            .iter()
            .filter(|e| e.op != Op::Remove)
            .map(|e| (&self.arena[e.name.clone()], &self.arena[e.value.clone()]))
    }

    /// The value this list writes for `name` (the first `set`/`add`), if any.
    pub fn get(&self, name: &[u8]) -> Option<&[u8]> {
        self.fields()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v)
    }

    /// Append every field to write (`name: value\r\n`) to `out`.
    pub fn write_fields(&self, out: &mut Vec<u8>) {
        for (name, value) in self.fields() {
            out.reserve(name.len() + value.len() + 4);
            out.extend_from_slice(name);
            out.extend_from_slice(b": ");
            out.extend_from_slice(value);
            out.extend_from_slice(b"\r\n");
        }
    }

    fn store(&mut self, bytes: &[u8]) -> Range<usize> {
        let start = self.arena.len();
        self.arena.extend_from_slice(bytes);
        start..self.arena.len()
    }

    /// Drop earlier edits of `name` (their arena bytes stay until `clear`).
    fn forget(&mut self, name: &[u8]) {
        let arena = &self.arena;
        self.edits
            .retain(|e| !arena[e.name.clone()].eq_ignore_ascii_case(name));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(e: &HeaderEdits) -> Vec<(String, String)> {
        e.fields()
            .map(|(n, v)| {
                (
                    String::from_utf8(n.to_vec()).unwrap(),
                    String::from_utf8(v.to_vec()).unwrap(),
                )
            })
            .collect()
    }

    #[test]
    fn set_replaces_add_appends_remove_cancels() {
        let mut e = HeaderEdits::new();
        assert!(e.is_empty());
        assert!(!e.drops(b"x-a"));
        assert!(e.add(b"X-A", b"1"));
        assert!(!e.drops(b"x-a"), "add keeps originals");
        assert!(e.add(b"x-a", b"2"));
        assert!(e.set(b"X-B", b"b"));
        assert!(e.drops(b"x-b"));
        assert_eq!(
            fields(&e),
            [("X-A", "1"), ("x-a", "2"), ("X-B", "b")].map(|(a, b)| (a.into(), b.into()))
        );
        assert!(e.set(b"x-a", b"3"));
        assert!(e.drops(b"X-A"));
        assert_eq!(
            fields(&e),
            [("X-B", "b"), ("x-a", "3")].map(|(a, b)| (a.into(), b.into()))
        );
        assert!(e.remove(b"x-b"));
        assert!(e.drops(b"x-b"));
        assert_eq!(
            fields(&e),
            [("x-a", "3")].map(|(a, b)| (a.into(), b.into()))
        );
        assert_eq!(e.get(b"X-A"), Some(&b"3"[..]));
        e.clear();
        assert!(e.is_empty() && !e.drops(b"x-a"));
    }

    #[test]
    fn injection_is_refused() {
        let mut e = HeaderEdits::new();
        assert!(!e.set(b"x-a", b"1\r\nx-evil: 1"));
        assert!(!e.add(b"x-a", b"1\n"));
        assert!(!e.add(b"x-a", b"\0"));
        assert!(!e.add(b"bad name", b"1"));
        assert!(!e.add(b"", b"1"));
        assert!(!e.remove(b"a:b"));
        let start = e.begin_value();
        e.push_value(b"ok");
        e.push_value(b"\r\n");
        assert!(!e.finish_value(start, b"x-t", false));
        assert!(e.is_empty());
        assert!(e.add(b"x-tab", b"a\tb"));
    }

    #[test]
    fn piecewise_values() {
        let mut e = HeaderEdits::new();
        e.add(b"x-old", b"1");
        let start = e.begin_value();
        e.push_value(b"a-");
        e.push_value(b"b");
        assert!(e.finish_value(start, b"x-old", false));
        let start = e.begin_value();
        e.push_value(b"c");
        assert!(e.finish_value(start, b"x-more", true));
        let mut out = Vec::new();
        e.write_fields(&mut out);
        assert_eq!(out, b"x-old: a-b\r\nx-more: c\r\n");
    }
}
