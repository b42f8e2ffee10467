//! One send carried out: what it needs from KMS opened beforehand, the
//! provider called for each address, dead push tokens dropped.

use chrono::{DateTime, Utc};
use vcare_domain::consent::ConsentSource;
use vcare_domain::lifecycle::{CleanedRecipient, SendOutcome, combine};
use vcare_domain::notification::{Channel, Notification, Recipient, token_hash};
use vcare_domain::receipt::ReceiptRef;
use vcare_domain::templates::Rendered;
use vcare_providers::{Outgoing, Provider, ProviderId};
use vcare_runtime::Error;

use super::Dispatcher;
use crate::AddressChange;

/// How long a dead push token is remembered.
const DEAD_TOKEN_DAYS: i64 = 90;

/// A send made ready: the opened recipient and message, the adapter, and
/// the receipt URL's query.
pub(super) struct Prepared<'a> {
    recipient: Recipient,
    message: Rendered,
    pub(super) adapter: &'a dyn Provider,
    query: Option<String>,
}

impl Prepared<'_> {
    pub(super) fn locale(&self) -> Option<String> {
        self.recipient.locale.clone()
    }
}

impl Dispatcher {
    /// A provider said the recipient opted out (Twilio 21610): the address
    /// goes on the clinic's suppression list (source `provider`), so no
    /// other provider and no later notification sends to it.
    pub(super) async fn suppress_refused(
        &self,
        n: &Notification,
        channel: Channel,
        provider: &str,
        outcome: &SendOutcome,
        now: DateTime<Utc>,
    ) -> Result<(), Error> {
        let (SendOutcome::Refused { suppress: true, .. }, Some(hash)) = (outcome, n.address_hashes.get(&channel))
        else {
            return Ok(());
        };
        let change = AddressChange {
            channel,
            hash,
            user: n.recipient.user_id.as_deref(),
            source: ConsentSource::Provider,
            by: provider,
            reason: None,
            at: now,
        };
        let new = self.comms.suppress(&n.clinic_id, &change).await?;
        tracing::info!(notification_id = %n.notification_id, provider, new, "the provider reports an opt-out; address suppressed");
        Ok(())
    }

    /// Everything a send needs from KMS — the recipient and the message
    /// opened, the receipt URL signed — done *before* the attempt is
    /// claimed: with KMS down the message fails and comes back with no
    /// claim left behind to wait out.
    pub(super) async fn prepare(
        &self,
        n: &Notification,
        attempt_id: &str,
        channel: Channel,
        provider: &str,
    ) -> Result<Prepared<'_>, Error> {
        let recipient = self.comms.open_recipient(n).await?;
        let mut messages = self.comms.open_messages(n).await?;
        let message = messages.remove(&channel).ok_or("no message for the channel")?;
        let adapter =
            self.providers.iter().find(|p| p.channel() == channel && p.name() == provider).ok_or("provider gone")?;
        let query = self.callback_query(n, attempt_id, adapter.as_ref()).await?;
        Ok(Prepared { recipient, message, adapter: adapter.as_ref(), query })
    }

    /// Calls the provider. For push, every token of the adapter's platform
    /// is tried (sent if any took it); dead tokens come back as a new sealed
    /// recipient without them.
    pub(super) async fn deliver(
        &self,
        n: &Notification,
        attempt_id: &str,
        channel: Channel,
        prepared: Prepared<'_>,
    ) -> Result<(SendOutcome, Option<CleanedRecipient>), Error> {
        let Prepared { recipient, message, adapter, query } = prepared;
        let provider = adapter.name();
        let to: Vec<String> = match channel {
            Channel::Sms => recipient.phone.iter().cloned().collect(),
            Channel::Email => recipient.email.iter().cloned().collect(),
            Channel::Push => recipient
                .push_tokens
                .iter()
                .filter(|t| Some(t.platform) == adapter.platform())
                .map(|t| t.token.clone())
                .collect(),
        };
        if to.is_empty() {
            let reason = format!("no {} address for {provider}", channel.as_str());
            return Ok((SendOutcome::Permanent { reason }, None));
        }
        let mut outcomes = Vec::with_capacity(to.len());
        for address in &to {
            let outgoing = Outgoing {
                reference: attempt_id,
                to: address,
                subject: message.subject.as_deref(),
                body: &message.body,
                html: message.html.as_deref(),
                callback_query: query.as_deref(),
            };
            outcomes.push(adapter.send(&outgoing).await);
        }
        let dead: Vec<&String> = to
            .iter()
            .zip(&outcomes)
            .filter(|(_, o)| matches!(o, SendOutcome::DeadToken { .. }))
            .map(|(t, _)| t)
            .collect();
        let cleaned = if dead.is_empty() { None } else { Some(self.drop_tokens(n, &recipient, &dead).await?) };
        Ok((combine(provider, &outcomes), cleaned))
    }

    /// The recipient without its dead tokens, sealed again; the dead ones
    /// remembered (by hash) so later notifications leave them out.
    async fn drop_tokens(
        &self,
        n: &Notification,
        recipient: &Recipient,
        dead: &[&String],
    ) -> Result<CleanedRecipient, Error> {
        let mut kept = recipient.clone();
        kept.push_tokens.retain(|t| !dead.contains(&&t.token));
        tracing::info!(notification_id = %n.notification_id, dropped = dead.len(), "dead push tokens dropped");
        let hashes: Vec<String> =
            recipient.push_tokens.iter().filter(|t| dead.contains(&&t.token)).map(token_hash).collect();
        let keep = chrono::Duration::days(DEAD_TOKEN_DAYS);
        if let Err(e) = self.comms.store.mark_dead_tokens(&n.clinic_id, &hashes, self.comms.clock.now(), keep).await {
            tracing::warn!(error = %e, "remembering dead push tokens failed");
        }
        let sealed = self.comms.seal_recipient(&n.clinic_id, &n.notification_id, &kept).await?;
        Ok(CleanedRecipient { sealed, push_tokens: kept.push_tokens.len() })
    }

    /// Where a receipt for this attempt belongs, for the adapter's receipt
    /// URL: `ref=<clinic>~<notification>~<attempt>`, and for the gateway
    /// `sig`, the KMS MAC of `ref` (Twilio and Vonage sign their own).
    async fn callback_query(
        &self,
        n: &Notification,
        attempt_id: &str,
        adapter: &dyn Provider,
    ) -> Result<Option<String>, Error> {
        if !adapter.sends_receipts() {
            return Ok(None);
        }
        let reference = ReceiptRef {
            clinic_id: n.clinic_id.clone(),
            notification_id: n.notification_id.clone(),
            attempt_id: attempt_id.to_owned(),
        }
        .to_string();
        let sig = if adapter.id() == ProviderId::Gateway {
            let mac = self.receipt_mac.as_ref().ok_or("DLR_SIGNING_KEY_ID is not set")?;
            Some(mac.sign(&reference).await?)
        } else {
            None
        };
        let mut query = form_urlencoded::Serializer::new(String::new());
        query.append_pair("ref", &reference);
        if let Some(sig) = &sig {
            query.append_pair("sig", sig);
        }
        Ok(Some(query.finish()))
    }
}
