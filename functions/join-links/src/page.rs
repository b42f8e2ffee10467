//! The waiting page `/j/{code}` serves while the waiting room holds its
//! owner back: no framework, no build step, one HTML file with its style
//! and script inline (allowed by a per-response nonce, nothing else). It
//! checks in, says whether the clinician was told, polls, and moves on to
//! the consultation once admitted. In the browser's language (`?lang=`
//! overrides `Accept-Language`), right to left for Persian and Pashto. It
//! names no one: the link is the only credential it has. Where the clinic
//! has dial-in, its check-in answer carries the numbers and the room's
//! PIN, and the page shows them (left to right inside any page).

use serde_json::json;

/// One language's texts.
pub struct Texts {
    pub lang: &'static str,
    pub rtl: bool,
    title: &'static str,
    checking: &'static str,
    waiting: &'static str,
    told: &'static str,
    untold: &'static str,
    admitted: &'static str,
    closed: &'static str,
    retrying: &'static str,
    keep: &'static str,
    /// Before the dial-in numbers, and before the PIN.
    phone: &'static str,
    pin: &'static str,
}

pub const LANGUAGES: &[Texts] = &[
    Texts {
        lang: "en",
        rtl: false,
        title: "Waiting room",
        checking: "Checking you in…",
        waiting: "You are in the waiting room.",
        told: "Your clinician has been told that you are here and will let you in soon.",
        untold: "The clinic knows you are here and will let you in soon.",
        admitted: "You are being let in…",
        closed: "This consultation is not open any more.",
        retrying: "The connection was lost; trying again…",
        keep: "Please keep this page open. It moves on by itself.",
        phone: "No internet? Join by phone:",
        pin: "then enter the PIN",
    },
    Texts {
        lang: "fa",
        rtl: true,
        title: "اتاق انتظار",
        checking: "در حال ثبت ورود شما…",
        waiting: "شما در اتاق انتظار هستید.",
        told: "به پزشک شما خبر داده شد که اینجا هستید؛ به‌زودی شما را راه می‌دهد.",
        untold: "کلینیک می‌داند که اینجا هستید و به‌زودی شما را راه می‌دهد.",
        admitted: "در حال ورود به مشاوره…",
        closed: "این مشاوره دیگر باز نیست.",
        retrying: "ارتباط قطع شد؛ دوباره تلاش می‌کنیم…",
        keep: "لطفاً این صفحه را باز نگه دارید. خودش جلو می‌رود.",
        phone: "اینترنت ندارید؟ با تلفن وصل شوید:",
        pin: "سپس این کد را وارد کنید",
    },
    Texts {
        lang: "ps",
        rtl: true,
        title: "د انتظار خونه",
        checking: "ستاسو راتګ ثبتوو…",
        waiting: "تاسو د انتظار په خونه کې یاست.",
        told: "ستاسو ډاکټر ته خبر ورکړل شو چې تاسو دلته یاست؛ ژر به مو دننه کړي.",
        untold: "کلینیک پوهېږي چې تاسو دلته یاست او ژر به مو دننه کړي.",
        admitted: "مشورې ته ننوځئ…",
        closed: "دا مشوره نور خلاصه نه ده.",
        retrying: "اړیکه پرې شوه؛ بیا هڅه کوو…",
        keep: "مهرباني وکړئ دا پاڼه خلاصه وساتئ. پخپله مخکې ځي.",
        phone: "انټرنېټ نه لرئ؟ په تلیفون سره ونښلئ:",
        pin: "بیا دا کوډ ولیکئ",
    },
];

/// The first of `?lang=`, then `Accept-Language` in the browser's order
/// (by primary subtag; q-values as the order given), that vcare speaks;
/// else English.
pub fn negotiate(query: Option<&str>, accept_language: Option<&str>) -> &'static Texts {
    let primary = |tag: &str| tag.split(['-', '_', ';']).next().unwrap_or_default().trim().to_ascii_lowercase();
    let mut wanted: Vec<(String, f32)> = Vec::new();
    if let Some(q) = query {
        wanted.push((primary(q), 2.0));
    }
    for part in accept_language.unwrap_or_default().split(',') {
        let q = part
            .split(';')
            .filter_map(|p| p.trim().strip_prefix("q="))
            .find_map(|v| v.parse::<f32>().ok())
            .unwrap_or(1.0);
        wanted.push((primary(part), q));
    }
    // Stable: equal weights keep the browser's order.
    wanted.sort_by(|a, b| b.1.partial_cmp(&a.1).unwrap_or(std::cmp::Ordering::Equal));
    wanted
        .iter()
        .filter(|(_, q)| *q > 0.0)
        .find_map(|(tag, _)| LANGUAGES.iter().find(|t| t.lang == tag))
        .unwrap_or(&LANGUAGES[0])
}

/// The page in `texts`, its inline style and script allowed by `nonce`.
pub fn render(texts: &Texts, nonce: &str) -> String {
    let strings = json!({
        "waiting": texts.waiting, "told": texts.told, "untold": texts.untold, "admitted": texts.admitted,
        "closed": texts.closed, "retrying": texts.retrying, "phone": texts.phone, "pin": texts.pin,
    })
    // Inside <script>: no "</" can end the element early.
    .to_string()
    .replace("</", "<\\/");
    include_str!("waiting.html")
        .replace("{lang}", texts.lang)
        .replace("{dir}", if texts.rtl { "rtl" } else { "ltr" })
        .replace("{title}", texts.title)
        .replace("{checking}", texts.checking)
        .replace("{keep}", texts.keep)
        .replace("{strings}", &strings)
        .replace("{nonce}", nonce)
}

/// The page's Content-Security-Policy: its own inline parts by nonce,
/// calls to its own origin, nothing else.
pub fn policy(nonce: &str) -> String {
    format!(
        "default-src 'none'; script-src 'nonce-{nonce}'; style-src 'nonce-{nonce}'; connect-src 'self'; \
         img-src 'none'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_browsers_language_is_chosen_and_rtl_for_persian_and_pashto() {
        assert_eq!(negotiate(None, Some("fa-IR,fa;q=0.9,en;q=0.8")).lang, "fa");
        assert_eq!(negotiate(None, Some("de-DE, ps;q=0.5, en;q=0.4")).lang, "ps");
        assert_eq!(negotiate(None, Some("de, fr")).lang, "en");
        assert_eq!(negotiate(Some("ps"), Some("fa")).lang, "ps", "?lang= first");
        assert_eq!(negotiate(None, Some("fa;q=0, en")).lang, "en", "q=0 is refused");
        assert_eq!(negotiate(None, None).lang, "en");
        let fa = render(negotiate(Some("fa"), None), "n0nce");
        assert!(fa.contains(r#"<html lang="fa" dir="rtl">"#));
        assert!(fa.contains("اتاق انتظار"));
        assert!(!fa.contains('{') || !fa.contains("{title}"), "every placeholder filled");
        let en = render(negotiate(None, None), "n0nce");
        assert!(en.contains(r#"dir="ltr""#) && en.matches("nonce=\"n0nce\"").count() == 2);
        for t in LANGUAGES {
            let page = render(t, "x");
            for placeholder in ["{lang}", "{dir}", "{title}", "{checking}", "{keep}", "{strings}", "{nonce}"] {
                assert!(!page.contains(placeholder), "{}: {placeholder}", t.lang);
            }
        }
    }
}
