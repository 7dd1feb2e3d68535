//! emolens-model's integration tests, in one binary: one compile and link instead of one per
//! file (each links burn and oneDNN). Tests that need oneDNN are compiled only where the build
//! has it; elsewhere one test says what was skipped and why.

mod common;

mod architectures;
mod flip_tta;
#[cfg(emolens_onednn)]
mod inference_plan;
#[cfg(emolens_onednn)]
mod onednn_parity;

#[cfg(not(emolens_onednn))]
#[test]
fn onednn_tests_are_skipped_without_onednn() {
    assert!(!emolens_model::onednn::BUILT_IN);
    eprintln!(
        "SKIPPED inference_plan and onednn_parity: {}",
        common::onednn_unavailable().expect("no oneDNN in this build")
    );
}
