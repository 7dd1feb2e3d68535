//! The CPU fast path: convolution, batch norm and pooling on oneDNN (the library TensorFlow and
//! PyTorch use on x86), in channels-last layout, plugged into burn's Flex backend and its
//! autodiff. Built when oneDNN's headers are found at build time (Debian: `libdnnl-dev`);
//! `--kernels flex` (`EMOLENS_KERNELS=flex`, see [`crate::runtime`]) switches it off at run time. The network keeps burn's parameter
//! layout, so model files do not depend on which kernels trained them.

// The shim's raw bindings (the `emolens-dnnl-sys` crate), as the modules here call them.
#[cfg(emolens_onednn)]
use emolens_dnnl_sys as ffi;
#[cfg(emolens_onednn)]
pub mod kernels;
#[cfg(emolens_onednn)]
pub mod ops;
#[cfg(emolens_onednn)]
pub mod plan;

/// Which kernels run convolutions on the CPU, for logs and benchmarks.
pub fn cpu_kernels() -> &'static str {
    #[cfg(emolens_onednn)]
    {
        if kernels::ready() {
            return "onednn";
        }
    }
    "flex"
}

/// Turns the oneDNN kernels off (`false`) or back on for this process; without oneDNN built in
/// this does nothing. For parity tests and benchmarks that compare both paths in one run.
pub fn set_enabled(on: bool) {
    #[cfg(emolens_onednn)]
    kernels::set_enabled(on);
    #[cfg(not(emolens_onednn))]
    let _ = on;
}

/// Whether this build has the oneDNN kernels at all.
pub const BUILT_IN: bool = cfg!(emolens_onednn);

/// oneDNN's name of the instruction set its kernels use here (after any `ONEDNN_MAX_CPU_ISA`
/// cap), or `none` without oneDNN.
pub fn cpu_isa() -> &'static str {
    #[cfg(emolens_onednn)]
    return plan::cpu_isa();
    #[cfg(not(emolens_onednn))]
    "none"
}

/// Why a oneDNN-only operation (compiled plans, int8 calibration) cannot run here.
pub const UNAVAILABLE: &str = "oneDNN is not available (built without libdnnl-dev, or switched off by --kernels flex or EMOLENS_KERNELS=flex); int8 and bf16 plans and int8 calibration need it";

/// Measures the activation ranges int8 plans quantize to (`plan::calibrate`): needs oneDNN,
/// and says so (with [`UNAVAILABLE`]) in a build without it.
pub fn calibrate(
    net: &crate::frozen::FrozenNet,
    images: &[f32],
    n: usize,
    source: &str,
) -> Result<emolens_core::Int8Calibration, String> {
    #[cfg(emolens_onednn)]
    return plan::calibrate(net, images, n, source);
    #[cfg(not(emolens_onednn))]
    {
        let _ = (net, images, n, source);
        Err(UNAVAILABLE.into())
    }
}
