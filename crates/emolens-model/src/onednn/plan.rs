//! Inference plans: a [`FrozenNet`] compiled into oneDNN primitives for one batch size, with
//! weights packed once, batch norms folded, activations fused as post-ops and buffers allocated
//! once (the C side is `emo_plan_*` in `emolens-dnnl-sys`). A plan is built, then run: a
//! `PlanBuilder` compiles the network step by step and finishes into a [`Plan`], which only
//! runs. [`Engine`] keeps plans per batch size and thread count and runs them; the classifier
//! uses it for every prediction on the CPU.

use std::ffi::CStr;
use std::ptr::NonNull;
use std::sync::{Arc, Mutex};

use super::{ffi, kernels};
use crate::arch::Act;
use crate::frozen::{FrozenNet, PostOp, Step};
use emolens_core::Int8Calibration;

use crate::runtime;
pub use crate::runtime::Precision;

impl Precision {
    /// The floating-point format: bf16 where the CPU multiplies it natively, f32 elsewhere;
    /// the precision asked for ([`runtime::options`]: `--precision`, or `EMOLENS_PRECISION` for
    /// library users), `f32` or `bf16`, overrides, except that bf16 on a CPU without native
    /// bf16 falls back to f32 with a warning (oneDNN has no bf16 kernels there). On the bundled
    /// model bf16 changes FER2013 test accuracy by a few images in 7,178 (see MODEL_CARD.md)
    /// and halves inference time on AVX512-BF16 CPUs.
    pub fn auto() -> Precision {
        match runtime::options().precision {
            Some(Precision::Bf16) if cpu_has_bf16() => Precision::Bf16,
            Some(Precision::Bf16) => {
                tracing::warn!(
                    "precision bf16 asked (--precision or EMOLENS_PRECISION) but this CPU (oneDNN ISA {}) has no native bf16; using f32",
                    cpu_isa()
                );
                Precision::F32
            }
            Some(Precision::F32) => Precision::F32,
            _ if cpu_has_bf16() => Precision::Bf16,
            _ => Precision::F32,
        }
    }

    /// The format for a model with (`calibrated`) or without int8 calibration: int8 where the
    /// model is calibrated and the CPU has vectorised int8 kernels (AVX2 or later; 8-bit
    /// weights with VNNI, 7-bit without, see [`int8_weight_bits`]), else [`Precision::auto`].
    /// The precision asked for ([`runtime::options`]), `f32`, `bf16` or `int8`, overrides;
    /// `int8` on a model without calibration, or on a CPU without int8 kernels, falls back with
    /// a warning.
    pub fn for_model(calibrated: bool) -> Precision {
        match runtime::options().precision {
            Some(Precision::Int8) if calibrated && cpu_has_int8() => Precision::Int8,
            Some(Precision::Int8) if calibrated => {
                tracing::warn!(
                    "precision int8 asked (--precision or EMOLENS_PRECISION) but this CPU (oneDNN ISA {}) has no vectorised int8 kernels; using floating point",
                    cpu_isa()
                );
                Precision::auto()
            }
            Some(Precision::Int8) => {
                tracing::warn!(
                    "precision int8 asked (--precision or EMOLENS_PRECISION) but the model has no int8 calibration (run `emolens model quantize`); using floating point"
                );
                Precision::auto()
            }
            Some(Precision::F32 | Precision::Bf16) => Precision::auto(),
            None if calibrated && cpu_has_int8() => Precision::Int8,
            None => Precision::auto(),
        }
    }
}

/// Whether the CPU multiplies bfloat16 natively (AVX512-BF16 or AMX), as oneDNN sees it.
pub fn cpu_has_bf16() -> bool {
    // SAFETY: a pure query of the CPU's features.
    kernels::ready() && unsafe { ffi::emo_cpu_has_bf16() } != 0
}

/// Whether the CPU has 8-bit dot products (AVX512-VNNI or AVX-VNNI), as oneDNN sees it.
pub fn cpu_has_vnni() -> bool {
    // SAFETY: a pure query of the CPU's features.
    kernels::ready() && unsafe { ffi::emo_cpu_has_vnni() } != 0
}

/// Whether oneDNN has vectorised int8 kernels here (AVX2 or later), where int8 plans are made.
pub fn cpu_has_int8() -> bool {
    // SAFETY: a pure query of the CPU's features.
    kernels::ready() && unsafe { ffi::emo_cpu_has_int8() } != 0
}

/// The bits of an int8 plan's weights on this CPU: 8 with VNNI; 7 without, where oneDNN's
/// kernels add pairs of u8 x s8 products in saturating 16-bit lanes (2 x 255 x 127 would
/// overflow them; 2 x 255 x 63 does not). None where there are no int8 kernels.
pub fn int8_weight_bits() -> Option<u32> {
    match (cpu_has_int8(), cpu_has_vnni()) {
        (false, _) => None,
        (true, true) => Some(8),
        (true, false) => Some(7),
    }
}

/// The instruction set oneDNN runs on here, after any `ONEDNN_MAX_CPU_ISA` cap (e.g.
/// `avx512_core_bf16`, `avx2`); "none" without oneDNN.
pub fn cpu_isa() -> &'static str {
    if !kernels::ready() {
        return "none";
    }
    // SAFETY: a static, NUL-terminated string from the shim.
    unsafe { CStr::from_ptr(ffi::emo_cpu_isa_name()) }
        .to_str()
        .unwrap_or("unknown")
}

/// How a range is stored in 8 bits: u8 for ranges that never go below zero (after a ReLU), s8
/// otherwise; real value = `scale` x stored integer.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Int8Format {
    scale: f32,
    signed: bool,
}

impl Int8Format {
    /// The format of `range`: the scale maps its largest magnitude to the format's largest
    /// integer.
    fn of(range: [f32; 2]) -> Int8Format {
        let signed = range[0] < 0.0;
        let most = range[0].abs().max(range[1].abs());
        let top = if signed { 127.0 } else { 255.0 };
        let scale = if most > 0.0 && most.is_finite() {
            most / top
        } else {
            1.0
        };
        Int8Format { scale, signed }
    }
}

/// A C plan, built or not, destroyed when dropped: what [`PlanBuilder`] hands on to [`Plan`].
struct RawPlan(NonNull<ffi::emo_plan>);

impl RawPlan {
    fn as_ptr(&self) -> *mut ffi::emo_plan {
        self.0.as_ptr()
    }
}

impl Drop for RawPlan {
    fn drop(&mut self) {
        // SAFETY: the pointer came from emo_plan_create, and a `RawPlan` is its one owner (never
        // cloned or copied out), so it is destroyed once, here.
        unsafe { ffi::emo_plan_destroy(self.0.as_ptr()) }
    }
}

/// A plan under construction: [`PlanBuilder::push`] compiles the network's steps in order,
/// [`PlanBuilder::finish`] allocates the buffers and gives the runnable [`Plan`]. Nothing else
/// can be done with it, and a [`Plan`] takes no more steps.
struct PlanBuilder {
    raw: RawPlan,
    n: usize,
    input: [usize; 3],
    /// See [`Plan::ends`].
    ends: Vec<usize>,
}

impl PlanBuilder {
    /// An empty plan for `n` images of `input` (`[channels, height, width]`), in bfloat16 from
    /// the first step on with `bf16`.
    fn new(n: usize, input: [usize; 3], bf16: bool) -> Result<PlanBuilder, String> {
        let [c, h, w] = input;
        let mut raw = std::ptr::null_mut();
        // SAFETY: plain values in, a handle out.
        let status = unsafe {
            ffi::emo_plan_create(
                &mut raw,
                n as i64,
                c as i64,
                h as i64,
                w as i64,
                i32::from(bf16),
            )
        };
        match NonNull::new(raw) {
            Some(raw) if status == 0 => Ok(PlanBuilder {
                raw: RawPlan(raw),
                n,
                input,
                ends: Vec::new(),
            }),
            _ => Err(format!("creating the plan failed (oneDNN status {status})")),
        }
    }

    /// From here on activations are 8-bit, in `format`.
    fn quantize(&mut self, format: Int8Format) -> i32 {
        // SAFETY: a plan under construction; plain values.
        unsafe { ffi::emo_plan_quantize(self.raw.as_ptr(), format.scale, i32::from(format.signed)) }
    }

    /// Back to floating-point activations.
    fn dequantize(&mut self) -> i32 {
        // SAFETY: a plan under construction.
        unsafe { ffi::emo_plan_dequantize(self.raw.as_ptr()) }
    }

    /// Compiles network step `i`; a convolution on 8-bit activations quantizes its output to
    /// `out` (which must be given there, and only there).
    fn push(&mut self, i: usize, step: &Step, out: Option<Int8Format>) -> Result<(), String> {
        let status = self.add(step, out);
        if status != 0 {
            return Err(format!(
                "step {i} ({}) has no oneDNN kernel here (status {status})",
                step_name(step)
            ));
        }
        // SAFETY: a plan under construction.
        let steps = unsafe { ffi::emo_plan_steps(self.raw.as_ptr()) };
        self.ends.push(steps as usize);
        Ok(())
    }

    /// The shim's call for `step`, and its status.
    fn add(&mut self, step: &Step, out: Option<Int8Format>) -> i32 {
        let raw = self.raw.as_ptr();
        // SAFETY: `raw` is a plan under construction, and every pointer is to a live buffer of
        // the length the step's shape implies (checked when the network was built), or null
        // for a missing bias; the shim copies what it keeps.
        unsafe {
            match step {
                Step::Conv {
                    out_channels,
                    kernel,
                    stride,
                    pad_l,
                    pad_r,
                    groups,
                    weight,
                    bias,
                    post,
                } => {
                    let post = PostArgs::new(post);
                    ffi::emo_plan_conv(
                        raw,
                        *out_channels as i64,
                        dims2(*kernel).as_ptr(),
                        dims2(*stride).as_ptr(),
                        dims2(*pad_l).as_ptr(),
                        dims2(*pad_r).as_ptr(),
                        *groups as i64,
                        weight.as_ptr(),
                        opt_ptr(bias),
                        &post.raw(),
                        out.map_or(0.0, |f| f.scale),
                        out.map_or(0, |f| i32::from(f.signed)),
                    )
                }
                Step::Dense {
                    units,
                    weight,
                    bias,
                    post,
                } => {
                    let post = PostArgs::new(post);
                    ffi::emo_plan_dense(
                        raw,
                        *units as i64,
                        weight.as_ptr(),
                        opt_ptr(bias),
                        &post.raw(),
                    )
                }
                Step::Pool {
                    kernel,
                    stride,
                    pad_l,
                    pad_r,
                    max,
                } => ffi::emo_plan_pool(
                    raw,
                    dims2(*kernel).as_ptr(),
                    dims2(*stride).as_ptr(),
                    dims2(*pad_l).as_ptr(),
                    dims2(*pad_r).as_ptr(),
                    i32::from(*max),
                    0,
                ),
                Step::GlobalPool { max } => {
                    let zero = [0i64; 2];
                    ffi::emo_plan_pool(
                        raw,
                        zero.as_ptr(),
                        zero.as_ptr(),
                        zero.as_ptr(),
                        zero.as_ptr(),
                        i32::from(*max),
                        1,
                    )
                }
                Step::Flatten => ffi::emo_plan_flatten(raw),
            }
        }
    }

    /// Allocates the plan's buffers: the plan is complete and can run.
    fn finish(self) -> Result<Plan, String> {
        // SAFETY: a plan under construction, finalized once (`self` is consumed).
        let status = unsafe { ffi::emo_plan_finalize(self.raw.as_ptr()) };
        if status != 0 {
            return Err(format!(
                "allocating the plan's buffers failed (status {status})"
            ));
        }
        let (mut rows, mut cols) = (0i64, 0i64);
        // SAFETY: reads the output shape of a finalized plan into two local values.
        unsafe { ffi::emo_plan_output(self.raw.as_ptr(), &mut rows, &mut cols) };
        Ok(Plan {
            raw: self.raw,
            n: self.n,
            input: self.input,
            classes: cols as usize,
            ends: self.ends,
        })
    }
}

/// The 8-bit region of an int8 plan, as the network's steps are compiled: convolutions, and
/// max pooling between them, run on 8-bit activations; everything else runs in floating point.
struct Int8Region<'a> {
    calibration: &'a Int8Calibration,
    /// Whether the activations are 8-bit now.
    quantized: bool,
}

impl Int8Region<'_> {
    /// Converts the activations before network step `i` into or out of 8 bits as `step` needs
    /// them, and returns the format a convolution quantizes its output to (its calibrated
    /// range), or `None` for other steps.
    fn enter(
        &mut self,
        plan: &mut PlanBuilder,
        i: usize,
        step: &Step,
    ) -> Result<Option<Int8Format>, String> {
        let is_conv = matches!(step, Step::Conv { .. });
        let stays_int8 = is_conv || matches!(step, Step::Pool { max: true, .. });
        let cal = self.calibration;
        let status = if is_conv && !self.quantized {
            let range = if i == 0 { cal.input } else { cal.steps[i - 1] };
            plan.quantize(Int8Format::of(range))
        } else if self.quantized && !stays_int8 {
            plan.dequantize()
        } else {
            0
        };
        if status != 0 {
            return Err(format!(
                "converting the input of step {i} between f32 and int8 failed (status {status})"
            ));
        }
        self.quantized = stays_int8 && (self.quantized || is_conv);
        Ok(is_conv.then(|| Int8Format::of(cal.steps[i])))
    }
}

/// One compiled network for `n` images, ready to run (made by [`Plan::build`]).
pub struct Plan {
    raw: RawPlan,
    n: usize,
    input: [usize; 3],
    classes: usize,
    /// The plan's step count after each network step (a network step adds one oneDNN step,
    /// or none, or a conversion before its own), to find a network step's output.
    ends: Vec<usize>,
}

// SAFETY: a `Plan` is the one owner of its C plan (`RawPlan` is never cloned or copied out),
// and the C plan holds nothing tied to the thread that built it: oneDNN's CPU primitives,
// memory objects and stream, and buffers from the C allocator, may be used and freed on any
// thread. Whatever runs or changes it takes `&mut self`, so moving it to another thread never
// lets two threads run it at once. (`Plan` is not `Sync`; `Engine` shares plans in a `Mutex`.)
unsafe impl Send for Plan {}

/// The shim's post-op kind of an activation; `None` for the ones that need no post-op.
fn act_kind(a: Act) -> Option<ffi::emo_post_kind> {
    use ffi::emo_post_kind::*;
    Some(match a {
        Act::Relu => EMO_POST_RELU,
        Act::LeakyRelu => EMO_POST_LEAKY_RELU,
        Act::Elu => EMO_POST_ELU,
        Act::Gelu => EMO_POST_GELU,
        Act::Silu => EMO_POST_SILU,
        Act::Sigmoid => EMO_POST_SIGMOID,
        Act::Tanh => EMO_POST_TANH,
        Act::Relu6 => EMO_POST_RELU6,
        Act::Linear | Act::Softmax => return None,
    })
}

/// Post-ops flattened for the C side: kinds, and the affine scales and shifts in order.
struct PostArgs {
    kinds: Vec<ffi::emo_post_kind>,
    scale: Vec<f32>,
    shift: Vec<f32>,
}

impl PostArgs {
    fn new(post: &[PostOp]) -> PostArgs {
        let (mut kinds, mut scale, mut shift) = (vec![], vec![], vec![]);
        for op in post {
            match op {
                PostOp::Act(a) => kinds.extend(act_kind(*a)),
                PostOp::Affine { scale: s, shift: t } => {
                    kinds.push(ffi::emo_post_kind::EMO_POST_AFFINE);
                    scale.extend_from_slice(s);
                    shift.extend_from_slice(t);
                }
            }
        }
        PostArgs {
            kinds,
            scale,
            shift,
        }
    }

    /// Borrows the vectors: valid while `self` lives.
    fn raw(&self) -> ffi::emo_post {
        ffi::emo_post {
            n: self.kinds.len() as i32,
            kinds: self.kinds.as_ptr(),
            scale: self.scale.as_ptr(),
            shift: self.shift.as_ptr(),
        }
    }
}

fn dims2(v: [usize; 2]) -> [i64; 2] {
    [v[0] as i64, v[1] as i64]
}

fn opt_ptr(v: &Option<Vec<f32>>) -> *const f32 {
    v.as_ref().map_or(std::ptr::null(), |b| b.as_ptr())
}

/// The calibration an int8 plan of `net` quantizes to (`None` for other precisions), once the
/// CPU is known to run the precision asked for.
fn checked_calibration<'a>(
    net: &FrozenNet,
    precision: Precision,
    int8: Option<&'a Int8Calibration>,
) -> Result<Option<&'a Int8Calibration>, String> {
    match (precision, int8) {
        // int8 is offered where it was measured: AVX2 (7-bit weights) and VNNI CPUs.
        (Precision::Int8, _) if !cpu_has_int8() => Err(format!(
            "int8 plans need a CPU with AVX2 or later; this one (oneDNN ISA {}) runs f32",
            cpu_isa()
        )),
        (Precision::Int8, Some(c)) if c.steps.len() == net.steps.len() => Ok(Some(c)),
        (Precision::Int8, Some(c)) => Err(format!(
            "the int8 calibration has {} step ranges but the network has {} steps; calibrate again with `emolens model quantize`",
            c.steps.len(),
            net.steps.len()
        )),
        (Precision::Int8, None) => Err("int8 needs a calibration".into()),
        (Precision::Bf16, _) if !cpu_has_bf16() => Err(format!(
            "bf16 plans need a CPU with AVX512-BF16 or AMX; this one (oneDNN ISA {}) runs f32 or int8",
            cpu_isa()
        )),
        _ => Ok(None),
    }
}

impl Plan {
    /// Compiles `net` for batches of `n`. Fails (with oneDNN's status) when a step has no
    /// kernel here; callers then run the network layer by layer. [`Precision::Int8`] needs
    /// `int8`, the ranges the convolutions quantize their inputs and outputs to; max pooling
    /// stays in 8 bits and everything else runs in f32.
    pub fn build(
        net: &FrozenNet,
        n: usize,
        precision: Precision,
        int8: Option<&Int8Calibration>,
    ) -> Result<Plan, String> {
        if !kernels::ready() {
            return Err(super::UNAVAILABLE.into());
        }
        let mut region = checked_calibration(net, precision, int8)?.map(|calibration| Int8Region {
            calibration,
            quantized: false,
        });
        let mut plan = PlanBuilder::new(n, net.input, precision == Precision::Bf16)?;
        for (i, step) in net.steps.iter().enumerate() {
            let out = match region.as_mut() {
                Some(region) => region.enter(&mut plan, i, step)?,
                None => None,
            };
            plan.push(i, step, out)?;
        }
        plan.finish()
    }

    /// Logits `[n, classes]` for `n` images in channels-first layout (the preprocessor's).
    pub fn run(&mut self, nchw: &[f32]) -> Vec<f32> {
        self.load(nchw);
        // SAFETY: a `Plan` is finalized (only `PlanBuilder::finish` makes one), and `&mut self`
        // keeps it to this thread while it runs.
        let status = unsafe { ffi::emo_plan_run(self.raw.as_ptr()) };
        assert!(
            status == 0,
            "oneDNN inference plan failed (status {status}); pass --kernels flex (EMOLENS_KERNELS=flex) to use burn's kernels and report this"
        );
        let (mut rows, mut cols) = (0i64, 0i64);
        // SAFETY: after a run the output buffer of a finalized plan holds rows x cols floats.
        unsafe {
            let out = ffi::emo_plan_output(self.raw.as_ptr(), &mut rows, &mut cols);
            std::slice::from_raw_parts(out, (rows * cols) as usize).to_vec()
        }
    }

    /// Runs `n` images through an f32 plan and widens `ranges` (one per network step) to the
    /// values each step's output took: the calibration of int8 plans.
    pub fn observe(&mut self, nchw: &[f32], ranges: &mut [[f32; 2]]) -> Result<(), String> {
        // SAFETY: reads the step count of a finalized plan.
        let steps = unsafe { ffi::emo_plan_steps(self.raw.as_ptr()) } as usize;
        let (mut lo, mut hi) = (vec![f32::INFINITY; steps], vec![f32::NEG_INFINITY; steps]);
        self.load(nchw);
        // SAFETY: as in `run`; `lo` and `hi` hold one value per plan step.
        let status = unsafe {
            ffi::emo_plan_run_observe(self.raw.as_ptr(), lo.as_mut_ptr(), hi.as_mut_ptr())
        };
        if status != 0 {
            return Err(format!(
                "observing activations needs an f32 plan (status {status})"
            ));
        }
        for (range, &end) in ranges.iter_mut().zip(&self.ends) {
            // A step that added no oneDNN step (a flatten of a 1x1 image) passes its input on.
            if let Some(k) = end.checked_sub(1) {
                range[0] = range[0].min(lo[k]);
                range[1] = range[1].max(hi[k]);
            }
        }
        Ok(())
    }

    /// Copies `n` channels-first images into the plan's channels-last input.
    fn load(&mut self, nchw: &[f32]) {
        let [c, h, w] = self.input;
        assert_eq!(nchw.len(), self.n * c * h * w, "input length");
        // SAFETY: a finalized plan's input buffer holds n x c x h x w floats (the length
        // asserted above), and `&mut self` makes this the only reference to it.
        let input = unsafe {
            std::slice::from_raw_parts_mut(ffi::emo_plan_input(self.raw.as_ptr()), nchw.len())
        };
        if c == 1 {
            input.copy_from_slice(nchw);
        } else {
            // Channels-first to channels-last.
            let plane = h * w;
            for (img, out) in nchw.chunks(c * plane).zip(input.chunks_mut(c * plane)) {
                for (p, px) in out.chunks_mut(c).enumerate() {
                    for (ch, v) in px.iter_mut().enumerate() {
                        *v = img[ch * plane + p];
                    }
                }
            }
        }
    }

    pub fn classes(&self) -> usize {
        self.classes
    }

    /// The kernel oneDNN chose for each step, for logs and benchmarks.
    pub fn implementations(&self) -> Vec<String> {
        // SAFETY: indices within the plan's step count; strings owned by the primitives.
        unsafe {
            (0..ffi::emo_plan_steps(self.raw.as_ptr()))
                .map(|i| {
                    let p = ffi::emo_plan_step_impl(self.raw.as_ptr(), i);
                    if p.is_null() {
                        "?".into()
                    } else {
                        CStr::from_ptr(p).to_string_lossy().into_owned()
                    }
                })
                .collect()
        }
    }
}

/// Measures the ranges int8 plans quantize to: `net` runs in f32 on `n` channels-first
/// images (preprocessed as the model's input) and every step's output range is kept. Ranges
/// are min and max: the calibration images should be typical inputs, from the training data.
pub fn calibrate(
    net: &FrozenNet,
    images: &[f32],
    n: usize,
    source: &str,
) -> Result<Int8Calibration, String> {
    let per_image = net.input.iter().product::<usize>();
    if n == 0 || images.len() != n * per_image {
        return Err(format!(
            "calibration needs whole images: {} values for {n} images of {per_image}",
            images.len()
        ));
    }
    let mut input = [f32::INFINITY, f32::NEG_INFINITY];
    for &v in images {
        input = [input[0].min(v), input[1].max(v)];
    }
    let mut steps = vec![[f32::INFINITY, f32::NEG_INFINITY]; net.steps.len()];
    let mut plans = std::collections::BTreeMap::new();
    let mut start = 0;
    while start < n {
        let size = chunk_for(n - start);
        let plan = match plans.entry(size) {
            std::collections::btree_map::Entry::Occupied(e) => e.into_mut(),
            std::collections::btree_map::Entry::Vacant(e) => {
                e.insert(Plan::build(net, size, Precision::F32, None)?)
            }
        };
        plan.observe(
            &images[start * per_image..(start + size) * per_image],
            &mut steps,
        )?;
        start += size;
    }
    // A step with no output of its own (a flatten of a 1x1 image) has its input's range.
    for i in 0..steps.len() {
        if !steps[i][0].is_finite() {
            steps[i] = if i == 0 { input } else { steps[i - 1] };
        }
    }
    Ok(Int8Calibration {
        images: n,
        source: source.to_string(),
        input,
        steps,
    })
}

fn step_name(step: &Step) -> &'static str {
    match step {
        Step::Conv { .. } => "convolution",
        Step::Dense { .. } => "dense",
        Step::Pool { .. } => "pooling",
        Step::GlobalPool { .. } => "global pooling",
        Step::Flatten => "flatten",
    }
}

/// Batch sizes plans are compiled for; a batch runs as the fewest chunks of these sizes
/// (larger first). oneDNN's kernels reach full speed by 64 images.
pub const CHUNKS: [usize; 5] = [64, 16, 4, 2, 1];

/// The largest chunk size that fits in `remaining` images.
fn chunk_for(remaining: usize) -> usize {
    CHUNKS
        .iter()
        .copied()
        .find(|&c| c <= remaining)
        .unwrap_or(1)
}

/// Plans kept at once. Each holds two activation buffers for its batch size, so a server that
/// sees many batch sizes must not keep them all; the least recently used goes first.
const MAX_PLANS: usize = 8;

struct Slot {
    key: (usize, i32),
    plan: Arc<Mutex<Plan>>,
    last_used: u64,
}

/// Runs a frozen network on compiled plans: one per batch size and OpenMP thread count (oneDNN
/// sizes a kernel's threading when it is made), built on first use. Concurrent callers with the
/// same batch size each get a plan of their own, up to the number of cores.
pub struct Engine {
    net: FrozenNet,
    precision: Precision,
    int8: Option<Int8Calibration>,
    macs_per_image: u64,
    slots: Mutex<(Vec<Slot>, u64)>,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Engine({} steps, {})",
            self.net.steps.len(),
            self.precision.name()
        )
    }
}

impl Engine {
    /// Compiles the batch-1 plan first, so a network oneDNN cannot run is refused here.
    /// [`Precision::Int8`] needs [`Engine::quantized`].
    pub fn new(
        net: FrozenNet,
        macs_per_image: u64,
        precision: Precision,
    ) -> Result<Engine, String> {
        Engine::build(net, macs_per_image, precision, None)
    }

    /// An int8 engine on the activation ranges of `calibration`.
    pub fn quantized(
        net: FrozenNet,
        macs_per_image: u64,
        calibration: Int8Calibration,
    ) -> Result<Engine, String> {
        Engine::build(net, macs_per_image, Precision::Int8, Some(calibration))
    }

    fn build(
        net: FrozenNet,
        macs_per_image: u64,
        precision: Precision,
        int8: Option<Int8Calibration>,
    ) -> Result<Engine, String> {
        let engine = Engine {
            net,
            precision,
            int8,
            macs_per_image,
            slots: Mutex::new((Vec::new(), 0)),
        };
        // The batch-1 plan is kept, not rebuilt on first use: single faces are the common call.
        let plan = kernels::threads_for_work(macs_per_image, || engine.plan_for(1))?;
        let kernels = plan
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .implementations();
        tracing::debug!(?kernels, "inference plan");
        Ok(engine)
    }

    pub fn precision(&self) -> Precision {
        self.precision
    }

    /// The number format and the instruction set, for reports: `f32, avx2`, `bf16,
    /// avx512_core_amx`, `int8, avx512_core_vnni`, `int8 7-bit weights, avx2`.
    pub fn describe(&self) -> String {
        match (self.precision, int8_weight_bits()) {
            (Precision::Int8, Some(7)) => format!("int8 7-bit weights, {}", cpu_isa()),
            (p, _) => format!("{}, {}", p.name(), cpu_isa()),
        }
    }

    /// Logits `[n, classes]` for `n` channels-first images. The batch runs in chunks of the
    /// sizes in [`CHUNKS`], so a caller that sees every batch size (photo analysis: the faces
    /// of a batch of photos) reuses a few plans instead of compiling one per size (about 5 ms
    /// each), and a plan's buffers never hold more than the largest chunk.
    pub fn logits(&self, nchw: &[f32], n: usize) -> Result<Vec<f32>, String> {
        let per_image = nchw.len() / n.max(1);
        kernels::threads_for_work(n as u64 * self.macs_per_image, || {
            let mut out = Vec::new();
            let mut start = 0;
            while start < n {
                let size = chunk_for(n - start);
                let plan = self.plan_for(size)?;
                let mut plan = plan.lock().unwrap_or_else(|e| e.into_inner());
                out.extend(plan.run(&nchw[start * per_image..(start + size) * per_image]));
                start += size;
            }
            Ok(out)
        })
    }

    /// A plan for `n` images under the current thread count that no one else is running, made
    /// if needed.
    fn plan_for(&self, n: usize) -> Result<Arc<Mutex<Plan>>, String> {
        let key = (n, kernels::current_threads());
        let cores = std::thread::available_parallelism().map_or(1, |c| c.get());
        {
            let mut guard = self.slots.lock().unwrap_or_else(|e| e.into_inner());
            let (slots, clock) = &mut *guard;
            *clock += 1;
            let now = *clock;
            let mut same = 0;
            for s in slots.iter_mut().filter(|s| s.key == key) {
                same += 1;
                if s.plan.try_lock().is_ok() {
                    s.last_used = now;
                    return Ok(s.plan.clone());
                }
            }
            // All busy: share one rather than build past the core count.
            if same >= cores {
                if let Some(s) = slots.iter_mut().find(|s| s.key == key) {
                    s.last_used = now;
                    return Ok(s.plan.clone());
                }
            }
        }
        let started = std::time::Instant::now();
        let plan = Arc::new(Mutex::new(Plan::build(
            &self.net,
            n,
            self.precision,
            self.int8.as_ref(),
        )?));
        tracing::debug!(
            batch = n,
            threads = key.1,
            ms = started.elapsed().as_secs_f64() * 1e3,
            "inference plan built"
        );
        let mut guard = self.slots.lock().unwrap_or_else(|e| e.into_inner());
        let (slots, clock) = &mut *guard;
        if slots.len() >= MAX_PLANS {
            if let Some(oldest) = (0..slots.len()).min_by_key(|&i| slots[i].last_used) {
                slots.swap_remove(oldest);
            }
        }
        slots.push(Slot {
            key,
            plan: plan.clone(),
            last_used: *clock,
        });
        Ok(plan)
    }
}
