//! The audit query's parameters, checked.

use chrono::{DateTime, Utc};

use crate::Rejected;
use crate::ids::is_valid_external_id;

/// Most records one page of the audit query holds.
pub const MAX_PAGE: i32 = 100;

/// An audit query as asked: `subjectId`, `actorId`, `from`, `to` (RFC 3339),
/// `limit` (1 to [`MAX_PAGE`], 50 by default) and `cursor`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditQuery {
    pub subject_id: Option<String>,
    pub actor_id: Option<String>,
    pub from: Option<DateTime<Utc>>,
    pub to: Option<DateTime<Utc>>,
    pub limit: i32,
    pub cursor: Option<String>,
}

impl AuditQuery {
    /// Every parameter checked; the first that breaks its rule is named.
    pub fn parse<'a>(params: impl IntoIterator<Item = (&'a str, &'a str)>) -> Result<Self, Rejected> {
        let bad = |d: &str| Rejected::Invalid(d.to_owned());
        let mut q = Self { subject_id: None, actor_id: None, from: None, to: None, limit: 50, cursor: None };
        let mut seen = std::collections::HashSet::new();
        for (name, value) in params {
            if !seen.insert(name) {
                return Err(bad("each query parameter may be given once"));
            }
            let time = |v: &str, what: &str| {
                DateTime::parse_from_rfc3339(v)
                    .map(|t| t.with_timezone(&Utc))
                    .map_err(|_| bad(&format!("{what}: an RFC 3339 time like 2026-12-01T09:00:00Z")))
            };
            let id = |v: &str, what: &str| {
                if is_valid_external_id(v) {
                    Ok(v.to_owned())
                } else {
                    Err(bad(&format!("{what}: 1 to 128 of A-Z a-z 0-9 . _ : @ -")))
                }
            };
            match name {
                "subjectId" => q.subject_id = Some(id(value, "subjectId")?),
                "actorId" => q.actor_id = Some(id(value, "actorId")?),
                "from" => q.from = Some(time(value, "from")?),
                "to" => q.to = Some(time(value, "to")?),
                "limit" => {
                    q.limit = value
                        .parse()
                        .ok()
                        .filter(|n| (1..=MAX_PAGE).contains(n))
                        .ok_or_else(|| bad(&format!("limit: a whole number from 1 to {MAX_PAGE}")))?;
                }
                "cursor" => {
                    if value.is_empty() || value.len() > 2048 {
                        return Err(bad("cursor: not a cursor this endpoint gave you"));
                    }
                    q.cursor = Some(value.to_owned());
                }
                _ => return Err(bad("unknown query parameter (subjectId, actorId, from, to, limit, cursor)")),
            }
        }
        if let (Some(from), Some(to)) = (q.from, q.to)
            && from > to
        {
            return Err(bad("from: must not be after to"));
        }
        Ok(q)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_audit_query_names_its_first_bad_parameter() {
        let q = AuditQuery::parse([("subjectId", "rm_1"), ("from", "2026-12-01T00:00:00Z"), ("limit", "10")]).unwrap();
        assert_eq!((q.subject_id.as_deref(), q.limit, q.actor_id), (Some("rm_1"), 10, None));
        assert_eq!(AuditQuery::parse([]).unwrap().limit, 50);
        for (params, says) in [
            (vec![("from", "yesterday")], "from:"),
            (vec![("to", "2026-13-01T00:00:00Z")], "to:"),
            (vec![("from", "2026-12-02T00:00:00Z"), ("to", "2026-12-01T00:00:00Z")], "after to"),
            (vec![("limit", "0")], "limit:"),
            (vec![("limit", "101")], "limit:"),
            (vec![("limit", "ten")], "limit:"),
            (vec![("subjectId", "a b")], "subjectId:"),
            (vec![("actorId", "")], "actorId:"),
            (vec![("cursor", "")], "cursor:"),
            (vec![("who", "x")], "unknown"),
            (vec![("actorId", "a"), ("actorId", "b")], "once"),
        ] {
            let Err(Rejected::Invalid(d)) = AuditQuery::parse(params.clone()) else { panic!("{params:?}") };
            assert!(d.contains(says), "{params:?}: {d}");
        }
    }
}
