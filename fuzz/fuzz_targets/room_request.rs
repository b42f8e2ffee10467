//! The virtual-care routes' inputs: POST /v1/virtual-care/rooms bodies
//! (parse and every rule), the token, issue-report and image-upload bodies
//! with their rules, and GET /v1/virtual-care/history's cursor.
#![no_main]

use libfuzzer_sys::fuzz_target;
use vcare_domain::requests::{IssueReport, MAX_IMAGE_BYTES, MAX_ISSUE_DESCRIPTION_CHARS, TokenRequest, UploadRequest};
use vcare_domain::room::CreateRoom;

fuzz_target!(|data: &[u8]| {
    if let Ok(request) = serde_json::from_slice::<CreateRoom>(data)
        && let Ok(room) = request.validate()
    {
        let _ = room.fingerprint();
    }
    let _ = serde_json::from_slice::<TokenRequest>(data);
    if let Ok(report) = serde_json::from_slice::<IssueReport>(data)
        && let Ok((_, description)) = report.validate()
    {
        assert!(description.chars().count() <= MAX_ISSUE_DESCRIPTION_CHARS);
    }
    if let Ok(upload) = serde_json::from_slice::<UploadRequest>(data)
        && let Ok(upload) = upload.validate()
    {
        assert!((1..=MAX_IMAGE_BYTES).contains(&upload.size_bytes));
    }
    // A cursor is only ever one the store made for this caller.
    if let Ok(cursor) = std::str::from_utf8(data)
        && let Ok(key) = vcare_store::decode_cursor(cursor, "USER#c1#u1", "c1")
    {
        assert_eq!(key.len(), 4);
    }
});
