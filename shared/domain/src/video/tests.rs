use chrono::{TimeZone, Utc};
use serde_json::json;

use super::ProviderKind;
use super::livekit::{ServerCall, participant_claims, webhook};
use crate::room::{Participant, ParticipantRole, RoomPlan, SessionEvent};

fn room() -> crate::room::Room {
    let at = |h| Utc.with_ymd_and_hms(2026, 12, 1, h, 0, 0).unwrap();
    RoomPlan {
        appointment_id: "apt-1".into(),
        scheduled_start: at(10),
        scheduled_end: at(11),
        participants: vec![],
        lobby: true,
        max_participants: 4,
        recording: false,
    }
    .into_room("c-1", "r-1".into(), "vc-abc".into(), ProviderKind::Openvidu, at(9))
}

fn person(role: ParticipantRole) -> Participant {
    Participant { user_id: "u-1".into(), role, display_name: "Zahra".into() }
}

#[test]
fn providers_parse_by_name_and_default_to_jitsi() {
    assert_eq!("openvidu".parse::<ProviderKind>(), Ok(ProviderKind::Openvidu));
    assert_eq!(" jitsi ".parse::<ProviderKind>(), Ok(ProviderKind::Jitsi));
    assert!("livekit".parse::<ProviderKind>().is_err());
    assert_eq!(ProviderKind::default(), ProviderKind::Jitsi);
}

#[test]
fn only_doctors_administer_and_nobody_records() {
    let r = room();
    let (nbf, exp) = (r.scheduled_start, r.scheduled_end);
    let doctor = participant_claims("key", &r, &person(ParticipantRole::Doctor), nbf, exp);
    assert_eq!(doctor["video"]["roomAdmin"], json!(true));
    assert_eq!(doctor["video"]["room"], json!("vc-abc"));
    assert_eq!(doctor["metadata"], json!(r#"{"role":"doctor"}"#));
    assert_eq!(doctor["iss"], json!("key"));
    assert_eq!(doctor["sub"], json!("u-1"));
    for role in [ParticipantRole::Nurse, ParticipantRole::Patient, ParticipantRole::Interpreter] {
        let c = participant_claims("key", &r, &person(role), nbf, exp);
        assert_eq!(c["video"]["roomAdmin"], json!(false), "{role:?}");
        assert_eq!(c["video"]["roomRecord"], json!(false), "{role:?}");
        assert_eq!(c["video"]["roomJoin"], json!(true), "{role:?}");
    }
}

#[test]
fn server_calls_carry_only_their_grant() {
    assert_eq!(ServerCall::CreateRoom.grant(), json!({"roomCreate": true}));
    assert_eq!(ServerCall::DeleteRoom.grant(), json!({"roomCreate": true}));
    assert_eq!(ServerCall::ListParticipants { room: "vc-a" }.grant(), json!({"roomAdmin": true, "room": "vc-a"}));
    let now = Utc.with_ymd_and_hms(2026, 12, 1, 10, 0, 0).unwrap();
    let c = ServerCall::ListRooms.claims("key", now);
    assert_eq!(c["exp"].as_i64().unwrap() - c["nbf"].as_i64().unwrap(), 300);
    assert!(c.get("sub").is_none());
}

#[test]
fn webhooks_become_session_events() {
    let now = Utc.with_ymd_and_hms(2026, 12, 1, 10, 0, 0).unwrap();
    let joined = webhook(
        br#"{"event":"participant_joined","id":"EV_1","createdAt":"1796119300","room":{"name":"VC-abc","sid":"RM_1"},
            "participant":{"identity":"u-1","joinedAt":"1796119200","state":"ACTIVE"},"extra":{"x":1}}"#,
        now,
    )
    .unwrap();
    assert_eq!(joined.room_name.as_deref(), Some("vc-abc"));
    assert_eq!(joined.session, Some(SessionEvent::OccupantJoined(Utc.timestamp_opt(1_796_119_200, 0).unwrap())));
    let finished =
        webhook(br#"{"event":"room_finished","id":"EV_2","created_at":1796119900,"room":{"name":"vc-abc"}}"#, now)
            .unwrap();
    assert_eq!(finished.session, Some(SessionEvent::RoomDestroyed(Utc.timestamp_opt(1_796_119_900, 0).unwrap())));
    let left = webhook(br#"{"event":"participant_left","room":{"name":"vc-abc"}}"#, now).unwrap();
    assert_eq!(left.session, None);
    let no_time = webhook(br#"{"event":"room_finished","room":{"name":"vc-abc"}}"#, now).unwrap();
    assert_eq!(no_time.session, Some(SessionEvent::RoomDestroyed(now)));
}

#[test]
fn malformed_webhooks_are_refused_by_field() {
    let now = Utc::now();
    for (body, status) in [
        (&b"not json"[..], 400),
        (br#"{"room":{"name":"a"}}"#, 400),
        (br#"{"event":"room_finished","createdAt":"soon"}"#, 400),
        (br#"{"event":"participant_joined","participant":{"joinedAt":"-5"}}"#, 400),
    ] {
        assert_eq!(webhook(body, now).unwrap_err().status, status, "{}", String::from_utf8_lossy(body));
    }
    assert_eq!(webhook(&vec![b' '; 70_000], now).unwrap_err().status, 413);
}
