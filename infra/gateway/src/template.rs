//! infra/template.yaml, read the way CloudFormation reads it.
//!
//! YAML short-form intrinsics (`!Ref`, `!GetAtt`, `!Sub`, ...) become their
//! JSON long forms, so the rest of the gateway works on one representation.

use std::collections::BTreeMap;
use std::path::Path;

use serde_json::{Map, Value};

use crate::GatewayError;

/// The parsed template: everything as CloudFormation JSON.
#[derive(Debug, Clone)]
pub struct Template {
    pub doc: Value,
}

impl Template {
    pub fn load(path: &Path) -> Result<Self, GatewayError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| GatewayError::Template(format!("cannot read {}: {e}", path.display())))?;
        Self::parse(&text)
    }

    pub fn parse(text: &str) -> Result<Self, GatewayError> {
        let yaml: serde_yaml_ng::Value =
            serde_yaml_ng::from_str(text).map_err(|e| GatewayError::Template(format!("not valid YAML: {e}")))?;
        let doc = to_json(yaml)?;
        if !doc.get("Resources").is_some_and(Value::is_object) {
            return Err(GatewayError::Template("no Resources section".into()));
        }
        Ok(Self { doc })
    }

    pub fn resources(&self) -> impl Iterator<Item = (&str, &Value)> {
        self.doc["Resources"].as_object().into_iter().flatten().map(|(k, v)| (k.as_str(), v))
    }

    pub fn resource(&self, logical_id: &str) -> Option<&Value> {
        self.doc["Resources"].get(logical_id)
    }

    /// Logical ids of the resources of one type, in template order.
    pub fn of_type<'a>(&'a self, kind: &'a str) -> impl Iterator<Item = (&'a str, &'a Value)> + 'a {
        self.resources().filter(move |(_, r)| r["Type"] == kind)
    }

    pub fn parameters(&self) -> BTreeMap<String, Value> {
        self.doc["Parameters"].as_object().into_iter().flatten().map(|(k, v)| (k.clone(), v.clone())).collect()
    }

    /// A property of a `AWS::Serverless::Function`, falling back to the
    /// template's `Globals.Function` as SAM does.
    pub fn function_property<'a>(&'a self, function: &'a Value, name: &str) -> Option<&'a Value> {
        function["Properties"].get(name).or_else(|| self.doc["Globals"]["Function"].get(name))
    }

    /// A function's environment: `Globals.Function.Environment.Variables`
    /// overlaid with its own.
    pub fn function_environment(&self, function: &Value) -> Map<String, Value> {
        let mut vars =
            self.doc["Globals"]["Function"]["Environment"]["Variables"].as_object().cloned().unwrap_or_default();
        if let Some(own) = function["Properties"]["Environment"]["Variables"].as_object() {
            vars.extend(own.clone());
        }
        vars
    }
}

const FUNCTION_TAGS: &[&str] = &[
    "Base64",
    "Cidr",
    "FindInMap",
    "GetAZs",
    "ImportValue",
    "Join",
    "Select",
    "Split",
    "Sub",
    "Transform",
    "If",
    "Equals",
    "Not",
    "And",
    "Or",
    "ToJsonString",
    "Length",
];

fn to_json(value: serde_yaml_ng::Value) -> Result<Value, GatewayError> {
    use serde_yaml_ng::Value as Y;
    Ok(match value {
        Y::Null => Value::Null,
        Y::Bool(b) => Value::Bool(b),
        Y::Number(n) => serde_json::to_value(&n).map_err(|e| GatewayError::Template(e.to_string()))?,
        Y::String(s) => Value::String(s),
        Y::Sequence(items) => Value::Array(items.into_iter().map(to_json).collect::<Result<_, _>>()?),
        Y::Mapping(map) => {
            let mut out = Map::new();
            for (k, v) in map {
                let key = match k {
                    Y::String(s) => s,
                    Y::Number(n) => n.to_string(),
                    Y::Bool(b) => b.to_string(),
                    other => return Err(GatewayError::Template(format!("unsupported mapping key {other:?}"))),
                };
                out.insert(key, to_json(v)?);
            }
            Value::Object(out)
        }
        Y::Tagged(tagged) => {
            let tag = tagged.tag.to_string();
            let name = tag.trim_start_matches('!');
            let inner = to_json(tagged.value)?;
            let (key, inner) = match name {
                "Ref" => ("Ref".to_owned(), inner),
                "Condition" => ("Condition".to_owned(), inner),
                "GetAtt" => {
                    let parts = match inner {
                        Value::String(s) => match s.split_once('.') {
                            Some((id, attr)) => Value::from(vec![id.to_owned(), attr.to_owned()]),
                            None => return Err(GatewayError::Template(format!("!GetAtt {s} names no attribute"))),
                        },
                        other => other,
                    };
                    ("Fn::GetAtt".to_owned(), parts)
                }
                n if FUNCTION_TAGS.contains(&n) => (format!("Fn::{n}"), inner),
                other => return Err(GatewayError::Template(format!("unknown tag !{other}"))),
            };
            Value::Object(Map::from_iter([(key, inner)]))
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn short_form_intrinsics_become_long_form() {
        let t = Template::parse(
            r#"
Resources:
  Fn:
    Type: AWS::Serverless::Function
    Properties:
      Environment:
        Variables:
          A: !Ref Table
          B: !GetAtt Queue.Arn
          C: !Sub "${AWS::StackName}-x"
          D: !If [IsProd, 1, 2]
          E: !Join ["", [a, !Ref B]]
"#,
        )
        .unwrap();
        let env = t.function_environment(t.resource("Fn").unwrap());
        assert_eq!(env["A"], json!({"Ref": "Table"}));
        assert_eq!(env["B"], json!({"Fn::GetAtt": ["Queue", "Arn"]}));
        assert_eq!(env["C"], json!({"Fn::Sub": "${AWS::StackName}-x"}));
        assert_eq!(env["D"], json!({"Fn::If": ["IsProd", 1, 2]}));
        assert_eq!(env["E"], json!({"Fn::Join": ["", ["a", {"Ref": "B"}]]}));
    }

    #[test]
    fn globals_are_overlaid_by_the_function() {
        let t = Template::parse(
            "Globals:\n  Function:\n    Timeout: 9\n    Environment:\n      Variables: {A: g, B: g}\nResources:\n  F:\n    Type: AWS::Serverless::Function\n    Properties:\n      Environment:\n        Variables: {B: own}\n",
        )
        .unwrap();
        let f = t.resource("F").unwrap();
        let env = t.function_environment(f);
        assert_eq!((env["A"].as_str(), env["B"].as_str()), (Some("g"), Some("own")));
        assert_eq!(t.function_property(f, "Timeout"), Some(&json!(9)));
    }

    #[test]
    fn bad_templates_are_clear_errors() {
        assert!(matches!(Template::parse("a: [").unwrap_err(), GatewayError::Template(m) if m.contains("YAML")));
        assert!(matches!(Template::parse("Foo: 1").unwrap_err(), GatewayError::Template(m) if m.contains("Resources")));
        assert!(
            matches!(Template::parse("Resources:\n  X: !Nope 1").unwrap_err(), GatewayError::Template(m) if m.contains("!Nope"))
        );
    }
}
