//! [`EmotionClassifier`] over a burn network: the one inference path used by `predict`, `eval`,
//! `analyze` and the server.

use std::path::Path;
use std::sync::Arc;

use burn::module::Module;
use burn::tensor::{Device, Tensor, TensorData};
use emolens_core::{CoreError, EmotionClassifier, ModelMeta};

use crate::error::ModelError;
use crate::file::ModelFile;
use crate::net::Network;

/// The bundled default model's bytes, embedded at build time (see `build.rs`).
#[cfg(emolens_bundled_model)]
pub const BUNDLED_MODEL: Option<&[u8]> = Some(include_bytes!(env!("EMOLENS_BUNDLED_MODEL")));
#[cfg(not(emolens_bundled_model))]
pub const BUNDLED_MODEL: Option<&[u8]> = None;

/// The bundled fast model's bytes (a network of a quarter of the default's multiply-accumulates,
/// for CPUs whose int8 kernels are slow), embedded at build time when `models/fast.emolens`
/// exists.
#[cfg(emolens_bundled_fast_model)]
pub const BUNDLED_FAST_MODEL: Option<&[u8]> =
    Some(include_bytes!(env!("EMOLENS_BUNDLED_FAST_MODEL")));
#[cfg(not(emolens_bundled_fast_model))]
pub const BUNDLED_FAST_MODEL: Option<&[u8]> = None;

pub use crate::runtime::Bundled;

/// Whether this CPU runs the accurate model's int8 plan fast: oneDNN kernels with AVX-512, VNNI
/// or AMX. Measured (bench/RESULTS.md, "per CPU class"): one face in about 0.47 ms with AVX-512
/// VNNI, 1.44 ms capped at AVX2, where the fast model takes 0.44 ms. Used to suggest the fast
/// model, never to switch to it.
pub fn cpu_runs_accurate_fast() -> bool {
    let isa = crate::onednn::cpu_isa();
    isa.starts_with("avx512") || isa.contains("vnni") || isa.contains("amx")
}

/// The bytes of the bundled model `choice`.
pub fn bundled_model(choice: Bundled) -> Result<&'static [u8], ModelError> {
    let (bytes, file) = match choice {
        Bundled::Accurate => (BUNDLED_MODEL, "default.emolens"),
        Bundled::Fast => (BUNDLED_FAST_MODEL, "fast.emolens"),
    };
    bytes.ok_or_else(|| ModelError::ModelFile {
        source_name: "bundled".into(),
        detail: format!(
            "this build has no bundled {} model (models/{file} was missing at build time); pass --model FILE",
            choice.as_str()
        ),
    })
}

/// A network ready for inference on `[channels, height, width]` inputs: compiled to a oneDNN
/// plan (see [`crate::onednn::plan`]) when it runs on the CPU and every layer has a kernel
/// there, otherwise run layer by layer in burn. The one forward path of `predict`, `eval`,
/// `analyze`, the server and the inference benchmarks.
pub struct InferenceNet {
    net: Network,
    device: Device,
    input: [usize; 3],
    #[cfg(emolens_onednn)]
    engine: Option<crate::onednn::plan::Engine>,
}

impl InferenceNet {
    /// `name` labels the log line that says when a network cannot be compiled.
    pub fn new(net: Network, input: [usize; 3], device: &Device, name: &str) -> Self {
        InferenceNet::with_int8(net, input, device, name, None)
    }

    /// As [`InferenceNet::new`], running in int8 where the CPU has VNNI when `int8` (the
    /// model file's calibration) is given; see [`crate::onednn::plan::Precision::for_model`].
    pub fn with_int8(
        net: Network,
        input: [usize; 3],
        device: &Device,
        name: &str,
        int8: Option<emolens_core::Int8Calibration>,
    ) -> Self {
        let net = net.valid();
        #[cfg(emolens_onednn)]
        let engine = compile(&net, input, device, name, int8);
        #[cfg(not(emolens_onednn))]
        let _ = (name, int8);
        InferenceNet {
            net,
            device: device.clone(),
            input,
            #[cfg(emolens_onednn)]
            engine,
        }
    }

    /// How forward passes run, for reports and `/info`: the plan's number format and the
    /// instruction set oneDNN runs on (`onednn plan (bf16, avx512_core_amx)`, `onednn plan
    /// (int8 7-bit weights, avx2)`), or the layer-by-layer kernels (`onednn layers`, `flex
    /// layers`).
    pub fn runtime(&self) -> String {
        #[cfg(emolens_onednn)]
        if let Some(engine) = self
            .engine
            .as_ref()
            .filter(|_| crate::onednn::kernels::ready())
        {
            return format!("onednn plan ({})", engine.describe());
        }
        format!("{} layers", crate::onednn::cpu_kernels())
    }

    /// Whether forward passes run on a compiled oneDNN plan.
    pub fn compiled(&self) -> bool {
        #[cfg(emolens_onednn)]
        return self.engine.is_some() && crate::onednn::kernels::ready();
        #[cfg(not(emolens_onednn))]
        false
    }

    /// Logits for `n` channels-first images, `n x classes` row-major.
    pub fn logits(&self, inputs: &[f32], n: usize) -> Result<Vec<f32>, ModelError> {
        let [c, h, w] = self.input;
        if n == 0 || inputs.len() != n * c * h * w {
            return Err(ModelError::Inference(format!(
                "expected {n} images of {} values ({c}x{h}x{w}), got {} values",
                c * h * w,
                inputs.len()
            )));
        }
        #[cfg(emolens_onednn)]
        if let Some(engine) = self
            .engine
            .as_ref()
            .filter(|_| crate::onednn::kernels::ready())
        {
            return engine.logits(inputs, n).map_err(ModelError::Inference);
        }
        let data = TensorData::new(inputs.to_vec(), [n, c, h, w]);
        self.net
            .forward(Tensor::from_data(data, &self.device))
            .into_data()
            .try_to_vec::<f32>()
            .map_err(|e| ModelError::Inference(format!("reading logits: {e:?}")))
    }
}

/// The network compiled for oneDNN, or `None` (logged with the reason).
#[cfg(emolens_onednn)]
fn compile(
    net: &Network,
    input: [usize; 3],
    device: &Device,
    name: &str,
    int8: Option<emolens_core::Int8Calibration>,
) -> Option<crate::onednn::plan::Engine> {
    let on_cpu = Tensor::<1>::zeros([1], device)
        .try_into_primitive::<burn::backend::Flex>()
        .is_ok();
    if !on_cpu || !crate::onednn::kernels::ready() {
        return None;
    }
    use crate::onednn::plan::{Engine, Precision};
    let macs = net.macs_per_image();
    match net.to_frozen(input).and_then(|frozen| {
        let precision = Precision::for_model(int8.is_some());
        match int8 {
            Some(calibration) if precision == Precision::Int8 => {
                Engine::quantized(frozen.clone(), macs, calibration).or_else(|reason| {
                    tracing::warn!(model = name, %reason, "int8 plan refused; running in floating point");
                    Engine::new(frozen, macs, Precision::auto())
                })
            }
            _ => Engine::new(frozen, macs, precision),
        }
    }) {
        Ok(engine) => Some(engine),
        Err(reason) => {
            tracing::info!(model = name, %reason, "running the model layer by layer");
            None
        }
    }
}

/// A loaded model, ready for inference.
pub struct BurnClassifier {
    meta: ModelMeta,
    net: InferenceNet,
}

impl std::fmt::Debug for BurnClassifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BurnClassifier")
            .field("model", &self.meta.name)
            .field("compiled", &self.net.compiled())
            .finish()
    }
}

impl BurnClassifier {
    pub fn from_bytes(
        bytes: &[u8],
        source_name: &str,
        device: &Device,
    ) -> Result<Self, ModelError> {
        let file = ModelFile::decode(bytes, source_name)?;
        let spec = &file.meta.input;
        let input = [spec.channels(), spec.height as usize, spec.width as usize];
        let net = InferenceNet::with_int8(
            file.network(device)?,
            input,
            device,
            source_name,
            file.meta.int8.clone(),
        );
        Ok(BurnClassifier {
            meta: file.meta,
            net,
        })
    }

    /// Whether predictions run on a compiled oneDNN plan (else layer by layer in burn).
    pub fn compiled(&self) -> bool {
        self.net.compiled()
    }

    /// See [`InferenceNet::runtime`].
    pub fn runtime(&self) -> String {
        self.net.runtime()
    }

    /// Logits for `n` preprocessed images, `n x classes` row-major.
    pub fn logits(&self, inputs: &[f32], n: usize) -> Result<Vec<f32>, ModelError> {
        self.net.logits(inputs, n)
    }
}

/// Row-wise softmax of `rows x k` logits, in place.
fn softmax_rows(logits: &mut [f32], k: usize) {
    for row in logits.chunks_mut(k) {
        let max = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        let mut sum = 0.0;
        for v in row.iter_mut() {
            *v = (*v - max).exp();
            sum += *v;
        }
        row.iter_mut().for_each(|v| *v /= sum);
    }
}

/// Planar (CHW) images, each row reversed: the mirror images flip TTA classifies.
pub fn mirror(inputs: &[f32], width: usize) -> Vec<f32> {
    emolens_core::mirror_rows(inputs, width)
}

impl EmotionClassifier for BurnClassifier {
    fn meta(&self) -> &ModelMeta {
        &self.meta
    }

    fn runtime(&self) -> String {
        self.net.runtime()
    }

    fn predict(&self, inputs: &[f32], n: usize) -> Result<Vec<Vec<f32>>, CoreError> {
        if n == 0 {
            return Ok(Vec::new());
        }
        let k = self.meta.classes.len();
        let width = self.meta.input.width as usize;
        let per_image = inputs.len() / n;
        let mut p = self.probabilities(inputs, n)?;
        if self.meta.flip_tta {
            // The images the first pass is unsure of (all of them without a gate) also run
            // mirrored, and their answer is the mean of the two probability vectors: on
            // FER2013 most answers are confident, and a second opinion changes few of those.
            let below = self.meta.flip_tta_below.unwrap_or(f32::INFINITY);
            let unsure: Vec<usize> = (0..n)
                .filter(|&i| {
                    p[i * k..(i + 1) * k]
                        .iter()
                        .copied()
                        .fold(f32::MIN, f32::max)
                        < below
                })
                .collect();
            if !unsure.is_empty() {
                let mirrored: Vec<f32> = unsure
                    .iter()
                    .flat_map(|&i| mirror(&inputs[i * per_image..(i + 1) * per_image], width))
                    .collect();
                let q = self.probabilities(&mirrored, unsure.len())?;
                for (j, &i) in unsure.iter().enumerate() {
                    for c in 0..k {
                        p[i * k + c] = (p[i * k + c] + q[j * k + c]) / 2.0;
                    }
                }
            }
        }
        Ok(p.chunks(k).map(|row| row.to_vec()).collect())
    }
}

impl BurnClassifier {
    /// Softmax probabilities of one pass (no test-time augmentation) for `rows` images,
    /// `rows x classes` row-major.
    pub fn probabilities(&self, inputs: &[f32], rows: usize) -> Result<Vec<f32>, CoreError> {
        let mut flat = self
            .logits(inputs, rows)
            .map_err(|e| CoreError::Inference(e.to_string()))?;
        let k = self.meta.classes.len();
        if flat.len() != rows * k {
            return Err(CoreError::Inference(format!(
                "the network gave {} outputs for {rows} images of {k} classes",
                flat.len()
            )));
        }
        softmax_rows(&mut flat, k);
        Ok(flat)
    }
}

/// The device inference runs on: the CPU (flex backend) unless a GPU backend was compiled in
/// and the device asked for ([`crate::runtime::options`]: `--device`, or `EMOLENS_DEVICE` for
/// library users) is it. A GPU asked for in a build without its backend runs on the CPU, with a
/// warning.
pub fn inference_device() -> Device {
    use crate::runtime::DeviceKind;
    match crate::runtime::options().device {
        #[cfg(feature = "cuda")]
        DeviceKind::Cuda => Device::cuda(0),
        #[cfg(feature = "wgpu")]
        DeviceKind::Wgpu => Device::wgpu(Default::default()),
        DeviceKind::Cpu => Device::flex(),
        #[allow(unreachable_patterns)]
        other => {
            tracing::warn!(
                "device {other:?} asked but this build has no such backend (build with --features cuda or wgpu); using the CPU"
            );
            Device::flex()
        }
    }
}

/// Loads a model: the given file, or, when `path` is `None`, the bundled model the runtime
/// options name (`--bundled` / `EMOLENS_BUNDLED`: `accurate` by default, or `fast`; see
/// [`Bundled`]).
pub fn load_classifier(path: Option<&Path>) -> Result<Arc<dyn EmotionClassifier>, ModelError> {
    let device = inference_device();
    let c = match path {
        Some(p) => {
            let bytes = std::fs::read(p).map_err(|e| ModelError::Io {
                path: p.to_path_buf(),
                detail: format!("cannot read model file: {e}"),
            })?;
            BurnClassifier::from_bytes(&bytes, &p.display().to_string(), &device)?
        }
        None => {
            let choice = crate::runtime::options().bundled;
            let c = BurnClassifier::from_bytes(
                bundled_model(choice)?,
                &format!("bundled {} model", choice.as_str()),
                &device,
            )?;
            if choice == Bundled::Accurate
                && BUNDLED_FAST_MODEL.is_some()
                && !cpu_runs_accurate_fast()
            {
                tracing::info!(
                    isa = crate::onednn::cpu_isa(),
                    "this CPU has no AVX-512 or VNNI int8 kernels: the bundled fast model (EMOLENS_BUNDLED=fast) runs about 3x quicker here, at lower accuracy (MODEL_CARD.md)"
                );
            }
            c
        }
    };
    Ok(Arc::new(c))
}
