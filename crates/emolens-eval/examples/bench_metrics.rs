//! Times `evaluate` and the report writers on a FER2013-test-sized problem (7,178 samples,
//! 7 classes, the test split's class counts), with probabilities from a seeded generator.
//!
//! `cargo run --release -p emolens-eval --example bench_metrics [OUT_DIR]`

use emolens_eval::metrics::evaluate;
use emolens_eval::report::{write_eval_report, EvalDocument, EvalSection};
use std::time::Instant;

fn main() {
    let counts = [958usize, 111, 1024, 1774, 1233, 1247, 831];
    let classes: Vec<String> = [
        "angry", "disgust", "fear", "happy", "neutral", "sad", "surprise",
    ]
    .map(String::from)
    .to_vec();
    // xorshift: deterministic, no extra dependency.
    let mut state = 0x9E37_79B9_7F4A_7C15u64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        (state >> 11) as f64 / (1u64 << 53) as f64
    };
    let mut labels = Vec::new();
    let mut probs = Vec::new();
    for (c, &n) in counts.iter().enumerate() {
        for _ in 0..n {
            let mut row: Vec<f64> = (0..7).map(|_| (next() * 3.0).exp()).collect();
            row[c] *= 1.0 + 3.0 * next();
            let s: f64 = row.iter().sum();
            labels.push(c);
            probs.push(row.iter().map(|v| (v / s) as f32).collect::<Vec<f32>>());
        }
    }
    let t = Instant::now();
    let report = evaluate(&labels, &probs, &classes).expect("valid input");
    let metrics_s = t.elapsed().as_secs_f64();
    let dir = std::env::args()
        .nth(1)
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| std::env::temp_dir().join("emolens-bench-metrics"));
    let doc = EvalDocument {
        emolens_version: env!("CARGO_PKG_VERSION").into(),
        model_name: "synthetic".into(),
        model_source: "synthetic probabilities".into(),
        data_dir: "-".into(),
        labels: Default::default(),
        class_map: vec![],
        flip_tta: false,
        flip_tta_below: None,
        runtime: "synthetic".into(),
        seconds: 0.0,
        images_per_second: 0.0,
        failures: vec![],
        sections: vec![EvalSection {
            key: "all".into(),
            title: "synthetic".into(),
            files: (0..labels.len()).map(|i| format!("sample_{i}")).collect(),
            report,
            excluded: vec![],
        }],
    };
    let t = Instant::now();
    write_eval_report(&doc, &dir, &|_| None).expect("report written");
    let report_s = t.elapsed().as_secs_f64();
    println!(
        "evaluate: {} samples in {:.1} ms; report files (json/md/html, 4 plots as PNG+SVG, contact sheet): {:.0} ms -> {}",
        labels.len(),
        metrics_s * 1e3,
        report_s * 1e3,
        dir.display()
    );
}
