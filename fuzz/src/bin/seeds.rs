//! Writes the starting corpus of every fuzz target under `fuzz/corpus/<target>/`, all of it
//! synthesized here (no research data: no FER2013 or AffectNet image is ever a seed).
//!   cargo afl build --release && target/release/seeds   (from fuzz/), or without an
//!   instrumented build: cargo run --release --example fuzz_seeds -- fuzz   (from the workspace)

use emolens_core::{ColourMode, InputSpec, ModelMeta};
use image::{DynamicImage, ImageFormat};
use std::path::{Path, PathBuf};

fn write(dir: &Path, name: &str, bytes: &[u8]) {
    std::fs::create_dir_all(dir).expect("corpus folder");
    std::fs::write(dir.join(name), bytes).expect("corpus file");
}

fn encode(img: &DynamicImage, format: ImageFormat) -> Vec<u8> {
    let mut out = Vec::new();
    img.write_to(&mut std::io::Cursor::new(&mut out), format)
        .expect("encodes");
    out
}

fn images(dir: &Path) {
    let grey = image::GrayImage::from_fn(16, 12, |x, y| image::Luma([(x * 16 + y * 5) as u8]));
    let rgb = image::RgbImage::from_fn(12, 16, |x, y| {
        image::Rgb([(x * 20) as u8, (y * 15) as u8, 90])
    });
    let rgba = image::RgbaImage::from_fn(8, 8, |x, y| {
        image::Rgba([(x * 30) as u8, 10, (y * 30) as u8, 200])
    });
    let grey16 = image::ImageBuffer::<image::Luma<u16>, Vec<u16>>::from_fn(8, 8, |x, y| {
        image::Luma([(x * 4000 + y * 300) as u16])
    });
    let (g, c, a) = (
        DynamicImage::ImageLuma8(grey),
        DynamicImage::ImageRgb8(rgb),
        DynamicImage::ImageRgba8(rgba),
    );
    for (name, img, format) in [
        ("grey.png", &g, ImageFormat::Png),
        ("rgb.png", &c, ImageFormat::Png),
        ("rgba.png", &a, ImageFormat::Png),
        (
            "grey16.png",
            &DynamicImage::ImageLuma16(grey16),
            ImageFormat::Png,
        ),
        ("grey.jpg", &g, ImageFormat::Jpeg),
        ("rgb.jpg", &c, ImageFormat::Jpeg),
        ("rgb.gif", &c, ImageFormat::Gif),
        ("rgb.bmp", &c, ImageFormat::Bmp),
        ("grey.tif", &g, ImageFormat::Tiff),
        ("rgb.tif", &c, ImageFormat::Tiff),
        ("rgba.webp", &a, ImageFormat::WebP),
        ("grey.pgm", &g, ImageFormat::Pnm),
    ] {
        write(dir, name, &encode(img, format));
    }
    // Cut-off files, which must be refused.
    let jpg = encode(&c, ImageFormat::Jpeg);
    write(dir, "cut.jpg", &jpg[..jpg.len() * 2 / 3]);
    let png = encode(&g, ImageFormat::Png);
    write(dir, "cut.png", &png[..png.len() / 2]);
    // A header claiming 60000 x 60000 pixels (a decompression bomb's first bytes).
    let mut bomb = png.clone();
    bomb[16..20].copy_from_slice(&60000u32.to_be_bytes());
    bomb[20..24].copy_from_slice(&60000u32.to_be_bytes());
    write(dir, "bomb.png", &bomb);
}

fn requests(dir: &Path) {
    let png = encode(
        &DynamicImage::ImageLuma8(image::GrayImage::from_fn(4, 4, |x, y| {
            image::Luma([(x * 60 + y) as u8])
        })),
        ImageFormat::Png,
    );
    let b64 = base64_encode(&png);
    let mut n = 0;
    let mut put = |which: u8, body: &[u8]| {
        let mut v = vec![which];
        v.extend_from_slice(body);
        write(dir, &format!("req-{which}-{n}"), &v);
        n += 1;
    };
    // Analyze JSON.
    put(
        0,
        format!(
            r#"{{"images": [{{"name": "a.png", "b64": "{b64}"}}, "{b64}"], "assume_crop": true}}"#
        )
        .as_bytes(),
    );
    put(
        0,
        format!(r#"{{"images": ["data:image/png;base64,{b64}"]}}"#).as_bytes(),
    );
    put(0, br#"{"images": [{"b64": "%%"}]}"#);
    // TF-Serving JSON.
    put(
        1,
        br#"{"instances": [[[0.1, 0.2], [0.3, 0.4]], [[0.5, 0.6], [0.7, 0.8]]]}"#,
    );
    put(
        1,
        br#"{"signature_name": "serving_default", "inputs": {"input": [[[[0.5]]]]}}"#,
    );
    put(
        1,
        format!(r#"{{"instances": [{{"b64": "{b64}"}}, {{"input": [[1, 0]]}}]}}"#).as_bytes(),
    );
    put(1, br#"{"instances": [[1, [2]]], "inputs": []}"#);
    // Multipart.
    let mut mp = Vec::new();
    for (field, name) in [("file", "a.png"), ("note", "n.txt"), ("files", "b.png")] {
        mp.extend_from_slice(
            format!("--fuzzboundary\r\nContent-Disposition: form-data; name=\"{field}\"; filename=\"{name}\"\r\nContent-Type: application/octet-stream\r\n\r\n").as_bytes(),
        );
        mp.extend_from_slice(&png);
        mp.extend_from_slice(b"\r\n");
    }
    mp.extend_from_slice(b"--fuzzboundary--\r\n");
    put(2, &mp);
    put(2, b"--fuzzboundary\r\nContent-Disposition: form-data; name=\"file\"\r\n\r\nabc\r\n--fuzzboundary");
}

fn base64_encode(bytes: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for c in bytes.chunks(3) {
        let n = (c[0] as u32) << 16
            | (*c.get(1).unwrap_or(&0) as u32) << 8
            | *c.get(2).unwrap_or(&0) as u32;
        for i in 0..4 {
            out.push(if i <= c.len() {
                A[(n >> (18 - 6 * i) & 63) as usize] as char
            } else {
                '='
            });
        }
    }
    out
}

/// A small network in the original design's format.
const SMALL_ARCH: &str = r#"{
 "Conv2D_1": {"filters": 2, "kernel_size": 3, "activation": "relu", "input_shape": [48, 48, 1]},
 "MaxPooling2D_1": {"pool_size": 8},
 "Flatten_1": {},
 "Dense_1": {"units": 7, "activation": "softmax"}
}"#;

fn models(dir: &Path) {
    let imp = emolens_model::parse_architecture(SMALL_ARCH, "small").expect("parses");
    let device = emolens_model::inference_device();
    let net = emolens_model::Network::new(&imp.arch, 1, 48, 48, &device).expect("builds");
    let meta = ModelMeta {
        flip_tta: false,
        flip_tta_below: None,
        int8: None,
        format_version: ModelMeta::FORMAT_VERSION,
        name: "fuzz-seed".into(),
        classes: [
            "angry", "disgust", "fear", "happy", "neutral", "sad", "surprise",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect(),
        input: InputSpec::fer(ColourMode::Grayscale),
        architecture: serde_json::from_str(&imp.arch.to_json()).expect("json"),
        training: serde_json::Value::Null,
        data_fingerprint: None,
        metrics: Default::default(),
    };
    let file = emolens_model::ModelFile::encode(&meta, net).expect("encodes");
    // The target appends the checksum itself.
    write(dir, "small.emolens-body", &file[..file.len() - 32]);
}

fn architectures(dir: &Path, repo: &Path) {
    write(dir, "small-original.json", SMALL_ARCH.as_bytes());
    for entry in std::fs::read_dir(repo.join("architectures")).expect("architectures/") {
        let p = entry.expect("entry").path();
        let text = std::fs::read(&p).expect("readable");
        write(dir, &p.file_name().expect("name").to_string_lossy(), &text);
    }
    write(
        dir,
        "keras.json",
        br#"{"class_name": "Sequential", "config": {"name": "s", "layers": [
 {"class_name": "InputLayer", "config": {"batch_input_shape": [null, 48, 48, 1]}},
 {"class_name": "Conv2D", "config": {"filters": 2, "kernel_size": [3, 3], "strides": [1, 1], "padding": "same", "activation": "relu", "use_bias": true}},
 {"class_name": "GlobalAveragePooling2D", "config": {}},
 {"class_name": "Dense", "config": {"units": 7, "activation": "softmax", "use_bias": true}}]}}"#,
    );
}

/// Writes the seeds under `<fuzz>/corpus`, `<fuzz>` being the first argument or this crate.
pub fn main() {
    let fuzz = std::env::args()
        .nth(1)
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")));
    let corpus = fuzz.join("corpus");
    images(&corpus.join("image"));
    requests(&corpus.join("request"));
    models(&corpus.join("model_file"));
    architectures(&corpus.join("architecture"), &fuzz.join(".."));
    println!("seeds written under {}", corpus.display());
}
