//! What a message costs by SMS: vcare's segment counter
//! (`vcare_domain::sms`) against Twilio's own calculator (npm
//! `sms-segments-calculator`, installed by infra/scripts/sms-segments.sh),
//! and every built-in template's SMS per locale as README's "SMS segments"
//! table says (the fa reminder in 2 segments).

use std::collections::BTreeMap;
use std::io::Write;

use serde_json::Value;
use vcare_domain::notification::Channel;
use vcare_domain::sms::{Encoding, segments};
use vcare_domain::templates::render_named as render;

const TEMPLATES: &[&str] = &["appointment-reminder", "appointment-cancelled", "consultation-link"];
const LOCALES: &[&str] = &["en", "fa", "ps"];

/// Each built-in template's SMS per locale, as a reminder is sent: a
/// 19-character clinic name, a local time, a join link on a 30-character
/// base, and the reminder's replies.
fn rendered() -> Vec<(String, String, String)> {
    let link = format!("{}/j/AbCdEfGhIjKl", vcare_tests::JOIN_LINK_BASE);
    let mut out = Vec::new();
    for t in TEMPLATES {
        for l in LOCALES {
            let mut v = BTreeMap::from([
                ("clinic".to_owned(), "Kabul Family Clinic".to_owned()),
                ("when".to_owned(), "2026-11-24 14:30".to_owned()),
                ("joinUrl".to_owned(), link.clone()),
            ]);
            if *t == "appointment-reminder" {
                v.insert("replies".into(), "confirm,reschedule,cancel".into());
            }
            out.push(((*t).to_owned(), (*l).to_owned(), render(t, Some(l), Channel::Sms, &v).unwrap().body));
        }
    }
    out
}

/// Twilio's calculator's answer for each text.
fn twilio(texts: &[String]) -> Vec<Value> {
    let mut child = std::process::Command::new(vcare_tests::root().join("infra/scripts/sms-segments.sh"))
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("infra/scripts/sms-segments.sh");
    let mut input = child.stdin.take().unwrap();
    for t in texts {
        writeln!(input, "{}", serde_json::to_string(t).unwrap()).unwrap();
    }
    drop(input);
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "the calculator failed");
    String::from_utf8(out.stdout).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect()
}

fn name(e: Encoding) -> &'static str {
    match e {
        Encoding::Gsm7 => "GSM-7",
        Encoding::Ucs2 => "UCS-2",
    }
}

#[test]
fn vcare_counts_segments_as_twilio_does_and_the_readme_table_is_what_the_templates_cost() {
    let messages = rendered();
    let mut texts: Vec<String> = messages.iter().map(|(_, _, t)| t.clone()).collect();
    // The edges: the single-part limits, the parts' sizes, escape pairs, surrogate pairs.
    for n in [160, 161, 306, 307, 459] {
        texts.push("a".repeat(n));
    }
    for n in [70, 71, 134, 135, 201] {
        texts.push("س".repeat(n));
    }
    texts.push("€".repeat(80));
    texts.push("€".repeat(81));
    texts.push(format!("{}€{}", "a".repeat(152), "a".repeat(10)));
    texts.push(format!("{}{}", "a".repeat(66), "😀".repeat(3)));
    texts.push("😀".repeat(36));
    texts.push("Çà ÉÑ {[~]} \\ ^ | ¤ §".to_owned());
    let reference = twilio(&texts);
    for (text, theirs) in texts.iter().zip(&reference) {
        let ours = segments(text);
        assert_eq!(
            (name(ours.encoding), ours.segments as u64),
            (theirs["encoding"].as_str().unwrap(), theirs["segments"].as_u64().unwrap()),
            "{text}"
        );
    }

    // The README's table, row by row.
    let readme = std::fs::read_to_string(vcare_tests::root().join("README.md")).unwrap();
    let mut wrong = Vec::new();
    for (template, locale, text) in &messages {
        let s = segments(text);
        let after = format!("{} · {} · {}", name(s.encoding), s.segments, s.characters);
        let row = readme.lines().find(|l| l.starts_with(&format!("| `{template}` | {locale} |")));
        let cells: Vec<&str> = row.unwrap_or_default().split('|').map(str::trim).collect();
        if cells.get(4) != Some(&after.as_str()) {
            wrong.push(format!("| `{template}` | {locale} | … | {after} |"));
        }
    }
    assert!(wrong.is_empty(), "README's \"SMS segments\" table should say:\n{}", wrong.join("\n"));
    let fa = &messages.iter().find(|(t, l, _)| t == "appointment-reminder" && l == "fa").unwrap().2;
    assert_eq!(segments(fa).segments, 2, "the fa reminder fits in 2 UCS-2 segments: {fa}");
}
