//! The seam the audit trail fills (issue 21): a use case that grants an
//! access to personal or clinical data says so here *before* it hands the
//! data out, and an audit that fails fails the request. Until the trail
//! exists, [`NotYetAudited`] counts each access (`AccessesUnaudited`) and
//! records nothing: the call sites, the actor and the subject are what
//! the trail will write.

use vcare_domain::caller::Caller;

use crate::RoomError;
use crate::video::Pending;

/// One access: who (the caller), what they were given, of what.
#[derive(Debug, Clone, Copy)]
pub struct Access<'a> {
    pub actor: &'a Caller,
    /// Like `recording.download-url`.
    pub action: &'static str,
    pub subject_type: &'static str,
    pub subject_id: &'a str,
}

pub trait AuditTrail: Send + Sync {
    fn record<'a>(&'a self, access: Access<'a>) -> Pending<'a, Result<(), RoomError>>;
}

/// No trail yet: counted, not recorded.
pub struct NotYetAudited;

impl AuditTrail for NotYetAudited {
    fn record<'a>(&'a self, access: Access<'a>) -> Pending<'a, Result<(), RoomError>> {
        Box::pin(async move {
            vcare_runtime::metrics::count("AccessesUnaudited", &[("action", access.action)]);
            Ok(())
        })
    }
}
