//! Contract fuzzing in the test run (issue 9): schemathesis against
//! infra/openapi.yaml on a local gateway of its own, with a valid caller
//! token, a bounded number of examples per operation and a fixed seed (so a
//! failure reproduces). No 5xx; every status, media type, body and header
//! as the spec declares. `infra/scripts/contract-fuzz.sh` runs it alone
//! (more examples: VCARE_FUZZ_EXAMPLES).

#[test]
fn schemathesis_finds_no_server_error_and_no_answer_outside_the_spec() {
    let gateway = vcare_tests::lambda::binary("vcare-local");
    let env = [("VCARE_FUZZ_EXAMPLES", "15"), ("VCARE_GATEWAY_BIN", gateway.to_str().unwrap())];
    let text = vcare_tests::run_script("infra/scripts/contract-fuzz.sh", &env);
    assert!(text.contains("✅ Stateful") && text.contains("passed"), "every phase ran: {text}");
}
