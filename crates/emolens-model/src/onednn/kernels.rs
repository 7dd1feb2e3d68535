//! Safe wrappers over the oneDNN primitives: created once per shape and cached (creating one
//! JIT-compiles its kernel), then run on plain `f32` slices in channels-last (NHWC) layout.

use std::collections::HashMap;
use std::ffi::CStr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use super::ffi;

/// Geometry of a 2-D convolution over NHWC activations with OIHW weights.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ConvGeom {
    pub n: usize,
    pub ic: usize,
    pub ih: usize,
    pub iw: usize,
    pub oc: usize,
    pub oh: usize,
    pub ow: usize,
    pub kh: usize,
    pub kw: usize,
    pub groups: usize,
    pub stride: [usize; 2],
    pub pad_l: [usize; 2],
    pub pad_r: [usize; 2],
    pub bias: bool,
}

impl ConvGeom {
    pub fn src_len(&self) -> usize {
        self.n * self.ih * self.iw * self.ic
    }
    pub fn dst_len(&self) -> usize {
        self.n * self.oh * self.ow * self.oc
    }
    pub fn weight_len(&self) -> usize {
        self.oc * (self.ic / self.groups) * self.kh * self.kw
    }
}

/// Geometry of a pooling window over NHWC activations.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PoolGeom {
    pub n: usize,
    pub c: usize,
    pub ih: usize,
    pub iw: usize,
    pub oh: usize,
    pub ow: usize,
    pub kernel: [usize; 2],
    pub stride: [usize; 2],
    pub pad_l: [usize; 2],
    pub pad_r: [usize; 2],
    pub max: bool,
}

fn dims(v: &[usize]) -> Vec<i64> {
    v.iter().map(|&x| x as i64).collect()
}

/// Runs `fill` on an uninitialised buffer of `len` elements that it must write in full.
fn filled<T: Copy>(len: usize, what: &str, fill: impl FnOnce(*mut T) -> i32) -> Vec<T> {
    let mut v = Vec::<T>::with_capacity(len);
    let status = fill(v.as_mut_ptr());
    check(status, what);
    // SAFETY: the oneDNN primitive wrote every element of the `len`-element output buffer.
    unsafe { v.set_len(len) };
    v
}

/// oneDNN only fails at execution on a broken invariant (sizes were checked when the primitive
/// was created), so a failure here is a bug, not bad input.
fn check(status: i32, what: &str) {
    assert!(
        status == 0,
        "oneDNN {what} failed (status {status}); pass --kernels flex (EMOLENS_KERNELS=flex) to use burn's kernels and report this"
    );
}

/// A layer with weights (convolution or dense) and its primitives. Sizes are element counts of
/// the source, destination and weights, in the layouts the caller passes.
pub struct Layer {
    raw: *mut ffi::emo_layer,
    pub src_len: usize,
    pub dst_len: usize,
    pub weight_len: usize,
    /// Output channels (the bias length).
    pub oc: usize,
    pub bias: bool,
    /// Held while a primitive runs: with the library-managed scratchpad (Debian's build),
    /// one primitive must not run on two threads at once.
    exclusive: Mutex<()>,
}

// SAFETY: a `Layer` is the one owner of its C handle (`raw` is never copied out, and freed
// once, in `drop`), and the handle is not tied to the thread that made it: oneDNN's CPU
// primitives and memory descriptors may be used and destroyed on any thread.
unsafe impl Send for Layer {}
// SAFETY: `exclusive` is what makes sharing sound. A primitive must not run on two threads at
// once (the library-managed scratchpad of Debian's build), and every `&self` method that runs
// one (`forward`, `backward_data`, `backward_weights`) holds `exclusive` while it does. The
// other `&self` access, `implementation`, only queries the forward primitive's descriptor,
// which nothing changes after creation; the public fields are plain numbers.
unsafe impl Sync for Layer {}

impl Drop for Layer {
    fn drop(&mut self) {
        // SAFETY: `raw` came from emo_conv_create or emo_dense_create and is dropped once.
        unsafe { ffi::emo_layer_destroy(self.raw) }
    }
}

impl std::fmt::Debug for Layer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Layer(src {}, dst {}, weights {}, {})",
            self.src_len,
            self.dst_len,
            self.weight_len,
            self.implementation()
        )
    }
}

impl Layer {
    /// The kernel oneDNN chose (e.g. `brgconv:avx512_core`).
    pub fn implementation(&self) -> String {
        // SAFETY: the shim returns a static or primitive-owned C string.
        unsafe {
            let p = ffi::emo_layer_impl(self.raw);
            if p.is_null() {
                return "?".into();
            }
            CStr::from_ptr(p).to_string_lossy().into_owned()
        }
    }

    pub fn forward(&self, src: &[f32], w: &[f32], bias: Option<&[f32]>) -> Vec<f32> {
        assert_eq!((src.len(), w.len()), (self.src_len, self.weight_len));
        let b = bias.map_or(std::ptr::null(), |b| {
            assert_eq!(b.len(), self.oc);
            b.as_ptr()
        });
        let _running = self.exclusive.lock().unwrap_or_else(|e| e.into_inner());
        filled(self.dst_len, "forward pass", |dst| {
            // SAFETY: a live handle, run under `exclusive`; the inputs (and the bias, when the
            // layer has one) have the lengths asserted above and `dst` room for `dst_len`.
            unsafe { ffi::emo_layer_forward(self.raw, src.as_ptr(), w.as_ptr(), b, dst) }
        })
    }

    pub fn backward_data(&self, diff_dst: &[f32], w: &[f32]) -> Vec<f32> {
        assert_eq!((diff_dst.len(), w.len()), (self.dst_len, self.weight_len));
        let _running = self.exclusive.lock().unwrap_or_else(|e| e.into_inner());
        filled(self.src_len, "backward pass (data)", |ds| {
            // SAFETY: a live handle, run under `exclusive`; the inputs have the lengths asserted
            // above and `ds` room for `src_len`.
            unsafe { ffi::emo_layer_backward_data(self.raw, diff_dst.as_ptr(), w.as_ptr(), ds) }
        })
    }

    /// Gradients of the weights (in the caller's layout) and, with a bias, of the bias.
    pub fn backward_weights(&self, src: &[f32], diff_dst: &[f32]) -> (Vec<f32>, Option<Vec<f32>>) {
        assert_eq!((src.len(), diff_dst.len()), (self.src_len, self.dst_len));
        let mut db = self.bias.then(|| Vec::<f32>::with_capacity(self.oc));
        let dbp = db.as_mut().map_or(std::ptr::null_mut(), |v| v.as_mut_ptr());
        let _running = self.exclusive.lock().unwrap_or_else(|e| e.into_inner());
        let dw = filled(self.weight_len, "backward pass (weights)", |dw| {
            // SAFETY: as in `backward_data`; `dbp` is null without a bias, else has room for
            // the `oc` bias gradients.
            unsafe {
                ffi::emo_layer_backward_weights(self.raw, src.as_ptr(), diff_dst.as_ptr(), dw, dbp)
            }
        });
        if let Some(v) = db.as_mut() {
            // SAFETY: the primitive wrote all `oc` bias gradients with the weights.
            unsafe { v.set_len(self.oc) };
        }
        (dw, db)
    }
}

/// A dense layer `y[n, oc] = x[n, ic] . w[ic, oc] + b` (burn's weight layout).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct DenseGeom {
    pub n: usize,
    pub ic: usize,
    pub oc: usize,
    pub bias: bool,
}

pub struct BatchNorm {
    raw: *mut ffi::emo_bn,
    /// Elements of the activation: n * h * w * c.
    pub len: usize,
    pub channels: usize,
    pub relu: bool,
    workspace: usize,
    /// See `Layer::exclusive`.
    exclusive: Mutex<()>,
}

// SAFETY: the one owner of its C handle, which is not tied to a thread: as for `Layer`.
unsafe impl Send for BatchNorm {}
// SAFETY: as for `Layer`, `exclusive` makes sharing sound: every `&self` method that runs a
// primitive (`forward_training`, `forward_inference`, `backward`) holds it while it does; the
// fields are plain numbers, read only.
unsafe impl Sync for BatchNorm {}

impl Drop for BatchNorm {
    fn drop(&mut self) {
        // SAFETY: `raw` came from emo_bn_create and is dropped once.
        unsafe { ffi::emo_bn_destroy(self.raw) }
    }
}

impl std::fmt::Debug for BatchNorm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "BatchNorm(len {}, c {}, relu {})",
            self.len, self.channels, self.relu
        )
    }
}

/// What a training forward pass of batch norm keeps for its backward pass.
#[derive(Debug, Clone)]
pub struct BnSaved {
    pub mean: Vec<f32>,
    pub var: Vec<f32>,
    pub workspace: Vec<u8>,
}

impl BatchNorm {
    /// Normalises with the batch's own statistics; returns the output and what backward needs
    /// (the mean and biased variance also feed the running statistics).
    pub fn forward_training(
        &self,
        src: &[f32],
        scale: &[f32],
        shift: &[f32],
    ) -> (Vec<f32>, BnSaved) {
        assert_eq!(src.len(), self.len);
        assert_eq!((scale.len(), shift.len()), (self.channels, self.channels));
        let mut mean = Vec::<f32>::with_capacity(self.channels);
        let mut var = Vec::<f32>::with_capacity(self.channels);
        let mut workspace = Vec::<u8>::with_capacity(self.workspace);
        let _running = self.exclusive.lock().unwrap_or_else(|e| e.into_inner());
        // SAFETY: a live handle, run under `exclusive`; the inputs have the lengths asserted
        // above and every output has room for what the primitive writes: `len` values, the
        // `channels` statistics and the workspace size the primitive reported.
        let dst = filled(self.len, "batch norm forward", |dst| unsafe {
            ffi::emo_bn_forward_training(
                self.raw,
                src.as_ptr(),
                scale.as_ptr(),
                shift.as_ptr(),
                dst,
                mean.as_mut_ptr(),
                var.as_mut_ptr(),
                workspace.as_mut_ptr().cast(),
            )
        });
        // SAFETY: the training primitive wrote the statistics and, with a fused ReLU, the
        // workspace it reported the size of.
        unsafe {
            mean.set_len(self.channels);
            var.set_len(self.channels);
            workspace.set_len(self.workspace);
        }
        (
            dst,
            BnSaved {
                mean,
                var,
                workspace,
            },
        )
    }

    pub fn forward_inference(
        &self,
        src: &[f32],
        scale: &[f32],
        shift: &[f32],
        mean: &[f32],
        var: &[f32],
    ) -> Vec<f32> {
        assert_eq!(src.len(), self.len);
        let _running = self.exclusive.lock().unwrap_or_else(|e| e.into_inner());
        // SAFETY: a live handle, run under `exclusive`; `src` has the length asserted above and
        // the per-channel inputs `channels` values (the primitive's shape), `dst` room for `len`.
        filled(self.len, "batch norm inference", |dst| unsafe {
            ffi::emo_bn_forward_inference(
                self.raw,
                src.as_ptr(),
                scale.as_ptr(),
                shift.as_ptr(),
                mean.as_ptr(),
                var.as_ptr(),
                dst,
            )
        })
    }

    /// Gradients of the input, the scale (gamma) and the shift (beta).
    pub fn backward(
        &self,
        src: &[f32],
        saved: &BnSaved,
        diff_dst: &[f32],
        scale: &[f32],
        shift: &[f32],
    ) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
        assert_eq!((src.len(), diff_dst.len()), (self.len, self.len));
        let mut ds = Vec::<f32>::with_capacity(self.channels);
        let mut dh = Vec::<f32>::with_capacity(self.channels);
        let _running = self.exclusive.lock().unwrap_or_else(|e| e.into_inner());
        // SAFETY: a live handle, run under `exclusive`; the inputs have the lengths asserted
        // above or were written by the training forward pass of this primitive (`saved`), and
        // the outputs have room for `len` and `channels` values.
        let dx = filled(self.len, "batch norm backward", |dx| unsafe {
            ffi::emo_bn_backward(
                self.raw,
                src.as_ptr(),
                saved.mean.as_ptr(),
                saved.var.as_ptr(),
                diff_dst.as_ptr(),
                scale.as_ptr(),
                shift.as_ptr(),
                saved.workspace.as_ptr().cast(),
                dx,
                ds.as_mut_ptr(),
                dh.as_mut_ptr(),
            )
        });
        // SAFETY: the backward primitive wrote both per-channel gradients.
        unsafe {
            ds.set_len(self.channels);
            dh.set_len(self.channels);
        }
        (dx, ds, dh)
    }
}

pub struct Pool {
    raw: *mut ffi::emo_pool,
    pub geom: PoolGeom,
    workspace: usize,
    /// See `Layer::exclusive`.
    exclusive: Mutex<()>,
}

// SAFETY: the one owner of its C handle, which is not tied to a thread: as for `Layer`.
unsafe impl Send for Pool {}
// SAFETY: as for `Layer`, `exclusive` makes sharing sound: `forward` and `backward`, the
// `&self` methods that run a primitive, hold it while they do; `geom` and `workspace` are
// plain numbers, read only.
unsafe impl Sync for Pool {}

impl Drop for Pool {
    fn drop(&mut self) {
        // SAFETY: `raw` came from emo_pool_create and is dropped once.
        unsafe { ffi::emo_pool_destroy(self.raw) }
    }
}

impl std::fmt::Debug for Pool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Pool({:?})", self.geom)
    }
}

impl Pool {
    fn src_len(&self) -> usize {
        let g = &self.geom;
        g.n * g.ih * g.iw * g.c
    }
    fn dst_len(&self) -> usize {
        let g = &self.geom;
        g.n * g.oh * g.ow * g.c
    }

    /// The pooled output and, in training, the workspace backward needs (max pooling's argmax).
    pub fn forward(&self, src: &[f32], training: bool) -> (Vec<f32>, Vec<u8>) {
        assert_eq!(src.len(), self.src_len());
        let ws_len = if training { self.workspace } else { 0 };
        let mut ws = Vec::<u8>::with_capacity(ws_len);
        let _running = self.exclusive.lock().unwrap_or_else(|e| e.into_inner());
        // SAFETY: a live handle, run under `exclusive`; `src` has the length asserted above,
        // `dst` room for the output and `ws` for the workspace a training pass writes.
        let dst = filled(self.dst_len(), "pooling forward", |dst| unsafe {
            ffi::emo_pool_forward(
                self.raw,
                src.as_ptr(),
                dst,
                ws.as_mut_ptr().cast(),
                training as i32,
            )
        });
        // SAFETY: a training forward pass wrote the whole workspace.
        unsafe { ws.set_len(ws_len) };
        (dst, ws)
    }

    pub fn backward(&self, diff_dst: &[f32], workspace: &[u8]) -> Vec<f32> {
        assert_eq!(diff_dst.len(), self.dst_len());
        assert_eq!(workspace.len(), self.workspace);
        let _running = self.exclusive.lock().unwrap_or_else(|e| e.into_inner());
        // SAFETY: a live handle, run under `exclusive`; the inputs have the lengths asserted
        // above and `ds` room for the input gradient.
        filled(self.src_len(), "pooling backward", |ds| unsafe {
            ffi::emo_pool_backward(self.raw, diff_dst.as_ptr(), workspace.as_ptr().cast(), ds)
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Kind {
    Conv(ConvGeom, bool),
    Dense(DenseGeom, bool),
    Bn([usize; 4], u32, bool, bool),
    Pool(PoolGeom, bool),
}

/// A primitive is made for a shape and for the OpenMP thread count in force when it is made
/// (it keeps that count when run).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct Key(Kind, i32);

/// Forward passes up to this many multiply-accumulates run on one thread: sharing so little
/// work only adds barrier waits. Measured at batch 1: vgg_xs (66 M) took 1.5 ms on one thread
/// against 2.0 ms on two; model_2_best (about 630 M) 7.8 ms on one against 5.8 ms on two.
pub const SINGLE_THREAD_MAX_MACS: u64 = 200_000_000;

/// The calling thread's OpenMP thread count (what a primitive made now would use).
pub fn current_threads() -> i32 {
    // SAFETY: reads the calling thread's OpenMP thread count.
    unsafe { ffi::emo_get_threads() }
}

/// Runs `f` with oneDNN limited to one thread on the calling thread when `macs` is small.
pub fn threads_for_work<T>(macs: u64, f: impl FnOnce() -> T) -> T {
    if macs > SINGLE_THREAD_MAX_MACS {
        return f();
    }
    // SAFETY: reads/sets the calling thread's OpenMP thread count.
    let before = unsafe { ffi::emo_get_threads() };
    if before == 1 {
        return f();
    }
    // SAFETY: sets the calling thread's OpenMP thread count.
    unsafe { ffi::emo_set_threads(1) };
    struct Restore(i32);
    impl Drop for Restore {
        fn drop(&mut self) {
            // SAFETY: as above; restores the caller's setting even if `f` panics.
            unsafe { ffi::emo_set_threads(self.0) }
        }
    }
    let _restore = Restore(before);
    f()
}

#[derive(Clone)]
enum Cached {
    Layer(Arc<Layer>),
    Bn(Arc<BatchNorm>),
    Pool(Arc<Pool>),
}

/// Primitives are kept per shape; a server seeing many batch sizes would grow this without end,
/// so it is cleared past a bound (re-creating a primitive costs about a millisecond).
const CACHE_LIMIT: usize = 512;

fn cache() -> &'static Mutex<HashMap<Key, Cached>> {
    static CACHE: OnceLock<Mutex<HashMap<Key, Cached>>> = OnceLock::new();
    CACHE.get_or_init(|| Mutex::new(HashMap::new()))
}

fn cached(kind: Kind, make: impl FnOnce() -> Result<Cached, i32>) -> Result<Cached, i32> {
    // SAFETY: reads the calling thread's OpenMP thread count.
    let key = Key(kind, unsafe { ffi::emo_get_threads() });
    let mut map = cache().lock().unwrap_or_else(|e| e.into_inner());
    if let Some(c) = map.get(&key) {
        return Ok(c.clone());
    }
    if map.len() >= CACHE_LIMIT {
        map.clear();
    }
    let made = make()?;
    map.insert(key, made.clone());
    Ok(made)
}

/// A layer primitive from the cache, made by `create` (an `emo_*_create` call that fills the
/// handle) when missing. Sizes are element counts: source, destination, weights, outputs.
fn cached_layer(
    kind: Kind,
    [src_len, dst_len, weight_len, oc]: [usize; 4],
    bias: bool,
    create: impl FnOnce(&mut *mut ffi::emo_layer) -> i32,
) -> Result<Arc<Layer>, i32> {
    match cached(kind, || {
        let mut raw = std::ptr::null_mut();
        let s = create(&mut raw);
        if s != 0 {
            return Err(s);
        }
        Ok(Cached::Layer(Arc::new(Layer {
            raw,
            src_len,
            dst_len,
            weight_len,
            oc,
            bias,
            exclusive: Mutex::new(()),
        })))
    })? {
        Cached::Layer(l) => Ok(l),
        _ => unreachable!("keys are typed"),
    }
}

/// The convolution primitive for `geom` (`training` adds the backward passes).
pub fn conv(geom: ConvGeom, training: bool) -> Result<Arc<Layer>, i32> {
    let sizes = [geom.src_len(), geom.dst_len(), geom.weight_len(), geom.oc];
    cached_layer(Kind::Conv(geom, training), sizes, geom.bias, |raw| {
        let d = dims(&[
            geom.n,
            geom.ic,
            geom.ih,
            geom.iw,
            geom.oc,
            geom.oh,
            geom.ow,
            geom.kh,
            geom.kw,
            geom.groups,
        ]);
        // SAFETY: all pointers are to live arrays of the lengths the shim reads.
        unsafe {
            ffi::emo_conv_create(
                raw,
                d.as_ptr(),
                dims(&geom.stride).as_ptr(),
                dims(&geom.pad_l).as_ptr(),
                dims(&geom.pad_r).as_ptr(),
                geom.bias as i32,
                training as i32,
            )
        }
    })
}

/// The dense-layer primitive for `geom` (`training` adds the backward passes).
pub fn dense(geom: DenseGeom, training: bool) -> Result<Arc<Layer>, i32> {
    let sizes = [
        geom.n * geom.ic,
        geom.n * geom.oc,
        geom.ic * geom.oc,
        geom.oc,
    ];
    cached_layer(Kind::Dense(geom, training), sizes, geom.bias, |raw| {
        // SAFETY: plain values and an out-pointer.
        unsafe {
            ffi::emo_dense_create(
                raw,
                geom.n as i64,
                geom.ic as i64,
                geom.oc as i64,
                geom.bias as i32,
                training as i32,
            )
        }
    })
}

/// Batch norm over the last (channel) axis of an `[n, h, w, c]` activation.
pub fn batch_norm(
    shape: [usize; 4],
    eps: f32,
    relu: bool,
    training: bool,
) -> Result<Arc<BatchNorm>, i32> {
    match cached(Kind::Bn(shape, eps.to_bits(), relu, training), || {
        let [n, h, w, c] = shape;
        let mut raw = std::ptr::null_mut();
        // SAFETY: plain values and an out-pointer.
        let s = unsafe {
            ffi::emo_bn_create(
                &mut raw,
                n as i64,
                c as i64,
                h as i64,
                w as i64,
                eps,
                relu as i32,
                training as i32,
            )
        };
        if s != 0 {
            return Err(s);
        }
        // SAFETY: `raw` is a live handle.
        let workspace = unsafe { ffi::emo_bn_workspace_bytes(raw) };
        Ok(Cached::Bn(Arc::new(BatchNorm {
            raw,
            len: n * h * w * c,
            channels: c,
            relu,
            workspace,
            exclusive: Mutex::new(()),
        })))
    })? {
        Cached::Bn(b) => Ok(b),
        _ => unreachable!("keys are typed"),
    }
}

pub fn pool(geom: PoolGeom, training: bool) -> Result<Arc<Pool>, i32> {
    match cached(Kind::Pool(geom, training), || {
        let d = dims(&[geom.n, geom.c, geom.ih, geom.iw, geom.oh, geom.ow]);
        let mut raw = std::ptr::null_mut();
        // SAFETY: all pointers are to live arrays of the lengths the shim reads.
        let s = unsafe {
            ffi::emo_pool_create(
                &mut raw,
                d.as_ptr(),
                dims(&geom.kernel).as_ptr(),
                dims(&geom.stride).as_ptr(),
                dims(&geom.pad_l).as_ptr(),
                dims(&geom.pad_r).as_ptr(),
                geom.max as i32,
                training as i32,
            )
        };
        if s != 0 {
            return Err(s);
        }
        // SAFETY: `raw` is a live handle.
        let workspace = unsafe { ffi::emo_pool_workspace_bytes(raw) };
        Ok(Cached::Pool(Arc::new(Pool {
            raw,
            geom,
            workspace,
            exclusive: Mutex::new(()),
        })))
    })? {
        Cached::Pool(p) => Ok(p),
        _ => unreachable!("keys are typed"),
    }
}

static SWITCHED_OFF: AtomicBool = AtomicBool::new(false);

/// Turns the oneDNN kernels off or back on for this process (parity tests and benchmarks
/// compare both paths in one run; users pass `--kernels flex`, see [`crate::runtime`]).
pub fn set_enabled(on: bool) {
    SWITCHED_OFF.store(!on, Ordering::SeqCst);
}

/// Whether the oneDNN kernels run here: built in, not switched off ([`crate::runtime::Kernels`]
/// `flex`, read once, or [`set_enabled`]), and the library initialised.
pub fn ready() -> bool {
    static INIT: OnceLock<bool> = OnceLock::new();
    if SWITCHED_OFF.load(Ordering::Relaxed) {
        return false;
    }
    *INIT.get_or_init(|| {
        if crate::runtime::options().kernels == crate::runtime::Kernels::Flex {
            return false;
        }
        // SAFETY: idempotent engine creation.
        let ok = unsafe { ffi::emo_dnnl_init() } == 0;
        if !ok {
            tracing::warn!("oneDNN did not initialise; using burn's flex kernels");
        }
        ok
    })
}
