//! `emolens train`, `sweep`, `arch`, `predict` (being written by the model work).
use std::process::ExitCode;

#[derive(clap::Args)]
pub struct TrainArgs {}
#[derive(clap::Args)]
pub struct SweepArgs {}
#[derive(clap::Subcommand)]
pub enum ArchCommand {
    /// Summarise an architecture.
    Summary,
}
#[derive(clap::Args)]
pub struct PredictArgs {}

pub fn train(_a: TrainArgs) -> anyhow::Result<ExitCode> {
    anyhow::bail!("not built yet")
}
pub fn sweep(_a: SweepArgs) -> anyhow::Result<ExitCode> {
    anyhow::bail!("not built yet")
}
pub fn arch(_c: ArchCommand) -> anyhow::Result<ExitCode> {
    anyhow::bail!("not built yet")
}
pub fn predict(_a: PredictArgs) -> anyhow::Result<ExitCode> {
    anyhow::bail!("not built yet")
}
