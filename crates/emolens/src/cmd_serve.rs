//! `emolens serve` and `emolens keys` (being written by the service work).
use std::process::ExitCode;

#[derive(clap::Args)]
pub struct ServeArgs {}
#[derive(clap::Subcommand)]
pub enum KeysCommand {
    /// Create an API key.
    Create,
}

pub fn serve(_a: ServeArgs) -> anyhow::Result<ExitCode> {
    anyhow::bail!("`emolens serve` is not built yet")
}
pub fn keys(_c: KeysCommand) -> anyhow::Result<ExitCode> {
    anyhow::bail!("`emolens keys` is not built yet")
}
