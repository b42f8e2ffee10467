//! The one list of providers: each [`ProviderId`] knows its channel and
//! its settings. The dispatch wiring ([`build`]), the health catalogue
//! ([`catalogue`]) and the template's environment (checked by a contract
//! test against [`ProviderId::env_names`]) all come from it.

use std::collections::HashMap;
use std::time::Duration;

use serde_json::{Value, json};
use vcare_domain::notification::Channel;
use vcare_domain::push::PushEndpoints;
use vcare_runtime::{ConfigError, Env, Error};

use crate::{Provider, Secret, Secrets, email, push, sms};

/// Every provider vcare has.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ProviderId {
    Gateway,
    Twilio,
    Vonage,
    Ses,
    SendGrid,
    Fcm,
    WebPush,
    Apns,
}

/// How a provider reads one setting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Setting {
    /// The provider is left out without it.
    Required(&'static str),
    /// KMS-encrypted in `<NAME>_CIPHERTEXT`; the provider is left out
    /// without it.
    Secret(&'static str),
    /// Has a default (a base URL, a sender name).
    Optional(&'static str),
}

impl Setting {
    /// The environment variable that carries it.
    pub fn env_name(self) -> String {
        match self {
            Self::Required(n) | Self::Optional(n) => n.to_owned(),
            Self::Secret(n) => format!("{n}_CIPHERTEXT"),
        }
    }

    /// Whether the provider is left out without it.
    pub fn required(self) -> bool {
        !matches!(self, Self::Optional(_))
    }
}

use Setting::{Optional, Required, Secret as Sealed};

impl ProviderId {
    /// In the order the health catalogue lists them.
    pub const ALL: [ProviderId; 8] =
        [Self::Gateway, Self::Twilio, Self::Vonage, Self::Ses, Self::SendGrid, Self::Fcm, Self::WebPush, Self::Apns];

    pub fn name(self) -> &'static str {
        match self {
            Self::Gateway => "gateway",
            Self::Twilio => "twilio",
            Self::Vonage => "vonage",
            Self::Ses => "ses",
            Self::SendGrid => "sendgrid",
            Self::Fcm => "fcm",
            Self::WebPush => "webpush",
            Self::Apns => "apns",
        }
    }

    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|p| p.name() == name)
    }

    pub fn channel(self) -> Channel {
        match self {
            Self::Gateway | Self::Twilio | Self::Vonage => Channel::Sms,
            Self::Ses | Self::SendGrid => Channel::Email,
            Self::Fcm | Self::WebPush | Self::Apns => Channel::Push,
        }
    }

    pub fn settings(self) -> &'static [Setting] {
        match self {
            Self::Gateway => {
                &[Required("SMS_GATEWAY_URL"), Sealed("SMS_GATEWAY_API_KEY"), Optional("SMS_GATEWAY_FROM")]
            }
            Self::Twilio => &[
                Required("TWILIO_ACCOUNT_SID"),
                Required("TWILIO_FROM"),
                Sealed("TWILIO_AUTH_TOKEN"),
                Optional("TWILIO_BASE_URL"),
            ],
            Self::Vonage => &[
                Required("VONAGE_API_KEY"),
                Required("VONAGE_FROM"),
                Sealed("VONAGE_API_SECRET"),
                Optional("VONAGE_BASE_URL"),
            ],
            Self::Ses => &[Required("EMAIL_FROM")],
            Self::SendGrid => &[Required("EMAIL_FROM"), Sealed("SENDGRID_API_KEY"), Optional("SENDGRID_BASE_URL")],
            Self::Fcm => &[
                Required("FCM_PROJECT_ID"),
                Sealed("FCM_SERVICE_ACCOUNT"),
                Optional("FCM_BASE_URL"),
                Optional("FCM_TOKEN_URL"),
            ],
            Self::WebPush => &[Required("VAPID_SUBJECT"), Sealed("VAPID_PRIVATE_KEY")],
            Self::Apns => &[
                Required("APNS_TEAM_ID"),
                Required("APNS_KEY_ID"),
                Required("APNS_TOPIC"),
                Sealed("APNS_PRIVATE_KEY"),
                Optional("APNS_BASE_URL"),
            ],
        }
    }

    /// The environment variables of its settings; `all` includes the
    /// optional ones (the dispatch function's), else only those that decide
    /// whether it is configured (the health function's).
    pub fn env_names(self, all: bool) -> Vec<String> {
        self.settings().iter().filter(|s| all || s.required()).map(|s| s.env_name()).collect()
    }

    /// Whether its required settings are all present (secrets are checked
    /// for presence, not opened).
    pub fn configured(self, env: &Env) -> bool {
        self.settings().iter().filter(|s| s.required()).all(|s| env.get(&s.env_name()).is_some())
    }
}

/// The variable that orders a channel's providers, and its default.
pub fn order_setting(channel: Channel) -> (&'static str, &'static str) {
    match channel {
        Channel::Sms => ("SMS_PROVIDERS", "gateway,twilio,vonage"),
        Channel::Email => ("EMAIL_PROVIDERS", "ses,sendgrid"),
        Channel::Push => ("PUSH_PROVIDERS", "fcm,webpush,apns"),
    }
}

/// Whether a provider's settings are present in `env`.
pub fn configured(env: &Env, name: &str) -> bool {
    ProviderId::parse(name).is_some_and(|p| p.configured(env))
}

/// The failover order of a channel's providers (`SMS_PROVIDERS`,
/// `EMAIL_PROVIDERS`, `PUSH_PROVIDERS`), names as written.
pub fn order(env: &Env, channel: Channel) -> Vec<String> {
    let (name, default) = order_setting(channel);
    env.get(name).unwrap_or(default).split(',').map(|s| s.trim().to_owned()).filter(|s| !s.is_empty()).collect()
}

/// The channels that can be sent on: those whose order names a configured
/// provider.
pub fn routable(env: &Env) -> Vec<Channel> {
    [Channel::Sms, Channel::Push, Channel::Email]
        .into_iter()
        .filter(|c| {
            order(env, *c)
                .iter()
                .any(|name| ProviderId::parse(name).is_some_and(|p| p.channel() == *c && p.configured(env)))
        })
        .collect()
}

/// Each provider with its channel and state: `active` (configured and in
/// the channel's order, with its position), `configured` (not in the
/// order), `disabled`.
pub fn catalogue(env: &Env) -> Vec<Value> {
    ProviderId::ALL
        .iter()
        .map(|id| {
            let position = order(env, id.channel()).iter().position(|n| n == id.name());
            let state = match (id.configured(env), position) {
                (true, Some(_)) => "active",
                (true, None) => "configured",
                (false, _) => "disabled",
            };
            json!({"name": id.name(), "channel": id.channel().as_str(), "state": state,
                   "failoverPosition": position.map(|p| p + 1)})
        })
        .collect()
}

/// What building the adapters needs besides their own settings.
pub struct Wiring<'a> {
    pub env: &'a Env,
    pub sdk: &'a vcare_aws::SdkConfig,
    /// `PROVIDER_TIMEOUT_MS` (default 5 s) for every provider call.
    pub timeout: Duration,
    /// Which Web Push endpoints may be called.
    pub push_endpoints: PushEndpoints,
}

/// An HTTP provider's account: where it is, who vcare is there, its
/// secret, the sender, where receipts go, the client.
pub(crate) struct Account {
    pub(crate) base_url: String,
    /// The account or key id (Twilio's SID, Vonage's key); empty when the
    /// secret alone names the account.
    pub(crate) user: String,
    pub(crate) secret: Secret,
    pub(crate) from: String,
    /// Where the provider posts delivery receipts; `ref` is added per message.
    pub(crate) receipt_url: Option<String>,
    pub(crate) http: reqwest::Client,
}

/// One provider's settings, read and opened.
pub(crate) struct Settings<'a> {
    pub(crate) id: ProviderId,
    values: HashMap<&'static str, &'a str>,
    secrets: HashMap<&'static str, Secret>,
    pub(crate) wiring: &'a Wiring<'a>,
    pub(crate) http: reqwest::Client,
}

impl Settings<'_> {
    /// A required or optional value (`""` for a required one cannot
    /// happen: the provider is left out without it).
    pub(crate) fn get(&self, name: &str) -> &str {
        self.values.get(name).copied().unwrap_or_default()
    }

    pub(crate) fn or(&self, name: &str, default: &str) -> String {
        self.values.get(name).copied().unwrap_or(default).to_owned()
    }

    pub(crate) fn values_opt(&self, name: &str) -> Option<String> {
        self.values.get(name).map(|v| (*v).to_owned())
    }

    pub(crate) fn secret(&self, name: &str) -> Secret {
        self.secrets.get(name).cloned().unwrap_or_else(|| Secret::new(""))
    }

    /// Its account from the settings named: (base URL, default), the
    /// account id (`""`: none), the secret, (sender, default).
    pub(crate) fn account(&self, base: (&str, &str), user: &str, secret: &str, from: (&str, &str)) -> Account {
        Account {
            base_url: self.or(base.0, base.1),
            user: self.get(user).to_owned(),
            secret: self.secret(secret),
            from: self.or(from.0, from.1),
            receipt_url: self.receipt_url(),
            http: self.http.clone(),
        }
    }

    /// Where this provider posts delivery receipts (`DLR_CALLBACK_BASE_URL`).
    pub(crate) fn receipt_url(&self) -> Option<String> {
        let base = self.wiring.env.get("DLR_CALLBACK_BASE_URL")?;
        Some(format!("{}/v1/communication/dlr/{}", base.trim_end_matches('/'), self.id.name()))
    }
}

/// The configured providers, in failover order per channel; a provider in
/// an order whose settings are missing is left out, an unknown name is a
/// configuration error.
pub async fn build(w: &Wiring<'_>) -> Result<Vec<Box<dyn Provider>>, Error> {
    let secrets = Secrets::new(w.sdk);
    let http = crate::http_client(w.timeout);
    let mut out: Vec<Box<dyn Provider>> = Vec::new();
    for channel in [Channel::Sms, Channel::Email, Channel::Push] {
        for name in order(w.env, channel) {
            let id =
                ProviderId::parse(&name).filter(|id| id.channel() == channel).ok_or_else(|| ConfigError::Invalid {
                    name: order_setting(channel).0.into(),
                    reason: format!("unknown provider {name}"),
                })?;
            if !id.configured(w.env) {
                continue;
            }
            let mut s = Settings { id, values: HashMap::new(), secrets: HashMap::new(), wiring: w, http: http.clone() };
            for setting in id.settings() {
                match *setting {
                    Required(n) | Optional(n) => {
                        if let Some(v) = w.env.get(n) {
                            s.values.insert(n, v);
                        }
                    }
                    Sealed(n) => {
                        if let Some(v) = secrets.get(w.env, n).await? {
                            s.secrets.insert(n, v);
                        }
                    }
                }
            }
            out.push(adapter(&s).map_err(|reason| ConfigError::Invalid { name: id.name().into(), reason })?);
        }
    }
    Ok(out)
}

fn adapter(s: &Settings<'_>) -> Result<Box<dyn Provider>, String> {
    Ok(match s.id {
        ProviderId::Gateway => Box::new(sms::GatewaySms::build(s)),
        ProviderId::Twilio => Box::new(sms::Twilio::build(s)),
        ProviderId::Vonage => Box::new(sms::Vonage::build(s)),
        ProviderId::Ses => Box::new(email::Ses::build(s)),
        ProviderId::SendGrid => Box::new(email::SendGrid::build(s)),
        ProviderId::Fcm => Box::new(push::Fcm::build(s)?),
        ProviderId::WebPush => Box::new(push::WebPush::build(s)?),
        ProviderId::Apns => Box::new(push::Apns::build(s)?),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_provider_is_found_by_its_name_and_has_a_channel_order() {
        for id in ProviderId::ALL {
            assert_eq!(ProviderId::parse(id.name()), Some(id));
            assert!(order_setting(id.channel()).1.split(',').any(|n| n == id.name()), "{id:?} is in its default order");
            assert!(id.settings().iter().any(|s| s.required()), "{id:?} can be left out");
        }
    }

    #[test]
    fn configured_means_every_required_setting_is_there() {
        let env =
            |pairs: &[(&str, &str)]| Env::from_map(pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect());
        let twilio = [("TWILIO_ACCOUNT_SID", "AC1"), ("TWILIO_FROM", "+1"), ("TWILIO_AUTH_TOKEN_CIPHERTEXT", "x")];
        assert!(ProviderId::Twilio.configured(&env(&twilio)));
        assert!(!ProviderId::Twilio.configured(&env(&twilio[..2])), "the secret is required");
        assert!(ProviderId::Ses.configured(&env(&[("EMAIL_FROM", "a@b")])));
        let states: Vec<_> = catalogue(&env(&[("EMAIL_FROM", "a@b"), ("EMAIL_PROVIDERS", "sendgrid")]))
            .into_iter()
            .filter(|e| e["channel"] == "email")
            .map(|e| e["state"].as_str().unwrap().to_owned())
            .collect();
        assert_eq!(states, ["configured", "disabled"], "ses configured but not in the order; sendgrid lacks its key");
    }
}
