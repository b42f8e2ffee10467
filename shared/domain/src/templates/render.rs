//! Rendering a [`Template`] for one recipient locale and channel.

use std::collections::BTreeMap;

use minijinja::{Environment, UndefinedBehavior, Value};

use super::{LocaleText, Rendered, Template};
use crate::Rejected;
use crate::notification::Channel;

/// The work one text may take (minijinja's fuel: instructions, and string
/// building by its size), so no template can stall dispatch.
pub const RENDER_FUEL: u64 = 20_000;
/// The longest a rendered text (HTML included) may be.
pub const MAX_RENDERED_CHARS: usize = 60_000;

/// The locale of `template` for a recipient's `locale` (any BCP 47 tag):
/// the same tag, else one of the same language, else the template's default.
pub fn pick_locale<'a>(template: &'a Template, locale: Option<&str>) -> (&'a str, &'a LocaleText) {
    let wanted = locale.unwrap_or("").to_ascii_lowercase();
    let language = |tag: &str| tag.split(['-', '_']).next().unwrap_or("").to_ascii_lowercase();
    let exact = template.locales.iter().find(|(tag, _)| tag.to_ascii_lowercase() == wanted);
    let same_language = || template.locales.iter().find(|(tag, _)| language(tag) == language(&wanted));
    let default = || template.locales.get_key_value(&template.default_locale);
    let first = || template.locales.iter().next();
    let (tag, text) = exact.or_else(same_language).or_else(default).or_else(first).expect("a template has a locale");
    (tag.as_str(), text)
}

/// The sources for `channel`: (subject or title, body, html).
fn sources(text: &LocaleText, channel: Channel) -> (Option<&str>, &str, Option<&str>) {
    let plain = text.sms.as_deref().or(text.email.as_ref().map(|e| e.text.as_str())).unwrap_or("");
    match channel {
        Channel::Sms => (None, plain, None),
        Channel::Push => match &text.push {
            Some(p) => (Some(p.title.as_str()), p.body.as_str(), None),
            None => (None, plain, None),
        },
        Channel::Email => match &text.email {
            Some(e) => (Some(e.subject.as_str()), e.text.as_str(), e.html.as_deref()),
            None => (None, plain, None),
        },
    }
}

/// The sandbox: no loader, and only these filters and tests.
pub(super) fn environment() -> Environment<'static> {
    use minijinja::{filters, tests};
    let mut env = Environment::empty();
    env.set_undefined_behavior(UndefinedBehavior::Strict);
    env.set_fuel(Some(RENDER_FUEL));
    // Values in an e-mail's HTML are escaped: a variable cannot add markup.
    env.set_auto_escape_callback(
        |id| {
            if id == "html" { minijinja::AutoEscape::Html } else { minijinja::AutoEscape::None }
        },
    );
    env.add_filter("upper", filters::upper);
    env.add_filter("lower", filters::lower);
    env.add_filter("title", filters::title);
    env.add_filter("capitalize", filters::capitalize);
    env.add_filter("trim", filters::trim);
    env.add_filter("default", filters::default);
    env.add_test("defined", tests::is_defined);
    env.add_test("undefined", tests::is_undefined);
    env
}

/// Is `var` optional in `source` (tested with `is defined`)?
pub(super) fn optional(source: &str, var: &str) -> bool {
    source.contains(&format!("{var} is defined")) || source.contains(&format!("{var} is undefined"))
}

/// Renders `template` for `locale` and `channel`. Missing variables are 422.
pub fn render(
    template: &Template,
    locale: Option<&str>,
    channel: Channel,
    variables: &BTreeMap<String, String>,
) -> Result<Rendered, Rejected> {
    let name = &template.name;
    let (_, text) = pick_locale(template, locale);
    let (subject, body, html) = sources(text, channel);
    let mut env = environment();
    let parts: Vec<(&str, &str)> = [("subject", subject), ("body", Some(body)), ("html", html)]
        .into_iter()
        .filter_map(|(k, v)| Some((k, v?)))
        .collect();
    let mut missing: Vec<String> = Vec::new();
    let broken = || Rejected::Impossible(format!("template {name} is broken"));
    for (id, source) in &parts {
        env.add_template(id, source).map_err(|_| broken())?;
        let compiled = env.get_template(id).map_err(|_| broken())?;
        for var in compiled.undeclared_variables(false) {
            let optional = optional(source, &var) || var == "channel";
            if !optional && !variables.contains_key(&var) && !missing.contains(&var) {
                missing.push(var);
            }
        }
    }
    if !missing.is_empty() {
        missing.sort();
        return Err(Rejected::Impossible(format!("variables missing for template {name}: {}", missing.join(", "))));
    }
    let mut values: BTreeMap<String, Value> =
        variables.iter().map(|(k, v)| (k.clone(), Value::from(v.as_str()))).collect();
    values.insert("channel".to_owned(), Value::from(channel.as_str()));
    let context = Value::from(values);
    let run = |id: &str| -> Result<String, Rejected> {
        let out = env
            .get_template(id)
            .and_then(|t| t.render(context.clone()))
            .map_err(|e| Rejected::Impossible(format!("template {name} cannot be rendered: {}", e.kind())))?;
        if out.chars().count() > MAX_RENDERED_CHARS {
            return Err(Rejected::Impossible(format!("template {name} renders longer than {MAX_RENDERED_CHARS}")));
        }
        Ok(out)
    };
    let has = |id: &str| parts.iter().any(|(k, _)| *k == id);
    Ok(Rendered {
        subject: has("subject").then(|| run("subject")).transpose()?,
        body: run("body")?,
        html: has("html").then(|| run("html")).transpose()?,
    })
}

/// Renders the built-in `name` (422 if there is none).
pub fn render_named(
    name: &str,
    locale: Option<&str>,
    channel: Channel,
    variables: &BTreeMap<String, String>,
) -> Result<Rendered, Rejected> {
    let template =
        super::builtin(name).ok_or_else(|| Rejected::Impossible(format!("template: no template named {name}")))?;
    render(&template, locale, channel, variables)
}
