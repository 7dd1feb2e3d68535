//! The compiled oneDNN inference plan (frozen weights, batch norms folded or fused as
//! post-ops, activations fused) against burn's own flex kernels running the same network layer
//! by layer: logits within tolerance, for the default architecture, the original design's
//! model_2_best (conv -> ReLU -> batch norm, dense -> ReLU -> batch norm), separable and
//! depthwise convolutions, every activation oneDNN can fuse, and several batch sizes and thread
//! counts. Every weight and batch-norm statistic is perturbed first, so folding is really
//! exercised (fresh batch norms are the identity). The kernel switch is process-wide: every
//! test here holds `switch_lock`.

use crate::common::{assert_close, onednn_unavailable, switch_lock};
use burn::module::{Module, ModuleMapper, Param};
use burn::tensor::{Device, Distribution, Tensor};
use emolens_model::onednn::{
    self,
    plan::{self, Engine, Precision},
};
use emolens_model::{read_architecture_file, Architecture, BurnClassifier, Network};
use emolens_test_support::seed_reference;

const SEPARABLE_ARCH: &str = r#"{
  "name": "plan_separable",
  "layers": [
    {"type": "conv2d", "filters": 16, "kernel": 3, "padding": "valid", "bias": true},
    {"type": "batch_norm"},
    {"type": "activation", "function": "leaky_relu"},
    {"type": "separable_conv2d", "filters": 24, "kernel": 3, "stride": 2, "padding": "same", "bias": false},
    {"type": "batch_norm"},
    {"type": "activation", "function": "elu"},
    {"type": "depthwise_conv2d", "kernel": 3, "padding": "same", "bias": true, "activation": "relu6"},
    {"type": "batch_norm"},
    {"type": "avg_pool2d", "size": 2, "stride": 1, "padding": "same"},
    {"type": "conv2d", "filters": 32, "kernel": 1, "bias": true, "activation": "silu"},
    {"type": "max_pool2d", "size": 2},
    {"type": "conv2d", "filters": 8, "kernel": 1, "bias": false, "activation": "tanh"},
    {"type": "flatten"},
    {"type": "dense", "units": 32, "activation": "gelu"},
    {"type": "batch_norm"},
    {"type": "dense", "units": 16, "activation": "sigmoid"},
    {"type": "dense", "units": 7}
  ]
}"#;

const RESIDUAL_ARCH: &str = r#"{
  "name": "plan_residual",
  "layers": [
    {"type": "conv2d", "filters": 8, "kernel": 3, "padding": "same"},
    {"type": "residual",
     "body": [{"type": "conv2d", "filters": 8, "kernel": 3, "padding": "same"}],
     "shortcut": []},
    {"type": "global_avg_pool"},
    {"type": "dense", "units": 7}
  ]
}"#;

/// Multiplies every float (weights and running statistics) by a random factor in [0.5, 1.5] and
/// adds noise of a tenth of the tensor's mean magnitude (0.1 for all-zero tensors): variances
/// stay positive, batch norms stop being the identity, activations keep their scale.
struct Perturb;

impl ModuleMapper for Perturb {
    fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
        let (id, t, mapper) = param.consume();
        let device = t.device();
        let shape = t.shape();
        let magnitude = to_vec(t.clone().abs().mean())
            .first()
            .copied()
            .unwrap_or(0.0);
        let spread = if magnitude > 0.0 {
            0.1 * magnitude
        } else {
            0.1
        };
        let mul = Tensor::<D>::random(shape.clone(), Distribution::Uniform(0.5, 1.5), &device);
        let add = Tensor::<D>::random(
            shape,
            Distribution::Uniform(-f64::from(spread), f64::from(spread)),
            &device,
        );
        Param::from_mapped_value(id, t * mul + add, mapper)
    }
}

fn to_vec<const D: usize>(t: Tensor<D>) -> Vec<f32> {
    t.into_data()
        .convert::<f32>()
        .try_to_vec::<f32>()
        .expect("f32 data")
}

fn check(arch: &Architecture, channels: usize) {
    const {
        assert!(
            onednn::BUILT_IN,
            "this build has no oneDNN kernels: install libdnnl-dev (scripts/install-test-deps.sh does)"
        )
    };
    let _switch = switch_lock();
    let device = Device::flex();
    device.seed(11);
    let net = Network::new(arch, channels, 48, 48, &device)
        .unwrap()
        .map(&mut Perturb)
        .valid();
    let frozen = net
        .to_frozen([channels, 48, 48])
        .expect("the network freezes");
    let engine =
        Engine::new(frozen, net.macs_per_image(), Precision::F32).expect("the plan compiles");
    for n in [1usize, 3, 16] {
        let x = Tensor::<4>::random(
            [n, channels, 48, 48],
            Distribution::Uniform(0.0, 1.0),
            &device,
        );
        let input = to_vec(x.clone());
        onednn::set_enabled(false);
        let want = to_vec(net.forward(x));
        onednn::set_enabled(true);
        let got = engine.logits(&input, n).unwrap();
        assert_close(
            &format!("{} x{n} ({channels} ch)", arch.name),
            &want,
            &got,
            1e-4,
        );
        // Again: a cached plan gives the same answer (buffers are reused, not stale).
        let again = engine.logits(&input, n).unwrap();
        assert_eq!(got, again, "{}: second run of a cached plan", arch.name);
    }
}

fn arch_file(name: &str) -> Architecture {
    let path = if name.starts_with("model_") {
        seed_reference().join("architectures").join(name)
    } else {
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../architectures")
            .join(name)
    };
    read_architecture_file(&path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .arch
}

#[test]
fn plan_matches_flex_on_every_supported_layer() {
    if let Some(why) = onednn_unavailable() {
        eprintln!("SKIPPED plan_matches_flex_on_every_supported_layer: {why}");
        return;
    }
    check(&arch_file("vgg_xs.json"), 1);
    check(&arch_file("vgg_s.json"), 1);
    check(&arch_file("model_2_best.json"), 3);
    let sep = Architecture::from_value(serde_json::from_str(SEPARABLE_ARCH).unwrap()).unwrap();
    check(&sep, 1);
    check(&sep, 3);
}

#[test]
fn unsupported_networks_say_why_and_still_classify() {
    if let Some(why) = onednn_unavailable() {
        eprintln!("SKIPPED unsupported_networks_say_why_and_still_classify: {why}");
        return;
    }
    let arch = Architecture::from_value(serde_json::from_str(RESIDUAL_ARCH).unwrap()).unwrap();
    let device = Device::flex();
    let net = Network::new(&arch, 1, 48, 48, &device).unwrap();
    let err = net.to_frozen([1, 48, 48]).unwrap_err();
    assert!(err.contains("residual"), "{err}");
}

#[test]
fn the_bundled_model_runs_compiled_and_agrees_with_flex() {
    if let Some(why) = onednn_unavailable() {
        eprintln!("SKIPPED the_bundled_model_runs_compiled_and_agrees_with_flex: {why}");
        return;
    }
    let bytes = emolens_model::BUNDLED_MODEL.expect("the bundled model is embedded");
    let _switch = switch_lock();
    let c = BurnClassifier::from_bytes(bytes, "bundled", &Device::flex()).unwrap();
    assert!(c.compiled(), "the default model compiles to a oneDNN plan");
    let meta = emolens_core::EmotionClassifier::meta(&c).clone();
    // The bundled model carries an int8 calibration: int8 exactly where the CPU has int8 kernels
    // (AVX2 or later), else bf16 or f32 (unless EMOLENS_PRECISION says otherwise).
    assert!(
        meta.int8.is_some(),
        "the bundled model is calibrated for int8"
    );
    let want = if plan::cpu_has_int8() {
        Precision::Int8
    } else {
        Precision::auto()
    };
    if std::env::var_os("EMOLENS_PRECISION").is_none() {
        assert_eq!(Precision::for_model(true), want);
        assert_eq!(Precision::for_model(false), Precision::auto());
        let runtime = c.runtime();
        assert!(
            runtime.starts_with(&format!("onednn plan ({}", want.name()))
                && runtime.ends_with(&format!("{})", plan::cpu_isa())),
            "{runtime} (want {} on {})",
            want.name(),
            plan::cpu_isa()
        );
    }
    let len = meta.input.len();
    let x: Vec<f32> = (0..3 * len)
        .map(|i| ((i * 7919) % 255) as f32 / 255.0)
        .collect();
    let fast = c.logits(&x, 3).unwrap();
    onednn::set_enabled(false);
    assert!(!c.compiled());
    let slow = c.logits(&x, 3).unwrap();
    onednn::set_enabled(true);
    // bf16 keeps 8 bits of mantissa, int8 256 levels per activation: agreement to about 1 %
    // and 5 % of the logits' scale (on these synthetic images, outside the calibration's data);
    // 7-bit weights (AVX2 without VNNI) double the weights' rounding error: 6 % measured. The
    // real-face tests below are the accuracy checks.
    let tol = match c.runtime().as_str() {
        r if r.contains("7-bit") => 1e-1,
        r if r.contains("int8") => 6e-2,
        r if r.contains("bf16") => 2e-2,
        _ => 1e-4,
    };
    assert_close("bundled model", &slow, &fast, tol);
}

fn softmax(row: &[f32]) -> Vec<f32> {
    let max = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let e: Vec<f32> = row.iter().map(|v| (v - max).exp()).collect();
    let sum: f32 = e.iter().sum();
    e.iter().map(|v| v / sum).collect()
}

/// `per_class` FER2013 images of each class from `split`, preprocessed for the bundled model
/// (the first files by name), as one channels-first batch.
fn real_faces(spec: &emolens_core::InputSpec, split: &str, per_class: usize) -> (Vec<f32>, usize) {
    use emolens_core::Preprocessor;
    let pre = Preprocessor::new(spec.clone());
    let dir = emolens_test_support::shared(&format!("data/fer2013/{split}"));
    let classes = emolens_test_support::sorted_entries(&dir);
    let (mut x, mut n) = (Vec::new(), 0);
    for class in &classes {
        let files = emolens_test_support::sorted_entries(class);
        for f in files.iter().take(per_class) {
            let bytes = std::fs::read(f).unwrap();
            x.extend(pre.prepare_bytes(&bytes, &f.display().to_string()).unwrap());
            n += 1;
        }
    }
    (x, n)
}

/// Top-1 agreement, mean and largest probability difference between two sets of logits.
fn compare(a: &[f32], b: &[f32], k: usize) -> (usize, f32, f32) {
    let (mut agree, mut worst, mut total) = (0, 0f32, 0f32);
    for (ra, rb) in a.chunks(k).zip(b.chunks(k)) {
        let (pa, pb) = (softmax(ra), softmax(rb));
        let top = |p: &[f32]| (0..k).max_by(|&i, &j| p[i].total_cmp(&p[j])).unwrap();
        agree += usize::from(top(&pa) == top(&pb));
        for (u, v) in pa.iter().zip(&pb) {
            worst = worst.max((u - v).abs());
            total += (u - v).abs();
        }
    }
    (agree, total / a.len() as f32, worst)
}

/// The bundled model's file, network and compiled form.
fn bundled() -> (
    emolens_model::ModelFile,
    emolens_model::frozen::FrozenNet,
    u64,
) {
    let bytes = emolens_model::BUNDLED_MODEL.expect("the bundled model is embedded");
    let file = emolens_model::ModelFile::decode(bytes, "bundled").unwrap();
    let spec = &file.meta.input;
    let input = [spec.channels(), spec.height as usize, spec.width as usize];
    let net = file.network(&Device::flex()).unwrap().valid();
    let frozen = net.to_frozen(input).unwrap();
    let macs = net.macs_per_image();
    (file, frozen, macs)
}

/// bf16 activations and weights (f32 accumulation) against f32 on real faces: 20 FER2013 test
/// images per class through the bundled model. oneDNN has bf16 kernels only on CPUs with
/// AVX512-BF16 or AMX; elsewhere the plan must be refused with the reason, and automatic
/// precision must pick f32.
#[test]
fn bf16_plan_agrees_with_f32_on_real_faces() {
    if let Some(why) = onednn_unavailable() {
        eprintln!("SKIPPED bf16_plan_agrees_with_f32_on_real_faces: {why}");
        return;
    }
    let _switch = switch_lock();
    let (file, frozen, macs) = bundled();
    let full = Engine::new(frozen.clone(), macs, Precision::F32).unwrap();
    if !plan::cpu_has_bf16() {
        let err = Engine::new(frozen, macs, Precision::Bf16).unwrap_err();
        assert!(err.contains("AVX512-BF16"), "{err}");
        if std::env::var_os("EMOLENS_PRECISION").is_none() {
            assert_eq!(Precision::auto(), Precision::F32);
        }
        eprintln!(
            "SKIPPED bf16 numerics: this CPU (oneDNN ISA {}) has no native bf16; checked that bf16 plans are refused ({err}) and f32 is chosen",
            plan::cpu_isa()
        );
        return;
    }
    let half = Engine::new(frozen, macs, Precision::Bf16).expect("bf16 plan compiles");
    let (x, n) = real_faces(&file.meta.input, "test", 20);
    assert_eq!(n, 140);
    let k = file.meta.classes.len();
    let (agree, mean, worst) = compare(
        &full.logits(&x, n).unwrap(),
        &half.logits(&x, n).unwrap(),
        k,
    );
    eprintln!("bf16 vs f32 on {n} faces: top-1 agreement {agree}/{n}, mean |dp| {mean:.5}, max {worst:.4}");
    assert!(agree * 100 >= n * 97, "top-1 agreement {agree}/{n}");
    assert!(mean < 0.01, "mean probability difference {mean}");
    assert!(worst < 0.15, "largest probability difference {worst}");
}

/// int8 (calibrated on training faces) against f32 on test faces the calibration never saw: a
/// wrong scale, bias or sign anywhere in the 8-bit path moves most answers. With VNNI the
/// weights have 8 bits; on AVX2 without VNNI 7 (16-bit pair sums must not saturate); below
/// AVX2 the int8 plan is refused instead.
#[test]
fn int8_plan_calibrated_on_train_faces_agrees_with_f32_on_test_faces() {
    if let Some(why) = onednn_unavailable() {
        eprintln!(
            "SKIPPED int8_plan_calibrated_on_train_faces_agrees_with_f32_on_test_faces: {why}"
        );
        return;
    }
    let _switch = switch_lock();
    let (file, frozen, macs) = bundled();
    let (train, m) = real_faces(&file.meta.input, "train", 30);
    let cal = emolens_model::onednn::plan::calibrate(&frozen, &train, m, "fer2013 train")
        .expect("calibration runs");
    assert_eq!(cal.images, 210);
    assert_eq!(cal.steps.len(), frozen.steps.len());
    assert!(
        cal.input[0] >= 0.0 && cal.input[1] <= 1.0,
        "{:?}",
        cal.input
    );
    let full = Engine::new(frozen.clone(), macs, Precision::F32).unwrap();
    if !plan::cpu_has_int8() {
        let err = Engine::quantized(frozen, macs, cal).unwrap_err();
        assert!(err.contains("AVX2"), "{err}");
        eprintln!(
            "SKIPPED int8 numerics: this CPU (oneDNN ISA {}) has no int8 kernels; checked the refusal ({err})",
            plan::cpu_isa()
        );
        return;
    }
    let int8 = Engine::quantized(frozen, macs, cal).expect("int8 plan compiles");
    assert_eq!(int8.precision(), Precision::Int8);
    let bits = plan::int8_weight_bits().expect("int8 kernels here");
    assert_eq!(bits, if plan::cpu_has_vnni() { 8 } else { 7 });
    eprintln!("int8 plan: {} ({bits}-bit weights)", int8.describe());
    let (x, n) = real_faces(&file.meta.input, "test", 20);
    let k = file.meta.classes.len();
    let reference = full.logits(&x, n).unwrap();
    // One image at a time and the whole batch must give the same answers.
    let batch = int8.logits(&x, n).unwrap();
    let per = x.len() / n;
    let single: Vec<f32> = (0..n)
        .flat_map(|i| int8.logits(&x[i * per..(i + 1) * per], 1).unwrap())
        .collect();
    assert_close("int8 batch vs single", &batch, &single, 1e-5);
    let (agree, mean, worst) = compare(&reference, &batch, k);
    eprintln!("int8 ({bits}-bit weights) vs f32 on {n} faces: top-1 agreement {agree}/{n}, mean |dp| {mean:.5}, max {worst:.4}");
    assert!(agree * 100 >= n * 95, "top-1 agreement {agree}/{n}");
    assert!(mean < 0.015, "mean probability difference {mean}");
    assert!(worst < 0.3, "largest probability difference {worst}");
}

/// The CPU-specific paths of an AVX2-only machine, checked on any CPU with more: this test
/// binary runs the real-face bf16 and int8 tests and the bundled-model test again in a child
/// process whose oneDNN is capped at AVX2 (`ONEDNN_MAX_CPU_ISA`), where bf16 must be refused
/// and int8 must run with 7-bit weights and still agree with f32.
#[test]
fn avx2_paths_hold_in_a_process_capped_at_avx2() {
    if let Some(why) = onednn_unavailable() {
        eprintln!("SKIPPED avx2_paths_hold_in_a_process_capped_at_avx2: {why}");
        return;
    }
    if std::env::var_os("ONEDNN_MAX_CPU_ISA").is_some() {
        eprintln!("SKIPPED: already running capped (ONEDNN_MAX_CPU_ISA set); no nested child");
        return;
    }
    if plan::cpu_isa() == "avx2" {
        eprintln!(
            "SKIPPED: this CPU is AVX2-only already; the other tests cover its paths directly"
        );
        return;
    }
    if !plan::cpu_has_int8() {
        eprintln!(
            "SKIPPED: this CPU (oneDNN ISA {}) is below AVX2; an AVX2 cap cannot emulate it",
            plan::cpu_isa()
        );
        return;
    }
    let exe = std::env::current_exe().expect("the test binary's path");
    let out = std::process::Command::new(exe)
        .args([
            "--exact",
            "--nocapture",
            "--test-threads",
            "1",
            "inference_plan::bf16_plan_agrees_with_f32_on_real_faces",
            "inference_plan::int8_plan_calibrated_on_train_faces_agrees_with_f32_on_test_faces",
            "inference_plan::the_bundled_model_runs_compiled_and_agrees_with_flex",
        ])
        .env("ONEDNN_MAX_CPU_ISA", "AVX2")
        .env("DNNL_MAX_CPU_ISA", "AVX2")
        .env_remove("EMOLENS_PRECISION")
        .output()
        .expect("the test binary runs again");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "capped child failed:\n{text}");
    assert!(
        text.contains("3 passed"),
        "capped child ran other tests:\n{text}"
    );
    assert!(
        text.contains("SKIPPED bf16 numerics: this CPU (oneDNN ISA avx2)"),
        "bf16 not refused under the cap:\n{text}"
    );
    assert!(
        text.contains("int8 (7-bit weights) vs f32"),
        "int8 did not run with 7-bit weights under the cap:\n{text}"
    );
    for line in text.lines().filter(|l| l.contains("vs f32 on")) {
        eprintln!("capped at AVX2: {line}");
    }
}
