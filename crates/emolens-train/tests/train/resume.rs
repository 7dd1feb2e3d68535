//! A run stopped part way and resumed gives exactly the history of an uninterrupted run.
//! (burn's random generator is process-wide: the test holds
//! `one_training_at_a_time`, so no other test trains beside it.)

use crate::common::{quiet, tiny_config};
use emolens_train::{train, RunOptions};

#[test]
fn resume_gives_the_same_history() {
    let _one_run = crate::common::one_training_at_a_time();
    let cfg = tiny_config(3);
    let a = tempfile::tempdir().unwrap();
    let full = train(&cfg, a.path(), &quiet()).unwrap();

    let b = tempfile::tempdir().unwrap();
    let first = train(
        &cfg,
        b.path(),
        &RunOptions {
            stop_after_epochs: Some(1),
            ..quiet()
        },
    )
    .unwrap();
    assert!(!first.finished);
    assert_eq!(first.history.epochs(), 1);
    let resumed = train(&cfg, b.path(), &quiet()).unwrap();
    assert!(resumed.finished);
    assert_eq!(
        resumed.history.without_timing(),
        full.history.without_timing()
    );
}
