//! How dispatch's time limits must fit together.

use super::MAX_WAIT_SECONDS;

/// How the claim timeout, the function's timeout and the dispatch queue's
/// visibility timeout and redrive must relate, so that no setting can write
/// off live work or dead-letter a notification that is only waiting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimeBudget {
    pub claim_timeout_seconds: i64,
    pub function_timeout_seconds: i64,
    pub visibility_timeout_seconds: i64,
    /// The queue's redrive `maxReceiveCount`; `None` when it has no DLQ.
    pub max_receive_count: Option<i64>,
}

/// Margin between the function's timeout and the claim timeout: a claim is
/// written off only once the invocation that made it has surely ended.
pub const CLAIM_MARGIN_SECONDS: i64 = 5;

/// Receives a message may spend on crashes and unexpected errors before the
/// queue dead-letters it; waits spend none.
pub const MIN_RECEIVES: i64 = 3;

impl TimeBudget {
    /// Every rule that does not hold, in words an operator can act on.
    pub fn problems(&self) -> Vec<String> {
        let mut out = Vec::new();
        let TimeBudget { claim_timeout_seconds: claim, function_timeout_seconds: function, .. } = *self;
        if claim < function + CLAIM_MARGIN_SECONDS {
            out.push(format!(
                "ClaimTimeoutSeconds ({claim}) must be at least the dispatch function's timeout ({function}) plus \
                 {CLAIM_MARGIN_SECONDS}: a claim must not be written off while its invocation may still be sending"
            ));
        }
        if claim + 1 > MAX_WAIT_SECONDS {
            out.push(format!(
                "ClaimTimeoutSeconds ({claim}) must be below {MAX_WAIT_SECONDS}: a wait for a claim is one queue delay"
            ));
        }
        if self.visibility_timeout_seconds < function {
            out.push(format!(
                "the dispatch queue's VisibilityTimeout ({}) must be at least the dispatch function's timeout \
                 ({function}): a message must not reach a second container while the first still works on it",
                self.visibility_timeout_seconds
            ));
        }
        match self.max_receive_count {
            None => out.push("the dispatch queue has no redrive policy: a poison message would cycle for ever".into()),
            Some(n) if n < MIN_RECEIVES => out.push(format!(
                "the dispatch queue's maxReceiveCount ({n}) must be at least {MIN_RECEIVES}: one crash spends a \
                 receive of every message in its batch"
            )),
            Some(_) => {}
        }
        out
    }
}
