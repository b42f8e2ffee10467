//! Message templates: vcare's built-ins and each clinic's own, in one shape
//! ([`Template`]: per locale, a text per channel), rendered one way.
//!
//! Rendering is strict and sandboxed: minijinja in strict mode in an empty
//! environment (no loader, so no other template can be reached; only the
//! filters and tests listed in [`render`]), with bounded fuel and output.
//! Variables are values, never template source. A variable a template uses
//! but the request lacks is a 422 at accept time, never a failed send later.

mod builtin;
mod check;
mod render;

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::consent::ReplyAction;

pub use builtin::{builtin, category, exists, names as builtin_names};
pub use check::{MAX_LOCALES, MAX_TEMPLATE_VARIABLES, TemplateDraft, is_template_name};
pub use render::{RENDER_FUEL, pick_locale, render, render_named};

pub const DEFAULT_LOCALE: &str = "en";
/// Variables vcare itself sets (a template may use them without declaring).
pub const INJECTED: &[&str] = &["clinic", "channel", "replies"];

/// A message ready for a channel: the e-mail subject or push title, the
/// text, and an e-mail's HTML part.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rendered {
    pub subject: Option<String>,
    pub body: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub html: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PushText {
    pub title: String,
    pub body: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct EmailText {
    pub subject: String,
    pub text: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub html: Option<String>,
}

/// One locale's texts. A channel without its own text borrows: push and
/// e-mail the SMS text, SMS the e-mail's text.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LocaleText {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sms: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub push: Option<PushText>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<EmailText>,
}

/// A template as rendering sees it: a built-in (`version` None) or a
/// clinic's saved version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Template {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<u64>,
    pub category: String,
    pub variables: Vec<String>,
    pub locales: BTreeMap<String, LocaleText>,
    #[serde(default)]
    pub replies: Vec<ReplyAction>,
    /// The locale a recipient's language falls back to.
    pub default_locale: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_at: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_by: Option<String>,
}

/// Which template a notification was rendered from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TemplateRef {
    pub name: String,
    /// The clinic's version; `None` for the built-in.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<u64>,
}

impl Template {
    pub fn reference(&self) -> TemplateRef {
        TemplateRef { name: self.name.clone(), version: self.version }
    }
}

#[cfg(test)]
mod tests;
