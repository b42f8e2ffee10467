//! What can go wrong in a virtual-care use case, in the service's own
//! words; the HTTP edge (`vcare-http`) says it as problem+json.

use vcare_domain::Rejected;
use vcare_store::StoreError;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RoomError {
    /// No such room for this caller: one that does not exist, one of
    /// another clinic and one the caller may not see are the same.
    #[error("no such room")]
    NoSuchRoom,
    /// The caller may see the room but is not one of its participants.
    #[error("only the room's participants may do this")]
    ParticipantsOnly,
    /// A Jitsi callback without the right shared secret.
    #[error("missing or wrong X-Jitsi-Shared-Secret")]
    BadSharedSecret,
    #[error(transparent)]
    Rejected(#[from] Rejected),
    /// Storage failed in a way a retry may mend.
    #[error("storage is unavailable; try again")]
    Unavailable,
    /// Stored data cannot be read: not the caller's to mend.
    #[error("stored data is malformed")]
    Corrupt,
    /// Presigning image URLs failed.
    #[error("image storage is unavailable; try again")]
    ImagesUnavailable,
    #[error("cursor: not a cursor this endpoint gave you")]
    BadCursor,
    /// The room's video provider did not answer; try again.
    #[error("the video provider is unavailable; try again")]
    ProviderUnavailable,
    /// Not inside the join window, or the room is closed (409; the detail
    /// says which).
    #[error("{0}")]
    NotJoinable(String),
    /// A patient or interpreter of a lobby room who has not been admitted.
    #[error("you are in the waiting room: the clinician will let you in")]
    Waiting,
    /// Admit of someone who is not in the waiting room.
    #[error("userId: not in the waiting room")]
    NotWaiting,
    /// A user who is not one of the room's participants.
    #[error("userId: not a participant of this room")]
    NoSuchParticipant,
    #[error("no such recording")]
    NoSuchRecording,
    /// A clinic-admin's call by another role.
    #[error("only the clinic's admins may do this")]
    AdminsOnly,
    /// Presigning or checking recordings failed; try again.
    #[error("recording storage is unavailable; try again")]
    RecordingsUnavailable,
    /// The request conflicts with the state it would change (409; the
    /// detail says how, naming no one).
    #[error("{0}")]
    Conflict(String),
    /// The room's recordings are for its doctors and the clinic's admins
    /// (and its patients where the clinic allows it).
    #[error("only the room's doctors and the clinic's admins see its recordings")]
    RecordingsForbidden,
    /// A join link its maker may not make (403).
    #[error(
        "a link may be made by a service, or by the room's doctors and nurses for themselves or a patient or interpreter"
    )]
    LinkNotYours,
    /// Starting or stopping a recording by anyone but the room's doctors.
    #[error("only the room's doctors may start or stop its recording")]
    DoctorsOnly,
}

impl RoomError {
    /// Why `room` cannot be joined now, as the caller is told.
    pub fn not_joinable(why: vcare_domain::room::NotJoinable) -> Self {
        use vcare_domain::room::NotJoinable;
        Self::NotJoinable(match why {
            NotJoinable::Closed(status) => format!("the room is {}", status.as_str()),
            NotJoinable::TooEarly { opens } => format!("the room opens for joining at {}", opens.to_rfc3339()),
            NotJoinable::TooLate => "the consultation's join window has closed".to_owned(),
        })
    }
}

impl From<StoreError> for RoomError {
    /// The cause is logged here, once, without item contents.
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::BadCursor => Self::BadCursor,
            StoreError::Unavailable(_) | StoreError::Contention => {
                tracing::error!(error = %e, "storage failed");
                Self::Unavailable
            }
            StoreError::Corrupt(_) => {
                tracing::error!(error = %e, "stored data is malformed");
                Self::Corrupt
            }
        }
    }
}
