//! A clinic's template as a save request (`PUT .../templates/{name}`),
//! checked whole before anything is kept: every text compiles, uses only
//! declared (or vcare's own) variables, only the statements a message
//! needs (no loops, macros or includes), and fits its size.

use std::collections::BTreeMap;

use serde::Deserialize;

use super::render::environment;
use super::{INJECTED, LocaleText, Template};
use crate::Rejected;
use crate::consent::{ANSWER_CATEGORY, ReplyAction, is_category};

pub const MAX_LOCALES: usize = 30;
pub const MAX_TEMPLATE_VARIABLES: usize = 30;
const MAX_NAME_CHARS: usize = 64;
/// Source sizes, in characters.
const LIMITS: &[(&str, usize)] = &[
    ("sms", 1_600),
    ("push.title", 120),
    ("push.body", 1_000),
    ("email.subject", 200),
    ("email.text", 20_000),
    ("email.html", 60_000),
];
/// The statements a template may use.
const STATEMENTS: &[&str] = &["if", "elif", "else", "endif", "raw", "endraw"];

/// The body of `PUT /v1/communication/templates/{name}`.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TemplateDraft {
    pub category: String,
    #[serde(default)]
    pub variables: Vec<String>,
    pub locales: BTreeMap<String, LocaleText>,
    #[serde(default)]
    pub replies: Vec<ReplyAction>,
}

/// `a-z 0-9 -`, 1 to 64, starting with a letter or digit.
pub fn is_template_name(name: &str) -> bool {
    (1..=MAX_NAME_CHARS).contains(&name.len())
        && name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !name.starts_with('-')
}

fn is_variable(v: &str) -> bool {
    (1..=64).contains(&v.len())
        && v.bytes().next().is_some_and(|b| b.is_ascii_alphabetic() || b == b'_')
        && v.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

/// A BCP 47 tag's shape: a 2-3 letter language, then 1-8 alphanumeric subtags.
fn is_language_tag(tag: &str) -> bool {
    let mut parts = tag.split('-');
    let lang = parts.next().unwrap_or("");
    (2..=3).contains(&lang.len())
        && lang.bytes().all(|b| b.is_ascii_alphabetic())
        && parts.all(|p| (1..=8).contains(&p.len()) && p.bytes().all(|b| b.is_ascii_alphanumeric()))
        && tag.len() <= 35
}

/// The statement keywords of `source`'s `{% %}` blocks.
fn statements(source: &str) -> impl Iterator<Item = &str> {
    source.split("{%").skip(1).map(|block| {
        let block = block.trim_start_matches(['-', '+', '~']).trim_start();
        block.split(|c: char| !c.is_ascii_alphanumeric() && c != '_').next().unwrap_or("")
    })
}

/// The (field, source) pairs of a locale.
fn texts(text: &LocaleText) -> Vec<(&'static str, &str)> {
    let mut out = Vec::new();
    if let Some(s) = &text.sms {
        out.push(("sms", s.as_str()));
    }
    if let Some(p) = &text.push {
        out.extend([("push.title", p.title.as_str()), ("push.body", p.body.as_str())]);
    }
    if let Some(e) = &text.email {
        out.extend([("email.subject", e.subject.as_str()), ("email.text", e.text.as_str())]);
        if let Some(h) = &e.html {
            out.push(("email.html", h.as_str()));
        }
    }
    out
}

impl TemplateDraft {
    /// The draft as version `version` of the clinic's template `name`,
    /// or why it cannot be kept. `default_locale` is the clinic's.
    pub fn check(self, name: &str, default_locale: &str) -> Result<Template, Rejected> {
        use Rejected::{Impossible, Invalid};
        if !is_template_name(name) {
            return Err(Invalid(format!("name: 1 to {MAX_NAME_CHARS} of a-z 0-9 -")));
        }
        if !is_category(&self.category) || self.category == ANSWER_CATEGORY {
            return Err(Invalid("category: 1 to 64 of a-z 0-9 -, not vcare's own".into()));
        }
        if self.variables.len() > MAX_TEMPLATE_VARIABLES {
            return Err(Invalid(format!("variables: at most {MAX_TEMPLATE_VARIABLES}")));
        }
        let mut variables = self.variables.clone();
        variables.sort();
        variables.dedup();
        if variables.len() != self.variables.len() {
            return Err(Invalid("variables: each name once".into()));
        }
        if let Some(v) = variables.iter().find(|v| !is_variable(v)) {
            return Err(Invalid(format!("variables: {v} is not a name (letters, digits, _)")));
        }
        if let Some(v) = variables.iter().find(|v| INJECTED.contains(&v.as_str())) {
            return Err(Invalid(format!("variables: {v} is set by vcare, not declared")));
        }
        if self.locales.is_empty() || self.locales.len() > MAX_LOCALES {
            return Err(Invalid(format!("locales: 1 to {MAX_LOCALES}")));
        }
        let mut seen: Vec<String> = Vec::new();
        for (tag, text) in &self.locales {
            if !is_language_tag(tag) {
                return Err(Invalid(format!("locales: {tag} is not a BCP 47 language tag")));
            }
            if seen.contains(&tag.to_ascii_lowercase()) {
                return Err(Invalid(format!("locales: {tag} is given twice")));
            }
            seen.push(tag.to_ascii_lowercase());
            if text.sms.is_none() && text.email.is_none() {
                return Err(Impossible(format!("locales.{tag}: an sms or an email text is required")));
            }
            for (field, source) in texts(text) {
                check_source(&format!("locales.{tag}.{field}"), field, source, &variables)?;
            }
        }
        let default = self
            .locales
            .keys()
            .find(|t| t.eq_ignore_ascii_case(default_locale))
            .or_else(|| self.locales.keys().find(|t| t.split('-').next() == default_locale.split('-').next()))
            .or_else(|| self.locales.keys().next())
            .cloned()
            .unwrap_or_default();
        let mut replies = self.replies;
        replies.sort();
        replies.dedup();
        Ok(Template {
            name: name.to_owned(),
            version: None,
            category: self.category,
            variables,
            locales: self.locales,
            replies,
            default_locale: default,
            created_at: None,
            created_by: None,
        })
    }
}

fn check_source(at: &str, field: &str, source: &str, declared: &[String]) -> Result<(), Rejected> {
    use Rejected::{Impossible, Invalid};
    let limit = LIMITS.iter().find(|(f, _)| *f == field).map_or(1_000, |(_, l)| *l);
    if source.chars().count() > limit {
        return Err(Invalid(format!("{at}: at most {limit} characters")));
    }
    if source.trim().is_empty() && field != "email.html" {
        return Err(Invalid(format!("{at}: not empty")));
    }
    if let Some(s) = statements(source).find(|s| !STATEMENTS.contains(s)) {
        return Err(Impossible(format!("{at}: {{% {s} %}} is not allowed (only if, elif, else, raw)")));
    }
    let mut env = environment();
    env.add_template("t", source).map_err(|e| Impossible(format!("{at}: syntax error: {}", e.kind())))?;
    let compiled = env.get_template("t").map_err(|e| Impossible(format!("{at}: syntax error: {}", e.kind())))?;
    let mut unknown: Vec<String> = compiled
        .undeclared_variables(false)
        .into_iter()
        .filter(|v| !declared.contains(v) && !INJECTED.contains(&v.as_str()))
        .collect();
    unknown.sort();
    if !unknown.is_empty() {
        return Err(Impossible(format!("{at}: undeclared variables: {}", unknown.join(", "))));
    }
    // Filters and tests outside the sandbox's list fail at render: try one
    // with every variable set, so they fail here instead.
    let sample: BTreeMap<&str, &str> =
        declared.iter().map(|v| (v.as_str(), "x")).chain(INJECTED.iter().map(|v| (*v, "sms"))).collect();
    compiled.render(&sample).map_err(|e| Impossible(format!("{at}: cannot be rendered: {}", e.kind())))?;
    Ok(())
}
