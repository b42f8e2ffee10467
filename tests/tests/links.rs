//! Short join links (issue 17) through the local gateway: `/j/{code}`
//! mints a token at click time for the link's owner only, inside the join
//! window; before it a page says when it opens; afterwards, or once the
//! room ended, the link is dead.

use base64::Engine;
use chrono::{Duration, Utc};
use serde_json::{Value, json};
use vcare_tests::audit::chain;
use vcare_tests::comms::outbox_events;
use vcare_tests::rooms::{create_room, doctor, patient, room_body};
use vcare_tests::{JOIN_LINK_BASE, TestStack};

async fn make_link(stack: &TestStack, token: &str, room_id: &str, user: &str) -> (u16, Value) {
    let url = format!("{}/v1/virtual-care/rooms/{room_id}/links", stack.base);
    let (status, _, out) = stack.send(stack.http.post(url).bearer_auth(token).json(&json!({"userId": user}))).await;
    (status, out)
}

/// `GET /j/<code>` without following the redirect: status, headers, body.
async fn open(stack: &TestStack, url: &str) -> (u16, reqwest::header::HeaderMap, String) {
    let code = url.rsplit('/').next().unwrap();
    let client = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let r = client.get(format!("{}/j/{code}", stack.base)).send().await.unwrap();
    let (status, headers) = (r.status().as_u16(), r.headers().clone());
    (status, headers, r.text().await.unwrap())
}

fn claims(location: &str) -> Value {
    let jwt = location.split("jwt=").nth(1).expect("a token in the URL");
    let payload = jwt.split('.').nth(1).unwrap();
    serde_json::from_slice(&base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap()
}

#[tokio::test]
async fn a_link_mints_its_owners_token_only_in_the_window_and_dies_with_the_room() {
    let stack = TestStack::start().await;
    let dr = stack.token("u-doc", Some("c1"), &["doctor"]);
    // Without a waiting room (tests/waiting_room.rs has the waiting page).
    let mut body = room_body("apt-link", Utc::now() + Duration::minutes(5), &[doctor(), patient()]);
    body["lobby"] = json!(false);
    let (status, room) = create_room(&stack, &dr, &body).await;
    assert_eq!(status, 201, "{room}");
    let room_id = room["roomId"].as_str().unwrap();
    let (status, link) = make_link(&stack, &dr, room_id, "u-pat").await;
    assert_eq!(status, 201, "{link}");
    let url = link["url"].as_str().unwrap();
    assert!(url.starts_with(&format!("{JOIN_LINK_BASE}/j/")), "{url}");
    assert_eq!(url.len(), JOIN_LINK_BASE.len() + 3 + 12, "a 12-character code: {url}");
    assert!(!url.contains("jwt"), "no token in the link");
    // The same participant's link again is the same link; the doctor's is another.
    assert_eq!(make_link(&stack, &dr, room_id, "u-pat").await.1["url"], link["url"]);
    let (_, own) = make_link(&stack, &dr, room_id, "u-doc").await;
    assert_ne!(own["url"], link["url"]);

    // Opening it: a redirect with a token minted now, for the patient only.
    let (status, headers, _) = open(&stack, url).await;
    assert_eq!(status, 302);
    assert_eq!(headers["cache-control"], "no-store");
    assert_eq!(headers["referrer-policy"], "no-referrer");
    let location = headers["location"].to_str().unwrap();
    let c = claims(location);
    assert_eq!(c["context"]["user"]["id"], "u-pat", "{c}");
    assert_eq!(c["room"], room["jitsiRoom"]);
    assert_ne!(c["moderator"], true, "a patient's token");
    assert!(location.starts_with("https://"), "{location}");
    // The token is recorded as its owner's before the redirect, with its event.
    let minted: Vec<_> = chain(&stack, "c1").await.into_iter().filter(|r| r.action == "token.issue.link").collect();
    assert_eq!(minted.len(), 1, "{minted:?}");
    assert_eq!((minted[0].actor_id.as_str(), minted[0].subject_id.as_str()), ("u-pat", room_id));
    assert_eq!(minted[0].actor_roles, ["patient"]);
    let events = outbox_events(&stack, room_id).await;
    assert_eq!(events.iter().filter(|e| *e == "virtual_care.token.issued").count(), 1, "{events:?}");

    // Who may make links: a service or the room's clinicians, for its participants.
    let pat = stack.token("u-pat", Some("c1"), &["patient"]);
    assert_eq!(make_link(&stack, &pat, room_id, "u-pat").await.0, 403);
    let svc = stack.token("svc", Some("c1"), &["service"]);
    assert_eq!(make_link(&stack, &svc, room_id, "u-pat").await.0, 201);
    assert_eq!(make_link(&stack, &svc, room_id, "u-stranger").await.0, 422);
    let other_clinic = stack.token("svc", Some("c2"), &["service"]);
    assert_eq!(make_link(&stack, &other_clinic, room_id, "u-pat").await.0, 404);
    // Garbage bodies: 400 problem+json, no link.
    let links = format!("{}/v1/virtual-care/rooms/{room_id}/links", stack.base);
    for bad in [json!({"userId": 7}), json!({}), json!({"userId": "u-pat", "admin": true}), json!([1])] {
        let (status, ct, out) = stack.send(stack.http.post(&links).bearer_auth(&dr).json(&bad)).await;
        assert_eq!(status, 400, "{bad}: {out}");
        assert!(ct.starts_with("application/problem+json"), "{ct}");
    }
    let (status, _, _) = stack.send(stack.http.post(&links).bearer_auth(&dr).body("not json")).await;
    assert!(status == 400 || status == 415, "{status}");

    // Unknown and malformed codes: the 404 page, naming no one.
    for bad in ["AAAAAAAAAAAA", "short", "aaaaaaaaaaaaaaaaaaaaaaaaa", "%2E%2E%2F"] {
        let (status, headers, body) = open(&stack, &format!("x/{bad}")).await;
        assert_eq!(status, 404, "{bad}");
        assert!(headers["content-type"].to_str().unwrap().starts_with("text/html"));
        assert!(!body.contains("u-pat") && !body.contains("Zahra"));
    }

    // The room ends: the link is dead.
    let end = format!("{}/v1/virtual-care/rooms/{room_id}/end", stack.base);
    assert_eq!(stack.send(stack.http.post(end).bearer_auth(&dr)).await.0, 200);
    assert_eq!(open(&stack, url).await.0, 404);
    stack.stop().await;
}

#[tokio::test]
async fn before_the_window_the_link_says_when_it_opens() {
    let stack = TestStack::start().await;
    let dr = stack.token("u-doc", Some("c1"), &["doctor"]);
    let start = Utc::now() + Duration::hours(3);
    let (_, room) = create_room(&stack, &dr, &room_body("apt-later", start, &[doctor(), patient()])).await;
    let (status, link) = make_link(&stack, &dr, room["roomId"].as_str().unwrap(), "u-pat").await;
    assert_eq!(status, 201, "{link}");
    let (status, headers, body) = open(&stack, link["url"].as_str().unwrap()).await;
    assert_eq!(status, 200);
    assert!(headers.get("location").is_none());
    let opens = (start - Duration::minutes(15)).format("%Y-%m-%d %H:%M").to_string();
    assert!(body.contains(&opens), "{body}");
    let expires: chrono::DateTime<Utc> = link["expiresAt"].as_str().unwrap().parse().unwrap();
    assert!(expires > start + Duration::minutes(30), "valid until the end plus grace");
    stack.stop().await;
}

/// A probe's hole: a nurse made a link for the doctor and opened it into a
/// moderator's token. A link is made only by a service, or by a listed
/// clinician for themself or a patient or interpreter; never for an ended
/// room; and a token minted from it is recorded with its maker and owner.
#[tokio::test]
async fn a_clinician_cannot_make_another_clinicians_link_and_the_record_names_the_maker() {
    let stack = TestStack::start().await;
    let dr = stack.token("u-doc", Some("c1"), &["doctor"]);
    let nurse = stack.token("u-nurse", Some("c1"), &["nurse"]);
    let people = [
        doctor(),
        json!({"userId": "u-nurse", "role": "nurse", "displayName": "Nurse Karimi"}),
        json!({"userId": "u-doc2", "role": "doctor", "displayName": "Dr. Rahimi"}),
        json!({"userId": "u-int", "role": "interpreter", "displayName": "Farid"}),
        patient(),
    ];
    let mut body = room_body("apt-link-roles", Utc::now() + Duration::minutes(5), &people);
    body["lobby"] = json!(false);
    let (status, room) = create_room(&stack, &dr, &body).await;
    assert_eq!(status, 201, "{room}");
    let room_id = room["roomId"].as_str().unwrap();
    for (who, token, owner, status) in [
        ("a nurse for the doctor", &nurse, "u-doc", 403),
        ("a doctor for another doctor", &dr, "u-doc2", 403),
        ("a doctor for the nurse", &dr, "u-nurse", 403),
        ("a nurse for herself", &nurse, "u-nurse", 201),
        ("a nurse for the patient", &nurse, "u-pat", 201),
        ("a doctor for the interpreter", &dr, "u-int", 201),
    ] {
        let (got, out) = make_link(&stack, token, room_id, owner).await;
        assert_eq!(got, status, "{who}: {out}");
        if status == 403 {
            assert_eq!(out["status"], 403, "{who}: a problem: {out}");
            assert!(!out.to_string().contains("url"), "{who}: no link");
        }
    }
    // Opening the nurse's link for the patient: the record names both.
    let (_, link) = make_link(&stack, &nurse, room_id, "u-pat").await;
    let (status, headers, _) = open(&stack, link["url"].as_str().unwrap()).await;
    assert_eq!(status, 302);
    assert_eq!(claims(headers["location"].to_str().unwrap())["context"]["user"]["id"], "u-pat");
    let minted: Vec<_> = chain(&stack, "c1").await.into_iter().filter(|r| r.action == "token.issue.link").collect();
    assert_eq!(minted.len(), 1, "{minted:?}");
    assert_eq!((minted[0].actor_id.as_str(), minted[0].granted_by.as_deref()), ("u-pat", Some("u-nurse")));
    let admin = stack.token("u-admin", Some("c1"), &["clinic-admin"]);
    let (_, _, page) = stack.get("/v1/audit?actorId=u-pat", Some(&admin)).await;
    assert_eq!(page["items"][0]["grantedBy"], "u-nurse", "{page}");
    // An ended room has no more links.
    let end = format!("{}/v1/virtual-care/rooms/{room_id}/end", stack.base);
    assert_eq!(stack.send(stack.http.post(end).bearer_auth(&dr)).await.0, 200);
    let (status, out) = make_link(&stack, &dr, room_id, "u-pat").await;
    assert_eq!((status, out["status"].clone()), (409, json!(409)), "{out}");
    stack.stop().await;
}
