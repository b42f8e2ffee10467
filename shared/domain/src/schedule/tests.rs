//! RFC 5545 behaviour of the rules vcare accepts, in zones with daylight
//! saving (America/New_York, Europe/Berlin) and without (Asia/Kabul,
//! UTC+4:30). Expected instants are worked out from the RFC (3.3.5: a
//! local time in a gap is read with the offset before the gap; an
//! ambiguous one is its first instant) and the zones' 2026 transitions.

use chrono::{DateTime, Duration, Utc};

use super::*;
use crate::Rejected;

fn at(s: &str) -> DateTime<Utc> {
    s.parse().unwrap()
}

fn occurrences(rule: &str, tz: &str, start: &str, n: usize) -> Vec<String> {
    let r = Recurrence::parse(rule, timezone(tz).unwrap(), at(start), None).unwrap();
    r.after(at(start) - Duration::seconds(1), n).iter().map(|t| t.format("%Y-%m-%dT%H:%MZ").to_string()).collect()
}

#[test]
fn a_local_time_in_the_spring_gap_falls_at_the_offset_before_it() {
    // New York, 2026-03-08: 02:00 EST jumps to 03:00 EDT. 02:30 that day is
    // read at -05:00 (07:30Z); the day after, 02:30 EDT is 06:30Z.
    assert_eq!(
        occurrences("FREQ=DAILY;COUNT=3", "America/New_York", "2026-03-07T07:30:00Z", 3),
        ["2026-03-07T07:30Z", "2026-03-08T07:30Z", "2026-03-09T06:30Z"]
    );
    // Berlin, 2026-03-29: 02:00 CET jumps to 03:00 CEST; 02:30 is read at +01:00.
    assert_eq!(
        occurrences("FREQ=DAILY", "Europe/Berlin", "2026-03-28T01:30:00Z", 3),
        ["2026-03-28T01:30Z", "2026-03-29T01:30Z", "2026-03-30T00:30Z"]
    );
}

#[test]
fn an_ambiguous_local_time_fires_once_at_its_first_instant() {
    // New York, 2026-11-01: 01:30 happens at EDT (05:30Z) and again at EST (06:30Z).
    let times = occurrences("FREQ=DAILY;BYHOUR=1;BYMINUTE=30", "America/New_York", "2026-10-31T05:30:00Z", 3);
    assert_eq!(times, ["2026-10-31T05:30Z", "2026-11-01T05:30Z", "2026-11-02T06:30Z"]);
    // Berlin, 2026-10-25: 02:30 at CEST (00:30Z), not CET (01:30Z).
    assert_eq!(
        occurrences("FREQ=WEEKLY;BYDAY=SU;BYHOUR=2;BYMINUTE=30", "Europe/Berlin", "2026-10-18T00:30:00Z", 3),
        ["2026-10-18T00:30Z", "2026-10-25T00:30Z", "2026-11-01T01:30Z"]
    );
}

#[test]
fn kabul_has_a_half_hour_offset_and_no_daylight_saving() {
    // 08:00 and 20:00 in Kabul are 03:30Z and 15:30Z all year.
    let winter = occurrences("FREQ=DAILY;BYHOUR=8,20;BYMINUTE=0", "Asia/Kabul", "2026-01-01T03:30:00Z", 3);
    assert_eq!(winter, ["2026-01-01T03:30Z", "2026-01-01T15:30Z", "2026-01-02T03:30Z"]);
    let summer = occurrences("FREQ=DAILY;BYHOUR=8,20;BYMINUTE=0", "Asia/Kabul", "2026-07-01T03:30:00Z", 2);
    assert_eq!(summer, ["2026-07-01T03:30Z", "2026-07-01T15:30Z"]);
}

#[test]
fn parts_left_out_come_from_start_and_start_counts_only_if_the_rule_yields_it() {
    // A Tuesday start of a Monday rule: the first occurrence is the next Monday, 09:15 Berlin.
    let r =
        Recurrence::parse("FREQ=WEEKLY;BYDAY=MO", timezone("Europe/Berlin").unwrap(), at("2026-12-01T08:15:00Z"), None)
            .unwrap();
    assert_eq!(r.first_from(at("2026-12-01T08:15:00Z")), Some(at("2026-12-07T08:15:00Z")));
    // The last weekday of the month (BYSETPOS), and COUNT ends it.
    let times = occurrences(
        "FREQ=MONTHLY;BYDAY=MO,TU,WE,TH,FR;BYSETPOS=-1;COUNT=2",
        "Europe/Berlin",
        "2026-01-01T08:00:00Z",
        5,
    );
    assert_eq!(times, ["2026-01-30T08:00Z", "2026-02-27T08:00Z"]);
}

#[test]
fn until_and_count_end_a_schedule() {
    let r = Recurrence::parse(
        "FREQ=DAILY",
        timezone("Asia/Kabul").unwrap(),
        at("2026-01-01T03:30:00Z"),
        Some(at("2026-01-03T03:30:00Z")),
    )
    .unwrap();
    assert_eq!(r.after(at("2026-01-01T00:00:00Z"), 10).len(), 3, "until is inclusive");
    assert_eq!(r.next_after(at("2026-01-03T03:30:00Z")), None);
}

#[test]
fn rules_vcare_does_not_take_are_4xx() {
    let tz = timezone("Europe/Berlin").unwrap();
    let start = at("2026-01-01T08:00:00Z");
    let bad = |rule: &str| Recurrence::parse(rule, tz, start, None).unwrap_err();
    for rule in [
        "",
        "FREQ=DAILY;BYSECOND=5",
        "FREQ=MINUTELY;INTERVAL=20",
        "FREQ=SECONDLY",
        "FREQ=DAILY;BYWEEKNO=3",
        "FREQ=DAILY;FOO=1",
        "BYHOUR=8",
        "FREQ=DAILY;FREQ=WEEKLY",
        "FREQ=DAILY;COUNT=2;UNTIL=20270101T000000Z",
        "FREQ=DAILY;BYHOUR=25",
        "FREQ=DAILY;INTERVAL=x",
        "FREQ=DAILY;BYHOUR=8;BYMINUTE=0,10",
        "FREQ=HOURLY;BYMINUTE=0,5,30",
        "DTSTART:20260101T000000Z",
        // Found by fuzz/templates_schedules: the crate slices BYDAY by byte.
        "FREQ=MONTHLY;BYDAY=MO\u{526}U,WE;COUNT=6",
        "FREQ=DAILY;BYHOUR=8\u{0}",
        "FREQ=DAILY; COUNT=2",
        "FREQ=DAILY;BYHOUR=",
        "FREQ=DAILY;BYHOUR=8,",
        "FREQ=DAILY;BYDAY=,MO",
    ] {
        assert!(matches!(bad(rule), Rejected::Invalid(_)), "{rule}");
    }
    assert!(matches!(
        Recurrence::parse("FREQ=YEARLY;BYMONTH=2;BYMONTHDAY=30", tz, start, None),
        Err(Rejected::Impossible(_))
    ));
    assert!(Recurrence::parse("FREQ=DAILY", tz, start, Some(start)).is_err(), "until must be after start");
    assert!(timezone("Mars/Olympus").is_err());
    assert!(Recurrence::parse("FREQ=HOURLY;INTERVAL=1", tz, start, None).is_ok(), "an hour apart is fine");
    assert!(Recurrence::parse(&"FREQ=DAILY;".repeat(60), tz, start, None).is_err());
}

#[test]
fn an_occurrence_moves_a_schedule_once_and_pausing_drops_missed_ones() {
    let first = at("2026-01-01T08:00:00Z");
    let s = Schedule {
        schedule_id: "sch_1".into(),
        clinic_id: "c".into(),
        user_id: None,
        status: ScheduleStatus::Active,
        rrule: "FREQ=DAILY;COUNT=2".into(),
        timezone: "Europe/Berlin".into(),
        start: first,
        until: None,
        template: "t".into(),
        category: "general".into(),
        priority: Default::default(),
        channels: vec![],
        next_at: Some(first),
        fired_count: 0,
        skipped_count: 0,
        last_fired_at: None,
        created_at: first,
        updated_at: first,
        sealed_firing: String::new(),
    };
    let r = s.recurrence().unwrap();
    let second = r.next_after(first).unwrap();
    let moved = s.advanced(first, Some(second), Passed::Fired, first).unwrap();
    assert_eq!((moved.fired_count, moved.next_at, moved.last_fired_at), (1, Some(second), Some(first)));
    assert_eq!(
        moved.advanced(first, Some(second), Passed::Fired, first),
        None,
        "the same occurrence again changes nothing"
    );
    let ended = moved.advanced(second, r.next_after(second), Passed::Skipped(1), second).unwrap();
    assert_eq!((ended.status, ended.skipped_count, ended.next_at), (ScheduleStatus::Ended, 1, None));
    let paused = moved.paused(first).unwrap();
    assert_eq!((paused.status, paused.next_at), (ScheduleStatus::Paused, None));
    assert_eq!(paused.advanced(second, None, Passed::Fired, second), None, "nothing fires while paused");
    let resumed = paused.resumed(None, second).unwrap();
    assert_eq!(resumed.status, ScheduleStatus::Ended);
    assert_eq!(s.occurrence_key(first), "schedule:sch_1:2026-01-01T08:00:00Z");
}
