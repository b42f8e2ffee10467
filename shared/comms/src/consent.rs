//! What patients want, as the notification service carries it out:
//! preferences read and changed (each change a line of the consent
//! history), suppressions looked up, made and lifted by address (hashed
//! first, never kept in clear), and the gate dispatch checks at send time.

use chrono::{DateTime, Utc};
use vcare_domain::Rejected;
use vcare_domain::consent::{
    self, ConsentEntry, ConsentSource, Gate, Preferences, PreferencesUpdate, Suppression, address_subject,
};
use vcare_domain::notification::{Channel, Notification, is_e164, is_email};
use vcare_store::{ConsentPage, StoreError};

use crate::{BackendError, Notifications, NotifyError};

/// How many history lines one page holds.
pub const CONSENT_PAGE: i32 = 50;

/// An address a clinic-admin names, checked: `sms` takes E.164, `email` an
/// e-mail address; push has no suppression list.
pub fn checked_address(channel: &str, address: &str) -> Result<Channel, Rejected> {
    let channel = match channel {
        "sms" if is_e164(address) => Channel::Sms,
        "email" if is_email(address) => Channel::Email,
        "sms" => return Err(Rejected::Invalid("address: an E.164 number for sms".into())),
        "email" => return Err(Rejected::Invalid("address: an e-mail address for email".into())),
        _ => return Err(Rejected::Invalid("channel: sms or email".into())),
    };
    Ok(channel)
}

/// A change to the suppression list: which address (by hash), whose it
/// is if known, who made it, why and when.
#[derive(Debug, Clone, Copy)]
pub struct AddressChange<'a> {
    pub channel: Channel,
    pub hash: &'a str,
    pub user: Option<&'a str>,
    pub source: ConsentSource,
    pub by: &'a str,
    pub reason: Option<&'a str>,
    pub at: DateTime<Utc>,
}

impl AddressChange<'_> {
    /// The history line, and the address's own history subject.
    fn line(&self, granted: bool) -> (ConsentEntry, String) {
        let entry = ConsentEntry {
            at: self.at,
            channel: Some(self.channel),
            category: None,
            granted,
            source: self.source,
            by: self.by.to_owned(),
            reason: self.reason.map(str::to_owned),
        };
        (entry, address_subject(self.channel, self.hash))
    }
}

impl Notifications {
    pub async fn address_hash(&self, channel: Channel, address: &str) -> Result<String, NotifyError> {
        Ok(self.hasher.hash(channel.as_str(), address).await.map_err(BackendError::from)?)
    }

    pub async fn preferences(&self, clinic: &str, user: &str) -> Result<Preferences, NotifyError> {
        Ok(self.consent.preferences(clinic, user).await?.map(|(p, _)| p).unwrap_or_default())
    }

    /// Applies `update` (checked first: nothing is kept from a bad one)
    /// with its history lines, re-reading on a race.
    pub async fn update_preferences(
        &self,
        clinic: &str,
        user: &str,
        update: &PreferencesUpdate,
        by: &str,
        now: DateTime<Utc>,
    ) -> Result<Preferences, NotifyError> {
        update.validate()?;
        for _ in 0..5 {
            let current = self.consent.preferences(clinic, user).await?;
            let (before, version) = current.map_or((Preferences::default(), None), |(p, v)| (p, Some(v)));
            let (next, history) = consent::apply(&before, update, ConsentSource::Api, by, now);
            if self.consent.save_preferences(clinic, user, &next, version, &history).await? {
                return Ok(next);
            }
        }
        Err(StoreError::Contention.into())
    }

    pub async fn consents(&self, clinic: &str, user: &str, cursor: Option<&str>) -> Result<ConsentPage, NotifyError> {
        Ok(self.consent.consents(clinic, user, cursor, CONSENT_PAGE).await?)
    }

    pub async fn suppression(
        &self,
        clinic: &str,
        channel: Channel,
        address: &str,
    ) -> Result<Option<Suppression>, NotifyError> {
        let hash = self.address_hash(channel, address).await?;
        Ok(self.consent.suppression(clinic, channel, &hash).await?)
    }

    /// Puts an address (by hash) on the clinic's list, the history line
    /// under the address and, when known, the user. `false`: it was on it.
    pub async fn suppress(&self, clinic: &str, c: &AddressChange<'_>) -> Result<bool, NotifyError> {
        let (entry, address) = c.line(false);
        let subjects: Vec<&str> = std::iter::once(address.as_str()).chain(c.user).collect();
        Ok(self.consent.suppress(clinic, c.channel, c.hash, &subjects, &entry).await?)
    }

    /// Takes an address (by hash) off the clinic's list. `false`: it was
    /// not on it.
    pub async fn lift(&self, clinic: &str, c: &AddressChange<'_>) -> Result<bool, NotifyError> {
        let (entry, address) = c.line(true);
        let subjects: Vec<&str> = std::iter::once(address.as_str()).chain(c.user).collect();
        Ok(self.consent.lift(clinic, c.channel, c.hash, &subjects, &entry).await?)
    }

    /// What the recipient's preferences and the clinic's suppressions
    /// allow `n` now: one read (preferences and suppressions together),
    /// none when the notification has neither a user nor an address hash.
    pub async fn gate(&self, n: &Notification) -> Result<Gate, NotifyError> {
        let open: Vec<Channel> = n
            .channels
            .iter()
            .copied()
            .filter(|c| !n.attempts.iter().any(|a| a.channel == *c && a.ends_channel))
            .collect();
        let hashes = n.address_hashes.iter().filter(|(c, _)| open.contains(c)).map(|(c, h)| (*c, h.clone())).collect();
        let (prefs, suppressed) =
            self.consent.gate_inputs(&n.clinic_id, n.recipient.user_id.as_deref(), &hashes).await?;
        Ok(consent::gate(prefs.as_ref(), &n.category, &open, &suppressed))
    }
}
