//! The composite answer: one JSON object with a member per leg, in leg
//! order. A leg's body is written verbatim when it is JSON (checked, not
//! re-serialised), else as a JSON string (lossy UTF-8); a failed leg is
//! `null` (policy `partial`, listed in `X-Ringway-Partial`). Under policy
//! `all` a failure answers 502 with an RFC 9457 problem whose `legs` member
//! says, per leg, `"ok"` or what went wrong.

use std::sync::Arc;

use serde::de::IgnoredAny;

use super::run::LegOutcome;
use super::{Aggregation, Policy};
use crate::http::HeaderEdits;
use crate::pipeline::filters::reply::{LocalReply, ReplyBody};

/// The reply for `outcomes` (in leg order); `X-Ringway-Partial` goes into
/// the response `edits`. The flag says whether the aggregation failed
/// (policy `all`, 502).
pub fn reply(
    agg: &Aggregation,
    outcomes: &[LegOutcome],
    edits: &mut HeaderEdits,
) -> (LocalReply, bool) {
    let failed: Vec<usize> = (0..outcomes.len())
        .filter(|&i| outcomes[i].is_err())
        .collect();
    if !failed.is_empty() && agg.policy == Policy::All {
        return (problem(agg, outcomes, &failed), true);
    }
    let mut body = Vec::with_capacity(
        2 + outcomes
            .iter()
            .map(|o| o.as_ref().map_or(8, |a| a.body.len() + 24))
            .sum::<usize>(),
    );
    body.push(b'{');
    for (i, (leg, outcome)) in agg.legs.iter().zip(outcomes).enumerate() {
        if i > 0 {
            body.push(b',');
        }
        body.extend_from_slice(&leg.key_json);
        match outcome {
            Ok(a) => push_member(&mut body, &a.body),
            Err(_) => body.extend_from_slice(b"null"),
        }
    }
    body.push(b'}');
    if !failed.is_empty() {
        let names: Vec<&str> = failed.iter().map(|&i| agg.legs[i].name.as_str()).collect();
        edits.set(b"X-Ringway-Partial", names.join(",").as_bytes());
    }
    let reply = LocalReply {
        status: 200,
        content_type: Some(Arc::from("application/json")),
        body: ReplyBody::Owned(body),
    };
    (reply, false)
}

/// A leg's answer as a member value: verbatim JSON, or a JSON string.
fn push_member(out: &mut Vec<u8>, body: &[u8]) {
    let trimmed = body.trim_ascii();
    // serde_json does not check UTF-8 inside strings it skips: check it
    // first, so the composite is always valid JSON text.
    if !trimmed.is_empty()
        && std::str::from_utf8(trimmed).is_ok()
        && serde_json::from_slice::<IgnoredAny>(trimmed).is_ok()
    {
        out.extend_from_slice(trimmed);
    } else {
        let text = String::from_utf8_lossy(body);
        out.extend_from_slice(
            serde_json::Value::from(text.as_ref())
                .to_string()
                .as_bytes(),
        );
    }
}

/// 502 `application/problem+json` naming each leg's state.
fn problem(agg: &Aggregation, outcomes: &[LegOutcome], failed: &[usize]) -> LocalReply {
    let names: Vec<&str> = failed.iter().map(|&i| agg.legs[i].name.as_str()).collect();
    let detail = format!("aggregate failed: leg(s) {}", names.join(", "));
    let mut body = Vec::with_capacity(160 + 48 * outcomes.len());
    body.extend_from_slice(
        br#"{"type":"about:blank","title":"Bad Gateway","status":502,"detail":"#,
    );
    body.extend_from_slice(serde_json::Value::from(detail).to_string().as_bytes());
    body.extend_from_slice(br#","legs":{"#);
    for (i, (leg, outcome)) in agg.legs.iter().zip(outcomes).enumerate() {
        if i > 0 {
            body.push(b',');
        }
        body.extend_from_slice(&leg.key_json);
        let state = match outcome {
            Ok(_) => "ok".to_owned(),
            Err(e) => e.public(),
        };
        body.extend_from_slice(serde_json::Value::from(state).to_string().as_bytes());
    }
    body.extend_from_slice(b"}}");
    LocalReply {
        status: 502,
        content_type: Some(Arc::from("application/problem+json")),
        body: ReplyBody::Owned(body),
    }
}
