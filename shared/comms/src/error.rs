//! What can go wrong in a notification use case, in the service's own
//! words; the HTTP edge (`vcare-http`) says it as problem+json. Causes are
//! logged where they are turned into these, once, without personal data.

use vcare_domain::Rejected;
use vcare_store::StoreError;

use crate::BackendError;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NotifyError {
    #[error(transparent)]
    Rejected(#[from] Rejected),
    /// Storage failed in a way a retry may mend.
    #[error("storage is unavailable; try again")]
    StorageUnavailable,
    /// Sealing (KMS) or queueing failed; a retry may mend it.
    #[error("the notification service is unavailable; try again")]
    Unavailable,
    /// Stored data cannot be read: not the caller's to mend.
    #[error("stored data is malformed")]
    Corrupt,
}

impl From<StoreError> for NotifyError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::BadCursor => Self::Rejected(Rejected::Invalid("cursor: not a cursor this list gave".into())),
            StoreError::Unavailable(_) | StoreError::Contention => {
                tracing::error!(error = %e, "storage failed");
                Self::StorageUnavailable
            }
            StoreError::Corrupt(_) => {
                tracing::error!(error = %e, "stored data is malformed");
                Self::Corrupt
            }
        }
    }
}

impl From<BackendError> for NotifyError {
    fn from(e: BackendError) -> Self {
        tracing::error!(error = %e, "sealing or queueing failed");
        Self::Unavailable
    }
}
