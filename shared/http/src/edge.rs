//! How the shared crates' errors reach callers.

use vcare_domain::Rejected;
use vcare_store::StoreError;

use crate::{Caller, Problem, Role};

/// A storage failure as the caller sees it: retryable (503) or not (500).
/// The cause is logged here, once, without item contents.
pub fn store_problem(e: StoreError) -> Problem {
    match e {
        StoreError::BadCursor => Problem::bad_request("cursor: not a cursor this endpoint gave you"),
        StoreError::Unavailable(_) | StoreError::Contention => {
            tracing::error!(error = %e, "storage failed");
            Problem::service_unavailable("storage is unavailable; try again")
        }
        StoreError::Corrupt(_) => {
            tracing::error!(error = %e, "stored data is malformed");
            Problem::internal()
        }
    }
}

/// A broken rule: 400 when a field fails its rule, 422 when the request is
/// well-formed but cannot be done.
pub fn rejected(r: Rejected) -> Problem {
    match r {
        Rejected::Invalid(d) => Problem::bad_request(d),
        Rejected::Impossible(d) => Problem::unprocessable(d),
    }
}

/// Requires one of `roles`, else 403.
pub fn require_role(caller: &Caller, roles: &[Role]) -> Result<(), Problem> {
    if caller.has_any_role(roles) { Ok(()) } else { Err(Problem::forbidden("your role may not do this")) }
}
