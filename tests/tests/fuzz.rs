//! The quick version of `make fuzz` in the test run (issue 9): every
//! cargo-fuzz target for a few seconds from its seeds. A panic on any input
//! fails this test and leaves the input in fuzz/artifacts/.

#[test]
fn every_fuzz_target_runs_clean_for_a_few_seconds() {
    let text = vcare_tests::run_script("infra/scripts/fuzz.sh", &[("VCARE_FUZZ_SECONDS", "5")]);
    let targets = std::fs::read_dir(vcare_tests::root().join("fuzz/fuzz_targets")).unwrap().count();
    assert_eq!(targets, 10);
    assert_eq!(text.matches("Done ").count(), targets, "every target ran: {text}");
}
