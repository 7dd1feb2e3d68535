//! Writes a freshly initialised (untrained) model file of an architecture, for benchmarks that
//! measure speed, not accuracy, when no trained model is at hand:
//! `cargo run --release -p emolens-faces --example write_untrained_model -- ARCH.json OUT.emolens`
//! (e.g. the original design's `shared/seed-reference/architectures/model_2_best.json`).
use emolens_core::{ColourMode, InputSpec, ModelMeta};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [arch_path, out] = args.as_slice() else {
        eprintln!("usage: write_untrained_model ARCH.json OUT.emolens");
        std::process::exit(2);
    };
    let imported = emolens_model::read_architecture_file(std::path::Path::new(arch_path))
        .unwrap_or_else(|e| {
            eprintln!("{e}");
            std::process::exit(1)
        });
    let (h, w, c) = imported.input_shape.unwrap_or((48, 48, 1));
    let colour = if c == 3 {
        ColourMode::Rgb
    } else {
        ColourMode::Grayscale
    };
    let device = emolens_model::inference_device();
    let net = emolens_model::Network::new(&imported.arch, c, h, w, &device).unwrap_or_else(|e| {
        eprintln!("{e}");
        std::process::exit(1)
    });
    let meta = ModelMeta {
        flip_tta: false,
        flip_tta_below: None,
        int8: None,
        format_version: ModelMeta::FORMAT_VERSION,
        name: format!("{}-untrained", imported.arch.name),
        // FER2013's folder order, as a model trained on it by emolens would list them.
        classes: emolens_core::Emotion::ALL
            .map(|e| e.name().to_string())
            .to_vec(),
        input: InputSpec {
            height: h as u32,
            width: w as u32,
            ..InputSpec::fer(colour)
        },
        architecture: serde_json::to_value(&imported.arch).expect("architecture serialises"),
        training: serde_json::Value::Null,
        data_fingerprint: None,
        metrics: Default::default(),
    };
    let bytes = emolens_model::ModelFile::encode(&meta, net).expect("model encodes");
    std::fs::write(out, bytes).unwrap_or_else(|e| {
        eprintln!("{out}: {e}");
        std::process::exit(1)
    });
    println!("wrote {out} ({} {}x{}x{})", imported.arch.name, c, h, w);
}
