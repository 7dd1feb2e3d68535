//! `emolens data ...` (being written by the data work).
use std::process::ExitCode;

#[derive(clap::Subcommand)]
pub enum DataCommand {
    /// Dataset statistics.
    Stats,
}

pub fn run(_c: DataCommand) -> anyhow::Result<ExitCode> {
    anyhow::bail!("`emolens data` is not built yet")
}
