//! The communication functions' common ground: config read once, the
//! notification store, sealing/opening personal data, the dispatch queue.

mod consent;
pub mod dispatch;
mod error;
pub mod inbound;
pub mod outbox;
pub mod readiness;
mod receipts;
mod reconcile;
pub mod replay;
mod schedules;
mod submit;
pub mod templates;
pub mod webhook_deliveries;
pub mod webhooks;

use std::collections::BTreeMap;
use std::time::Duration;

use vcare_aws::SdkConfig;
use vcare_crypto::{AddressHasher, CryptoError, Envelope, context};
use vcare_domain::clinic::{ClinicName, DefaultLocale, PerClinic};
use vcare_domain::notification::{Channel, Notification, Recipient};
use vcare_domain::push::PushEndpoints;
use vcare_domain::templates::Rendered;
use vcare_runtime::{Clock, ConfigError, Env};
use vcare_store::{ConsentStore, NotificationStore, ScheduleStore, TemplateStore};

pub use consent::{AddressChange, CONSENT_PAGE, checked_address};
pub use error::NotifyError;
pub use receipts::{Receipt, ReceiptTaken};
pub use reconcile::ReconcileError;
pub use schedules::{DueDone, ScheduleCreate};
pub use submit::{Submitted, sha256_hex};
pub use vcare_domain::notification::DispatchMessage;

/// SQS's longest message delay.
pub const MAX_QUEUE_DELAY_SECONDS: i64 = 900;

#[derive(Debug, Clone)]
pub struct NotificationsConfig {
    pub table_name: String,
    pub dispatch_queue_url: String,
    pub data_key_id: String,
    /// Seals per cached data key (`PII_KEY_MAX_USES`, default 1000).
    pub key_max_uses: u32,
    /// Lifetime of a cached data key (`PII_KEY_MAX_AGE_SECONDS`, default 300).
    pub key_max_age: Duration,
    /// How long an Idempotency-Key is remembered (`IDEMPOTENCY_HOURS`, default 24).
    pub idempotency: chrono::Duration,
    /// Web Push endpoints vcare may call (`PUSH_SERVICE_HOSTS`,
    /// `PUSH_ALLOW_LOOPBACK`).
    pub push_endpoints: PushEndpoints,
    /// The append-only consent history (`CONSENT_TABLE_NAME`).
    pub consent_table_name: String,
    /// The KMS HMAC key addresses are hashed under (`ADDRESS_HASH_KEY_ID`).
    pub address_hash_key_id: String,
    /// What messages call each clinic (`CLINIC_NAMES`): the `clinic`
    /// variable of every template.
    pub clinic_names: PerClinic<ClinicName>,
    /// The channels a configured provider can send on (the providers'
    /// settings and each channel's order): a request none of whose
    /// channels is among them is refused at accept.
    pub routable: Vec<Channel>,
    /// Each clinic's default locale (`CLINIC_LOCALES`, default `en`).
    pub default_locales: PerClinic<DefaultLocale>,
    /// How long a container trusts a cached clinic template
    /// (`TEMPLATE_CACHE_SECONDS`, default 60).
    pub template_cache_age: Duration,
}

/// `PUSH_SERVICE_HOSTS` (default: the public push services) and
/// `PUSH_ALLOW_LOOPBACK` (default false).
pub fn push_endpoints(env: &Env) -> Result<PushEndpoints, ConfigError> {
    let hosts = env.get("PUSH_SERVICE_HOSTS").unwrap_or(vcare_domain::push::DEFAULT_PUSH_SERVICE_HOSTS);
    PushEndpoints::parse(hosts, env.parsed_or("PUSH_ALLOW_LOOPBACK", false)?)
        .map_err(|reason| ConfigError::Invalid { name: "PUSH_SERVICE_HOSTS".into(), reason })
}

impl NotificationsConfig {
    /// What messages call `clinic`: its configured name, else its id.
    pub fn clinic_name<'a>(&'a self, clinic: &'a str) -> &'a str {
        let name = &self.clinic_names.of(clinic).0;
        if name.is_empty() { clinic } else { name }
    }

    pub fn from_env(env: &Env) -> Result<Self, ConfigError> {
        Ok(Self {
            table_name: env.required("TABLE_NAME")?,
            dispatch_queue_url: env.required("DISPATCH_QUEUE_URL")?,
            data_key_id: env.required("DATA_KEY_ID")?,
            key_max_uses: env.bounded("PII_KEY_MAX_USES", 1000, 1, 1_000_000)?,
            key_max_age: Duration::from_secs(env.bounded("PII_KEY_MAX_AGE_SECONDS", 300, 1, 86_400)?),
            idempotency: chrono::Duration::hours(env.bounded("IDEMPOTENCY_HOURS", 24, 1, 24 * 30)?),
            push_endpoints: push_endpoints(env)?,
            consent_table_name: env.required("CONSENT_TABLE_NAME")?,
            address_hash_key_id: env.required("ADDRESS_HASH_KEY_ID")?,
            clinic_names: PerClinic::parse(ClinicName::default(), env.get("CLINIC_NAMES").unwrap_or(""))
                .map_err(|reason| ConfigError::Invalid { name: "CLINIC_NAMES".into(), reason })?,
            routable: vcare_providers::routable(env),
            default_locales: PerClinic::parse(DefaultLocale::default(), env.get("CLINIC_LOCALES").unwrap_or(""))
                .map_err(|reason| ConfigError::Invalid { name: "CLINIC_LOCALES".into(), reason })?,
            template_cache_age: Duration::from_secs(env.bounded("TEMPLATE_CACHE_SECONDS", 60, 0, 3_600)?),
        })
    }
}

#[derive(Debug, thiserror::Error)]
pub enum BackendError {
    #[error(transparent)]
    Crypto(#[from] CryptoError),
    #[error("queue: {0}")]
    Queue(String),
    #[error("sealed data is malformed")]
    Malformed,
}

/// The KMS HMAC key that signs and checks the gateway's receipt `ref`
/// (`DLR_SIGNING_KEY_ID`), when one is set.
pub fn receipt_mac(env: &Env, sdk: &SdkConfig) -> Option<vcare_crypto::KmsMac> {
    env.get("DLR_SIGNING_KEY_ID").map(|key| vcare_crypto::KmsMac::new(aws_sdk_kms::Client::new(sdk), key))
}

/// What vcare itself sends someone: a template, its variables, a priority.
pub struct Notice {
    pub template: &'static str,
    pub variables: BTreeMap<String, String>,
    pub priority: vcare_domain::notification::Priority,
    /// What it is about (a reply is checked against it), and the replies
    /// it offers by SMS.
    pub context: Option<vcare_domain::notification::Context>,
    pub replies: Vec<vcare_domain::consent::ReplyAction>,
}

pub struct Notifications {
    pub config: NotificationsConfig,
    pub store: NotificationStore,
    /// Preferences, suppressions, the consent history, the SMS index.
    pub consent: ConsentStore,
    /// Keyed hashes of addresses (never stored in clear).
    pub hasher: AddressHasher,
    pub envelope: Envelope,
    pub sqs: aws_sdk_sqs::Client,
    pub clock: Clock,
    /// Clinic templates, and the container's cache of them.
    pub templates: TemplateStore,
    pub templates_cache: templates::TemplateCache,
    /// Schedules and the due index.
    pub schedules: ScheduleStore,
}

pub fn timezone_ok(zone: &str) -> bool {
    zone.parse::<chrono_tz::Tz>().is_ok()
}

impl Notifications {
    pub fn new(config: NotificationsConfig, sdk: &SdkConfig) -> Self {
        let ddb = aws_sdk_dynamodb::Client::new(sdk);
        let kms = aws_sdk_kms::Client::new(sdk);
        Self {
            store: NotificationStore::new(ddb.clone(), config.table_name.clone()),
            templates: TemplateStore::new(ddb.clone(), config.table_name.clone()),
            templates_cache: templates::TemplateCache::new(config.template_cache_age),
            schedules: ScheduleStore::new(ddb.clone(), config.table_name.clone()),
            consent: ConsentStore::new(ddb, config.table_name.clone(), config.consent_table_name.clone()),
            hasher: AddressHasher::new(vcare_crypto::KmsMac::new(kms, config.address_hash_key_id.clone())),
            envelope: Envelope::new(
                aws_sdk_kms::Client::new(sdk),
                config.data_key_id.clone(),
                config.key_max_uses,
                config.key_max_age,
            ),
            sqs: aws_sdk_sqs::Client::new(sdk),
            config,
            clock: Clock::system(),
        }
    }

    pub fn from_env(env: &Env, sdk: &SdkConfig) -> Result<Self, ConfigError> {
        Ok(Self::new(NotificationsConfig::from_env(env)?, sdk))
    }

    pub async fn seal_recipient(&self, clinic: &str, id: &str, r: &Recipient) -> Result<String, BackendError> {
        let json = serde_json::to_vec(r).map_err(|_| BackendError::Malformed)?;
        Ok(self.envelope.seal(&json, &context(clinic, id, "recipient")).await?)
    }

    pub async fn seal_messages(
        &self,
        clinic: &str,
        id: &str,
        m: &BTreeMap<Channel, Rendered>,
    ) -> Result<String, BackendError> {
        let json = serde_json::to_vec(m).map_err(|_| BackendError::Malformed)?;
        Ok(self.envelope.seal(&json, &context(clinic, id, "messages")).await?)
    }

    pub async fn open_recipient(&self, n: &Notification) -> Result<Recipient, BackendError> {
        let plain =
            self.envelope.open(&n.sealed_recipient, &context(&n.clinic_id, &n.notification_id, "recipient")).await?;
        serde_json::from_slice(&plain).map_err(|_| BackendError::Malformed)
    }

    pub async fn open_messages(&self, n: &Notification) -> Result<BTreeMap<Channel, Rendered>, BackendError> {
        let plain =
            self.envelope.open(&n.sealed_messages, &context(&n.clinic_id, &n.notification_id, "messages")).await?;
        serde_json::from_slice(&plain).map_err(|_| BackendError::Malformed)
    }

    /// A room participant's contact (a [`Recipient`]), sealed for the room:
    /// the clinic, the room and the user are bound to it.
    pub async fn seal_contact(&self, clinic: &str, room_id: &str, r: &Recipient) -> Result<String, BackendError> {
        let user = r.user_id.as_deref().unwrap_or_default();
        let json = serde_json::to_vec(r).map_err(|_| BackendError::Malformed)?;
        Ok(self.envelope.seal(&json, &context(clinic, room_id, &format!("contact:{user}"))).await?)
    }

    pub async fn open_contact(
        &self,
        clinic: &str,
        room_id: &str,
        user_id: &str,
        sealed: &str,
    ) -> Result<Recipient, BackendError> {
        let plain = self.envelope.open(sealed, &context(clinic, room_id, &format!("contact:{user_id}"))).await?;
        serde_json::from_slice(&plain).map_err(|_| BackendError::Malformed)
    }

    /// Sends a template to a recipient on every channel they can be reached
    /// on (push, then SMS, then e-mail) that has a configured provider,
    /// under `key`: the same key again sends nothing twice. `None`: no way
    /// to reach them.
    pub async fn notify(
        &self,
        clinic: &str,
        key: &str,
        recipient: Recipient,
        notice: Notice,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Result<Option<Submitted>, NotifyError> {
        let mut channels = Vec::new();
        if !recipient.push_tokens.is_empty() {
            channels.push(Channel::Push);
        }
        if recipient.phone.is_some() {
            channels.push(Channel::Sms);
        }
        if recipient.email.is_some() {
            channels.push(Channel::Email);
        }
        // Only channels a configured provider can send on: a recipient with
        // none of them cannot be reached (not a failure to retry).
        channels.retain(|c| self.config.routable.contains(c));
        if channels.is_empty() {
            tracing::warn!(template = notice.template, "no configured provider reaches the recipient; not sent");
            return Ok(None);
        }
        // Replies are offered by SMS only.
        let replies = if channels.contains(&Channel::Sms) { notice.replies } else { Vec::new() };
        let request = vcare_domain::notification::NotificationRequest {
            recipient,
            channels,
            template: Some(notice.template.to_owned()),
            variables: notice.variables,
            content: None,
            priority: notice.priority,
            send_at: None,
            category: None,
            context: notice.context,
            replies,
            template_version: None,
        };
        Ok(Some(self.submit(clinic, key, request, now).await?))
    }

    /// Puts the notification on the dispatch queue, delayed up to SQS's 15
    /// minutes (a later `sendAt` waits in the due index).
    pub async fn enqueue(&self, clinic: &str, id: &str, delay_seconds: i64) -> Result<(), BackendError> {
        let body = serde_json::to_string(&DispatchMessage { clinic_id: clinic.into(), notification_id: id.into() })
            .map_err(|_| BackendError::Malformed)?;
        self.sqs
            .send_message()
            .queue_url(&self.config.dispatch_queue_url)
            .message_body(body)
            .delay_seconds(delay_seconds.clamp(0, MAX_QUEUE_DELAY_SECONDS) as i32)
            .send()
            .await
            .map_err(|e| BackendError::Queue(aws_sdk_sqs::error::DisplayErrorContext(e).to_string()))?;
        Ok(())
    }
}

/// The dispatch queue's own limits, as the queue reports them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueueLimits {
    pub visibility_timeout_seconds: i64,
    /// Its redrive policy's `maxReceiveCount`; `None` without one.
    pub max_receive_count: Option<i64>,
}

impl Notifications {
    /// Reads the dispatch queue's visibility timeout and redrive policy.
    pub async fn queue_limits(&self) -> Result<QueueLimits, BackendError> {
        use aws_sdk_sqs::types::QueueAttributeName;
        let got = self
            .sqs
            .get_queue_attributes()
            .queue_url(&self.config.dispatch_queue_url)
            .attribute_names(QueueAttributeName::VisibilityTimeout)
            .attribute_names(QueueAttributeName::RedrivePolicy)
            .send()
            .await
            .map_err(|e| BackendError::Queue(aws_sdk_sqs::error::DisplayErrorContext(e).to_string()))?;
        let attributes = got.attributes.unwrap_or_default();
        let visibility_timeout_seconds = attributes
            .get(&QueueAttributeName::VisibilityTimeout)
            .and_then(|v| v.parse().ok())
            .ok_or_else(|| BackendError::Queue("the dispatch queue reports no VisibilityTimeout".into()))?;
        let max_receive_count = attributes
            .get(&QueueAttributeName::RedrivePolicy)
            .and_then(|p| serde_json::from_str::<serde_json::Value>(p).ok())
            .and_then(|p| match &p["maxReceiveCount"] {
                serde_json::Value::Number(n) => n.as_i64(),
                serde_json::Value::String(s) => s.parse().ok(),
                _ => None,
            });
        Ok(QueueLimits { visibility_timeout_seconds, max_receive_count })
    }
}
