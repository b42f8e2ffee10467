//! Fan-out (issue 22): every domain event is published once to a FIFO
//! topic with two message attributes, `type` and `clinic`, that consumers'
//! subscriptions filter on. A consumer's filter policy is kept to the part
//! of SNS's syntax that a replay can apply the same way — each attribute a
//! list of exact strings or `{"prefix": ...}` — so a replayed range gives a
//! consumer exactly what its subscription would have.

use serde_json::Value;

pub const TYPE: &str = "type";
pub const CLINIC: &str = "clinic";

/// One attribute's accepted values.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Accepts {
    Exactly(String),
    Prefix(String),
}

/// A subscription's filter policy, as far as vcare's consumers use it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Policy {
    rules: Vec<(String, Vec<Accepts>)>,
}

impl Policy {
    /// Everything (a subscription without a filter policy).
    pub fn all() -> Self {
        Self::default()
    }

    /// From the subscription's `FilterPolicy` JSON; anything beyond exact
    /// strings and prefixes on `type` and `clinic` is refused by name.
    pub fn parse(text: &str) -> Result<Self, String> {
        let value: Value = serde_json::from_str(text).map_err(|_| "the filter policy is not JSON".to_owned())?;
        let map = value.as_object().ok_or("the filter policy is not an object")?;
        let mut rules = Vec::new();
        for (name, accepted) in map {
            if name != TYPE && name != CLINIC {
                return Err(format!("the filter policy names {name}: only {TYPE} and {CLINIC} are published"));
            }
            let list = accepted.as_array().ok_or(format!("{name}: a list of values"))?;
            let mut values = Vec::new();
            for v in list {
                match v {
                    Value::String(s) => values.push(Accepts::Exactly(s.clone())),
                    Value::Object(o) if o.len() == 1 && o.get("prefix").is_some_and(Value::is_string) => {
                        values.push(Accepts::Prefix(o["prefix"].as_str().unwrap_or_default().to_owned()))
                    }
                    _ => return Err(format!("{name}: only exact strings and {{\"prefix\": ...}} are used here")),
                }
            }
            rules.push((name.clone(), values));
        }
        Ok(Self { rules })
    }

    /// Whether an event of `kind` and `clinic` reaches the subscription:
    /// every named attribute matches one of its values.
    pub fn accepts(&self, kind: &str, clinic: &str) -> bool {
        self.rules.iter().all(|(name, values)| {
            let actual = if name == TYPE { kind } else { clinic };
            values.iter().any(|v| match v {
                Accepts::Exactly(s) => s == actual,
                Accepts::Prefix(p) => actual.starts_with(p.as_str()),
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policies_accept_what_sns_would_deliver() {
        let rooms = Policy::parse(r#"{"type": [{"prefix": "virtual_care.room."}, "virtual_care.consultation.ended"]}"#)
            .unwrap();
        assert!(rooms.accepts("virtual_care.room.created", "c1"));
        assert!(rooms.accepts("virtual_care.consultation.ended", "c2"));
        assert!(!rooms.accepts("communication.notification.sent", "c1"));
        let both = Policy::parse(r#"{"type": ["a"], "clinic": ["c2"]}"#).unwrap();
        assert!(both.accepts("a", "c2") && !both.accepts("a", "c1") && !both.accepts("b", "c2"));
        assert!(Policy::all().accepts("anything", "any"));
        for bad in [r#"{"type": [{"anything-but": "x"}]}"#, r#"{"userId": ["u"]}"#, r#"{"type": "a"}"#, "[]", "{"] {
            assert!(Policy::parse(bad).is_err(), "{bad}");
        }
    }
}
