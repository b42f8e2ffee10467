//! The contract (issue 7): infra/openapi.yaml, the template's routes and
//! the handlers agree, and the handlers' real answers match the spec.

use std::collections::BTreeSet;

use serde_json::{Value, json};
use vcare_tests::comms::{Providers, accept, body};
use vcare_tests::root;

fn openapi() -> Value {
    let text = std::fs::read_to_string(root().join("infra/openapi.yaml")).unwrap();
    serde_yaml_ng::from_str(&text).unwrap()
}

const METHODS: &[&str] = &["get", "post", "put", "patch", "delete"];

/// (METHOD, path, public) of every operation in the spec.
fn spec_routes(doc: &Value) -> BTreeSet<(String, String, bool)> {
    let mut out = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for m in METHODS {
            if let Some(op) = item.get(*m) {
                let security = op.get("security").unwrap_or(&doc["security"]);
                let bearer = security.as_array().unwrap().iter().any(|s| s.get("oidc").is_some());
                out.insert((m.to_uppercase(), path.clone(), !bearer));
            }
        }
    }
    out
}

/// (METHOD, path, public) of every HttpApi event in the template, with the
/// function that serves it.
fn template_events() -> Vec<((String, String, bool), String)> {
    let template = vcare_local::Template::load(&root().join("infra/template.yaml")).unwrap();
    let mut out = Vec::new();
    for (id, f) in template.of_type("AWS::Serverless::Function") {
        for (_, e) in f["Properties"]["Events"].as_object().into_iter().flatten() {
            if e["Type"] == "HttpApi" {
                let p = &e["Properties"];
                let public = p["Auth"]["Authorizer"] == "NONE";
                let route = (p["Method"].as_str().unwrap().to_owned(), p["Path"].as_str().unwrap().to_owned(), public);
                out.push((route, id.to_owned()));
            }
        }
    }
    out
}

fn template_routes() -> BTreeSet<(String, String, bool)> {
    template_events().into_iter().map(|(r, _)| r).collect()
}

#[test]
fn the_spec_and_the_template_declare_the_same_routes_with_the_same_auth() {
    let spec = spec_routes(&openapi());
    let template = template_routes();
    assert_eq!(spec.len(), 63, "{spec:?}");
    assert_eq!(
        spec,
        template,
        "in the spec only: {:?}; in the template only: {:?}",
        spec.difference(&template),
        template.difference(&spec)
    );
}

/// What API Gateway is given: SAM's own translator (offline, through
/// infra/scripts/sam-translate.py) over the template, with openapi.yaml
/// included as CloudFormation would. The API's definition is the spec, every
/// operation reaches its function's `live` alias (so canaries see API
/// traffic), bearer routes use the JWT authorizer, public ones none.
#[test]
fn api_gateway_is_given_the_spec_with_every_route_on_its_alias() {
    let out = std::process::Command::new(root().join(".venv/bin/python"))
        .arg(root().join("infra/scripts/sam-translate.py"))
        .arg(root().join("infra/template.yaml"))
        .output()
        .expect("the project's virtualenv (infra/scripts/test.sh makes it)");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let cfn: Value = serde_json::from_slice(&out.stdout).unwrap();
    let api = &cfn["Resources"]["HttpApi"]["Properties"];
    assert_eq!(api["FailOnWarnings"], true);
    let body = &api["Body"];
    let spec = openapi();
    assert_eq!(body["info"], spec["info"], "the definition is infra/openapi.yaml");
    assert_eq!(body["components"]["schemas"], spec["components"]["schemas"]);
    let authorizer = &body["components"]["securitySchemes"]["oidc"]["x-amazon-apigateway-authorizer"];
    assert_eq!(authorizer["type"], "jwt");
    assert_eq!(authorizer["jwtConfiguration"]["issuer"], json!({"Ref": "AuthIssuer"}));
    assert_eq!(authorizer["jwtConfiguration"]["audience"], json!([{"Ref": "AuthAudience"}]));

    let served: std::collections::BTreeMap<_, _> = template_events().into_iter().collect();
    let mut seen = 0;
    for (path, item) in body["paths"].as_object().unwrap() {
        for m in METHODS {
            let Some(op) = item.get(*m) else { continue };
            let security = op["security"].as_array().unwrap();
            let bearer = security.iter().any(|s| s.get("oidc").is_some());
            let function = &served[&(m.to_uppercase(), path.clone(), !bearer)];
            let integration = &op["x-amazon-apigateway-integration"];
            assert_eq!(integration["type"], "aws_proxy", "{m} {path}");
            assert_eq!(integration["payloadFormatVersion"], "2.0", "{m} {path}");
            let uri = integration["uri"]["Fn::Sub"].as_str().unwrap();
            assert!(uri.ends_with(&format!("${{{function}Aliaslive}}/invocations")), "{m} {path}: {uri}");
            if !bearer {
                assert_eq!(security, &vec![json!({"NONE": []})], "{m} {path} is public");
            }
            // And API Gateway may invoke that alias for that route.
            let arn_path = arn_route(path);
            let permitted = cfn["Resources"].as_object().unwrap().values().any(|r| {
                r["Type"] == "AWS::Lambda::Permission"
                    && r["Properties"]["FunctionName"] == json!({"Ref": format!("{function}Aliaslive")})
                    && r["Properties"]["SourceArn"]["Fn::Sub"][0]
                        .as_str()
                        .is_some_and(|a| a.ends_with(&format!("/{}{arn_path}", m.to_uppercase())))
            });
            assert!(permitted, "{m} {path}: no invoke permission for {function}");
            seen += 1;
        }
    }
    assert_eq!(seen, served.len(), "every route and no other");
}

/// A route as its invoke permission names it: `{param}` becomes `*`.
fn arn_route(path: &str) -> String {
    path.split('/').map(|s| if s.starts_with('{') { "*" } else { s }).collect::<Vec<_>>().join("/")
}

/// OpenAPI 3.0's `nullable` as JSON Schema: `type: [T, "null"]`.
fn json_schema(v: &mut Value) {
    match v {
        Value::Object(map) => {
            if map.remove("nullable") == Some(Value::Bool(true)) {
                if let Some(Value::String(t)) = map.get("type").cloned() {
                    map.insert("type".into(), json!([t, "null"]));
                }
                if let Some(Value::Array(e)) = map.get_mut("enum") {
                    e.push(Value::Null);
                }
            }
            map.values_mut().for_each(json_schema);
        }
        Value::Array(items) => items.iter_mut().for_each(json_schema),
        _ => {}
    }
}

/// Checks a real answer against the spec's schema for its route and status.
fn conforms(doc: &Value, method: &str, path: &str, status: u16, content_type: &str, body: &Value) {
    let declared = &doc["paths"][path][method]["responses"][status.to_string()];
    assert!(declared.is_object(), "{method} {path} declares {status}");
    let response_at = match declared["$ref"].as_str() {
        Some(r) => r.to_owned(),
        None => format!("#/paths/{}/{method}/responses/{status}", path.replace('~', "~0").replace('/', "~1")),
    };
    let media = content_type.split(';').next().unwrap().trim();
    let pointer = format!("{response_at}/content/{}/schema", media.replace('/', "~1"));
    let mut root = doc.clone();
    assert!(root.pointer(&pointer[1..]).is_some(), "{method} {path} {status}: the spec describes {media}");
    json_schema(&mut root);
    // A JSON pointer inside a URI fragment: braces percent-encoded.
    root["$ref"] = json!(pointer.replace('{', "%7B").replace('}', "%7D"));
    let validator = jsonschema::options().should_validate_formats(true).build(&root).unwrap();
    let errors: Vec<String> = validator.iter_errors(body).map(|e| format!("{e} at {}", e.instance_path())).collect();
    assert!(errors.is_empty(), "{method} {path} {status}: {errors:?}\n{body}");
}

/// A consultation's and a notification's story through the gateway, each
/// answer checked against the spec.
#[tokio::test]
async fn the_handlers_answers_match_the_spec() {
    let doc = openapi();
    let p = Providers::start().await;
    let stack = vcare_tests::comms::stack(&p, "gateway", "ses").await;
    let doctor = stack.token("u-doc", Some("c1"), &["doctor"]);
    let patient = stack.token("u-pat", Some("c1"), &["patient"]);
    let service = stack.token("svc", Some("c1"), &["service"]);
    let base = stack.base.clone();
    let check = |method: &str, path: &str, response: (u16, String, Value)| {
        let (status, content_type, body) = response;
        if status != 204 {
            conforms(&doc, method, path, status, &content_type, &body);
        }
        (status, body)
    };
    let send = |req: reqwest::RequestBuilder| {
        let stack = &stack;
        async move {
            let r = req.send().await.unwrap();
            let status = r.status().as_u16();
            let ct = r.headers().get("content-type").and_then(|v| v.to_str().ok()).unwrap_or("").to_owned();
            let text = r.text().await.unwrap();
            let _ = stack;
            (status, ct, serde_json::from_str(&text).unwrap_or(Value::Null))
        }
    };
    let http = &stack.http;

    let (s, _) = check("get", "/health", send(http.get(format!("{base}/health"))).await);
    assert_eq!(s, 200);
    let start = chrono::Utc::now() + chrono::Duration::minutes(5);
    let room_body = json!({
        "appointmentId": "apt-contract", "scheduledStart": start.to_rfc3339(),
        "scheduledEnd": (start + chrono::Duration::minutes(30)).to_rfc3339(),
        "participants": [{"userId": "u-doc", "role": "doctor", "displayName": "Dr. Amini"},
                         {"userId": "u-pat", "role": "patient", "displayName": "Zahra"}],
    });
    let rooms = "/v1/virtual-care/rooms";
    let (s, room) =
        check("post", rooms, send(http.post(format!("{base}{rooms}")).bearer_auth(&doctor).json(&room_body)).await);
    assert_eq!(s, 201);
    let (s, _) =
        check("post", rooms, send(http.post(format!("{base}{rooms}")).bearer_auth(&doctor).json(&room_body)).await);
    assert_eq!(s, 200);
    let (s, _) = check(
        "post",
        rooms,
        send(http.post(format!("{base}{rooms}")).bearer_auth(&doctor).json(&json!({"appointmentId": 7}))).await,
    );
    assert_eq!(s, 400);
    let (s, _) = check("post", rooms, send(http.post(format!("{base}{rooms}")).json(&room_body)).await);
    assert_eq!(s, 401);
    let id = room["roomId"].as_str().unwrap();
    let one = "/v1/virtual-care/rooms/{roomId}";
    let (s, _) = check("get", one, send(http.get(format!("{base}{rooms}/{id}")).bearer_auth(&patient)).await);
    assert_eq!(s, 200);
    let (s, _) = check(
        "get",
        one,
        send(http.get(format!("{base}{rooms}/rm_nosuchroomnosuchroom00")).bearer_auth(&patient)).await,
    );
    assert_eq!(s, 404);
    // A lobby room (the default): the patient waits until admitted.
    let tokens = "/v1/virtual-care/rooms/{roomId}/tokens";
    let ask = || http.post(format!("{base}{rooms}/{id}/tokens")).bearer_auth(&patient).json(&json!({}));
    let (s, problem) = check("post", tokens, send(ask()).await);
    assert_eq!(s, 409);
    assert!(problem["type"].as_str().unwrap().ends_with("/waiting"), "{problem}");
    let check_in = "/v1/virtual-care/rooms/{roomId}/check-in";
    let (s, waiting) =
        check("post", check_in, send(http.post(format!("{base}{rooms}/{id}/check-in")).bearer_auth(&patient)).await);
    assert_eq!((s, &waiting["status"]), (200, &json!("waiting")));
    let list = "/v1/virtual-care/rooms/{roomId}/waiting";
    let (s, _) = check("get", list, send(http.get(format!("{base}{rooms}/{id}/waiting")).bearer_auth(&patient)).await);
    assert_eq!(s, 403);
    let (s, _) = check("get", list, send(http.get(format!("{base}{rooms}/{id}/waiting")).bearer_auth(&doctor)).await);
    assert_eq!(s, 200);
    let admit = "/v1/virtual-care/rooms/{roomId}/admit";
    let admitting =
        |user: &str| http.post(format!("{base}{rooms}/{id}/admit")).bearer_auth(&doctor).json(&json!({"userId": user}));
    assert_eq!(check("post", admit, send(admitting("u-nobody")).await).0, 404);
    assert_eq!(check("post", admit, send(admitting("u-pat")).await).0, 200);
    let (s, _) = check("post", tokens, send(ask()).await);
    assert_eq!(s, 201);
    let (s, _) = check(
        "post",
        "/v1/virtual-care/rooms/{roomId}/issues",
        send(
            http.post(format!("{base}{rooms}/{id}/issues")).bearer_auth(&patient).json(&json!({"issueType": "video"})),
        )
        .await,
    );
    assert_eq!(s, 202);
    // Recording consent, its history line (no channel), the recordings
    // list, and the dial-in routes Jitsi calls.
    let consent = "/v1/virtual-care/rooms/{roomId}/consent";
    let consenting = |body: Value| http.post(format!("{base}{rooms}/{id}/consent")).bearer_auth(&patient).json(&body);
    assert_eq!(check("post", consent, send(consenting(json!({"recording": true}))).await).0, 200);
    assert_eq!(check("post", consent, send(consenting(json!({"recording": 1}))).await).0, 400);
    let consents = "/v1/communication/recipients/{userId}/consents";
    let (s, history) = check(
        "get",
        consents,
        send(http.get(format!("{base}/v1/communication/recipients/u-pat/consents")).bearer_auth(&patient)).await,
    );
    assert_eq!((s, &history["items"][0]["category"]), (200, &json!("recording")), "{history}");
    let recordings = "/v1/virtual-care/rooms/{roomId}/recordings";
    let listing = |token: &str| http.get(format!("{base}{rooms}/{id}/recordings")).bearer_auth(token);
    assert_eq!(check("get", recordings, send(listing(&doctor)).await).0, 200);
    assert_eq!(check("get", recordings, send(listing(&patient)).await).0, 403);
    // Egress is OpenVidu's: a Jitsi room's doctor gets 409, a patient 403.
    for (route, path) in [
        ("start", "/v1/virtual-care/rooms/{roomId}/recording/start"),
        ("stop", "/v1/virtual-care/rooms/{roomId}/recording/stop"),
    ] {
        let asking = |token: &str| http.post(format!("{base}{rooms}/{id}/recording/{route}")).bearer_auth(token);
        assert_eq!(check("post", path, send(asking(&doctor)).await).0, 409);
        assert_eq!(check("post", path, send(asking(&patient)).await).0, 403);
    }
    let mapper = "/v1/virtual-care/jitsi/conference-mapper";
    assert_eq!(check("get", mapper, send(http.get(format!("{base}{mapper}?id=123"))).await).0, 400);
    let jid = format!("{}%40conference.meet.vcare.local", room["jitsiRoom"].as_str().unwrap());
    let numbers = "/v1/virtual-care/jitsi/phone-numbers";
    let (s, answer) = check("get", numbers, send(http.get(format!("{base}{numbers}?conference={jid}"))).await);
    assert_eq!((s, &answer["numbersEnabled"]), (200, &json!(false)));
    let images = "/v1/virtual-care/rooms/{roomId}/images";
    let (s, _) = check(
        "post",
        images,
        send(
            http.post(format!("{base}{rooms}/{id}/images"))
                .bearer_auth(&doctor)
                .json(&json!({"contentType": "image/png", "sizeBytes": 1024})),
        )
        .await,
    );
    assert_eq!(s, 201);
    let (s, _) = check("get", images, send(http.get(format!("{base}{rooms}/{id}/images")).bearer_auth(&doctor)).await);
    assert_eq!(s, 200);
    let (s, _) = check(
        "get",
        "/v1/virtual-care/history",
        send(http.get(format!("{base}/v1/virtual-care/history?limit=5")).bearer_auth(&patient)).await,
    );
    assert_eq!(s, 200);
    let (s, _) = check(
        "post",
        "/v1/virtual-care/rooms/{roomId}/end",
        send(http.post(format!("{base}{rooms}/{id}/end")).bearer_auth(&doctor)).await,
    );
    assert_eq!(s, 200);
    let (s, _) = check(
        "post",
        "/v1/virtual-care/rooms/{roomId}/end",
        send(http.post(format!("{base}{rooms}/{id}/end")).bearer_auth(&patient)).await,
    );
    assert_eq!(s, 403);

    let ntf = accept(&stack, &body(&["sms"], "high"), "k-contract").await;
    let (s, _) = check(
        "get",
        "/v1/communication/notifications/{id}",
        send(http.get(format!("{base}/v1/communication/notifications/{ntf}")).bearer_auth(&service)).await,
    );
    assert_eq!(s, 200);
    let (s, _) = check(
        "post",
        "/v1/communication/notifications",
        send(
            http.post(format!("{base}/v1/communication/notifications"))
                .bearer_auth(&service)
                .json(&body(&["sms"], "high")),
        )
        .await,
    );
    assert_eq!(s, 400, "no Idempotency-Key");
    let (s, _) = check(
        "get",
        "/v1/communication/notifications/health",
        send(http.get(format!("{base}/v1/communication/notifications/health")).bearer_auth(&service)).await,
    );
    assert_eq!(s, 200);
    let (s, _) = check(
        "post",
        "/v1/communication/dlr/{provider}",
        send(
            http.post(format!("{base}/v1/communication/dlr/twilio?ref=x"))
                .header("content-type", "application/x-www-form-urlencoded")
                .body("MessageStatus=sent"),
        )
        .await,
    );
    assert_eq!(s, 401);

    let prefs = "/v1/communication/recipients/{userId}/preferences";
    let url = format!("{base}/v1/communication/recipients/u-pat/preferences");
    let (s, _) = check("get", prefs, send(http.get(&url).bearer_auth(&patient)).await);
    assert_eq!(s, 200);
    let change = json!({"channels": {"push": false}, "timezone": "Asia/Kabul"});
    let (s, _) = check("put", prefs, send(http.put(&url).bearer_auth(&patient).json(&change)).await);
    assert_eq!(s, 200);
    let (s, _) = check("put", prefs, send(http.put(&url).bearer_auth(&patient).json(&json!({"channels": 1}))).await);
    assert_eq!(s, 400);
    let (s, _) = check("get", prefs, send(http.get(&url).bearer_auth(&doctor)).await);
    assert_eq!(s, 403);
    let (s, _) = check(
        "get",
        "/v1/communication/recipients/{userId}/consents",
        send(http.get(format!("{base}/v1/communication/recipients/u-pat/consents")).bearer_auth(&patient)).await,
    );
    assert_eq!(s, 200);
    let admin = stack.token("u-admin", Some("c1"), &["clinic-admin"]);
    let suppressions = "/v1/communication/suppressions";
    let url = format!("{base}{suppressions}?channel=sms&address=%2B93701234567");
    let (s, _) = check("get", suppressions, send(http.get(&url).bearer_auth(&admin)).await);
    assert_eq!(s, 200);
    let (s, _) = check("get", suppressions, send(http.get(&url).bearer_auth(&doctor)).await);
    assert_eq!(s, 403);
    let (s, _) =
        check("delete", suppressions, send(http.delete(&url).bearer_auth(&admin).json(&json!({"reason": "r"}))).await);
    assert_eq!(s, 404);
    stack.stop().await;
}

/// What an operator relies on in the template: least privilege, a log
/// group with retention per function, an alarm per dead-letter queue, the
/// SLO alarms wired to the rollout, TLS-only buckets.
#[test]
fn the_template_is_least_privilege_watched_and_rolled_out_safely() {
    let template = vcare_local::Template::load(&root().join("infra/template.yaml")).unwrap();
    let doc = &template.doc;
    let text = |v: &Value| v.to_string();
    for (id, f) in template.of_type("AWS::Serverless::Function") {
        for policy in f["Properties"]["Policies"].as_array().into_iter().flatten() {
            for st in policy["Statement"].as_array().into_iter().flatten() {
                let actions: Vec<String> = match &st["Action"] {
                    Value::String(a) => vec![a.clone()],
                    Value::Array(a) => a.iter().map(text).collect(),
                    other => panic!("{id}: {other}"),
                };
                assert!(actions.iter().all(|a| a != "*" && !a.trim_matches('"').ends_with(":*")), "{id}: {actions:?}");
                assert_ne!(st["Resource"], json!("*"), "{id}: a resource can be named");
                // The consent history and the audit trail are append-only:
                // nobody may change or delete a line.
                let resource = text(&st["Resource"]);
                if resource.contains("ConsentTable") || resource.contains("AuditTable") {
                    for a in &actions {
                        let a = a.trim_matches('"');
                        assert!(
                            matches!(
                                a,
                                "dynamodb:PutItem" | "dynamodb:Query" | "dynamodb:GetItem" | "dynamodb:BatchGetItem"
                            ),
                            "{id}: {a} on an append-only table"
                        );
                    }
                }
            }
        }
        // The SDK's time budget is derived from FUNCTION_TIMEOUT_SECONDS
        // (vcare_aws::budget): it must say the function's own Timeout.
        let timeout = template.function_property(f, "Timeout").cloned().unwrap_or(Value::Null);
        let said = template.function_environment(f).get("FUNCTION_TIMEOUT_SECONDS").cloned().unwrap_or(Value::Null);
        assert_eq!(
            text(&said).trim_matches('"'),
            text(&timeout).trim_matches('"'),
            "{id}: FUNCTION_TIMEOUT_SECONDS is its Timeout"
        );
        let logs = doc["Resources"][format!("{id}Logs")].clone();
        assert_eq!(logs["Type"], "AWS::Logs::LogGroup", "{id} has its log group");
        assert!(text(&logs["Properties"]["LogGroupName"]).contains(id), "{id}");
        assert!(!logs["Properties"]["RetentionInDays"].is_null(), "{id}: retention");
    }
    let alarms: Vec<String> = template.of_type("AWS::CloudWatch::Alarm").map(|(_, a)| text(a)).collect();
    assert!(alarms.iter().any(|a| a.contains("OverdueNotifications")), "overdue notifications are alarmed");
    assert!(alarms.iter().any(|a| a.contains("AuditSealLag")), "the audit trail's sealing lag is alarmed");
    // Dispatch reads its queue's own limits at cold start (the time budget).
    let dispatch = text(&doc["Resources"]["DispatchFunction"]["Properties"]["Policies"]);
    assert!(dispatch.contains("sqs:GetQueueAttributes"), "{dispatch}");
    for (id, q) in template.of_type("AWS::SQS::Queue") {
        if let Some(dlq) = q["Properties"]["RedrivePolicy"]["deadLetterTargetArn"].as_object() {
            let dlq_id = text(&Value::Object(dlq.clone()));
            let name = dlq_id.split('"').find(|s| s.ends_with("DLQ")).unwrap().to_owned();
            assert!(alarms.iter().any(|a| a.contains(&name)), "{id}'s DLQ {name} has an alarm");
        }
    }
    let preference = &doc["Globals"]["Function"]["DeploymentPreference"];
    let wired = text(&preference["Alarms"]);
    for alarm in ["ApiServerErrorsAlarm", "ApiLatencyP99Alarm", "DispatchFailureRatioAlarm"] {
        assert!(wired.contains(alarm), "{alarm} rolls a deployment back");
    }
    assert_eq!(
        doc["Resources"]["CanaryDeploymentConfig"]["Properties"]["TrafficRoutingConfig"]["TimeBasedCanary"],
        json!({"CanaryPercentage": 5, "CanaryInterval": 30})
    );
    // Concurrency that protects a dependency: the providers (dispatch), the
    // table and notification path (appointment events), one sweep at a time.
    let functions = &doc["Resources"];
    assert_eq!(
        functions["DispatchFunction"]["Properties"]["Events"]["Dispatch"]["Properties"]["ScalingConfig"],
        json!({"MaximumConcurrency": {"Ref": "DispatchMaxConcurrency"}})
    );
    let appointments = &functions["AppointmentEventsFunction"]["Properties"]["Events"]["Appointments"];
    assert!(appointments["Properties"]["ScalingConfig"]["MaximumConcurrency"].is_number());
    for sweep in ["DlrSweepFunction", "ReminderSchedulerFunction"] {
        assert_eq!(functions[sweep]["Properties"]["ReservedConcurrentExecutions"], 1, "{sweep}");
    }
    for (id, _) in template.of_type("AWS::S3::Bucket") {
        let policy =
            template.of_type("AWS::S3::BucketPolicy").find(|(_, p)| text(&p["Properties"]["Bucket"]).contains(id));
        let policy = policy.unwrap_or_else(|| panic!("{id} has a bucket policy")).1;
        assert!(text(policy).contains("aws:SecureTransport"), "{id} is TLS-only");
    }
}

/// Every `make <target>` the README names exists, and the Makefile has no
/// target defined twice (make only warns, and runs the last one).
#[test]
fn every_make_target_the_readme_names_exists_once() {
    let readme = std::fs::read_to_string(root().join("README.md")).unwrap();
    let named: BTreeSet<&str> = readme
        .split("make ")
        .skip(1)
        .filter_map(|rest| rest.split(|c: char| !(c.is_ascii_lowercase() || c == '-')).next())
        .filter(|t| !t.is_empty() && !t.starts_with('-') && *t != "it")
        .collect();
    assert!(named.contains("sam-package") && named.contains("test"), "{named:?}");
    let makefile = std::fs::read_to_string(root().join("Makefile")).unwrap();
    let defined: Vec<&str> = makefile
        .lines()
        .filter_map(|l| l.split_once(':').map(|(t, _)| t))
        .filter(|t| !t.contains([' ', '.', '\t']))
        .collect();
    for target in &named {
        assert_eq!(defined.iter().filter(|t| *t == target).count(), 1, "make {target}: defined once in the Makefile");
    }
    let out = std::process::Command::new("make").arg("-n").args(&named).current_dir(root()).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success() && !stderr.contains("warning"), "{stderr}");
}
