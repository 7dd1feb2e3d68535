//! The oneDNN kernels against burn's own (flex) kernels on the same network and weights:
//! logits at inference, and loss, every parameter gradient and the batch-norm running
//! statistics after a training step. Covers every layer kind the fast path serves (convs with
//! and without bias, strides, valid/same padding, depthwise and separable convs, batch norm with
//! and without a fused ReLU, max/avg pooling, residual blocks, flatten, global pooling, dense
//! layers with and without bias). The kernel switch is process-wide: the test holds
//! `switch_lock`.

use crate::common::{assert_close, onednn_unavailable, switch_lock};
use burn::module::{Module, ModuleVisitor, Param};
use burn::tensor::{Device, Distribution, Int, Tensor, TensorData};
use emolens_model::{onednn, Architecture, Network};

const ARCH: &str = r#"{
  "name": "parity",
  "layers": [
    {"type": "conv2d", "filters": 16, "kernel": 3, "padding": "valid", "bias": true},
    {"type": "batch_norm"},
    {"type": "activation", "function": "relu"},
    {"type": "conv2d", "filters": 24, "kernel": 3, "stride": 2, "padding": "same", "bias": false},
    {"type": "batch_norm"},
    {"type": "activation", "function": "elu"},
    {"type": "max_pool2d", "size": 2},
    {"type": "residual",
     "body": [
       {"type": "separable_conv2d", "filters": 24, "kernel": 3, "padding": "same", "bias": false},
       {"type": "batch_norm"},
       {"type": "activation", "function": "relu"},
       {"type": "depthwise_conv2d", "kernel": 3, "padding": "same", "bias": true},
       {"type": "batch_norm"}
     ],
     "shortcut": [],
     "activation": "relu"},
    {"type": "avg_pool2d", "size": 2, "stride": 1, "padding": "same"},
    {"type": "conv2d", "filters": 32, "kernel": 1, "bias": true, "activation": "relu"},
    {"type": "flatten"},
    {"type": "dense", "units": 32, "activation": "relu"},
    {"type": "batch_norm"},
    {"type": "dense", "units": 7}
  ]
}"#;

const GAP_ARCH: &str = r#"{
  "name": "parity_gap",
  "layers": [
    {"type": "conv2d", "filters": 24, "kernel": 3, "padding": "same", "bias": false},
    {"type": "batch_norm"},
    {"type": "activation", "function": "relu"},
    {"type": "max_pool2d", "size": 2},
    {"type": "conv2d", "filters": 48, "kernel": 3, "padding": "same", "bias": false},
    {"type": "batch_norm"},
    {"type": "activation", "function": "relu"},
    {"type": "global_avg_pool"},
    {"type": "dense", "units": 7, "bias": false}
  ]
}"#;

/// Every float tensor of a module (parameters and running statistics), flattened.
struct Collect<'a> {
    grads: Option<&'a burn::optim::GradientsParams>,
    out: Vec<Vec<f32>>,
}

impl ModuleVisitor for Collect<'_> {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        let t = match self.grads {
            Some(g) => match g.get::<D>(param.id) {
                Some(t) => t,
                None => return,
            },
            None => param.val(),
        };
        self.out.push(
            t.into_data()
                .convert::<f32>()
                .try_to_vec::<f32>()
                .expect("f32 data"),
        );
    }
}

fn input(n: usize, c: usize, device: &Device) -> Tensor<4> {
    Tensor::random([n, c, 48, 48], Distribution::Uniform(0.0, 1.0), device)
}

/// Logits, loss, gradients and state after one training forward/backward, with the kernels
/// switched as asked.
fn train_step(
    arch: &Architecture,
    channels: usize,
    record_from: &Network,
    x: &Tensor<4>,
    labels: &Tensor<1, Int>,
    fast: bool,
) -> (Vec<f32>, Vec<Vec<f32>>, Vec<Vec<f32>>) {
    onednn::set_enabled(fast);
    let device = Device::flex().autodiff();
    let net = Network::new(arch, channels, 48, 48, &device)
        .unwrap()
        .load_record(record_from.clone().into_record());
    let logits = net.forward(x.clone().to_device(&device));
    let loss = burn::nn::loss::CrossEntropyLossConfig::new()
        .init(&device)
        .forward(logits.clone(), labels.clone().to_device(&device));
    let loss_value = loss
        .clone()
        .into_data()
        .convert::<f32>()
        .try_to_vec::<f32>()
        .expect("f32 data");
    let grads = burn::optim::GradientsParams::from_grads(loss.backward(), &net);
    let mut g = Collect {
        grads: Some(&grads),
        out: vec![],
    };
    net.visit(&mut g);
    // Running statistics were updated by the forward pass.
    let mut state = Collect {
        grads: None,
        out: vec![],
    };
    net.visit(&mut state);
    let mut out = logits
        .into_data()
        .convert::<f32>()
        .try_to_vec::<f32>()
        .expect("f32 data");
    out.extend(loss_value);
    (out, g.out, state.out)
}

fn check(arch_json: &str, channels: usize) {
    let arch = Architecture::from_value(serde_json::from_str(arch_json).unwrap()).unwrap();
    let plain = Device::flex();
    plain.seed(7);
    let net = Network::new(&arch, channels, 48, 48, &plain).unwrap();
    let x = input(5, channels, &plain);
    let labels = Tensor::<1, Int>::from_data(TensorData::from([0i64, 3, 6, 1, 4]), &plain);

    // Inference.
    onednn::set_enabled(false);
    let slow = net
        .forward(x.clone())
        .into_data()
        .try_to_vec::<f32>()
        .expect("f32 data");
    onednn::set_enabled(true);
    assert_eq!(onednn::cpu_kernels(), "onednn");
    let fast = net
        .forward(x.clone())
        .into_data()
        .try_to_vec::<f32>()
        .expect("f32 data");
    assert_close(
        &format!("{} inference logits", arch.name),
        &slow,
        &fast,
        1e-4,
    );

    // Training step.
    let (l0, g0, s0) = train_step(&arch, channels, &net, &x, &labels, false);
    let (l1, g1, s1) = train_step(&arch, channels, &net, &x, &labels, true);
    assert_close(
        &format!("{} training logits and loss", arch.name),
        &l0,
        &l1,
        1e-4,
    );
    assert_eq!(g0.len(), g1.len(), "same parameters have gradients");
    assert!(!g0.is_empty());
    for (i, (a, b)) in g0.iter().zip(&g1).enumerate() {
        assert_close(&format!("{} gradient #{i}", arch.name), a, b, 2e-3);
    }
    for (i, (a, b)) in s0.iter().zip(&s1).enumerate() {
        assert_close(&format!("{} state #{i}", arch.name), a, b, 1e-4);
    }
}

#[test]
fn onednn_matches_flex_forward_and_backward() {
    if let Some(why) = onednn_unavailable() {
        eprintln!("SKIPPED onednn_matches_flex_forward_and_backward: {why}");
        return;
    }
    let _switch = switch_lock();
    check(GAP_ARCH, 1);
    check(ARCH, 1);
    check(ARCH, 3);
}
