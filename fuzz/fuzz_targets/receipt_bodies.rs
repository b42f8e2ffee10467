//! Delivery receipts as the internet posts them to the one route without a
//! caller token: a form or JSON body, each provider's signature check over
//! it (Twilio's URL-and-parameters base string, Vonage's sig and JWT), and
//! each provider's receipt parsing.
#![no_main]

use libfuzzer_sys::fuzz_target;
use vcare_providers::receipts::{
    Params, VonageHmac, VonageSigning, gateway_receipt, receipt_hash, twilio_receipt, twilio_signature, twilio_valid,
    vonage_receipt, vonage_valid,
};

const URL: &str = "https://api.vcare.example/v1/communication/dlr/twilio?ref=c-1~ntf_0123456789~att_0123456789";

fuzz_target!(|data: &[u8]| {
    let params: Params = form_urlencoded::parse(data).into_owned().collect();
    let text = String::from_utf8_lossy(data);
    let signature = twilio_signature("token", URL, &params);
    assert!(twilio_valid("token", URL, &params, Some(&signature)));
    let _ = twilio_valid("token", URL, &params, Some(&text));
    let _ = twilio_receipt(&params);
    for signing in [VonageSigning::Md5Hash, VonageSigning::Hmac(VonageHmac::Sha256), VonageSigning::Jwt] {
        let _ = vonage_valid(signing, "secret", &params, data, Some(&text), 1_795_000_000, 300);
    }
    let _ = vonage_receipt(&params);
    if let Ok(json) = serde_json::from_slice(data) {
        let _ = gateway_receipt(&json);
    }
    let _ = receipt_hash("twilio", &params);
});
