//! Amazon SES v2.

use crate::catalogue::Settings;
use crate::prelude::*;

/// Amazon SES v2 `SendEmail` (simple content) through the SDK.
pub struct Ses {
    pub(crate) client: aws_sdk_sesv2::Client,
    pub(crate) from: String,
}

impl Ses {
    /// Built from its settings ([`ProviderId::settings`]).
    pub(crate) fn build(s: &Settings<'_>) -> Self {
        Self { client: aws_sdk_sesv2::Client::new(s.wiring.sdk), from: s.get("EMAIL_FROM").to_owned() }
    }
}

impl Provider for Ses {
    fn id(&self) -> ProviderId {
        ProviderId::Ses
    }
    fn send<'a>(&'a self, m: &'a Outgoing<'a>) -> BoxFuture<'a, SendOutcome> {
        use aws_sdk_sesv2::types::{Body, Content, Destination, EmailContent, Message};
        Box::pin(async move {
            let content = |text: &str| Content::builder().data(text).charset("UTF-8").build();
            let (Ok(subject), Ok(body)) = (content(m.subject.unwrap_or("vcare")), content(m.body)) else {
                return SendOutcome::Permanent { reason: "ses: message could not be built".into() };
            };
            let html = match m.html.map(content).transpose() {
                Ok(html) => html,
                Err(_) => return SendOutcome::Permanent { reason: "ses: message could not be built".into() },
            };
            let message =
                Message::builder().subject(subject).body(Body::builder().text(body).set_html(html).build()).build();
            let sent = self
                .client
                .send_email()
                .from_email_address(&self.from)
                .destination(Destination::builder().to_addresses(m.to).build())
                .content(EmailContent::builder().simple(message).build())
                .send()
                .await;
            match sent {
                Ok(out) => match out.message_id {
                    Some(id) => SendOutcome::Sent { provider_message_id: id },
                    None => {
                        SendOutcome::Transient { reason: "ses answered without a message id".into(), retry_after: None }
                    }
                },
                Err(e) => {
                    let service = e.as_service_error();
                    let permanent = service.is_some_and(|s| {
                        s.is_message_rejected()
                            || s.is_mail_from_domain_not_verified_exception()
                            || s.is_bad_request_exception()
                    });
                    let code = service
                        .and_then(|s| aws_sdk_sesv2::error::ProvideErrorMetadata::code(s))
                        .unwrap_or("error")
                        .to_owned();
                    if permanent {
                        SendOutcome::Permanent { reason: format!("ses refused: {code}") }
                    } else {
                        SendOutcome::Transient { reason: format!("ses: {code}"), retry_after: None }
                    }
                }
            }
        })
    }
}
