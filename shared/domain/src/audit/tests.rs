use chrono::{DateTime, Utc};

use super::*;

pub(crate) fn access(n: u32) -> AuditRecord {
    AuditRecord {
        clinic_id: "c1".into(),
        id: format!("aud_{n}"),
        at: "2026-12-02T10:00:00Z".parse::<DateTime<Utc>>().unwrap() + chrono::Duration::seconds(n.into()),
        actor_id: "u-doc".into(),
        actor_roles: vec!["doctor".into()],
        granted_by: None,
        action: "recording.download-url".into(),
        subject_type: "recording".into(),
        subject_id: format!("rec_{n}"),
        outcome: Outcome::Allowed,
        request_id: format!("req-{n}"),
        source_ip: "203.0.113.7".into(),
    }
}

/// `n` records sealed in blocks of `per` entries.
fn sealed(n: u32, per: usize) -> (Vec<AuditRecord>, Vec<Block>) {
    let records: Vec<AuditRecord> = (0..n).map(access).collect();
    let mut blocks: Vec<Block> = Vec::new();
    for part in records.chunks(per) {
        let head = blocks.last().and_then(Block::head);
        blocks.push(seal("c1", head.as_ref().map(|(s, h)| (*s, h.as_str())), part, part[0].at));
    }
    (records, blocks)
}

fn verify(records: &[AuditRecord], blocks: &[Block]) -> Result<u64, Broken> {
    let mut v = Verifier::new("c1");
    for b in blocks {
        v.block(b, |e| records.iter().find(|r| r.id == e.record_id))?;
    }
    Ok(v.sealed())
}

#[test]
fn a_chain_verifies_across_blocks_and_every_tampering_is_found_where_it_is() {
    let (records, blocks) = sealed(7, 3);
    assert_eq!(verify(&records, &blocks), Ok(7));
    assert_eq!(blocks[0].prev_hash, GENESIS);
    assert_eq!((blocks[2].first(), blocks[2].head().unwrap().0), (7, 7));

    let mut altered = records.clone();
    altered[2].subject_id = "rec_other".into();
    assert_eq!(verify(&altered, &blocks), Err(Broken::Altered { seq: 3 }));

    let mut resealed = blocks.clone();
    resealed[0].entries[2].digest = altered[2].digest();
    assert_eq!(verify(&altered, &resealed), Err(Broken::Altered { seq: 3 }), "the entry's own hash");
    resealed[0].entries[2].hash =
        chain::link_hash("c1", &blocks[0].entries[1].hash, 3, "aud_2", &resealed[0].entries[2].digest);
    assert_eq!(verify(&altered, &resealed), Err(Broken::Unlinked { seq: 4 }), "a re-hashed entry breaks the next");

    let gone: Vec<AuditRecord> = records.iter().filter(|r| r.id != "aud_4").cloned().collect();
    assert_eq!(verify(&gone, &blocks), Err(Broken::Missing { seq: 5 }));

    let mut removed = blocks.clone();
    removed[1].entries.remove(0);
    assert_eq!(verify(&records, &removed), Err(Broken::Unlinked { seq: 5 }));

    let mut swapped = blocks.clone();
    swapped[1].entries.swap(0, 1);
    assert_eq!(verify(&records, &swapped), Err(Broken::Unlinked { seq: 5 }));

    let mut inserted = blocks.clone();
    let mut extra = inserted[1].entries[0].clone();
    extra.record_id = "aud_9".into();
    inserted[1].entries.insert(1, extra);
    assert_eq!(verify(&records, &inserted), Err(Broken::Unlinked { seq: 4 }));

    assert_eq!(verify(&records, &blocks[1..]), Err(Broken::Unlinked { seq: 4 }), "a chain starts at its first");
    let mut other = blocks.clone();
    other[0].clinic_id = "c2".into();
    assert_eq!(verify(&records, &other), Err(Broken::Unlinked { seq: 1 }));
}

#[test]
fn the_digest_and_the_link_are_sha256_over_length_prefixed_fields_as_python_computes_them() {
    // Python's hashlib over the same bytes (big-endian u64 length, then UTF-8):
    // can = lambda fs: b"".join(struct.pack(">Q", len(f)) + f for f in fs)
    // record = ["c1", "aud_1", "2026-12-02T10:00:01.000000Z", "u-doc", "doctor", "",
    //           "recording.download-url", "recording", "rec_1", "allowed", "req-1", "203.0.113.7"]
    // d = sha256(can(record)); link = sha256(can([GENESIS, "c1", "1", "aud_1", d]))
    let first = access(1);
    assert_eq!(first.digest(), "ab3d802833912f8a436c40a5aac882a837ab11bde76ba5a97523e8e99bdb5e52");
    let block = seal("c1", None, std::slice::from_ref(&first), first.at);
    assert_eq!(block.entries[0].hash, "6927e0cbc6b2f8b9f34ce9b3779585b667abae0b5540c15855d7a41b8c5f8e5b");
}

#[test]
fn no_field_can_pose_as_the_next_one_and_the_grant_is_bound() {
    let mut a = access(1);
    a.subject_type = "recording".into();
    a.subject_id = "x".into();
    let mut b = a.clone();
    b.subject_type = "recordingx".into();
    b.subject_id = String::new();
    assert_ne!(a.digest(), b.digest());
    let mut granted = a.clone();
    granted.granted_by = Some("u-nurse".into());
    assert_ne!(a.digest(), granted.digest());
    assert_eq!(granted.view()["grantedBy"], "u-nurse");
    assert!(a.view().get("grantedBy").is_none());
}

#[test]
fn the_sealing_order_is_time_then_id_and_shards_spread() {
    let mut records = vec![access(3), access(1), access(2)];
    records[2].at = records[0].at;
    records[2].id = "aud_0".into();
    sealing_order(&mut records);
    let ids: Vec<&str> = records.iter().map(|r| r.id.as_str()).collect();
    assert_eq!(ids, ["aud_1", "aud_0", "aud_3"]);
    let mut seen = [0u32; SHARDS as usize];
    for _ in 0..800 {
        seen[usize::from(shard_of(&record_id()))] += 1;
    }
    assert!(seen.iter().all(|n| *n > 50), "{seen:?}");
}
