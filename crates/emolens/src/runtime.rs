//! The run-time flags of every command that runs a network: the CPU plans' number format, the
//! CPU kernels and the device, set once at start-up ([`emolens_model::runtime::configure`]).

use emolens_model::runtime::{Bundled, DeviceKind, Kernels, Precision, RuntimeOptions};

/// How networks run; each flag is also an environment variable. The values are listed in the
/// flags' own help (`hide_possible_values`: the enums' documentation would turn every command's
/// `--help` into clap's long layout).
#[derive(clap::Args, Clone, Debug)]
#[command(next_help_heading = "Runtime")]
pub struct RuntimeArgs {
    /// Number format of the compiled CPU plans (oneDNN): `f32`, `bf16` or `int8`. Default: int8
    /// for a model with int8 calibration on a CPU with int8 kernels, else bf16 where the CPU
    /// multiplies it natively, else f32. A format this CPU or model cannot run falls back, with
    /// a warning.
    #[arg(
        long,
        global = true,
        env = "EMOLENS_PRECISION",
        value_enum,
        ignore_case = true,
        hide_possible_values = true
    )]
    pub precision: Option<Precision>,
    /// CPU kernels: `onednn` (where this build has it, else flex) or `flex` (burn's own).
    #[arg(
        long,
        global = true,
        env = "EMOLENS_KERNELS",
        value_enum,
        ignore_case = true,
        hide_possible_values = true,
        default_value_t = Kernels::Onednn
    )]
    pub kernels: Kernels,
    /// Device: `cpu`, or `cuda` / `wgpu` in a build with that backend (`--features cuda|wgpu`).
    #[arg(
        long,
        global = true,
        env = "EMOLENS_DEVICE",
        value_enum,
        hide_possible_values = true,
        default_value_t = DeviceKind::Cpu
    )]
    pub device: DeviceKind,
    /// The bundled model run when no --model is given: `accurate` (the default, on every CPU)
    /// or `fast` (a quarter of the compute, lower accuracy: MODEL_CARD.md; about 3x quicker on
    /// CPUs without AVX-512 or VNNI).
    #[arg(
        long,
        global = true,
        env = "EMOLENS_BUNDLED",
        value_enum,
        ignore_case = true,
        hide_possible_values = true,
        default_value_t = Bundled::Accurate
    )]
    pub bundled: Bundled,
}

impl RuntimeArgs {
    /// Sets the options for this process; before any model loads.
    pub fn apply(&self) {
        emolens_model::runtime::configure(RuntimeOptions {
            precision: self.precision,
            kernels: self.kernels,
            device: self.device,
            bundled: self.bundled,
        });
    }
}
