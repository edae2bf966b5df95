//! `type = "direct_response"` (and the route action `direct_response = {…}`):
//! the file form.
//!
//! ```toml
//! [[route.filters]]
//! type = "direct_response"
//! status = 200
//! body = "ok\n"
//! content_type = "text/plain; charset=utf-8"   # default when a body is given
//! ```

use std::sync::Arc;

use serde::Deserialize;

use super::filter::DirectFilter;
use crate::pipeline::filters::reply::{LocalReply, ReplyBody};
use crate::pipeline::filters::Problems;

/// Largest body a direct response may carry.
pub const MAX_BODY: usize = 64 * 1024;

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DirectFile {
    pub status: i64,
    #[serde(default)]
    pub body: Option<String>,
    #[serde(default)]
    pub content_type: Option<String>,
}

impl DirectFile {
    pub fn build(&self, p: &mut Problems) -> Option<DirectFilter> {
        let before = p.len();
        if !(200..=599).contains(&self.status) {
            p.push((
                "status".into(),
                format!(
                    "must be a final status code 200..=599 (found {})",
                    self.status
                ),
            ));
        }
        let body = self.body.clone().unwrap_or_default();
        if matches!(self.status, 204 | 304) && !body.is_empty() {
            p.push((
                "body".into(),
                format!("a {} response has no body: leave `body` out", self.status),
            ));
        }
        if body.len() > MAX_BODY {
            p.push((
                "body".into(),
                format!("at most {MAX_BODY} bytes (found {})", body.len()),
            ));
        }
        let content_type = match (&self.content_type, body.is_empty()) {
            (Some(ct), _) => {
                if !crate::http::edits::is_field_value(ct.as_bytes()) || ct.is_empty() {
                    p.push((
                        "content_type".into(),
                        "must be a non-empty header value".into(),
                    ));
                }
                Some(Arc::from(ct.as_str()))
            }
            (None, false) => Some(Arc::from("text/plain; charset=utf-8")),
            (None, true) => None,
        };
        if p.len() != before {
            return None;
        }
        Some(DirectFilter {
            reply: LocalReply {
                status: self.status as u16,
                content_type,
                body: if body.is_empty() {
                    ReplyBody::Empty
                } else {
                    ReplyBody::Static(Arc::from(body.into_bytes()))
                },
            },
        })
    }
}
