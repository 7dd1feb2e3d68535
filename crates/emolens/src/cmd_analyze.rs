//! `emolens analyze` (being written by the face work).
use std::process::ExitCode;

#[derive(clap::Args)]
pub struct AnalyzeArgs {}

pub fn analyze(_a: AnalyzeArgs) -> anyhow::Result<ExitCode> {
    anyhow::bail!("`emolens analyze` is not built yet")
}
