//! Optimiser speed benchmark (not a test): burn's optimisers against the fused ones of
//! `emolens_train::fused_optim`, in the same process.
//!
//! 1. Kernel throughput on one large parameter, against plain memory passes (copy, triad) over
//!    buffers of the same size: a fused step that runs near the triad's bytes per second is
//!    bound by memory, not arithmetic.
//! 2. Training steps (forward, backward, update) of an architecture at batch 16, burn's SGD and
//!    the fused SGD (momentum 0.9, as Keras' side of the speed comparison) in alternating rounds,
//!    with the time of the update alone and how many weights were updated in their own buffer.
//!
//! `OMP_NUM_THREADS=1 RAYON_NUM_THREADS=1 cargo run --release -p emolens-train --example
//! fused_optim_speed -- [ARCH_JSON] [ELEMENTS]`
//! (defaults: the original design's `model_2_best.json`, 14.5 M elements).

use std::path::{Path, PathBuf};
use std::time::Instant;

use emolens_model::burn::backend::Flex;
use emolens_model::burn::module::{Module, ModuleVisitor, Param};
use emolens_model::burn::nn::loss::CrossEntropyLossConfig;
use emolens_model::burn::optim::momentum::MomentumConfig;
use emolens_model::burn::optim::{
    AdamConfig, GradientsParams, ModuleOptimizer, Optimizer, SgdConfig,
};
use emolens_model::burn::tensor::{Device, Distribution, Int, Tensor, TensorData};
use emolens_model::{read_architecture_file, Network};
use emolens_train::fused_optim::{FusedAdam, FusedSgd};

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

/// Median seconds of `f` over `reps` runs after one warm-up run.
fn time(reps: usize, mut f: impl FnMut()) -> f64 {
    f();
    median(
        (0..reps)
            .map(|_| {
                let t = Instant::now();
                f();
                t.elapsed().as_secs_f64()
            })
            .collect(),
    )
}

fn raw(values: Vec<f32>) -> Tensor<1> {
    let n = values.len();
    Tensor::from_data(TensorData::new(values, [n]), &Device::flex())
}

fn momentum() -> Option<MomentumConfig> {
    Some(MomentumConfig {
        momentum: 0.9,
        dampening: 0.0,
        nesterov: false,
    })
}

/// Steps `optim` on one parameter of `n` elements (state already built); seconds per step.
fn kernel_time<O: Optimizer>(optim: &O, n: usize) -> f64 {
    let g = raw((0..n).map(|i| ((i % 97) as f32 - 48.0) * 1e-4).collect());
    let mut p = Some(raw((0..n)
        .map(|i| ((i % 89) as f32 - 44.0) * 1e-2)
        .collect()));
    let mut state = None;
    time(10, || {
        let (np, ns) = optim.step(1e-3, p.take().unwrap(), g.clone(), state.take());
        p = Some(np);
        state = ns;
    })
}

fn kernels(n: usize) {
    let gb = |bytes_per_elem: usize, s: f64| (bytes_per_elem * n) as f64 / s / 1e9;
    let src: Vec<f32> = (0..n).map(|i| i as f32).collect();
    let mut dst = vec![0f32; n];
    let copy = time(10, || dst.copy_from_slice(std::hint::black_box(&src)));
    let triad = time(10, || {
        for (d, s) in dst.iter_mut().zip(std::hint::black_box(&src)) {
            *d += s * 1e-3;
        }
    });
    println!(
        "kernels on {n} f32 elements ({:.1} MB a buffer)",
        n as f64 * 4e-6
    );
    println!(
        "  copy           {:7.2} ms  {:5.1} GB/s (read 4 + write 4 B/elem)",
        copy * 1e3,
        gb(8, copy)
    );
    println!(
        "  triad p+=g*s   {:7.2} ms  {:5.1} GB/s (12 B/elem)",
        triad * 1e3,
        gb(12, triad)
    );
    let sgd_burn = SgdConfig::new().with_momentum(momentum()).build();
    let sgd_fused = FusedSgd::new(momentum(), None);
    let adam_burn = AdamConfig::new().with_epsilon(1e-7).build();
    let adam_fused = FusedAdam::new(0.9, 0.999, 1e-7, None);
    // Bytes a single pass must move: parameter and states read and written, gradient read.
    for (name, bytes, s) in [
        ("sgd+momentum burn ", 20, kernel_time(&sgd_burn, n)),
        ("sgd+momentum fused", 20, kernel_time(&sgd_fused, n)),
        ("adam burn         ", 28, kernel_time(&adam_burn, n)),
        ("adam fused        ", 28, kernel_time(&adam_fused, n)),
    ] {
        println!(
            "  {name} {:7.2} ms  {:5.1} GB/s of a one-pass update ({bytes} B/elem)",
            s * 1e3,
            gb(bytes, s)
        );
    }
}

/// Buffer addresses of a module's float parameters.
fn addresses<M: Module>(m: &M) -> Vec<usize> {
    struct Collect(Vec<usize>);
    impl ModuleVisitor for Collect {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            if let Ok(p) = param.val().inner().try_into_primitive::<Flex>() {
                self.0.push(p.bytes().as_ptr() as usize);
            }
        }
    }
    let mut c = Collect(Vec::new());
    m.visit(&mut c);
    c.0
}

struct Side {
    name: &'static str,
    model: Option<Network>,
    optim: ModuleOptimizer,
    step_s: Vec<f64>,
    update_s: Vec<f64>,
    in_place: usize,
    params: usize,
}

fn training(path: &Path) {
    let arch = read_architecture_file(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .arch;
    let (batch, channels, size) = (16, 3, 48);
    let ad = Device::flex().autodiff();
    ad.seed(1);
    let model = Network::new(&arch, channels, size, size, &ad).expect("architecture builds");
    let classes = arch
        .summarise(channels, size, size)
        .expect("summary")
        .outputs;
    let loss_fn = CrossEntropyLossConfig::new().init(&ad);
    let x = Tensor::<4>::random(
        [batch, channels, size, size],
        Distribution::Uniform(0.0, 1.0),
        &ad,
    );
    let labels: Vec<i64> = (0..batch).map(|i| (i % classes) as i64).collect();
    let y = Tensor::<1, Int>::from_data(TensorData::new(labels, [batch]), &ad);

    let mut sides = [
        Side {
            name: "burn sgd ",
            model: Some(model.clone()),
            optim: SgdConfig::new().with_momentum(momentum()).init(),
            step_s: vec![],
            update_s: vec![],
            in_place: 0,
            params: 0,
        },
        Side {
            name: "fused sgd",
            model: Some(model),
            optim: FusedSgd::new(momentum(), None).into(),
            step_s: vec![],
            update_s: vec![],
            in_place: 0,
            params: 0,
        },
    ];
    let (rounds, per_round, warmup) = (4, 5, 2);
    for round in 0..rounds {
        for side in sides.iter_mut() {
            for i in 0..warmup + per_round {
                let t = Instant::now();
                let model = side.model.take().expect("model");
                let loss = loss_fn.forward(model.forward(x.clone()), y.clone());
                let grads = GradientsParams::from_grads(loss.backward(), &model);
                let before = addresses(&model);
                let u = Instant::now();
                let model = side.optim.step(0.01, model, grads);
                let update = u.elapsed().as_secs_f64();
                let after = addresses(&model);
                side.model = Some(model);
                let step = t.elapsed().as_secs_f64();
                // The first round's warm-up builds the optimiser state.
                if round > 0 || i >= warmup {
                    side.step_s.push(step);
                    side.update_s.push(update);
                    side.in_place += before.iter().zip(&after).filter(|(a, b)| a == b).count();
                    side.params += after.len();
                }
            }
        }
    }
    println!(
        "training steps: {} at batch {batch}, {channels}x{size}x{size}, SGD momentum 0.9",
        arch.name
    );
    for s in &sides {
        let step = median(s.step_s.clone());
        println!(
            "  {}  {:6.1} img/s  step {:6.1} ms  update {:5.1} ms  weights updated in place {}/{}",
            s.name,
            batch as f64 / step,
            step * 1e3,
            median(s.update_s.clone()) * 1e3,
            s.in_place,
            s.params
        );
    }
}

fn main() {
    let mut args = std::env::args().skip(1);
    let arch = args.next().map(PathBuf::from).unwrap_or_else(|| {
        emolens_core::paths::seed_reference_dir().join("architectures/model_2_best.json")
    });
    let n = args
        .next()
        .map(|s| s.parse().expect("ELEMENTS is a number"))
        .unwrap_or(14_500_000);
    println!("rayon threads: {}", rayon::current_num_threads());
    kernels(n);
    training(&arch);
}
