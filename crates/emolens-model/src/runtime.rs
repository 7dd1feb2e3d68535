//! How models run in this process: the number format of compiled CPU plans, the CPU kernels and
//! the device, and which bundled model runs. A program sets them once at start-up with [`configure`] (the `emolens` command
//! does, from its `--precision`, `--kernels` and `--device` flags, each also an environment
//! variable). A library user that sets nothing (the Python package, tests, examples) gets them
//! from the environment variables `EMOLENS_PRECISION`, `EMOLENS_KERNELS` and `EMOLENS_DEVICE`,
//! read when needed ([`RuntimeOptions::from_env`]): the fallback, not the interface.

use std::sync::OnceLock;

/// The number format of a compiled plan's activations and weights.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
pub enum Precision {
    F32,
    /// bfloat16 storage and multiplication with f32 accumulation: about twice the arithmetic
    /// rate on CPUs with AVX512-BF16, at the cost of 8 bits of mantissa per activation.
    Bf16,
    /// 8-bit activations and per-channel 8-bit weights in the convolutions, exact 32-bit
    /// integer sums, the rest in f32: twice bf16's rate on CPUs with AVX512-VNNI. Needs the
    /// activation ranges of an [`emolens_core::Int8Calibration`] (`emolens model quantize`).
    Int8,
}

impl Precision {
    pub fn name(self) -> &'static str {
        match self {
            Precision::F32 => "f32",
            Precision::Bf16 => "bf16",
            Precision::Int8 => "int8",
        }
    }

    /// `f32`, `bf16` or `int8`, in any case; `None` for anything else.
    pub fn parse(s: &str) -> Option<Precision> {
        match s.to_ascii_lowercase().as_str() {
            "f32" => Some(Precision::F32),
            "bf16" => Some(Precision::Bf16),
            "int8" => Some(Precision::Int8),
            _ => None,
        }
    }
}

/// The kernels convolutions, batch norms and pooling run on, on the CPU.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
pub enum Kernels {
    /// oneDNN where this build has it (built with libdnnl-dev), else burn's flex kernels.
    #[default]
    Onednn,
    /// burn's flex kernels, even where oneDNN is built in.
    Flex,
}

/// The device networks run on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
pub enum DeviceKind {
    /// The CPU (burn's flex backend, with oneDNN where built in).
    #[default]
    Cpu,
    /// The first CUDA GPU; needs a build with the `cuda` feature.
    Cuda,
    /// A GPU through wgpu; needs a build with the `wgpu` feature.
    Wgpu,
}

/// Which bundled model runs when no model file is given.
///
/// The default is the accurate model on every CPU, so the same photo gets the same numbers on
/// every machine. The fast model (a quarter of the compute, lower accuracy: see MODEL_CARD.md)
/// is a choice, e.g. for live webcam work on a CPU without AVX-512 or VNNI, where the accurate
/// model's int8 plan is about 3x slower than on one with them; it is never picked silently,
/// because the numbers of two models are not comparable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
pub enum Bundled {
    /// `models/default.emolens`, embedded at build time.
    #[default]
    Accurate,
    /// `models/fast.emolens`, embedded at build time.
    Fast,
}

impl Bundled {
    pub fn as_str(self) -> &'static str {
        match self {
            Bundled::Accurate => "accurate",
            Bundled::Fast => "fast",
        }
    }
}

/// The run-time choices of one process.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RuntimeOptions {
    /// The format of compiled CPU plans; `None` chooses per CPU and model (see
    /// `onednn::plan::Precision::for_model`).
    pub precision: Option<Precision>,
    pub kernels: Kernels,
    pub device: DeviceKind,
    /// The bundled model run when no model file is given.
    pub bundled: Bundled,
}

impl RuntimeOptions {
    /// The options the environment asks for: `EMOLENS_PRECISION` (`f32`, `bf16` or `int8`),
    /// `EMOLENS_KERNELS` (`flex` switches oneDNN off), `EMOLENS_DEVICE` (`cuda` or `wgpu`) and
    /// `EMOLENS_BUNDLED` (`fast`); other values are ignored, as if unset.
    pub fn from_env() -> RuntimeOptions {
        let var = |name: &str| std::env::var(name).ok();
        RuntimeOptions {
            precision: var("EMOLENS_PRECISION").and_then(|v| Precision::parse(&v)),
            kernels: match var("EMOLENS_KERNELS") {
                Some(v) if v.eq_ignore_ascii_case("flex") => Kernels::Flex,
                _ => Kernels::Onednn,
            },
            device: match var("EMOLENS_DEVICE").as_deref() {
                Some("cuda") => DeviceKind::Cuda,
                Some("wgpu") => DeviceKind::Wgpu,
                _ => DeviceKind::Cpu,
            },
            bundled: match var("EMOLENS_BUNDLED") {
                Some(v) if v.eq_ignore_ascii_case("fast") => Bundled::Fast,
                _ => Bundled::Accurate,
            },
        }
    }
}

static CONFIGURED: OnceLock<RuntimeOptions> = OnceLock::new();

/// Sets this process's options, once, before the first model loads. Returns `false` (and
/// changes nothing) when they were set already.
pub fn configure(options: RuntimeOptions) -> bool {
    CONFIGURED.set(options).is_ok()
}

/// The options in force: those given to [`configure`], else the environment's.
pub fn options() -> RuntimeOptions {
    CONFIGURED
        .get()
        .copied()
        .unwrap_or_else(RuntimeOptions::from_env)
}
