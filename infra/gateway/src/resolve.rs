//! CloudFormation intrinsic functions, evaluated against the local stack.

use std::collections::{BTreeMap, HashMap};

use serde_json::{Map, Value};

use crate::GatewayError;
use crate::template::Template;

/// What a deployed resource answers to `Ref` and `Fn::GetAtt`.
#[derive(Debug, Clone, Default)]
pub struct Physical {
    pub reference: String,
    pub attrs: HashMap<String, String>,
}

/// The local stack: parameter values, pseudo parameters, conditions and the
/// physical resources made so far.
#[derive(Debug, Clone)]
pub struct Stack {
    pub name: String,
    pub region: String,
    pub account: String,
    params: BTreeMap<String, Value>,
    conditions: Map<String, Value>,
    pub physical: HashMap<String, Physical>,
}

impl Stack {
    /// Parameter values: `overrides` first, then the template's defaults. A
    /// parameter with neither is an error, as in CloudFormation.
    pub fn new(
        template: &Template,
        name: &str,
        region: &str,
        overrides: &BTreeMap<String, String>,
    ) -> Result<Self, GatewayError> {
        let mut params = BTreeMap::new();
        for (param, decl) in template.parameters() {
            let raw = match overrides.get(&param) {
                Some(v) => v.clone(),
                None => match &decl["Default"] {
                    Value::String(s) => s.clone(),
                    Value::Number(n) => n.to_string(),
                    Value::Null => {
                        return Err(GatewayError::Template(format!("parameter {param} has no value and no default")));
                    }
                    other => other.to_string(),
                },
            };
            let text = |a: &Value| a.as_str().map(str::to_owned).unwrap_or_else(|| a.to_string());
            if let Some(allowed) = decl["AllowedValues"].as_array()
                && !allowed.iter().any(|a| text(a) == raw)
            {
                return Err(GatewayError::Template(format!("parameter {param} must be one of {allowed:?}")));
            }
            let value = if decl["Type"].as_str().is_some_and(|t| t.contains("List")) {
                Value::from(raw.split(',').map(str::trim).collect::<Vec<_>>())
            } else {
                Value::String(raw)
            };
            params.insert(param, value);
        }
        Ok(Self {
            name: name.to_owned(),
            region: region.to_owned(),
            account: "123456789012".to_owned(),
            params,
            conditions: template.doc["Conditions"].as_object().cloned().unwrap_or_default(),
            physical: HashMap::new(),
        })
    }

    pub fn set_param(&mut self, name: &str, value: String) {
        self.params.insert(name.to_owned(), Value::String(value));
    }

    pub fn param(&self, name: &str) -> Option<&Value> {
        self.params.get(name)
    }

    /// The physical name a resource gets here: `<stack>-<LogicalId>`.
    pub fn physical_name(&self, logical_id: &str) -> String {
        format!("{}-{}", self.name, logical_id)
    }

    pub fn arn(&self, service: &str, resource: &str) -> String {
        format!("arn:aws:{service}:{}:{}:{resource}", self.region, self.account)
    }

    /// The logical id whose attribute or reference equals `value`, if any
    /// (e.g. the queue behind an event source's `Queue: !GetAtt Q.Arn`).
    pub fn logical_id_of(&self, value: &str) -> Option<&str> {
        self.physical
            .iter()
            .find(|(_, p)| p.reference == value || p.attrs.values().any(|a| a == value))
            .map(|(id, _)| id.as_str())
    }

    pub fn resolve_string(&self, value: &Value) -> Result<String, GatewayError> {
        match self.resolve(value)? {
            Value::String(s) => Ok(s),
            Value::Number(n) => Ok(n.to_string()),
            Value::Bool(b) => Ok(b.to_string()),
            other => Err(GatewayError::Template(format!("expected a string, got {other}"))),
        }
    }

    pub fn resolve(&self, value: &Value) -> Result<Value, GatewayError> {
        match value {
            Value::Array(items) => Ok(Value::Array(
                items
                    .iter()
                    .map(|v| self.resolve(v))
                    .filter(|v| !matches!(v, Ok(Value::Null)))
                    .collect::<Result<_, _>>()?,
            )),
            Value::Object(map) if map.len() == 1 => {
                let (key, arg) = map.iter().next().expect("one entry");
                match key.as_str() {
                    "Ref" => self.reference(arg.as_str().unwrap_or_default()),
                    "Fn::GetAtt" => self.get_att(arg),
                    "Fn::Sub" => self.sub(arg).map(Value::String),
                    "Fn::Join" => self.join(arg),
                    "Fn::If" => self.if_(arg),
                    "Fn::Select" => self.select(arg),
                    "Fn::Split" => {
                        let (delim, text) = pair(arg, "Fn::Split")?;
                        let text = self.resolve_string(text)?;
                        Ok(Value::from(text.split(delim.as_str().unwrap_or(",")).collect::<Vec<_>>()))
                    }
                    "Fn::ToJsonString" => Ok(Value::String(self.resolve(arg)?.to_string())),
                    "Fn::Equals" | "Fn::Not" | "Fn::And" | "Fn::Or" | "Condition" => {
                        Ok(Value::Bool(self.condition_value(value)?))
                    }
                    k if k.starts_with("Fn::") => Err(GatewayError::Template(format!("{k} is not supported locally"))),
                    _ => Ok(Value::Object(self.resolve_map(map)?)),
                }
            }
            Value::Object(map) => Ok(Value::Object(self.resolve_map(map)?)),
            scalar => Ok(scalar.clone()),
        }
    }

    fn resolve_map(&self, map: &Map<String, Value>) -> Result<Map<String, Value>, GatewayError> {
        let mut out = Map::new();
        for (k, v) in map {
            let v = self.resolve(v)?;
            if !v.is_null() {
                out.insert(k.clone(), v);
            }
        }
        Ok(out)
    }

    fn reference(&self, name: &str) -> Result<Value, GatewayError> {
        Ok(match name {
            "AWS::StackName" => Value::String(self.name.clone()),
            "AWS::Region" => Value::String(self.region.clone()),
            "AWS::AccountId" => Value::String(self.account.clone()),
            "AWS::Partition" => Value::String("aws".into()),
            "AWS::URLSuffix" => Value::String("amazonaws.com".into()),
            "AWS::NoValue" => Value::Null,
            _ => {
                if let Some(v) = self.params.get(name) {
                    v.clone()
                } else if let Some(p) = self.physical.get(name) {
                    Value::String(p.reference.clone())
                } else {
                    return Err(GatewayError::Template(format!("Ref {name}: no such parameter or local resource")));
                }
            }
        })
    }

    fn get_att(&self, arg: &Value) -> Result<Value, GatewayError> {
        let (id, attr) = pair(arg, "Fn::GetAtt")?;
        let (id, attr) = (id.as_str().unwrap_or_default(), attr.as_str().unwrap_or_default());
        self.attribute(id, attr).map(Value::String)
    }

    fn attribute(&self, id: &str, attr: &str) -> Result<String, GatewayError> {
        self.physical
            .get(id)
            .and_then(|p| p.attrs.get(attr))
            .cloned()
            .ok_or_else(|| GatewayError::Template(format!("Fn::GetAtt {id}.{attr}: not known locally")))
    }

    fn sub(&self, arg: &Value) -> Result<String, GatewayError> {
        let (text, vars) = match arg {
            Value::String(s) => (s.as_str(), Map::new()),
            Value::Array(a) if a.len() == 2 => {
                (a[0].as_str().unwrap_or_default(), a[1].as_object().cloned().unwrap_or_default())
            }
            _ => return Err(GatewayError::Template("Fn::Sub takes a string or [string, map]".into())),
        };
        let mut out = String::new();
        let mut rest = text;
        while let Some(start) = rest.find("${") {
            out.push_str(&rest[..start]);
            let after = &rest[start + 2..];
            let end =
                after.find('}').ok_or_else(|| GatewayError::Template(format!("Fn::Sub: unclosed ${{ in {text}")))?;
            let name = &after[..end];
            if let Some(literal) = name.strip_prefix('!') {
                out.push_str("${");
                out.push_str(literal);
                out.push('}');
            } else if let Some(v) = vars.get(name) {
                out.push_str(&self.resolve_string(v)?);
            } else if let Some((id, attr)) = name.split_once('.').filter(|_| !name.starts_with("AWS::")) {
                out.push_str(&self.attribute(id, attr)?);
            } else {
                out.push_str(
                    &self.resolve_string(&Value::from_iter([("Ref".to_owned(), Value::String(name.into()))]))?,
                );
            }
            rest = &after[end + 1..];
        }
        out.push_str(rest);
        Ok(out)
    }

    fn join(&self, arg: &Value) -> Result<Value, GatewayError> {
        let (delim, items) = pair(arg, "Fn::Join")?;
        let items = match self.resolve(items)? {
            Value::Array(a) => a,
            _ => return Err(GatewayError::Template("Fn::Join needs a list".into())),
        };
        let parts = items.iter().map(|v| self.resolve_string(v)).collect::<Result<Vec<_>, _>>()?;
        Ok(Value::String(parts.join(delim.as_str().unwrap_or_default())))
    }

    fn select(&self, arg: &Value) -> Result<Value, GatewayError> {
        let (index, list) = pair(arg, "Fn::Select")?;
        let index: usize =
            self.resolve_string(index)?.parse().map_err(|_| GatewayError::Template("Fn::Select index".into()))?;
        match self.resolve(list)? {
            Value::Array(a) => {
                a.get(index).cloned().ok_or_else(|| GatewayError::Template("Fn::Select out of range".into()))
            }
            _ => Err(GatewayError::Template("Fn::Select needs a list".into())),
        }
    }

    fn if_(&self, arg: &Value) -> Result<Value, GatewayError> {
        let a = arg
            .as_array()
            .filter(|a| a.len() == 3)
            .ok_or_else(|| GatewayError::Template("Fn::If takes 3 items".into()))?;
        let name = a[0].as_str().unwrap_or_default();
        self.resolve(if self.condition(name)? { &a[1] } else { &a[2] })
    }

    pub fn condition(&self, name: &str) -> Result<bool, GatewayError> {
        let expr = self.conditions.get(name).ok_or_else(|| GatewayError::Template(format!("no condition {name}")))?;
        self.condition_value(expr)
    }

    fn condition_value(&self, expr: &Value) -> Result<bool, GatewayError> {
        let Some((key, arg)) = expr.as_object().filter(|m| m.len() == 1).and_then(|m| m.iter().next()) else {
            return Err(GatewayError::Template(format!("not a condition: {expr}")));
        };
        let items = || arg.as_array().cloned().unwrap_or_default();
        match key.as_str() {
            "Fn::Equals" => {
                let (a, b) = pair(arg, "Fn::Equals")?;
                Ok(self.resolve(a)? == self.resolve(b)?)
            }
            "Fn::Not" => Ok(!self.condition_value(items().first().unwrap_or(&Value::Null))?),
            "Fn::And" => items().iter().try_fold(true, |acc, c| Ok(acc && self.condition_value(c)?)),
            "Fn::Or" => items().iter().try_fold(false, |acc, c| Ok(acc || self.condition_value(c)?)),
            "Condition" => self.condition(arg.as_str().unwrap_or_default()),
            other => Err(GatewayError::Template(format!("{other} is not a condition function"))),
        }
    }
}

fn pair<'a>(arg: &'a Value, what: &str) -> Result<(&'a Value, &'a Value), GatewayError> {
    match arg.as_array() {
        Some(a) if a.len() == 2 => Ok((&a[0], &a[1])),
        _ => Err(GatewayError::Template(format!("{what} takes two items"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn stack() -> Stack {
        let t = Template::parse(
            r#"
Parameters:
  Stage: {Type: String, Default: dev, AllowedValues: [dev, prod]}
  Names: {Type: CommaDelimitedList, Default: "a, b"}
Conditions:
  IsProd: !Equals [!Ref Stage, prod]
  NotProd: !Not [!Condition IsProd]
Resources: {}
"#,
        )
        .unwrap();
        let mut s = Stack::new(&t, "st", "eu-central-1", &BTreeMap::new()).unwrap();
        s.physical.insert(
            "Queue".into(),
            Physical { reference: "http://q".into(), attrs: HashMap::from([("Arn".into(), "arn:q".into())]) },
        );
        s
    }

    #[test]
    fn resolves_refs_attributes_subs_and_conditions() {
        let s = stack();
        let r = |v: Value| s.resolve(&v).unwrap();
        assert_eq!(r(json!({"Ref": "Queue"})), json!("http://q"));
        assert_eq!(r(json!({"Ref": "Names"})), json!(["a", "b"]));
        assert_eq!(r(json!({"Fn::GetAtt": ["Queue", "Arn"]})), json!("arn:q"));
        assert_eq!(
            r(json!({"Fn::Sub": "${AWS::StackName}/${Stage}/${Queue.Arn}/${!Lit}"})),
            json!("st/dev/arn:q/${Lit}")
        );
        assert_eq!(r(json!({"Fn::Sub": ["${X}-1", {"X": {"Ref": "Stage"}}]})), json!("dev-1"));
        assert_eq!(r(json!({"Fn::If": ["IsProd", "yes", "no"]})), json!("no"));
        assert_eq!(r(json!({"Fn::If": ["NotProd", "yes", {"Ref": "AWS::NoValue"}]})), json!("yes"));
        assert_eq!(r(json!({"A": {"Fn::If": ["IsProd", 1, {"Ref": "AWS::NoValue"}]}, "B": 2})), json!({"B": 2}));
        assert_eq!(r(json!({"Fn::Join": ["-", ["a", {"Ref": "Stage"}]]})), json!("a-dev"));
        assert_eq!(r(json!({"Fn::Select": [1, {"Fn::Split": [",", "x,y"]}]})), json!("y"));
    }

    #[test]
    fn unknown_names_and_bad_parameters_are_errors() {
        let s = stack();
        assert!(s.resolve(&json!({"Ref": "Nope"})).is_err());
        assert!(s.resolve(&json!({"Fn::GetAtt": ["Queue", "Nope"]})).is_err());
        let t = Template::parse("Parameters:\n  Stage: {Type: String, AllowedValues: [dev]}\nResources: {}").unwrap();
        assert!(Stack::new(&t, "s", "r", &BTreeMap::new()).is_err(), "no default, no value");
        let bad = BTreeMap::from([("Stage".to_owned(), "qa".to_owned())]);
        assert!(Stack::new(&t, "s", "r", &bad).is_err(), "not an allowed value");
    }
}
