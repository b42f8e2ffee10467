use super::*;
use crate::lifecycle::test_support::{at, attempt, notification};
use crate::notification::{Context, MaskedRecipient};
use crate::receipt::Delivery;
use crate::recordings::recording_room;
use crate::video::ProviderKind;

fn sms(status: Status) -> Notification {
    let mut n = notification(status);
    n.recipient = MaskedRecipient { user_id: Some("u-pat".into()), ..Default::default() };
    n.category = "appointment-reminder".into();
    n.context = Some(Context { appointment_id: Some("apt-1".into()), room_id: Some("rm_1".into()) });
    n
}

#[test]
fn a_notification_becomes_a_communication_with_no_payload() {
    let queued = communication(&sms(Status::Queued));
    assert_eq!(queued["status"], "preparation");
    assert_eq!(queued["identifier"][0], json!({"system": "urn:vcare:notification", "value": "ntf-1"}));
    assert_eq!(queued["subject"]["reference"], "Patient/u-pat");
    assert_eq!(queued["category"][0]["coding"][0]["code"], "reminder");
    assert_eq!(queued["about"][0]["reference"], "Appointment/apt-1");
    assert_eq!(queued["encounter"]["identifier"]["value"], "rm_1");
    assert!(queued.get("sent").is_none() && queued.get("medium").is_none());
    let text = queued.to_string();
    assert!(!text.contains("payload") && !text.contains("+93"), "{text}");

    let mut delivered = sms(Status::Delivered);
    delivered.channel = Some(Channel::Sms);
    delivered.attempts = vec![attempt("gateway", Status::Sent, "2026-12-01T10:00:05Z", false)];
    delivered.delivery.insert(
        "att-1".into(),
        Delivery {
            status: Status::Delivered,
            rank: 3,
            at: at("2026-12-01T10:00:09Z"),
            provider_status: None,
            code: None,
            provider: None,
        },
    );
    let c = communication(&delivered);
    assert_eq!((c["status"].as_str(), c["sent"].as_str()), (Some("completed"), Some("2026-12-01T10:00:05Z")));
    assert_eq!(c["received"], "2026-12-01T10:00:09Z");
    assert_eq!(c["medium"][0]["coding"][0]["code"], "WRITTEN");
}

#[test]
fn failures_are_not_done_with_their_reason_and_an_expiry_is_unknown() {
    for (status, fhir) in [
        (Status::Failed, "not-done"),
        (Status::Undelivered, "not-done"),
        (Status::Suppressed, "not-done"),
        (Status::Expired, "unknown"),
    ] {
        let c = communication(&sms(status));
        assert_eq!(c["status"], fhir, "{status:?}");
        assert_eq!(c["statusReason"]["coding"][0]["code"], status.as_str());
    }
    let mut anonymous = notification(Status::Sent);
    anonymous.recipient = MaskedRecipient::default();
    let c = communication(&anonymous);
    assert!(c.get("subject").is_none() && c.get("recipient").is_none(), "no user, no Patient");
}

#[test]
fn a_room_becomes_an_encounter_through_its_states() {
    let mut room = recording_room(ProviderKind::Jitsi);
    let e = encounter(&room);
    assert_eq!(e["status"], "planned");
    assert_eq!(e["class"]["code"], "VR");
    assert_eq!(e["subject"]["reference"], "Patient/u-pat");
    assert_eq!(e["participant"][0]["individual"]["reference"], "Practitioner/u-doc");
    assert_eq!(e["appointment"][0]["reference"], "Appointment/apt-1");
    assert!(e.get("period").is_none());
    room.status = RoomStatus::Active;
    room.started_at = Some(at("2026-11-23T10:01:00Z"));
    assert_eq!(encounter(&room)["status"], "in-progress");
    room.status = RoomStatus::Ended;
    room.ended_at = Some(at("2026-11-23T10:25:30Z"));
    let e = encounter(&room);
    assert_eq!(e["status"], "finished");
    assert_eq!(e["period"], json!({"start": "2026-11-23T10:01:00Z", "end": "2026-11-23T10:25:30Z"}));
    assert_eq!(e["length"]["value"], 24.5);
    assert!(!e.to_string().contains("Amini"), "no names");
}

#[test]
fn events_name_their_resource_and_answers_their_handling() {
    assert_eq!(
        Target::of("communication.notification.delivered", "ntf_1"),
        Some(Target::Communication { notification_id: "ntf_1".into() })
    );
    assert_eq!(Target::of("virtual_care.consultation.ended", "rm_1").unwrap().identifier(), "urn:vcare:room|rm_1");
    assert_eq!(Target::of("virtual_care.token.issued", "rm_1"), None);
    assert_eq!(Target::of("virtual_care.room.created", ""), None);
    assert_eq!(answer(201), Answer::Done);
    assert_eq!(answer(412), Answer::Stale);
    assert_eq!(answer(429), Answer::Retry);
    assert_eq!(answer(503), Answer::Retry);
    assert_eq!(answer(422), Answer::Refused);
    assert_eq!(answer(400), Answer::Refused);
}
