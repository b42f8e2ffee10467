//! Clinic templates: saved as immutable versions, previewed, and resolved
//! on the accept path through a per-container cache with a bounded age
//! (a miss is one read; a clinic without its own template of a name is
//! cached too, so built-ins cost no read either).

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use serde::Deserialize;
use vcare_domain::Rejected;
use vcare_domain::notification::Channel;
use vcare_domain::sms::{Segments, segments};
use vcare_domain::templates::{self, Rendered, Template, TemplateDraft};

use crate::{Notifications, NotifyError};

/// Most entries a container keeps (oldest dropped first when full).
const CACHE_ENTRIES: usize = 2_000;

/// (clinic, name, version; 0 = the active one).
type CacheKey = (String, String, u64);
/// When it was read, and what was found (`None`: the clinic has none).
type CacheEntry = (Instant, Option<Arc<Template>>);

/// Resolved templates per (clinic, name, version) with their age.
pub struct TemplateCache {
    max_age: Duration,
    entries: Mutex<HashMap<CacheKey, CacheEntry>>,
    pub hits: AtomicU64,
    pub misses: AtomicU64,
}

impl TemplateCache {
    pub fn new(max_age: Duration) -> Self {
        Self { max_age, entries: Mutex::new(HashMap::new()), hits: AtomicU64::new(0), misses: AtomicU64::new(0) }
    }

    fn get(&self, key: &CacheKey) -> Option<Option<Arc<Template>>> {
        let entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        // A version is immutable: it never goes stale. The active one may.
        let hit = entries.get(key).filter(|(at, _)| key.2 != 0 || at.elapsed() < self.max_age).map(|(_, t)| t.clone());
        let counter = if hit.is_some() { &self.hits } else { &self.misses };
        counter.fetch_add(1, Ordering::Relaxed);
        hit
    }

    fn put(&self, key: CacheKey, value: Option<Arc<Template>>) {
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        if entries.len() >= CACHE_ENTRIES {
            let oldest = entries.iter().min_by_key(|(_, (at, _))| *at).map(|(k, _)| k.clone());
            if let Some(k) = oldest {
                entries.remove(&k);
            }
        }
        entries.insert(key, (Instant::now(), value));
    }
}

/// The body of `POST /v1/communication/templates/{name}/preview`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PreviewRequest {
    #[serde(default)]
    pub locale: Option<String>,
    pub channel: Channel,
    #[serde(default)]
    pub variables: BTreeMap<String, String>,
    #[serde(default)]
    pub version: Option<u64>,
}

/// What a preview shows: the rendered text and, by SMS, its cost.
#[derive(Debug)]
pub struct Preview {
    pub rendered: Rendered,
    pub locale: String,
    pub sms: Option<Segments>,
}

impl Notifications {
    /// The template a notification names for `clinic`: the clinic's
    /// (`version`, or its active one), else the built-in. 422 if none.
    pub async fn resolve_template(
        &self,
        clinic: &str,
        name: &str,
        version: Option<u64>,
    ) -> Result<Arc<Template>, NotifyError> {
        let key = (clinic.to_owned(), name.to_owned(), version.unwrap_or(0));
        let found = match self.templates_cache.get(&key) {
            Some(found) => found,
            None => {
                let read = match version {
                    Some(v) => self.templates.version(clinic, name, v).await?,
                    None => self.templates.active(clinic, name).await?,
                };
                let found = read.map(Arc::new);
                self.templates_cache.put(key, found.clone());
                found
            }
        };
        match (found, version) {
            (Some(t), _) => Ok(t),
            (None, Some(v)) => Err(Rejected::Impossible(format!("template: {name} has no version {v}")).into()),
            (None, None) => templates::builtin(name)
                .map(Arc::new)
                .ok_or_else(|| Rejected::Impossible(format!("template: no template named {name}")).into()),
        }
    }

    /// Checks `draft` and keeps it as the next version of `name`.
    pub async fn save_template(
        &self,
        clinic: &str,
        name: &str,
        draft: TemplateDraft,
        by: &str,
        now: DateTime<Utc>,
    ) -> Result<Template, NotifyError> {
        let template = draft.check(name, &self.config.default_locales.of(clinic).0)?;
        let saved = self.templates.save(clinic, &template, now, by).await?;
        self.templates_cache.put((clinic.to_owned(), name.to_owned(), 0), Some(Arc::new(saved.clone())));
        Ok(saved)
    }

    /// The clinic's templates and the built-ins they do not shadow.
    pub async fn template_list(&self, clinic: &str) -> Result<Vec<Template>, NotifyError> {
        let mut own = self.templates.list(clinic).await?;
        for name in templates::builtin_names() {
            if !own.iter().any(|t| t.name == name) {
                own.extend(templates::builtin(name));
            }
        }
        own.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(own)
    }

    /// One template as a read shows it (no cache: an admin sees the truth).
    pub async fn template(
        &self,
        clinic: &str,
        name: &str,
        version: Option<u64>,
    ) -> Result<Option<Template>, NotifyError> {
        Ok(match version {
            Some(v) => self.templates.version(clinic, name, v).await?,
            None => match self.templates.active(clinic, name).await? {
                Some(t) => Some(t),
                None => templates::builtin(name),
            },
        })
    }

    /// Renders a template with sample variables, as a send would.
    pub async fn preview(&self, clinic: &str, name: &str, request: PreviewRequest) -> Result<Preview, NotifyError> {
        let Some(template) = self.template(clinic, name, request.version).await? else {
            return Err(Rejected::Impossible(format!("template: no template named {name} (or no such version)")).into());
        };
        let mut variables = request.variables;
        variables.insert("clinic".to_owned(), self.config.clinic_name(clinic).to_owned());
        let rendered = templates::render(&template, request.locale.as_deref(), request.channel, &variables)?;
        let locale = templates::pick_locale(&template, request.locale.as_deref()).0.to_owned();
        let sms = (request.channel == Channel::Sms).then(|| segments(&rendered.body));
        Ok(Preview { rendered, locale, sms })
    }
}
