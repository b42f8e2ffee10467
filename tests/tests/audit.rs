//! The audit trail (issue 21) through the local gateway: each request to
//! an audited route leaves exactly one record with its actor and subject —
//! allowed when it succeeded, denied when refused (403, 404) — written with
//! its events; the clinic-admins' query reads it from its indexes, paged,
//! other clinics' records invisible; the sequencer seals every record into
//! the clinic's chain, which verifies, and a changed record is found; an
//! audit that cannot be written is a 503, never data.

use std::time::Duration;

use serde_json::{Value, json};
use vcare_domain::audit::{AuditRecord, Broken};
use vcare_tests::TestStack;
use vcare_tests::audit::{audit_table, chain, sealed, tamper};
use vcare_tests::rooms::{self, create_room, room_body};

const CLINIC: &str = "c-audit";

/// `GET /v1/audit?query` as `token`.
async fn query(stack: &TestStack, token: &str, query: &str) -> (u16, Value) {
    let (status, _, body) = stack.get(&format!("/v1/audit?{query}"), Some(token)).await;
    (status, body)
}

#[tokio::test]
async fn every_access_leaves_one_record_and_admins_read_them_from_the_indexes() {
    let stack = TestStack::start().await;
    let doctor = stack.token("u-doc", Some(CLINIC), &["doctor"]);
    let patient = stack.token("u-pat", Some(CLINIC), &["patient"]);
    let admin = stack.token("u-admin", Some(CLINIC), &["clinic-admin"]);
    let stranger = stack.token("u-doc", Some("c-other"), &["doctor"]);
    let start = chrono::Utc::now() + chrono::Duration::minutes(5);
    let (status, room) =
        create_room(&stack, &doctor, &room_body("apt-audit", start, &[rooms::doctor(), rooms::patient()])).await;
    assert_eq!(status, 201, "{room}");
    let room_id = room["roomId"].as_str().unwrap().to_owned();
    let rooms_path = format!("/v1/virtual-care/rooms/{room_id}");

    // Reads and changes, allowed and refused.
    assert_eq!(stack.get(&rooms_path, Some(&doctor)).await.0, 200);
    assert_eq!(stack.get(&rooms_path, Some(&stranger)).await.0, 404, "another clinic's room is not there");
    let url = format!("{}{rooms_path}/tokens", stack.base);
    let (status, _, token) = stack.send(stack.http.post(&url).bearer_auth(&doctor).json(&json!({}))).await;
    assert_eq!(status, 201, "{token}");
    let (status, _, _) = stack.get(&format!("{rooms_path}/recordings"), Some(&patient)).await;
    assert_eq!(status, 403, "patients of this clinic may not fetch recordings");
    // Bad input touched nothing and leaves no record.
    let (status, _, _) = stack.send(stack.http.post(&url).bearer_auth(&patient).json(&json!({"x": 1}))).await;
    assert_eq!(status, 400);
    let (status, _) = query(&stack, &doctor, "").await;
    assert_eq!(status, 403, "only clinic-admins read the trail");

    // Sealed in the order written (the chain verifies: `chain` checks it).
    let records = chain(&stack, CLINIC).await;
    let seen: Vec<_> =
        records.iter().map(|r| (r.actor_id.as_str(), r.action.as_str(), r.subject_id.as_str(), r.outcome)).collect();
    use vcare_domain::audit::Outcome::{Allowed, Denied};
    assert_eq!(
        seen,
        vec![
            ("u-doc", "room.create", room_id.as_str(), Allowed),
            ("u-doc", "room.read", room_id.as_str(), Allowed),
            ("u-doc", "token.issue", room_id.as_str(), Allowed),
            ("u-pat", "recording.list", room_id.as_str(), Denied),
            ("u-doc", "audit.read", CLINIC, Denied),
        ],
        "exactly one record per access, none for the 400"
    );
    let token_record = &records[2];
    assert_eq!((token_record.subject_type.as_str(), token_record.actor_roles.clone()), ("room", vec!["doctor".into()]));
    assert!(!token_record.request_id.is_empty() && !token_record.source_ip.is_empty(), "{token_record:?}");
    // The stranger's 404 is in their own clinic's trail, not this one's.
    let theirs = chain(&stack, "c-other").await;
    assert_eq!(theirs.len(), 1);
    assert_eq!((theirs[0].action.as_str(), theirs[0].outcome), ("room.read", Denied));
    // The token's event was written with its record.
    let issued = rooms::room_events(&stack, &room_id, "virtual_care.token.issued").await;
    assert_eq!(issued.len(), 1, "{issued:?}");
    assert_eq!(issued[0]["data"]["userId"], "u-doc");
    assert_eq!(issued[0]["data"]["role"], "doctor");
    assert_eq!(issued[0]["data"]["provider"], "jitsi");
    assert!(!issued[0].to_string().contains(token["token"].as_str().unwrap()), "never the token");

    // The query: newest first, by subject, actor and time, paged.
    let (status, page) = query(&stack, &admin, "").await;
    assert_eq!(status, 200, "{page}");
    let actions: Vec<_> = page["items"].as_array().unwrap().iter().map(|i| i["action"].clone()).collect();
    assert_eq!(
        actions,
        vec![
            json!("audit.read"),
            json!("recording.list"),
            json!("token.issue"),
            json!("room.read"),
            json!("room.create")
        ]
    );
    let first = &page["items"][0];
    assert_eq!(first["actor"], json!({"id": "u-doc", "roles": ["doctor"]}));
    assert_eq!(first["outcome"], "denied");
    let (_, by_actor) = query(&stack, &admin, "actorId=u-pat").await;
    let got: Vec<_> = by_actor["items"].as_array().unwrap().iter().map(|i| i["action"].clone()).collect();
    assert_eq!(got, vec![json!("recording.list")]);
    let (_, both) = query(&stack, &admin, &format!("subjectId={room_id}&actorId=u-doc")).await;
    let got: Vec<_> = both["items"].as_array().unwrap().iter().map(|i| i["action"].clone()).collect();
    assert_eq!(got, vec![json!("token.issue"), json!("room.read"), json!("room.create")]);
    let later = (chrono::Utc::now() + chrono::Duration::hours(1)).to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let (status, none) = query(&stack, &admin, &format!("from={later}")).await;
    assert_eq!((status, none["items"].as_array().unwrap().len()), (200, 0));
    let mut pages = Vec::new();
    let mut cursor = String::new();
    loop {
        let (status, page) = query(&stack, &admin, &format!("subjectId={room_id}&limit=2{cursor}")).await;
        assert_eq!(status, 200, "{page}");
        pages.extend(page["items"].as_array().unwrap().iter().map(|i| i["id"].as_str().unwrap().to_owned()));
        match page["nextCursor"].as_str() {
            Some(next) => cursor = format!("&cursor={next}"),
            None => break,
        }
    }
    let of_room: Vec<String> = records.iter().rev().filter(|r| r.subject_id == room_id).map(|r| r.id.clone()).collect();
    assert_eq!(pages, of_room, "every record of the room once, newest first");
    assert_eq!(pages.len(), 4);
    // Bad input: 400, a cursor of one query refused by another.
    let (_, first_page) = query(&stack, &admin, "limit=1").await;
    let foreign = first_page["nextCursor"].as_str().unwrap().to_owned();
    for bad in [
        format!("actorId=u-pat&cursor={foreign}"),
        "cursor=bm90LWEtY3Vyc29y".into(),
        "from=yesterday".into(),
        "from=2026-12-02T00:00:00Z&to=2026-12-01T00:00:00Z".into(),
        "limit=1000".into(),
        "subjectId=a%20b".into(),
        "sort=asc".into(),
    ] {
        let (status, problem) = query(&stack, &admin, &bad).await;
        assert_eq!(status, 400, "{bad}: {problem}");
    }
    // Other clinics' admins see only their own trail.
    let other_admin = stack.token("u-admin", Some("c-other"), &["clinic-admin"]);
    let (_, theirs) = query(&stack, &other_admin, &format!("subjectId={room_id}")).await;
    let got: Vec<_> = theirs["items"].as_array().unwrap().iter().map(|i| i["action"].clone()).collect();
    assert_eq!(got, vec![json!("room.read")], "only the stranger's own refused read");

    // A record changed behind the trail's back is found where it is.
    let records = chain(&stack, CLINIC).await;
    tamper(&stack, &records[1].id, |r| r["actorId"] = json!("u-someone-else")).await;
    let (report, _) = sealed(&stack, CLINIC).await;
    assert_eq!((report.broken, report.sealed), (Some(Broken::Altered { seq: 2 }), 1));
    stack.stop().await;
}

#[tokio::test]
async fn an_audit_that_cannot_be_written_is_a_503_and_serves_nothing() {
    let stack = TestStack::start().await;
    let doctor = stack.token("u-doc", Some(CLINIC), &["doctor"]);
    let start = chrono::Utc::now() + chrono::Duration::minutes(5);
    let (status, room) =
        create_room(&stack, &doctor, &room_body("apt-audit-down", start, &[rooms::doctor(), rooms::patient()])).await;
    assert_eq!(status, 201);
    let path = format!("/v1/virtual-care/rooms/{}", room["roomId"].as_str().unwrap());
    // The trail's table is gone (as an outage would make it unreachable).
    let ddb = aws_sdk_dynamodb::Client::new(&stack.sdk);
    ddb.delete_table().table_name(audit_table(&stack)).send().await.unwrap();
    let (status, kind, body) = stack.get(&path, Some(&doctor)).await;
    assert_eq!((status, kind.as_str()), (503, "application/problem+json"), "{body}");
    assert!(body.get("participants").is_none() && !body.to_string().contains("Amini"), "no room data: {body}");
    let url = format!("{}{path}/tokens", stack.base);
    let (status, _, body) = stack.send(stack.http.post(&url).bearer_auth(&doctor).json(&json!({}))).await;
    assert_eq!(status, 503, "{body}");
    assert!(body.get("token").is_none());
    tokio::time::sleep(Duration::from_millis(100)).await;
    let issued = rooms::room_events(&stack, room["roomId"].as_str().unwrap(), "virtual_care.token.issued").await;
    assert!(issued.is_empty(), "no event for a token never handed out: {issued:?}");
    stack.stop().await;
}

/// Every record reaches the audit bucket (from the table's stream) as the
/// object `audit/<clinic>/records/<id>.json`, and every block of the chain
/// as `audit/<clinic>/chain/<first seq>.json`, locked in compliance mode
/// until 6 years after the access; S3 refuses to delete the locked version,
/// even asked to bypass governance.
#[tokio::test]
async fn each_record_is_exported_under_an_object_lock_that_refuses_its_delete() {
    let stack = TestStack::start().await;
    let clinic = "c-audit-export";
    let doctor = stack.token("u-doc", Some(clinic), &["doctor"]);
    let start = chrono::Utc::now() + chrono::Duration::minutes(5);
    let (status, room) = create_room(&stack, &doctor, &room_body("apt-export", start, &[rooms::doctor()])).await;
    assert_eq!(status, 201);
    assert_eq!(
        stack.get(&format!("/v1/virtual-care/rooms/{}", room["roomId"].as_str().unwrap()), Some(&doctor)).await.0,
        200
    );
    let records = chain(&stack, clinic).await;
    assert_eq!(records.len(), 2);
    let s3 = aws_sdk_s3::Client::new(&stack.sdk);
    let bucket = stack.gateway.resource("AuditBucket").unwrap().reference.clone();
    for r in &records {
        let key = format!("audit/{clinic}/records/{}.json", r.id);
        let got = vcare_tests::eventually(Duration::from_secs(20), &key, || {
            let (s3, bucket, key) = (s3.clone(), bucket.clone(), key.clone());
            async move { s3.get_object().bucket(bucket).key(key).send().await.ok() }
        })
        .await;
        let version = got.version_id().expect("a versioned object").to_owned();
        assert_eq!(got.object_lock_mode().map(|m| m.as_str()), Some("COMPLIANCE"));
        let until = got.object_lock_retain_until_date().expect("locked until").secs();
        assert_eq!(until, (r.at + chrono::Duration::days(2190)).timestamp(), "6 years after the access");
        let body = got.body.collect().await.unwrap().into_bytes();
        let kept: AuditRecord = serde_json::from_slice(&body).unwrap();
        assert_eq!(&kept, r, "the record as written");
        let deleted = s3.delete_object().bucket(&bucket).key(&key).version_id(&version).send().await;
        assert!(deleted.is_err(), "a locked version cannot be deleted");
        let bypass = s3
            .delete_object()
            .bucket(&bucket)
            .key(&key)
            .version_id(&version)
            .bypass_governance_retention(true)
            .send()
            .await;
        assert!(bypass.is_err(), "compliance mode cannot be bypassed");
        // S3 also refuses a shorter compliance lock (PutObjectRetention);
        // moto does not, so that is not tested here.
        let still = s3.get_object().bucket(&bucket).key(&key).version_id(&version).send().await;
        assert!(still.is_ok(), "the version is still there");
    }
    // The chain's blocks too: the bucket alone verifies the chain.
    let key = format!("audit/{clinic}/chain/{:020}.json", 1);
    let got = vcare_tests::eventually(Duration::from_secs(20), &key, || {
        let (s3, bucket, key) = (s3.clone(), bucket.clone(), key.clone());
        async move { s3.get_object().bucket(bucket).key(key).send().await.ok() }
    })
    .await;
    assert_eq!(got.object_lock_mode().map(|m| m.as_str()), Some("COMPLIANCE"));
    let block: vcare_domain::audit::Block =
        serde_json::from_slice(&got.body.collect().await.unwrap().into_bytes()).unwrap();
    assert_eq!(block.entries[0].record_id, records[0].id);
    assert_eq!(block.entries[0].digest, records[0].digest());
    stack.stop().await;
}

/// A token no caller asked for — the one a reminder carries when there are
/// no join links — is recorded as vcare's reminders', with
/// `virtual_care.token.issued`, before its URL is handed on; and without
/// its record there is no URL.
#[tokio::test]
async fn a_reminders_token_is_recorded_before_it_is_sent() {
    let stack = TestStack::start().await;
    let doctor = stack.token("u-doc", Some(CLINIC), &["doctor"]);
    let start = chrono::Utc::now() + chrono::Duration::minutes(5);
    let mut body = room_body("apt-remind", start, &[rooms::doctor(), rooms::patient()]);
    body["lobby"] = json!(false);
    let (status, room) = create_room(&stack, &doctor, &body).await;
    assert_eq!(status, 201, "{room}");
    let room_id = room["roomId"].as_str().unwrap().to_owned();
    let env = vcare_runtime::Env::from_map(
        stack.gateway.function("ReminderSchedulerFunction").unwrap().def.environment.clone(),
    );
    let issuer = vcare_care::tokens::TokenIssuer::from_env(&env, &stack.sdk).await.unwrap();
    let audit = vcare_care::audit::Audit::from_env(&env, &stack.sdk).unwrap();
    let (stored, _) =
        vcare_store::RoomStore::new(aws_sdk_dynamodb::Client::new(&stack.sdk), env.required("TABLE_NAME").unwrap())
            .get(CLINIC, &room_id)
            .await
            .unwrap()
            .unwrap();
    let patient = stored.participant("u-pat").unwrap();
    let by = |request: &str| vcare_care::tokens::Minter {
        actor_id: "vcare-reminders".into(),
        actor_roles: vec!["system".into()],
        action: "token.issue.reminder",
        request_id: request.into(),
        source_ip: String::new(),
        granted_by: None,
    };
    let url = issuer.join_url(&stored, patient, chrono::Utc::now(), &audit, by("reminder:1")).await.unwrap();
    assert!(url.is_some_and(|u| u.contains("jwt=")));
    let records: Vec<AuditRecord> =
        chain(&stack, CLINIC).await.into_iter().filter(|r| r.action == "token.issue.reminder").collect();
    assert_eq!(records.len(), 1);
    assert_eq!((records[0].actor_id.as_str(), records[0].subject_id.as_str()), ("vcare-reminders", room_id.as_str()));
    let events = vcare_tests::comms::outbox_events(&stack, &room_id).await;
    assert_eq!(events.iter().filter(|e| *e == "virtual_care.token.issued").count(), 1, "{events:?}");

    // The trail cannot take it: no URL (the reminder run fails and retries).
    let ddb = aws_sdk_dynamodb::Client::new(&stack.sdk);
    ddb.delete_table().table_name(audit_table(&stack)).send().await.unwrap();
    let refused = issuer.join_url(&stored, patient, chrono::Utc::now(), &audit, by("reminder:2")).await;
    assert!(refused.is_err(), "a token not recorded is not handed on");
    let events = vcare_tests::comms::outbox_events(&stack, &room_id).await;
    assert_eq!(events.iter().filter(|e| *e == "virtual_care.token.issued").count(), 1, "no event either");
    stack.stop().await;
}

/// Sequencers that race (two stream shards of one clinic, a sweep beside
/// them, a batch delivered again) never fork the chain nor seal a record
/// twice: a block is written only at the place after the head, and a seal
/// only where the record has none. Remove either condition and this fails.
#[tokio::test]
async fn sequencers_racing_for_one_clinic_seal_every_record_once_in_one_chain() {
    let stack =
        TestStack::start_with(vcare_tests::root().join("infra/template.yaml"), &vcare_local::Registry::vcare(), |c| {
            c.event_sources = false;
        })
        .await;
    let ddb = aws_sdk_dynamodb::Client::new(&stack.sdk);
    let store = vcare_store::AuditStore::new(ddb, audit_table(&stack), "unused");
    let mut written = Vec::new();
    for i in 0..240 {
        let r = vcare_tests::audit::access("c-race", "u-doc", &format!("rm_{i}"), i);
        store.write(&r, &[]).await.unwrap();
        written.push(r);
    }
    // Four sequencers (no head remembered between them) on overlapping batches at once.
    let sealer =
        || vcare_care::audit_seal::Sealer::new(store.clone(), vcare_runtime::Clock::system(), chrono::Duration::zero());
    let batches = [written[..150].to_vec(), written[90..].to_vec(), written.clone(), written[30..200].to_vec()];
    let sealers: Vec<_> = batches.iter().map(|_| sealer()).collect();
    let sealed: Vec<usize> = vcare_tests::join_all(sealers.iter().zip(batches).map(|(s, b)| s.seal(b)))
        .await
        .into_iter()
        .map(Result::unwrap)
        .collect();
    assert_eq!(sealed.iter().sum::<usize>(), 240, "each record sealed by one of them: {sealed:?}");
    let (report, records) = sealed_chain(&stack).await;
    assert_eq!((report.sealed, report.awaiting_seal, report.broken), (240, 0, None));
    let ids: std::collections::HashSet<_> = records.iter().map(|r| r.id.clone()).collect();
    assert_eq!(ids.len(), 240, "no record twice");
    stack.stop().await;
}

async fn sealed_chain(stack: &TestStack) -> (vcare_care::audit::ChainReport, Vec<AuditRecord>) {
    sealed(stack, "c-race").await
}

/// Garbage on the sequencer's stream seals nothing and stops nothing: an
/// item that is no record (a seal, a list entry, a block) is passed over, a
/// record that cannot be read is logged and left unsealed, and the batch's
/// good record is sealed; a bad `SETTLE_SECONDS` fails the cold start by name.
#[tokio::test]
async fn garbage_on_the_sequencers_stream_seals_nothing_and_a_bad_setting_is_named() {
    let stack =
        TestStack::start_with(vcare_tests::root().join("infra/template.yaml"), &vcare_local::Registry::vcare(), |c| {
            c.event_sources = false;
        })
        .await;
    let env = stack.gateway.function("AuditSealFunction").unwrap().def.environment.clone();
    let sealer =
        vcare_care::audit_seal::Sealer::from_env(&vcare_runtime::Env::from_map(env.clone()), &stack.sdk).unwrap();
    let good = vcare_tests::audit::access("c-garbage", "u-doc", "rm_1", 1);
    sealer.store.write(&good, &[]).await.unwrap();
    let image = |pairs: &[(&str, &str)]| -> Value {
        pairs.iter().map(|(k, v)| ((*k).to_owned(), json!({"S": v}))).collect::<serde_json::Map<_, _>>().into()
    };
    let images = [
        image(&[("pk", "CLINICS"), ("sk", "c-garbage")]),
        image(&[("pk", "SEALED#c-garbage#1"), ("sk", "x"), ("kind", "audit-seal")]),
        image(&[("pk", "AUDIT#c-garbage#0"), ("sk", "y"), ("kind", "audit"), ("record", "{not json")]),
        image(&[("pk", "AUDIT#c-garbage#0"), ("sk", "z"), ("kind", "audit"), ("record", "{\"clinicId\": 7}")]),
        image(&[("pk", "x"), ("sk", "y"), ("kind", "audit"), ("record", &serde_json::to_string(&good).unwrap())]),
    ];
    // Lambda's record shape, from the sample; each image in turn.
    let sample: Value = serde_json::from_str(
        &std::fs::read_to_string(vcare_tests::root().join("events/audit-seal/stream-insert.json")).unwrap(),
    )
    .unwrap();
    let records: Vec<Value> = images
        .iter()
        .enumerate()
        .map(|(i, img)| {
            let mut r = sample["Records"][0].clone();
            r["dynamodb"]["NewImage"] = img.clone();
            r["dynamodb"]["SequenceNumber"] = json!(format!("{i}"));
            r
        })
        .collect();
    let event = serde_json::from_value(json!({"Records": records})).unwrap();
    let response = sealer.stream(event).await;
    assert!(response.batch_item_failures.is_empty(), "garbage does not hold the shard up");
    let (report, sealed) = sealed(&stack, "c-garbage").await;
    assert_eq!((report.broken, sealed.len()), (None, 1));
    assert_eq!(sealed[0], good, "only the readable record is in the chain");
    for bad in ["59", "many", "86401"] {
        let mut env = env.clone();
        env.insert("SETTLE_SECONDS".into(), bad.into());
        let err = vcare_care::audit_seal::Sealer::from_env(&vcare_runtime::Env::from_map(env), &stack.sdk).err();
        assert!(err.is_some_and(|e| e.to_string().contains("SETTLE_SECONDS")), "{bad}");
    }
    stack.stop().await;
}
