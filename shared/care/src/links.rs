//! Short join links (API.md "Join links"): `<JoinLinkBaseUrl>/j/<code>`
//! stands for one participant of one room. It carries no token: opening
//! it inside the room's join window mints one, then, for the link's owner
//! only; before the window it says when it opens; after it, or once the
//! room is ended or cancelled, the link is dead. A reminder with a short
//! link fits in far fewer SMS segments than one with a JWT in its URL.
//!
//! The code is 12 base64url characters (72 bits) of a keyed hash of
//! clinic, room and user (the KMS-derived key addresses are hashed with,
//! under its own label): every container makes the same link for the same
//! participant, so a retried reminder carries the same text, and nobody
//! without the key can guess one.

use chrono::{DateTime, Utc};
use vcare_aws::SdkConfig;
use vcare_crypto::{AddressHasher, KmsMac};
use vcare_domain::Rejected;
use vcare_domain::room::{NotJoinable, Room};
use vcare_domain::room_records::{JoinLink, LINK_CODE_CHARS, LinkMaker, is_link_code, may_make_link};
use vcare_runtime::{Env, Error};
use vcare_store::RoomStore;

use crate::RoomError;
use crate::audit::Audit;
use crate::tokens::{Minter, TokenIssuer};

pub struct Links {
    store: RoomStore,
    hasher: AddressHasher,
    base_url: String,
}

/// What opening a link comes to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Opened {
    /// Inside the join window: the provider's join URL with a token minted now.
    Join(String),
    /// Before the window: when it opens.
    NotYet(DateTime<Utc>),
    /// Inside the window, for someone the room's waiting room holds back:
    /// the waiting page (no token until a clinician admits them).
    Waiting,
    /// Unknown, expired, or its room ended or was cancelled.
    Gone,
}

impl Links {
    pub fn new(store: RoomStore, hasher: AddressHasher, base_url: &str) -> Self {
        Self { store, hasher, base_url: base_url.trim_end_matches('/').to_owned() }
    }

    /// `JOIN_LINK_BASE_URL` (required), `ADDRESS_HASH_KEY_ID`, `TABLE_NAME`.
    pub fn from_env(env: &Env, sdk: &SdkConfig) -> Result<Self, Error> {
        let store = RoomStore::new(aws_sdk_dynamodb::Client::new(sdk), env.required("TABLE_NAME")?);
        let mac = KmsMac::new(aws_sdk_kms::Client::new(sdk), env.required("ADDRESS_HASH_KEY_ID")?);
        Ok(Self::new(store, AddressHasher::new(mac), &env.required("JOIN_LINK_BASE_URL")?))
    }

    pub fn url(&self, link: &JoinLink) -> String {
        format!("{}/j/{}", self.base_url, link.code)
    }

    /// The link of `user_id`, a listed participant of `room`, made by
    /// `maker` (`made_by`: its id), valid until the room's end plus grace;
    /// kept (the same link again is the same item). Only for a room still
    /// open, and only as [`may_make_link`] allows.
    pub async fn link_for(
        &self,
        issuer: &TokenIssuer,
        room: &Room,
        user_id: &str,
        maker: LinkMaker<'_>,
        made_by: &str,
    ) -> Result<JoinLink, RoomError> {
        let Some(owner) = room.participant(user_id) else {
            return Err(Rejected::Impossible("userId: not a participant of this room".into()).into());
        };
        if !may_make_link(maker, user_id, owner.role) {
            return Err(RoomError::LinkNotYours);
        }
        if !room.status.is_open() {
            return Err(RoomError::Conflict(format!("the room is {}: it has no more links", room.status.as_str())));
        }
        let subject = format!("{}:{}:{user_id}", room.clinic_id, room.room_id);
        let hash = self.hasher.hash("join-link", &subject).await.map_err(|e| {
            tracing::error!(error = %e, "hashing a join link failed");
            RoomError::Unavailable
        })?;
        let link = JoinLink {
            code: hash[..LINK_CODE_CHARS].to_owned(),
            clinic_id: room.clinic_id.clone(),
            room_id: room.room_id.clone(),
            user_id: user_id.to_owned(),
            valid_until: issuer.care.config.join.closes(room),
            made_by: made_by.to_owned(),
        };
        self.store.keep_link(&link).await?;
        Ok(link)
    }

    /// The live link `code` at `now`: the room and the link, if the link
    /// is known, not expired, and its owner still listed.
    pub async fn resolve(&self, code: &str, now: DateTime<Utc>) -> Result<Option<(Room, JoinLink)>, RoomError> {
        if !is_link_code(code) {
            return Ok(None);
        }
        let Some(link) = self.store.link(code).await?.filter(|l| now <= l.valid_until) else {
            return Ok(None);
        };
        let Some((room, _)) = self.store.get(&link.clinic_id, &link.room_id).await? else {
            return Ok(None);
        };
        Ok(room.participant(&link.user_id).is_some().then_some((room, link)))
    }

    /// Opens the link `code` at `now`: a token for its owner only, minted
    /// by `issuer`, only inside the window, and not while they wait.
    /// The token is recorded in the audit trail as the link owner's, granted
    /// by its maker (`token.issue.link`, from `origin`: request id, source
    /// address) before the URL is answered; no record, no URL.
    pub async fn open(
        &self,
        issuer: &TokenIssuer,
        audit: &Audit,
        code: &str,
        now: DateTime<Utc>,
        origin: (String, String),
    ) -> Result<Opened, RoomError> {
        let Some((room, link)) = self.resolve(code, now).await? else { return Ok(Opened::Gone) };
        let Some(participant) = room.participant(&link.user_id) else { return Ok(Opened::Gone) };
        match room.joinable(&issuer.care.config.join, now) {
            Ok(()) if room.holds_back(participant) => Ok(Opened::Waiting),
            Ok(()) => {
                issuer.ensure_prepared(&room).await?;
                let by = Minter {
                    actor_id: link.user_id.clone(),
                    actor_roles: vec![participant.role.as_str().to_owned()],
                    action: "token.issue.link",
                    request_id: origin.0,
                    source_ip: origin.1,
                    // Links kept before makers were recorded name none.
                    granted_by: Some(link.made_by).filter(|m| !m.is_empty()),
                };
                let url = issuer.join_url(&room, participant, now, audit, by).await.map_err(|e| {
                    tracing::error!(error = %e, "a join token could not be signed or recorded");
                    RoomError::Unavailable
                })?;
                let Some(url) = url else {
                    tracing::error!(
                        provider = room.provider.as_str(),
                        "a link opened where the provider has no join page"
                    );
                    return Err(RoomError::Unavailable);
                };
                vcare_runtime::metrics::count("JoinLinksOpened", &[]);
                Ok(Opened::Join(url))
            }
            Err(NotJoinable::TooEarly { opens }) => Ok(Opened::NotYet(opens)),
            Err(NotJoinable::Closed(_) | NotJoinable::TooLate) => Ok(Opened::Gone),
        }
    }
}
