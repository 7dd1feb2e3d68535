//! Every architecture file of the original design builds, for RGB and grayscale, with exactly
//! the parameter count Keras reports for it (batch-norm moving statistics included), both from
//! the shape pass and from the real burn network.

use burn::module::Module;
use burn::tensor::{Device, Tensor};
use emolens_model::{read_architecture_file, Network};

fn arch_dir() -> std::path::PathBuf {
    emolens_test_support::shared("seed-reference/architectures")
}

#[test]
fn keras_parameter_counts() {
    // (file, RGB count, grayscale count) from the original design's Keras summaries.
    let cases = [
        ("model_1_concept.json", 4_708_615, 4_708_039),
        ("model_2_best.json", 14_261_319, 14_260_743),
        ("model_3_best_nodropout.json", 14_261_319, 14_260_743),
        (
            "model_4_best_nodroupout_nobatchn.json",
            14_249_671,
            14_249_095,
        ),
        ("keras_best_model_architecture.json", 14_261_319, 14_260_743),
    ];
    let device = Device::flex();
    for (file, rgb, gray) in cases {
        let im = read_architecture_file(&arch_dir().join(file)).unwrap();
        assert_eq!(im.input_shape.map(|s| (s.0, s.1)), Some((48, 48)), "{file}");
        for (channels, expect) in [(3, rgb), (1, gray)] {
            let s = im.arch.summarise(channels, 48, 48).unwrap();
            assert_eq!(
                s.params, expect,
                "{file} with {channels} channel(s): shape pass"
            );
            let net = Network::new(&im.arch, channels, 48, 48, &device).unwrap();
            assert_eq!(
                net.num_params(),
                expect,
                "{file} with {channels} channel(s): burn network"
            );
        }
    }
}

#[test]
fn networks_run_forward() {
    let _kernels = crate::common::kernels_fixed();
    let device = Device::flex();
    let im = read_architecture_file(&arch_dir().join("model_1_concept.json")).unwrap();
    let net = Network::new(&im.arch, 1, 48, 48, &device).unwrap().valid();
    let out = net.forward(Tensor::zeros([2, 1, 48, 48], &device));
    assert_eq!(out.dims(), [2, 7]);
}

#[test]
fn keras_json_equals_original_format() {
    let a = read_architecture_file(&arch_dir().join("model_2_best.json")).unwrap();
    let b = read_architecture_file(&arch_dir().join("keras_best_model_architecture.json")).unwrap();
    assert_eq!(a.format, "original");
    assert_eq!(b.format, "keras");
    assert_eq!(a.arch.layers, b.arch.layers);
}

#[test]
fn malformed_files_name_the_bad_layer() {
    let dir = std::env::temp_dir().join(format!("emolens-arch-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let p = dir.join("bad.json");
    std::fs::write(
        &p,
        r#"{"Conv2D_1":{"filters":32,"kernel_size":3},"MaxPooling2D_1":{"pool_size":"big"}}"#,
    )
    .unwrap();
    let e = read_architecture_file(&p).unwrap_err().to_string();
    assert!(
        e.contains("MaxPooling2D_1") && e.contains("pool_size") && e.contains("bad.json"),
        "{e}"
    );
    std::fs::write(&p, "{not json").unwrap();
    let e = read_architecture_file(&p).unwrap_err().to_string();
    assert!(e.contains("not valid JSON"), "{e}");
    std::fs::remove_dir_all(&dir).ok();
}

/// Layer sizes past what any face network uses are refused by name instead of overflowing the
/// shape arithmetic (a fuzzing find: `fuzz/corpus/architecture/crash-filters-overflow.json`).
#[test]
fn absurd_layer_sizes_are_refused_not_overflowed() {
    for (text, says) in [
        (
            r#"{"Conv2D_1": {"filters": 23333333333333333, "kernel_size": 3, "input_shape": [48, 48, 1]}, "Flatten_1": {}, "Dense_1": {"units": 7, "activation": "softmax"}}"#,
            "filters or units",
        ),
        (
            r#"{"Conv2D_1": {"filters": 8, "kernel_size": 3, "input_shape": [48, 48, 1]}, "MaxPooling2D_1": {"pool_size": 100000}, "Flatten_1": {}, "Dense_1": {"units": 7, "activation": "softmax"}}"#,
            "pooling window",
        ),
    ] {
        let imp = emolens_model::parse_architecture(text, "absurd.json").unwrap();
        let e = imp.arch.summarise(1, 48, 48).unwrap_err().to_string();
        assert!(e.contains(says), "{e}");
    }
}
