//! `type = "ip_acl"`: answer `403 Forbidden` to clients the lists deny.

use std::sync::Arc;

use super::super::context::RequestCx;
use super::super::reply::LocalReply;
use super::super::Flow;
use super::acl::IpAcl;

#[derive(Debug, Clone)]
pub struct IpAclFilter {
    pub acl: Arc<IpAcl>,
}

impl IpAclFilter {
    pub fn on_request(&self, cx: &mut RequestCx<'_>) -> Flow {
        if self.acl.allows(cx.client.ip()) {
            Flow::Continue
        } else {
            Flow::Respond(LocalReply::text(403, "403 Forbidden\n"))
        }
    }
}
