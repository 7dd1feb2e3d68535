//! The fused optimisers compute burn's updates: for every optimiser and option the trainer
//! offers, five steps on a real network (vgg_xs) with random gradients give the same weights as
//! burn's optimiser, and a state saved by either one resumes in the other.

use emolens_model::burn::backend::Flex;
use emolens_model::burn::module::{Module, ModuleVisitor, Param, ParamId};
use emolens_model::burn::optim::decay::WeightDecayConfig;
use emolens_model::burn::optim::momentum::MomentumConfig;
use emolens_model::burn::optim::{
    AdamConfig, AdamWConfig, GradientsParams, ModuleOptimizer, Optimizer, RmsPropConfig, SgdConfig,
};
use emolens_model::burn::tensor::{Device, Tensor, TensorData};
use emolens_model::{Architecture, Network};
use emolens_train::fused_optim::{FusedAdam, FusedAdamW, FusedRmsProp, FusedSgd};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

const STEPS: usize = 5;
/// Steps taken before a state is saved and resumed by the other optimiser.
const SWITCH_AT: usize = 3;

fn network() -> Network {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../architectures/vgg_xs.json"
    );
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let arch = Architecture::from_json(&text).expect("vgg_xs.json parses");
    let device = Device::flex().autodiff();
    Network::new(&arch, 1, 48, 48, &device).expect("vgg_xs builds")
}

/// Every float parameter's values, in visiting order.
fn weights<M: Module>(m: &M) -> Vec<Vec<f32>> {
    struct Collect(Vec<Vec<f32>>);
    impl ModuleVisitor for Collect {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            let data = param.val().inner().into_data();
            self.0.push(data.try_to_vec::<f32>().expect("f32 weights"));
        }
    }
    let mut c = Collect(Vec::new());
    m.visit(&mut c);
    c.0
}

/// Ids and shapes of the trainable parameters (batch-norm running statistics have no gradient).
fn trainable<M: Module>(m: &M) -> Vec<(ParamId, Vec<usize>)> {
    struct Collect(Vec<(ParamId, Vec<usize>)>);
    impl ModuleVisitor for Collect {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            let t = param.val();
            if t.is_require_grad() {
                self.0.push((param.id, t.dims().to_vec()));
            }
        }
    }
    let mut c = Collect(Vec::new());
    m.visit(&mut c);
    c.0
}

/// Random gradients for each step, the same for every optimiser under test. Some entries are
/// exactly zero and some large, so every term of each formula shows in the weights.
fn gradient_steps(params: &[(ParamId, Vec<usize>)]) -> Vec<Vec<Vec<f32>>> {
    let mut rng = ChaCha8Rng::seed_from_u64(42);
    (0..STEPS)
        .map(|_| {
            params
                .iter()
                .map(|(_, shape)| {
                    let n: usize = shape.iter().product();
                    (0..n)
                        .map(|_| match rng.random_range(0..20) {
                            0 => 0.0,
                            1 => rng.random_range(-1.0..1.0),
                            _ => rng.random_range(-0.02..0.02),
                        })
                        .collect()
                })
                .collect()
        })
        .collect()
}

fn grads_of(params: &[(ParamId, Vec<usize>)], values: &[Vec<f32>]) -> GradientsParams {
    fn register<const D: usize>(g: &mut GradientsParams, id: ParamId, data: TensorData) {
        g.register(id, Tensor::<D>::from_data(data, &Device::flex()));
    }
    let mut g = GradientsParams::new();
    for ((id, shape), v) in params.iter().zip(values) {
        let data = TensorData::new(v.clone(), shape.clone());
        match shape.len() {
            1 => register::<1>(&mut g, *id, data),
            2 => register::<2>(&mut g, *id, data),
            4 => register::<4>(&mut g, *id, data),
            r => panic!("unexpected parameter rank {r}"),
        }
    }
    g
}

/// A schedule-like learning rate that changes every step.
fn lr(step: usize) -> f64 {
    0.05 * (1.0 + step as f64) / STEPS as f64
}

struct Case {
    name: &'static str,
    burn: fn() -> ModuleOptimizer,
    fused: fn() -> ModuleOptimizer,
}

/// Runs steps `from..to` with `optim`.
fn run(
    optim: &mut ModuleOptimizer,
    mut model: Network,
    params: &[(ParamId, Vec<usize>)],
    grads: &[Vec<Vec<f32>>],
    steps: std::ops::Range<usize>,
) -> Network {
    for s in steps {
        model = optim.step(lr(s), model, grads_of(params, &grads[s]));
    }
    model
}

/// Largest difference beyond `1e-6 * (1 + |expected|)`, as a message.
fn compare(what: &str, expected: &[Vec<f32>], actual: &[Vec<f32>]) -> Result<(), String> {
    assert_eq!(expected.len(), actual.len());
    let mut worst = (0.0f32, 0usize, 0usize);
    for (i, (e, a)) in expected.iter().zip(actual).enumerate() {
        assert_eq!(e.len(), a.len());
        for (j, (&e, &a)) in e.iter().zip(a).enumerate() {
            let excess = (e - a).abs() / (1.0 + e.abs());
            if excess > worst.0 || excess.is_nan() {
                worst = (excess, i, j);
            }
        }
    }
    if worst.0 > 1e-6 || worst.0.is_nan() {
        let (_, i, j) = worst;
        return Err(format!(
            "{what}: parameter {i} element {j}: burn {} vs {}",
            expected[i][j], actual[i][j]
        ));
    }
    Ok(())
}

fn check(case: &Case) -> Result<(), String> {
    let model = network();
    let params = trainable(&model);
    let grads = gradient_steps(&params);
    let start = weights(&model);

    let expected = run(&mut (case.burn)(), model.clone(), &params, &grads, 0..STEPS);
    let expected = weights(&expected);
    if compare("burn moved nothing", &start, &expected).is_ok() {
        return Err(format!(
            "{}: burn's optimiser left the weights as they were",
            case.name
        ));
    }

    let fused = run(
        &mut (case.fused)(),
        model.clone(),
        &params,
        &grads,
        0..STEPS,
    );
    compare(
        &format!("{}: fused", case.name),
        &expected,
        &weights(&fused),
    )?;

    // The model the steps were taken from is untouched (its buffers were shared).
    compare(
        &format!("{}: original model", case.name),
        &start,
        &weights(&model),
    )?;

    // burn's saved state resumes in the fused optimiser, and the fused one's in burn's.
    for (from, to, label) in [
        (case.burn, case.fused, "burn state resumed fused"),
        (case.fused, case.burn, "fused state resumed by burn"),
    ] {
        let mut first = from();
        let half = run(&mut first, model.clone(), &params, &grads, 0..SWITCH_AT);
        let bytes = first.into_bytes().expect("state saves");
        let mut second = to().from_bytes(bytes).expect("state loads");
        let done = run(&mut second, half, &params, &grads, SWITCH_AT..STEPS);
        compare(
            &format!("{}: {label}", case.name),
            &expected,
            &weights(&done),
        )?;
    }
    Ok(())
}

fn wd(penalty: f32) -> Option<WeightDecayConfig> {
    Some(WeightDecayConfig::new(penalty))
}

fn momentum(dampening: f64, nesterov: bool) -> Option<MomentumConfig> {
    Some(MomentumConfig {
        momentum: 0.9,
        dampening,
        nesterov,
    })
}

fn cases() -> Vec<Case> {
    vec![
        Case {
            name: "sgd",
            burn: || SgdConfig::new().init(),
            fused: || FusedSgd::new(None, None).into(),
        },
        Case {
            name: "sgd + weight decay",
            burn: || SgdConfig::new().with_weight_decay(wd(0.1)).init(),
            fused: || FusedSgd::new(None, wd(0.1)).into(),
        },
        Case {
            name: "sgd momentum",
            burn: || SgdConfig::new().with_momentum(momentum(0.0, false)).init(),
            fused: || FusedSgd::new(momentum(0.0, false), None).into(),
        },
        Case {
            name: "sgd nesterov",
            burn: || SgdConfig::new().with_momentum(momentum(0.0, true)).init(),
            fused: || FusedSgd::new(momentum(0.0, true), None).into(),
        },
        Case {
            name: "sgd momentum + dampening + weight decay",
            burn: || {
                SgdConfig::new()
                    .with_momentum(momentum(0.3, false))
                    .with_weight_decay(wd(0.1))
                    .init()
            },
            fused: || FusedSgd::new(momentum(0.3, false), wd(0.1)).into(),
        },
        Case {
            name: "sgd nesterov + dampening + weight decay",
            burn: || {
                SgdConfig::new()
                    .with_momentum(momentum(0.3, true))
                    .with_weight_decay(wd(0.1))
                    .init()
            },
            fused: || FusedSgd::new(momentum(0.3, true), wd(0.1)).into(),
        },
        // Epsilon is large beside the gradients' scale so that where it enters shows.
        Case {
            name: "adam",
            burn: || {
                AdamConfig::new()
                    .with_beta_1(0.8)
                    .with_beta_2(0.9)
                    .with_epsilon(1e-2)
                    .init()
            },
            fused: || FusedAdam::new(0.8, 0.9, 1e-2, None).into(),
        },
        Case {
            name: "adam + weight decay",
            burn: || {
                AdamConfig::new()
                    .with_beta_1(0.8)
                    .with_beta_2(0.9)
                    .with_epsilon(1e-2)
                    .with_weight_decay(wd(0.1))
                    .init()
            },
            fused: || FusedAdam::new(0.8, 0.9, 1e-2, wd(0.1)).into(),
        },
        Case {
            name: "adam, the trainer's defaults",
            burn: || {
                AdamConfig::new()
                    .with_beta_1(0.9)
                    .with_beta_2(0.999)
                    .with_epsilon(1e-7)
                    .init()
            },
            fused: || FusedAdam::new(0.9, 0.999, 1e-7, None).into(),
        },
        Case {
            name: "adamw without decay",
            burn: || {
                AdamWConfig::new()
                    .with_beta_1(0.8)
                    .with_beta_2(0.9)
                    .with_epsilon(1e-2)
                    .with_weight_decay(0.0)
                    .init()
            },
            fused: || FusedAdamW::new(0.8, 0.9, 1e-2, 0.0).into(),
        },
        Case {
            name: "adamw",
            burn: || {
                AdamWConfig::new()
                    .with_beta_1(0.8)
                    .with_beta_2(0.9)
                    .with_epsilon(1e-2)
                    .with_weight_decay(0.5)
                    .init()
            },
            fused: || FusedAdamW::new(0.8, 0.9, 1e-2, 0.5).into(),
        },
        Case {
            name: "rmsprop",
            burn: || {
                RmsPropConfig::new()
                    .with_alpha(0.9)
                    .with_momentum(0.0)
                    .with_epsilon(1e-2)
                    .init()
            },
            fused: || FusedRmsProp::new(0.9, 0.0, 1e-2, None).into(),
        },
        Case {
            name: "rmsprop momentum",
            burn: || {
                RmsPropConfig::new()
                    .with_alpha(0.9)
                    .with_momentum(0.8)
                    .with_epsilon(1e-2)
                    .init()
            },
            fused: || FusedRmsProp::new(0.9, 0.8, 1e-2, None).into(),
        },
        Case {
            name: "rmsprop momentum + weight decay",
            burn: || {
                RmsPropConfig::new()
                    .with_alpha(0.9)
                    .with_momentum(0.8)
                    .with_epsilon(1e-2)
                    .with_weight_decay(wd(0.1))
                    .init()
            },
            fused: || FusedRmsProp::new(0.9, 0.8, 1e-2, wd(0.1)).into(),
        },
    ]
}

#[test]
fn fused_optimisers_match_burn_and_share_its_state_files() {
    let _one_run = crate::common::one_training_at_a_time();
    let failures: Vec<String> = cases().iter().filter_map(|c| check(c).err()).collect();
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// The address of a tensor's buffer.
fn address<const D: usize>(t: &Tensor<D>) -> usize {
    let p = t
        .clone()
        .try_into_primitive::<Flex>()
        .expect("a Flex tensor");
    p.bytes().as_ptr() as usize
}

fn raw(values: &[f32]) -> Tensor<1> {
    Tensor::from_data(
        TensorData::new(values.to_vec(), [values.len()]),
        &Device::flex(),
    )
}

fn values<const D: usize>(t: &Tensor<D>) -> Vec<f32> {
    t.to_data().try_to_vec::<f32>().unwrap()
}

/// A parameter nobody else holds is updated in its own buffer; one that is shared is copied, and
/// the other holder keeps its values. Large enough to take rayon's parallel path.
#[test]
fn updates_in_place_only_when_unshared() {
    let _one_run = crate::common::one_training_at_a_time();
    let n = 300_000;
    let p0: Vec<f32> = (0..n).map(|i| (i as f32 * 0.37).sin()).collect();
    let g0: Vec<f32> = (0..n).map(|i| (i as f32 * 0.11).cos() * 0.01).collect();
    let fused = FusedAdam::new(0.9, 0.999, 1e-7, wd(0.01));
    let burn = AdamConfig::new()
        .with_epsilon(1e-7)
        .with_weight_decay(wd(0.01))
        .build();

    let (expected, burn_state) = burn.step(0.01, raw(&p0), raw(&g0), None);
    let (expected, _) = burn.step(0.02, expected, raw(&g0), burn_state);

    // Shared: the caller keeps `held`, which must not change.
    let held = raw(&p0);
    let grad = raw(&g0);
    let (p, state) = fused.step(0.01, held.clone(), grad.clone(), None);
    assert_eq!(values(&held), p0, "a held parameter was written to");
    assert_eq!(values(&grad), g0, "the gradient was written to");
    assert_ne!(address(&p), address(&held));

    // Unshared: the same buffer comes back.
    let before = address(&p);
    let (p, _) = fused.step(0.02, p, grad, state);
    assert_eq!(
        address(&p),
        before,
        "an unshared parameter was not updated in place"
    );
    assert_eq!(values(&p), values(&expected));
}

/// A strided (non-contiguous) parameter goes to burn's own optimiser, with the same result.
#[test]
fn strided_tensors_fall_back_to_burn() {
    let _one_run = crate::common::one_training_at_a_time();
    let data: Vec<f32> = (0..12).map(|i| i as f32 * 0.25 - 1.0).collect();
    let grad: Vec<f32> = (0..12).map(|i| (i as f32).sin()).collect();
    let matrix = |v: &[f32]| -> Tensor<2> {
        Tensor::from_data(TensorData::new(v.to_vec(), [3, 4]), &Device::flex())
    };
    let transposed = || matrix(&data).transpose();
    let g = || matrix(&grad).transpose();

    let sgd = FusedSgd::new(momentum(0.0, true), wd(0.1));
    let burn_sgd = SgdConfig::new()
        .with_momentum(momentum(0.0, true))
        .with_weight_decay(wd(0.1))
        .build();
    let (a, sa) = sgd.step(0.1, transposed(), g(), None);
    let (a, _) = sgd.step(0.1, a, g(), sa);
    let (b, sb) = burn_sgd.step(0.1, transposed(), g(), None);
    let (b, _) = burn_sgd.step(0.1, b, g(), sb);
    assert_eq!(values(&a), values(&b));

    let rms = FusedRmsProp::new(0.9, 0.5, 1e-3, None);
    let burn_rms = RmsPropConfig::new()
        .with_alpha(0.9)
        .with_momentum(0.5)
        .with_epsilon(1e-3)
        .build();
    let (a, sa) = rms.step(0.1, transposed(), g(), None);
    let (a, _) = rms.step(0.1, a, g(), sa);
    let (b, sb) = burn_rms.step(0.1, transposed(), g(), None);
    let (b, _) = burn_rms.step(0.1, b, g(), sb);
    assert_eq!(values(&a), values(&b));
}
