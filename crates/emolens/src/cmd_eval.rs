//! `emolens eval` and `emolens experiments` (being written by the evaluation work).
use std::process::ExitCode;

#[derive(clap::Args)]
pub struct EvalArgs {}
#[derive(clap::Args)]
pub struct ExperimentsArgs {}

pub fn eval(_a: EvalArgs) -> anyhow::Result<ExitCode> {
    anyhow::bail!("`emolens eval` is not built yet")
}
pub fn experiments(_a: ExperimentsArgs) -> anyhow::Result<ExitCode> {
    anyhow::bail!("`emolens experiments` is not built yet")
}
