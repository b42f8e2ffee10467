//! What is kept under a room besides the room itself: reported issues,
//! shared images, the Jitsi reservation, participants' sealed contacts and
//! an end-of-meeting call left to retry. Field names are the stored ones.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::room::ParticipantRole;

/// A technical issue a participant reported. The description is free text:
/// stored, never logged nor put in an event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct IssueRecord {
    pub issue_id: String,
    pub issue_type: String,
    pub description: String,
    pub reported_by: String,
    pub created_at: DateTime<Utc>,
}

/// An image shared into a room (the object is in S3 under `s3_key`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ImageRecord {
    pub image_id: String,
    pub content_type: String,
    pub size_bytes: u64,
    pub s3_key: String,
    pub shared_by: String,
    pub created_at: DateTime<Utc>,
}

/// Jitsi's reservation of the room's conference (mod_reservations), as
/// Jicofo sent it: the start as Java's date text, the owner's mail.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ReservationRecord {
    pub start_time: String,
    pub mail_owner: String,
}

/// A participant's contact, sealed (KMS envelope): never stored in clear.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SealedContact {
    pub sealed_contact: String,
}

/// Ending the room's meeting at its provider failed; kept, with a due
/// entry that retries it (`DueKind::EndRetry`). Records from before the
/// retries count as one attempt.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EndPending {
    pub error: String,
    pub at: DateTime<Utc>,
    #[serde(default = "one")]
    pub attempts: u32,
}

fn one() -> u32 {
    1
}

/// A participant's short join link (`/j/<code>`): who it is for, in which
/// room, until when. It carries no token; one is minted at click time for
/// its owner only, inside the join window.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct JoinLink {
    pub code: String,
    pub clinic_id: String,
    pub room_id: String,
    pub user_id: String,
    /// The room's end plus grace: the link is dead after it.
    pub valid_until: DateTime<Utc>,
    /// Who made it last (a caller's `sub`, or vcare's reminders): every
    /// token minted from it is recorded with both maker and owner.
    #[serde(default)]
    pub made_by: String,
}

/// Who asks for a participant's join link.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkMaker<'a> {
    /// A back-end service of the clinic, or vcare's own reminders.
    Service,
    /// A caller listed in the room with this role (`None`: not listed).
    Caller { user_id: &'a str, role: Option<ParticipantRole> },
}

/// Whether `maker` may make the link of `owner` (listed with `owner_role`):
/// a service for anyone listed; a listed doctor or nurse for themself or
/// for a participant below them (a patient, an interpreter), never for
/// another clinician, whose link would carry their moderator rights.
pub fn may_make_link(maker: LinkMaker<'_>, owner: &str, owner_role: ParticipantRole) -> bool {
    match maker {
        LinkMaker::Service => true,
        LinkMaker::Caller { user_id, role: Some(ParticipantRole::Doctor | ParticipantRole::Nurse) } => {
            user_id == owner || matches!(owner_role, ParticipantRole::Patient | ParticipantRole::Interpreter)
        }
        LinkMaker::Caller { .. } => false,
    }
}

/// Characters in a link code: 12 of base64url, 72 bits.
pub const LINK_CODE_CHARS: usize = 12;

/// Whether `code` could be a link code (checked before any read).
pub fn is_link_code(code: &str) -> bool {
    code.len() == LINK_CODE_CHARS && code.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

#[cfg(test)]
mod link_tests {
    use super::*;
    use ParticipantRole::{Doctor, Interpreter, Nurse, Patient};

    #[test]
    fn a_link_is_made_for_oneself_by_a_service_or_for_someone_below_a_clinician() {
        let caller = |user_id, role| LinkMaker::Caller { user_id, role };
        for (maker, owner, role, allowed) in [
            (LinkMaker::Service, "u-doc", Doctor, true),
            (caller("u-nurse", Some(Nurse)), "u-doc", Doctor, false),
            (caller("u-doc2", Some(Doctor)), "u-doc", Doctor, false),
            (caller("u-doc", Some(Doctor)), "u-nurse", Nurse, false),
            (caller("u-doc", Some(Doctor)), "u-doc", Doctor, true),
            (caller("u-nurse", Some(Nurse)), "u-pat", Patient, true),
            (caller("u-doc", Some(Doctor)), "u-int", Interpreter, true),
            (caller("u-pat", Some(Patient)), "u-pat", Patient, false),
            (caller("u-pat", Some(Patient)), "u-pat2", Patient, false),
            (caller("u-int", Some(Interpreter)), "u-pat", Patient, false),
            (caller("u-admin", None), "u-pat", Patient, false),
        ] {
            assert_eq!(may_make_link(maker, owner, role), allowed, "{maker:?} for {owner}");
        }
    }
}
