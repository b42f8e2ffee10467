//! How an SMS text is carried and paid for (3GPP TS 23.038 / 23.040): in
//! GSM-7 when every character is in the GSM 03.38 default alphabet or its
//! extension table (which costs two septets), else in UCS-2 (UTF-16 code
//! units). One message holds 160 septets or 70 units; a longer text is
//! split into parts of 153 septets or 67 units (the rest is the
//! concatenation header), never splitting an escape pair or a surrogate
//! pair. Checked against Twilio's own calculator (tests/tests/segments.rs).

use serde::Serialize;

const GSM_BASIC: &str = "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà";
const GSM_EXTENSION: &str = "\u{c}^{}\\[~]|€";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Encoding {
    #[serde(rename = "GSM-7")]
    Gsm7,
    #[serde(rename = "UCS-2")]
    Ucs2,
}

/// A text's encoding, its parts, and its characters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Segments {
    pub encoding: Encoding,
    pub segments: usize,
    pub characters: usize,
}

/// The units each character costs, in the text's encoding.
fn units(text: &str) -> (Encoding, Vec<usize>) {
    let gsm = text.chars().all(|c| GSM_BASIC.contains(c) || GSM_EXTENSION.contains(c));
    if gsm {
        (Encoding::Gsm7, text.chars().map(|c| if GSM_EXTENSION.contains(c) { 2 } else { 1 }).collect())
    } else {
        (Encoding::Ucs2, text.chars().map(char::len_utf16).collect())
    }
}

pub fn segments(text: &str) -> Segments {
    let (encoding, costs) = units(text);
    let (single, part) = match encoding {
        Encoding::Gsm7 => (160, 153),
        Encoding::Ucs2 => (70, 67),
    };
    let total: usize = costs.iter().sum();
    let segments = if total <= single {
        1
    } else {
        let (mut parts, mut used) = (1, 0);
        for c in costs {
            if used + c > part {
                parts += 1;
                used = 0;
            }
            used += c;
        }
        parts
    };
    Segments { encoding, segments, characters: text.chars().count() }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gsm_and_ucs2_limits() {
        assert_eq!(segments(&"a".repeat(160)), Segments { encoding: Encoding::Gsm7, segments: 1, characters: 160 });
        assert_eq!(segments(&"a".repeat(161)).segments, 2);
        assert_eq!(segments(&"a".repeat(306)).segments, 2);
        assert_eq!(segments(&"a".repeat(307)).segments, 3);
        // Extension characters cost two septets and are not split.
        assert_eq!(segments(&"€".repeat(80)).segments, 1);
        assert_eq!(segments(&"€".repeat(81)).segments, 2);
        assert_eq!(segments(&format!("{}€", "a".repeat(152))).segments, 1, "154 septets... in one 160");
        assert_eq!(segments(&format!("{}€{}", "a".repeat(152), "a".repeat(10))).segments, 2);
        let fa = "س".repeat(70);
        assert_eq!(segments(&fa), Segments { encoding: Encoding::Ucs2, segments: 1, characters: 70 });
        assert_eq!(segments(&"س".repeat(71)).segments, 2);
        assert_eq!(segments(&"س".repeat(134)).segments, 2);
        assert_eq!(segments(&"س".repeat(135)).segments, 3);
        // One character outside GSM makes the whole text UCS-2; an emoji is two units.
        assert_eq!(segments(&format!("{}ş", "a".repeat(69))).encoding, Encoding::Ucs2);
        assert_eq!(segments(&"😀".repeat(35)).segments, 1);
        assert_eq!(segments(&"😀".repeat(36)).segments, 2);
    }
}
