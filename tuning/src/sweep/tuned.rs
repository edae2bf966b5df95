//! Writing the chosen settings into a copy of the user's file: only the
//! swept keys of `[runtime]` change, everything else (comments included)
//! stays as written.

use super::Variant;

/// A table header line (`[runtime]`, `[[listener]]`), not an array line.
fn is_header(line: &str) -> bool {
    let t = line.split('#').next().unwrap_or("").trim();
    t.starts_with('[')
        && t.ends_with(']')
        && t.trim_matches(['[', ']'])
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | '"' | ' '))
        && !t.trim_matches(['[', ']']).trim().is_empty()
}

fn key_of(line: &str) -> Option<&str> {
    let (k, _) = line.split_once('=')?;
    let k = k.trim();
    (!k.is_empty() && k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')).then_some(k)
}

/// The lines `key = value` for the swept settings; `None`: the key must
/// be absent.
pub fn lines(v: &Variant) -> Vec<(&'static str, Option<String>)> {
    let flags: Vec<String> = v.flags.iter().map(|f| format!("\"{f}\"")).collect();
    vec![
        ("workers", Some(v.workers.to_string())),
        ("ring_entries", Some(v.ring_entries.to_string())),
        ("ring_flags", Some(format!("[{}]", flags.join(", ")))),
        (
            "sqpoll_idle",
            v.sqpoll_idle.as_ref().map(|i| format!("\"{i}\"")),
        ),
    ]
}

/// `original` with `[runtime]`'s `workers`, `ring_entries`, `ring_flags`
/// and `sqpoll_idle` set to `v`'s values (replaced where present, added
/// otherwise; `sqpoll_idle` commented out when `v` has no SQPOLL).
pub fn tuned_text(original: &str, v: &Variant) -> String {
    let mut out: Vec<String> = original.lines().map(str::to_string).collect();
    let start = out
        .iter()
        .position(|l| l.split('#').next().unwrap_or("").trim() == "[runtime]");
    let Some(start) = start else {
        let mut text = original.trim_end().to_string();
        text.push_str("\n\n# ringway-tune sweep\n[runtime]\n");
        for (k, val) in lines(v) {
            if let Some(val) = val {
                text.push_str(&format!("{k} = {val}\n"));
            }
        }
        return text;
    };
    for (key, value) in lines(v) {
        let end = out[start + 1..]
            .iter()
            .position(|l| is_header(l))
            .map_or(out.len(), |i| start + 1 + i);
        let found = (start + 1..end).find(|&i| key_of(&out[i]) == Some(key));
        let Some(value) = value else {
            if let Some(i) = found {
                out[i] = format!("# {}   # off: ringway-tune sweep", out[i].trim());
            }
            continue;
        };
        let new = format!("{key} = {value}   # ringway-tune sweep");
        match found {
            Some(i) => {
                // A value spread over several lines (an array) ends at `]`.
                let value_text = out[i].split_once('=').map(|x| x.1).unwrap_or("");
                let mut last = i;
                if value_text.trim_start().starts_with('[') && !value_text.contains(']') {
                    while last + 1 < end && !out[last].contains(']') {
                        last += 1;
                    }
                }
                out.splice(i..=last, [new]);
            }
            None => {
                // After the last non-blank line of the section.
                let mut at = end;
                while at > start + 1 && out[at - 1].trim().is_empty() {
                    at -= 1;
                }
                out.insert(at, new);
            }
        }
    }
    let mut text = out.join("\n");
    text.push('\n');
    text
}
