//! `type = "direct_response"`: answer with a fixed status and body.

use super::super::context::RequestCx;
use super::super::reply::LocalReply;
use super::super::Flow;

#[derive(Debug, Clone)]
pub struct DirectFilter {
    pub reply: LocalReply,
}

impl DirectFilter {
    pub fn on_request(&self, _cx: &mut RequestCx<'_>) -> Flow {
        Flow::Respond(self.reply.clone())
    }
}
