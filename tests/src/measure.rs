//! What the benchmarks report: quantiles of repeated timings.

use std::time::Duration;

/// Median, p99, min and max.
pub fn stats(mut samples: Vec<Duration>) -> (Duration, Duration, Duration, Duration) {
    samples.sort();
    let at = |q: f64| samples[((samples.len() - 1) as f64 * q).round() as usize];
    (at(0.5), at(0.99), samples[0], samples[samples.len() - 1])
}

pub fn ms(d: Duration) -> String {
    format!("{:.3} ms", d.as_secs_f64() * 1000.0)
}

/// token-issue's floor: the one consistent GetItem of the room it must make.
pub async fn read_room(ddb: &aws_sdk_dynamodb::Client, table: &str, clinic: &str, room: &str) {
    let key = |v: String| aws_sdk_dynamodb::types::AttributeValue::S(v);
    ddb.get_item()
        .table_name(table)
        .key("pk", key(format!("ROOM#{clinic}#{room}")))
        .key("sk", key("ROOM".into()))
        .consistent_read(true)
        .send()
        .await
        .expect("the room reads");
}

/// A room of clinic c1 starting in five minutes with one doctor (u-doc),
/// created through the gateway: what the token benchmarks issue tokens for.
pub async fn doctor_room(stack: &crate::TestStack, clinic: &str, appointment: &str) -> serde_json::Value {
    let doctor = stack.token("u-doc", Some(clinic), &["doctor"]);
    let start = chrono::Utc::now() + chrono::Duration::minutes(5);
    let body = crate::rooms::room_body(appointment, start, &[crate::rooms::doctor()]);
    let (status, room) = crate::rooms::create_room(stack, &doctor, &body).await;
    assert_eq!(status, 201, "{room}");
    room
}

/// Prints a handler's timings against its floor (the calls it must make,
/// made bare) and the ratio of their medians, under `title`.
pub fn report_against_floor(title: &str, handler: Vec<Duration>, floor_label: &str, floor: Vec<Duration>) {
    let (h50, h99, hmin, hmax) = stats(handler);
    let (f50, f99, fmin, fmax) = stats(floor);
    println!("{title}");
    println!("  handler          median {} p99 {} min {} max {}", ms(h50), ms(h99), ms(hmin), ms(hmax));
    println!("  {floor_label:<16} median {} p99 {} min {} max {}", ms(f50), ms(f99), ms(fmin), ms(fmax));
    println!("  handler / {floor_label} (medians): {:.3}", h50.as_secs_f64() / f50.as_secs_f64());
}
