//! The bodies of a room's smaller routes — a join token, an issue report,
//! an image upload — and their rules, kept here (not in the functions) so
//! the rules are shared and fuzzed (`fuzz/fuzz_targets/room_request.rs`).

use serde::Deserialize;

use crate::Rejected;

/// Longest issue description, in characters.
pub const MAX_ISSUE_DESCRIPTION_CHARS: usize = 2000;
/// Largest image an upload URL is made for.
pub const MAX_IMAGE_BYTES: u64 = 20 * 1024 * 1024;

/// POST …/rooms/{roomId}/tokens: empty for the caller's own token; a
/// service names the participant.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TokenRequest {
    pub user_id: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum IssueType {
    Audio,
    Video,
    Connection,
    Other,
}

impl IssueType {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Audio => "audio",
            Self::Video => "video",
            Self::Connection => "connection",
            Self::Other => "other",
        }
    }
}

/// POST …/rooms/{roomId}/issues.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct IssueReport {
    pub issue_type: IssueType,
    #[serde(default)]
    pub description: Option<String>,
}

impl IssueReport {
    /// The type and the description (empty when none was given).
    pub fn validate(self) -> Result<(IssueType, String), Rejected> {
        let description = self.description.unwrap_or_default();
        if description.chars().count() > MAX_ISSUE_DESCRIPTION_CHARS {
            return Err(Rejected::Invalid(format!("description: at most {MAX_ISSUE_DESCRIPTION_CHARS} characters")));
        }
        Ok((self.issue_type, description))
    }
}

/// The kinds of image a consultation may share.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub enum ImageType {
    #[serde(rename = "image/jpeg")]
    Jpeg,
    #[serde(rename = "image/png")]
    Png,
    #[serde(rename = "application/dicom")]
    Dicom,
}

impl ImageType {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Jpeg => "image/jpeg",
            Self::Png => "image/png",
            Self::Dicom => "application/dicom",
        }
    }
}

/// POST …/rooms/{roomId}/images.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct UploadRequest {
    pub content_type: ImageType,
    pub size_bytes: u64,
}

impl UploadRequest {
    pub fn validate(self) -> Result<Self, Rejected> {
        if !(1..=MAX_IMAGE_BYTES).contains(&self.size_bytes) {
            return Err(Rejected::Invalid(format!("sizeBytes: 1 to {MAX_IMAGE_BYTES}")));
        }
        Ok(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse<T: for<'de> Deserialize<'de>>(text: &str) -> Result<T, serde_json::Error> {
        serde_json::from_str(text)
    }

    #[test]
    fn an_issue_report_has_a_known_type_and_a_bounded_description() {
        let (kind, description) = parse::<IssueReport>(r#"{"issueType":"audio"}"#).unwrap().validate().unwrap();
        assert_eq!((kind.as_str(), description.as_str()), ("audio", ""));
        let long = format!(r#"{{"issueType":"other","description":"{}"}}"#, "ی".repeat(MAX_ISSUE_DESCRIPTION_CHARS));
        assert!(parse::<IssueReport>(&long).unwrap().validate().is_ok(), "counted in characters, not bytes");
        let longer =
            format!(r#"{{"issueType":"other","description":"{}"}}"#, "a".repeat(MAX_ISSUE_DESCRIPTION_CHARS + 1));
        assert!(matches!(parse::<IssueReport>(&longer).unwrap().validate(), Err(Rejected::Invalid(_))));
        assert!(parse::<IssueReport>(r#"{"issueType":"smell"}"#).is_err());
        assert!(parse::<IssueReport>(r#"{"issueType":"audio","x":1}"#).is_err());
    }

    #[test]
    fn an_upload_is_a_known_image_type_of_a_bounded_size() {
        let ok = parse::<UploadRequest>(r#"{"contentType":"application/dicom","sizeBytes":1}"#).unwrap();
        assert_eq!(ok.validate().unwrap().content_type.as_str(), "application/dicom");
        for size in [0, MAX_IMAGE_BYTES + 1] {
            let r = UploadRequest { content_type: ImageType::Png, size_bytes: size };
            assert!(matches!(r.validate(), Err(Rejected::Invalid(_))), "{size}");
        }
        assert!(parse::<UploadRequest>(r#"{"contentType":"text/html","sizeBytes":1}"#).is_err());
        assert!(parse::<UploadRequest>(r#"{"contentType":"image/png","sizeBytes":-1}"#).is_err());
    }

    #[test]
    fn a_token_request_names_at_most_a_user() {
        assert_eq!(parse::<TokenRequest>(r#"{"userId":"u1"}"#).unwrap().user_id.as_deref(), Some("u1"));
        assert!(parse::<TokenRequest>(r#"{"userId":"u1","role":"doctor"}"#).is_err());
    }
}
