//! Warm token-issue cost against its floor: the one DynamoDB read it must
//! make. `make bench` (release, private loopback endpoint). Under `cargo
//! test` it runs a few iterations as a smoke test.
//!
//! Reported, for a Jitsi room and an OpenVidu room (its LiveKit room made
//! by the warm-up's first token, so each measured token costs its one
//! read): median, p99, min and max of the handler (invoked in-process
//! through the same lambda_http conversion Lambda runs) and of a bare
//! consistent GetItem of the same room, interleaved so machine noise hits
//! both alike; and the ratio of the medians.

use std::time::Instant;

use serde_json::Value;
use vcare_runtime::Function;
use vcare_tests::measure::{doctor_room, ms, read_room, stats};
use vcare_tests::{OPENVIDU_CLINIC, TestStack};

/// An audit record as the token's: the doctor's, of the room.
fn draft(clinic: &str, room: &str, i: usize) -> vcare_domain::audit::AuditRecord {
    vcare_domain::audit::AuditRecord {
        clinic_id: clinic.into(),
        id: vcare_domain::audit::record_id(),
        at: chrono::Utc::now(),
        actor_id: "u-doc".into(),
        actor_roles: vec!["doctor".into()],
        granted_by: None,
        action: "token.issue".into(),
        subject_type: "room".into(),
        subject_id: room.into(),
        outcome: vcare_domain::audit::Outcome::Allowed,
        request_id: format!("bench-{i}"),
        source_ip: "203.0.113.7".into(),
    }
}

/// A `token.issued`-shaped event of the room (the outbox record written with it).
fn issued(clinic: &str, room: &str) -> vcare_domain::events::DomainEvent {
    let data = serde_json::json!({"roomId": room, "userId": "u-doc", "role": "doctor"});
    vcare_domain::events::DomainEvent::new(vcare_domain::events::TOKEN_ISSUED, clinic, room, chrono::Utc::now(), data)
}

#[tokio::main]
async fn main() {
    let bench = std::env::args().any(|a| a == "--bench");
    let iterations = if bench { 500 } else { 5 };
    let stack = TestStack::start().await;
    let env = stack.gateway.function("TokenIssueFunction").unwrap().def.environment.clone();
    let function = token_issue::function(&vcare_runtime::Env::from_map(env.clone()), &stack.sdk).await.unwrap();
    let ddb = aws_sdk_dynamodb::Client::new(&stack.sdk);
    let audit = vcare_store::AuditStore::new(ddb.clone(), &env["AUDIT_TABLE_NAME"], &env["TABLE_NAME"]);
    for (clinic, provider) in [("c1", "Jitsi, HS256"), (OPENVIDU_CLINIC, "OpenVidu (LiveKit), HS256")] {
        let room = doctor_room(&stack, clinic, &format!("apt-bench-{clinic}")).await;
        let room_id = room["roomId"].as_str().unwrap();
        let sample = std::fs::read_to_string(vcare_tests::root().join("events/token-issue/issue.json"))
            .unwrap()
            .replace("rm_samplesampleroom000000000", room_id);
        let mut event: Value = serde_json::from_str(&sample).unwrap();
        vcare_tests::set_clinic(&mut event, clinic);
        for _ in 0..iterations.min(50) {
            read_room(&ddb, &env["TABLE_NAME"], clinic, room_id).await;
            function.invoke(event.clone(), Default::default()).await.unwrap();
        }
        let (mut handler, mut read, mut read_and_record) = (Vec::new(), Vec::new(), Vec::new());
        for i in 0..iterations {
            let t = Instant::now();
            read_room(&ddb, &env["TABLE_NAME"], clinic, room_id).await;
            read.push(t.elapsed());
            // The read and the audit write every token now also makes (a
            // record and its event in one transaction), bare.
            let t = Instant::now();
            read_room(&ddb, &env["TABLE_NAME"], clinic, room_id).await;
            audit.write(&draft(clinic, room_id, i), &[issued(clinic, room_id)]).await.unwrap();
            read_and_record.push(t.elapsed());
            let t = Instant::now();
            let response = function.invoke(event.clone(), Default::default()).await.unwrap();
            handler.push(t.elapsed());
            assert_eq!(response["statusCode"], 201);
        }
        let (h50, h99, hmin, hmax) = stats(handler);
        let (r50, r99, rmin, rmax) = stats(read);
        println!("token-issue warm, {provider}: {iterations} iterations (local AWS endpoint)");
        println!("  handler   median {} p99 {} min {} max {}", ms(h50), ms(h99), ms(hmin), ms(hmax));
        println!("  GetItem   median {} p99 {} min {} max {}", ms(r50), ms(r99), ms(rmin), ms(rmax));
        println!("  handler / GetItem (medians): {:.3}", h50.as_secs_f64() / r50.as_secs_f64());
        println!("  handler overhead over the read (medians): {}", ms(h50.saturating_sub(r50)));
        let (w50, w99, _, _) = stats(read_and_record);
        println!("  GetItem + audit record   median {} p99 {}", ms(w50), ms(w99));
        println!("  handler / (GetItem + audit record) (medians): {:.3}", h50.as_secs_f64() / w50.as_secs_f64());
    }
    let creates = stack.livekit.calls().iter().filter(|c| c.method == "CreateRoom").count();
    assert_eq!(creates, 1, "the OpenVidu room was made once, by the first token");
    stack.stop().await;
}
