//! `vcare-ops`: what an operator of vcare does by hand, against the
//! deployed (or local) AWS resources through the same SDK clients.
//! Nothing it prints carries personal data: queue messages are shown by
//! their ids and event fields only, notifications masked.

use std::collections::HashSet;
use std::io::Read;

use aws_sdk_sqs::types::{MessageSystemAttributeName, QueueAttributeName};
use chrono::{DateTime, Utc};
use serde_json::{Value, json};
use vcare_aws::SdkConfig;
use vcare_care::audit::{Access, Audit};
use vcare_domain::audit::{Broken, Outcome};
use vcare_runtime::{Env, Error};
use vcare_store::{NotificationStore, RoomStore};

pub const USAGE: &str =
    "usage (settings: VCARE_TABLE and VCARE_AUDIT_TABLE, the stack's table names; AWS_* as for the SDK):
  vcare-ops dlq list <dlq-url> [--max N]
      the dead letters: id, receives, first sent, and the ids they carry (never their content)
  vcare-ops dlq redrive <dlq-url> <queue-url> [--max N] [--dry-run]
      move dead letters back to their queue (FIFO: same group); --dry-run moves nothing
  vcare-ops show notification <clinic> <notification-id>
  vcare-ops show room <clinic> <room-id>
      the state as stored (the recipient masked; the room without names)
  vcare-ops jitsi-secret rotate --key-id <DataKey> [--stdin]
      a new Jitsi app secret (or the one on stdin), and its ciphertext for
      the JitsiAppSecretCiphertext parameter (purpose jitsi-app-secret)
  vcare-ops events replay --consumer <queue-url> --from <RFC 3339> --to <RFC 3339> [--dry-run]
      send one consumer again the events of that range (the last 7 days) its
      subscription lets through, in order, with their own ids (VCARE_EVENTS_TOPIC)
  vcare-ops audit verify --clinic <clinic>
      walk the clinic's audit chain from its first record: intact, or where it breaks
every lookup, redrive and replay is itself audited first, as the operator's AWS identity";

/// The chain of what operators did that concerns no one clinic (dead
/// letters, replays).
pub const OPERATIONS_CHAIN: &str = "vcare-operations";

/// Runs one command; the text to print.
pub async fn run(args: &[String], env: &Env, sdk: &SdkConfig, stdin: &mut dyn Read) -> Result<String, Error> {
    let words: Vec<&str> = args.iter().map(String::as_str).collect();
    let flag = |name: &str| words.iter().position(|w| *w == name).and_then(|i| words.get(i + 1)).copied();
    let has = |name: &str| words.contains(&name);
    let max = flag("--max").map(|n| n.parse::<usize>().map_err(|_| "--max takes a number")).transpose()?.unwrap_or(100);
    let table = || env.required("VCARE_TABLE").map_err(Error::from);
    let audit = || -> Result<Audit, Error> {
        let table = env.required("VCARE_AUDIT_TABLE")?;
        let store =
            vcare_store::AuditStore::new(aws_sdk_dynamodb::Client::new(sdk), table, env.required("VCARE_TABLE")?);
        Ok(Audit { store, clock: vcare_runtime::Clock::system() })
    };
    // Recorded before anything is read or moved: a lookup the trail cannot
    // take is not made.
    let audited = |clinic: &str, action: &'static str, subject_type: &'static str, subject_id: &str| {
        let (clinic, subject_id) = (clinic.to_owned(), subject_id.to_owned());
        let audit = audit();
        async move {
            let operator = operator(sdk).await?;
            let access = Access {
                clinic_id: clinic,
                actor_id: operator,
                actor_roles: vec!["operator".into()],
                action: action.into(),
                subject_type: subject_type.into(),
                subject_id,
                outcome: Outcome::Allowed,
                request_id: format!("vcare-ops-{}", vcare_domain::ids::random_base32(16)),
                source_ip: String::new(),
                granted_by: None,
            };
            audit?.record(access, &[]).await.map_err(|e| format!("the audit trail could not take this: {e}"))?;
            Ok::<(), Error>(())
        }
    };
    let out = match words.as_slice() {
        ["audit", "verify", ..] => {
            let clinic = flag("--clinic").ok_or("--clinic <clinic> is required")?;
            let report = audit()?.verify(clinic, |_| {}).await?;
            let found = json!({"clinic": clinic, "records": report.sealed, "awaitingSeal": report.awaiting_seal,
                "intact": report.broken.is_none()});
            let why = match report.broken {
                None => String::new(),
                Some(Broken::Altered { seq }) => format!("record {seq} was altered"),
                Some(Broken::Unlinked { seq }) => format!("record {seq} does not follow the one before it"),
                Some(Broken::Missing { seq }) => format!("record {seq} is gone"),
            };
            if !why.is_empty() {
                return Err(format!("the audit chain of {clinic} is broken: {why}: {found}").into());
            }
            found
        }
        ["dlq", "list", dlq, ..] => {
            audited(OPERATIONS_CHAIN, "ops.dlq-list", "queue", dlq).await?;
            dlq_list(sdk, dlq, max).await?
        }
        ["dlq", "redrive", dlq, queue, ..] => {
            audited(OPERATIONS_CHAIN, "ops.dlq-redrive", "queue", dlq).await?;
            dlq_redrive(sdk, dlq, queue, max, has("--dry-run")).await?
        }
        ["show", "notification", clinic, id] => {
            audited(clinic, "ops.show", "notification", id).await?;
            let store = NotificationStore::new(aws_sdk_dynamodb::Client::new(sdk), table()?);
            let (n, version) = store.get(clinic, id).await?.ok_or("no such notification")?;
            let mut view = n.view();
            view["version"] = json!(version);
            view
        }
        ["show", "room", clinic, id] => {
            audited(clinic, "ops.show", "room", id).await?;
            let store = RoomStore::new(aws_sdk_dynamodb::Client::new(sdk), table()?);
            let (room, version) = store.get(clinic, id).await?.ok_or("no such room")?;
            let mut view = vcare_domain::events::room_summary(&room);
            view["clinicId"] = json!(room.clinic_id);
            view["jitsiRoom"] = json!(room.jitsi_room);
            view["version"] = json!(version);
            view
        }
        ["jitsi-secret", "rotate", ..] => {
            let key_id = flag("--key-id").ok_or("--key-id <DataKey> is required")?;
            let secret = if has("--stdin") {
                let mut s = String::new();
                stdin.read_to_string(&mut s)?;
                let s = s.trim().to_owned();
                if s.len() < 32 {
                    return Err("a Jitsi app secret of at least 32 characters".into());
                }
                s
            } else {
                vcare_domain::ids::random_base32(32)
            };
            let kms = aws_sdk_kms::Client::new(sdk);
            let ciphertext = vcare_crypto::encrypt_secret(&kms, key_id, secret.as_bytes(), "jitsi-app-secret").await?;
            json!({
                "secret": secret,
                "ciphertext": ciphertext,
                "next": "put `secret` in Prosody's app_secret and `ciphertext` in the JitsiAppSecretCiphertext parameter, then deploy; tokens signed before keep working only while Prosody accepts the old secret",
            })
        }
        ["events", "replay", ..] => {
            let time = |name: &str| -> Result<DateTime<Utc>, Error> {
                let raw = flag(name).ok_or(format!("{name} <RFC 3339 time> is required"))?;
                Ok(DateTime::parse_from_rfc3339(raw)
                    .map_err(|_| format!("{name}: an RFC 3339 time"))?
                    .with_timezone(&Utc))
            };
            let (from, to) = (time("--from")?, time("--to")?);
            if from >= to {
                return Err("--from must be before --to".into());
            }
            if to - from > chrono::Duration::days(8) {
                return Err("a range of at most the 7 days events are kept".into());
            }
            let consumer = flag("--consumer").ok_or("--consumer <queue-url> is required")?;
            let topic = env.required("VCARE_EVENTS_TOPIC")?;
            audited(OPERATIONS_CHAIN, "ops.events-replay", "queue", consumer).await?;
            let replayer = vcare_comms::replay::Replayer::new(sdk, &table()?, &topic);
            let policy = replayer.policy_of(consumer).await?;
            let records = replayer.range(&policy, from, to).await?;
            let ids: Vec<&str> = records.iter().map(|r| r.event_id.as_str()).collect();
            if has("--dry-run") {
                json!({"wouldReplay": records.len(), "eventIds": ids})
            } else {
                let replay_id = format!("replay{}", Utc::now().timestamp());
                let n = replayer.send(consumer, &records, &replay_id).await?;
                json!({"replayed": n, "eventIds": ids})
            }
        }
        _ => return Err(USAGE.into()),
    };
    Ok(serde_json::to_string_pretty(&out)?)
}

/// The operator as AWS knows them: the caller identity's ARN.
async fn operator(sdk: &SdkConfig) -> Result<String, Error> {
    let me = aws_sdk_sts::Client::new(sdk).get_caller_identity().send().await.map_err(|e| {
        format!("who you are could not be asked of AWS: {}", aws_sdk_sts::error::DisplayErrorContext(e))
    })?;
    Ok(me.arn.ok_or("AWS named no identity")?)
}

/// What a dead letter may show: ids and event fields, never content.
fn summary(body: &str) -> Value {
    let Ok(Value::Object(m)) = serde_json::from_str::<Value>(body) else { return json!({"bytes": body.len()}) };
    let keys = ["type", "id", "subject", "clinicid", "clinicId", "notificationId"];
    Value::Object(m.into_iter().filter(|(k, _)| keys.contains(&k.as_str())).collect())
}

async fn dlq_list(sdk: &SdkConfig, dlq: &str, max: usize) -> Result<Value, Error> {
    let sqs = aws_sdk_sqs::Client::new(sdk);
    let mut seen = HashSet::new();
    let mut out = Vec::new();
    // Peek: received with no visibility timeout, so nothing is hidden.
    for _ in 0..(max / 10 + 3) {
        let got = sqs
            .receive_message()
            .queue_url(dlq)
            .max_number_of_messages(10)
            .visibility_timeout(0)
            .message_system_attribute_names(MessageSystemAttributeName::All)
            .send()
            .await
            .map_err(|e| aws_sdk_sqs::error::DisplayErrorContext(e).to_string())?;
        let messages = got.messages.unwrap_or_default();
        let mut new = 0;
        for m in messages {
            let id = m.message_id().unwrap_or_default().to_owned();
            if out.len() >= max || !seen.insert(id.clone()) {
                continue;
            }
            new += 1;
            let attrs = m.attributes();
            let attr = |name: MessageSystemAttributeName| attrs.and_then(|a| a.get(&name)).cloned();
            out.push(json!({
                "messageId": id,
                "receives": attr(MessageSystemAttributeName::ApproximateReceiveCount),
                "sentTimestamp": attr(MessageSystemAttributeName::SentTimestamp),
                "carries": summary(m.body().unwrap_or_default()),
            }));
        }
        if new == 0 || out.len() >= max {
            break;
        }
    }
    Ok(json!({"queue": dlq, "messages": out}))
}

async fn dlq_redrive(sdk: &SdkConfig, dlq: &str, queue: &str, max: usize, dry_run: bool) -> Result<Value, Error> {
    let sqs = aws_sdk_sqs::Client::new(sdk);
    let sqs_error = |e: String| Error::from(e);
    let fifo = sqs
        .get_queue_attributes()
        .queue_url(queue)
        .attribute_names(QueueAttributeName::FifoQueue)
        .send()
        .await
        .map_err(|e| sqs_error(aws_sdk_sqs::error::DisplayErrorContext(e).to_string()))?
        .attributes()
        .and_then(|a| a.get(&QueueAttributeName::FifoQueue))
        .is_some_and(|v| v == "true");
    let mut moved = Vec::new();
    let mut held = Vec::new();
    while moved.len() + held.len() < max {
        let got = sqs
            .receive_message()
            .queue_url(dlq)
            .max_number_of_messages(10.min((max - moved.len() - held.len()) as i32))
            .visibility_timeout(30)
            .message_system_attribute_names(MessageSystemAttributeName::All)
            .send()
            .await
            .map_err(|e| sqs_error(aws_sdk_sqs::error::DisplayErrorContext(e).to_string()))?;
        let messages = got.messages.unwrap_or_default();
        if messages.is_empty() {
            break;
        }
        for m in messages {
            let id = m.message_id().unwrap_or_default().to_owned();
            let handle = m.receipt_handle().unwrap_or_default().to_owned();
            if dry_run {
                held.push(handle);
                moved.push(id);
                continue;
            }
            let mut send = sqs.send_message().queue_url(queue).message_body(m.body().unwrap_or_default());
            if fifo {
                let group = m
                    .attributes()
                    .and_then(|a| a.get(&MessageSystemAttributeName::MessageGroupId))
                    .cloned()
                    .unwrap_or_else(|| "redrive".into());
                send = send.message_group_id(group).message_deduplication_id(format!("redrive-{id}"));
            }
            send.send().await.map_err(|e| sqs_error(aws_sdk_sqs::error::DisplayErrorContext(e).to_string()))?;
            sqs.delete_message()
                .queue_url(dlq)
                .receipt_handle(handle)
                .send()
                .await
                .map_err(|e| sqs_error(aws_sdk_sqs::error::DisplayErrorContext(e).to_string()))?;
            moved.push(id);
        }
    }
    // A dry run gives every message back at once.
    for handle in held {
        sqs.change_message_visibility()
            .queue_url(dlq)
            .receipt_handle(handle)
            .visibility_timeout(0)
            .send()
            .await
            .map_err(|e| sqs_error(aws_sdk_sqs::error::DisplayErrorContext(e).to_string()))?;
    }
    let key = if dry_run { "wouldMove" } else { "moved" };
    let mut out = json!({"from": dlq, "to": queue, "dryRun": dry_run});
    out[key] = json!(moved);
    Ok(out)
}
