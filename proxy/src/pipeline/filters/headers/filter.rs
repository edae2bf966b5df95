//! `type = "headers"`: add, set and remove request and response fields.
//!
//! Request edits are rendered in the request phase and applied when the
//! upstream head is written; response edits are rendered in the response
//! phase (after the upstream response head, or for a local reply) and
//! applied when the downstream head is written. Nothing is copied when no
//! edit applies.

use super::super::context::{RequestCx, ResponseCx};
use super::super::template::{Template, TemplateInput};
use super::super::Flow;
use crate::http::HeaderEdits;

#[derive(Debug, Clone)]
pub enum OpKind {
    Set(Template),
    Add(Template),
    Remove,
}

#[derive(Debug, Clone)]
pub struct HeaderOp {
    pub name: Box<[u8]>,
    pub kind: OpKind,
}

#[derive(Debug, Clone)]
pub struct HeadersFilter {
    request: Box<[HeaderOp]>,
    response: Box<[HeaderOp]>,
    /// A response template reads `$host` or `$path`: keep them from the
    /// request phase.
    response_reads_request_line: bool,
}

impl HeadersFilter {
    pub fn new(request: Vec<HeaderOp>, response: Vec<HeaderOp>) -> Self {
        let response_reads_request_line = response.iter().any(|op| match &op.kind {
            OpKind::Set(t) | OpKind::Add(t) => t.reads_request_line(),
            OpKind::Remove => false,
        });
        HeadersFilter {
            request: request.into(),
            response: response.into(),
            response_reads_request_line,
        }
    }

    pub fn on_request(&self, cx: &mut RequestCx<'_>) -> Flow {
        if self.response_reads_request_line && !cx.state.request_line_kept {
            let host = cx.host().unwrap_or_default();
            let path = cx.path();
            cx.state.host.extend_from_slice(host);
            cx.state.path.extend_from_slice(path);
            cx.state.request_line_kept = true;
        }
        if self.request.is_empty() {
            return Flow::Continue;
        }
        let host = cx.host().unwrap_or_default();
        let path = cx.path();
        let state = &mut *cx.state;
        let input = TemplateInput {
            client_ip: cx.client.ip(),
            request_id: cx.request_id,
            route: cx.route,
            host,
            path,
            vars: &state.vars,
            tls: cx.tls,
        };
        apply(&self.request, &mut state.request, &input);
        Flow::Continue
    }

    pub fn on_response(&self, cx: &mut ResponseCx<'_>) -> Flow {
        if self.response.is_empty() {
            return Flow::Continue;
        }
        let state = &mut *cx.state;
        let input = TemplateInput {
            client_ip: cx.client.ip(),
            request_id: &state.request_id,
            route: cx.route,
            host: &state.host,
            path: &state.path,
            vars: &state.vars,
            tls: None,
        };
        apply(&self.response, &mut state.response, &input);
        Flow::Continue
    }
}

fn apply(ops: &[HeaderOp], edits: &mut HeaderEdits, input: &TemplateInput<'_>) {
    for op in ops {
        match &op.kind {
            OpKind::Remove => {
                edits.remove(&op.name);
            }
            OpKind::Set(t) | OpKind::Add(t) => {
                let append = matches!(op.kind, OpKind::Add(_));
                // A value a variable made invalid is dropped (never sent
                // half-written); the request goes on.
                if !t.render_into(edits, &op.name, append, input) && !append {
                    edits.remove(&op.name);
                }
            }
        }
    }
}
