//! Speed measurements on synthetic data: training steps (forward, backward, optimiser) and
//! inference, for any architecture. Used by `emolens arch bench` and the Keras comparison in
//! `bench/train_speed/`.

use std::time::Instant;

use emolens_model::burn::module::{Module, ModuleVisitor, Param};
use emolens_model::burn::nn::loss::CrossEntropyLossConfig;
use emolens_model::burn::optim::momentum::MomentumConfig;
use emolens_model::burn::optim::{GradientsParams, ModuleOptimizer};
use emolens_model::burn::tensor::{Device, Distribution, Int, Tensor, TensorData};
use emolens_model::{Architecture, InferenceNet, Network};
use serde::Serialize;

use crate::error::TrainError;
use crate::fused_optim::FusedSgd;

#[derive(Debug, Clone, Serialize)]
pub struct SpeedReport {
    pub arch: String,
    pub channels: usize,
    pub batch_size: usize,
    pub train_steps: usize,
    /// Median over the measured steps.
    pub train_images_per_s: f64,
    pub infer_batch: usize,
    pub infer_images_per_s: f64,
    /// Median latency of one image, batch 1, in milliseconds.
    pub infer_latency_ms: f64,
    /// Which CPU kernels ran the convolutions (`onednn` or `flex`).
    pub kernels: String,
    /// How inference ran: `onednn plan (bf16|f32)` (weights packed, batch norms folded,
    /// activations fused) or layer by layer.
    pub infer_runtime: String,
    /// Worker threads of the kernels (rayon for flex, OpenMP for oneDNN).
    pub threads: usize,
    /// Peak resident memory of the process, in MiB (Linux only).
    pub peak_rss_mib: Option<f64>,
}

/// The process's peak resident set size (VmHWM), in MiB.
fn peak_rss_mib() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}

/// Threads the convolution kernels use: OpenMP's for oneDNN, rayon's for flex.
fn kernel_threads(kernels: &str) -> usize {
    let from_env = |name: &str| std::env::var(name).ok().and_then(|v| v.parse().ok());
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    match kernels {
        "onednn" => from_env("OMP_NUM_THREADS").unwrap_or(cores),
        _ => from_env("RAYON_NUM_THREADS").unwrap_or(cores),
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    if v.is_empty() {
        return f64::NAN;
    }
    v[v.len() / 2]
}

/// The first element of a module's first float parameter (read back from the device).
fn first_weight<M: Module>(module: &M) -> Option<f32> {
    struct First(Option<f32>);
    impl ModuleVisitor for First {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            if self.0.is_none() {
                let t = param.val().inner().flatten::<1>(0, D.saturating_sub(1));
                self.0 = Some(t.slice(0..1).into_scalar::<f32>());
            }
        }
    }
    let mut first = First(None);
    module.visit(&mut first);
    first.0
}

/// What to time.
#[derive(Debug, Clone, Copy)]
pub struct SpeedSpec {
    pub channels: usize,
    /// Input side in pixels.
    pub size: usize,
    pub batch_size: usize,
    /// Timed steps, after `warmup` untimed ones.
    pub steps: usize,
    pub warmup: usize,
    /// Batch size of the inference throughput figure.
    pub infer_batch: usize,
}

/// Times SGD training steps at `batch_size`, then inference at `infer_batch` and at batch 1.
pub fn speed(
    arch: &Architecture,
    spec: SpeedSpec,
    device: &Device,
) -> Result<SpeedReport, TrainError> {
    let SpeedSpec {
        channels,
        size,
        batch_size,
        steps,
        warmup,
        infer_batch,
    } = spec;
    let summary = arch.summarise(channels, size, size)?;
    let classes = summary.outputs;
    let ad = device.clone().autodiff();
    ad.seed(1);
    let mut model = Network::new(arch, channels, size, size, &ad)?;
    // Keras' side (bench/train_speed/keras_speed.py) runs SGD with momentum 0.9; the trainer's
    // fused optimiser runs the same update.
    let mut optim = ModuleOptimizer::from(FusedSgd::new(
        Some(MomentumConfig {
            momentum: 0.9,
            dampening: 0.0,
            nesterov: false,
        }),
        None,
    ));
    let loss_fn = CrossEntropyLossConfig::new().init(&ad);
    let x = Tensor::<4>::random(
        [batch_size, channels, size, size],
        Distribution::Uniform(0.0, 1.0),
        &ad,
    );
    let labels: Vec<i64> = (0..batch_size).map(|i| (i % classes) as i64).collect();
    let y = Tensor::<1, Int>::from_data(TensorData::new(labels, [batch_size]), &ad);
    let mut times = Vec::new();
    for i in 0..warmup + steps {
        let t = Instant::now();
        let loss = loss_fn.forward(model.forward(x.clone()), y.clone());
        let grads = GradientsParams::from_grads(loss.backward(), &model);
        model = optim.step(0.01, model, grads);
        // Flex and oneDNN run eagerly, so the step is done when `step` returns; reading one
        // updated weight makes sure of it before the clock stops, at no cost to the timing.
        std::hint::black_box(first_weight(&model));
        if i >= warmup {
            times.push(batch_size as f64 / t.elapsed().as_secs_f64());
        }
    }
    let train_images_per_s = median(times);

    // Inference as `predict` and the server run it: compiled to a oneDNN plan where possible.
    let net = InferenceNet::new(model.valid(), [channels, size, size], device, &arch.name);
    let random = |n: usize| {
        let t = Tensor::<4>::random(
            [n, channels, size, size],
            Distribution::Uniform(0.0, 1.0),
            device,
        );
        t.into_data()
            .convert::<f32>()
            .try_to_vec::<f32>()
            .unwrap_or_default()
    };
    let xi = random(infer_batch);
    let mut thr = Vec::new();
    for i in 0..warmup + steps {
        let t = Instant::now();
        net.logits(&xi, infer_batch)?;
        if i >= warmup {
            thr.push(infer_batch as f64 / t.elapsed().as_secs_f64());
        }
    }
    let x1 = random(1);
    let mut lat = Vec::new();
    for i in 0..(warmup + steps) * 10 {
        let t = Instant::now();
        net.logits(&x1, 1)?;
        if i >= warmup {
            lat.push(t.elapsed().as_secs_f64() * 1000.0);
        }
    }
    Ok(SpeedReport {
        arch: arch.name.clone(),
        channels,
        batch_size,
        train_steps: steps,
        train_images_per_s,
        infer_batch,
        infer_images_per_s: median(thr),
        infer_latency_ms: median(lat),
        kernels: emolens_model::onednn::cpu_kernels().to_string(),
        infer_runtime: net.runtime(),
        threads: kernel_threads(emolens_model::onednn::cpu_kernels()),
        peak_rss_mib: peak_rss_mib(),
    })
}
