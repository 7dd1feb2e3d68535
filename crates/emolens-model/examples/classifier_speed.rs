//! Classifier-level speed of a real model file on real face crops: single-image latency
//! (batch 1) and batched throughput, through the same `EmotionClassifier::predict` call that
//! `predict`, `eval`, `analyze` and the server use. Prints one JSON object.
//!
//! ```text
//! cargo run --release -p emolens-model --example classifier_speed -- \
//!     --list FILES.txt [--model FILE] [--mode latency|throughput] [--batch 64] [--seconds 10]
//! ```
//!
//! `--list` names one image per line (e.g. FER2013 test crops); every image is decoded and
//! prepared by `emolens_core::Preprocessor` before the clock starts, so the figures are the
//! classifier alone. Preprocessing is timed separately (from bytes in memory). Threads: the
//! CPU backend uses rayon and oneDNN (OpenMP), so `RAYON_NUM_THREADS=1 OMP_NUM_THREADS=1` (and
//! `taskset -c 0`) gives one thread. The output names the CPU kernels that ran.
//! Each flag is also an environment variable (`EMOLENS_SPEED_LIST`, `EMOLENS_MODEL`,
//! `EMOLENS_SPEED_MODE`, `EMOLENS_SPEED_BATCH`, `EMOLENS_SPEED_SECONDS`).

use emolens_core::{decode_image, DecodeLimits, Preprocessor};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

struct Args {
    list: PathBuf,
    model: Option<PathBuf>,
    mode: String,
    batch: usize,
    seconds: f64,
}

fn parse_args() -> Result<Args, String> {
    let env = |k: &str| std::env::var(k).ok();
    let mut list = env("EMOLENS_SPEED_LIST").map(PathBuf::from);
    let mut model = env("EMOLENS_MODEL").map(PathBuf::from);
    let mut mode = env("EMOLENS_SPEED_MODE").unwrap_or_else(|| "latency".into());
    let mut batch = env("EMOLENS_SPEED_BATCH").unwrap_or_else(|| "64".into());
    let mut seconds = env("EMOLENS_SPEED_SECONDS").unwrap_or_else(|| "10".into());
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || {
            it.next()
                .ok_or_else(|| format!("{flag} needs a value (see the file's doc comment)"))
        };
        match flag.as_str() {
            "--list" => list = Some(PathBuf::from(value()?)),
            "--model" => model = Some(PathBuf::from(value()?)),
            "--mode" => mode = value()?,
            "--batch" => batch = value()?,
            "--seconds" => seconds = value()?,
            other => {
                return Err(format!(
                    "unknown argument `{other}`; flags: --list --model --mode --batch --seconds"
                ))
            }
        }
    }
    let list = list.ok_or("--list FILE (one image path per line) is required")?;
    let batch: usize = batch
        .parse()
        .ok()
        .filter(|&b| b > 0)
        .ok_or(format!("--batch must be a positive integer, got `{batch}`"))?;
    let seconds: f64 = seconds
        .parse()
        .ok()
        .filter(|&s: &f64| s > 0.0)
        .ok_or(format!(
            "--seconds must be a positive number, got `{seconds}`"
        ))?;
    if mode != "latency" && mode != "throughput" {
        return Err(format!(
            "--mode must be latency or throughput, got `{mode}`"
        ));
    }
    Ok(Args {
        list,
        model,
        mode,
        batch,
        seconds,
    })
}

fn percentile(sorted: &[f64], q: f64) -> f64 {
    let i = ((sorted.len() - 1) as f64 * q).round() as usize;
    sorted[i]
}

fn run(a: Args) -> Result<serde_json::Value, String> {
    let classifier =
        emolens_model::load_classifier(a.model.as_deref()).map_err(|e| e.to_string())?;
    let meta = classifier.meta().clone();
    let pre = Preprocessor::new(meta.input.clone());
    let text = std::fs::read_to_string(&a.list)
        .map_err(|e| format!("{}: cannot read the image list: {e}", a.list.display()))?;
    let mut encoded = Vec::new();
    for line in text.lines().map(str::trim).filter(|l| !l.is_empty()) {
        match std::fs::read(line) {
            Ok(b) => encoded.push((line.to_string(), b)),
            Err(e) => eprintln!("skipped {line}: cannot read file: {e}"),
        }
    }
    if encoded.is_empty() {
        return Err(format!("{}: no readable images listed", a.list.display()));
    }

    // Preprocessing from bytes in memory (decode, luma/RGB, resize, normalise), per image.
    let limits = DecodeLimits::default();
    let t = Instant::now();
    let mut inputs: Vec<Vec<f32>> = Vec::with_capacity(encoded.len());
    for (name, bytes) in &encoded {
        match decode_image(bytes, name, &limits) {
            Ok(img) => inputs.push(pre.prepare(&img, None)),
            Err(e) => eprintln!("skipped {name}: {e}"),
        }
    }
    let preprocess_ms = t.elapsed().as_secs_f64() * 1e3 / inputs.len().max(1) as f64;
    if inputs.is_empty() {
        return Err("none of the listed images could be decoded".into());
    }
    let n = inputs.len();
    let threads = |var: &str| std::env::var(var).unwrap_or_else(|_| "all".into());
    // The first call initialises the kernels, so ask which ones run after it.
    classifier
        .predict(&inputs[0], 1)
        .map_err(|e| format!("inference failed: {e}"))?;
    let mut out = serde_json::json!({
        "tool": "emolens",
        "model": meta.name,
        "model_source": a.model.as_ref().map(|p| p.display().to_string()).unwrap_or_else(|| "bundled default model".into()),
        "mode": a.mode,
        "cpu_kernels": emolens_model::onednn::cpu_kernels(),
        "runtime": classifier.runtime(),
        "rayon_threads": threads("RAYON_NUM_THREADS"),
        "omp_threads": threads("OMP_NUM_THREADS"),
        "images": n,
        "preprocess_ms_per_image": preprocess_ms,
    });

    let predict = |x: &[f32], m: usize| {
        classifier
            .predict(x, m)
            .map_err(|e| format!("inference failed: {e}"))
    };
    if a.mode == "latency" {
        // Warm-up: first calls allocate and fill caches.
        for x in inputs.iter().take(20) {
            predict(x, 1)?;
        }
        let mut times = Vec::new();
        let started = Instant::now();
        let mut i = 0usize;
        // At least one pass over the images, then until the time budget is spent.
        while i < n || started.elapsed().as_secs_f64() < a.seconds {
            let x = &inputs[i % n];
            let t = Instant::now();
            let p = predict(x, 1)?;
            times.push(t.elapsed().as_secs_f64() * 1e3);
            std::hint::black_box(p);
            i += 1;
        }
        let mean = times.iter().sum::<f64>() / times.len() as f64;
        times.sort_by(f64::total_cmp);
        out["calls"] = times.len().into();
        out["latency_ms"] = serde_json::json!({
            "median": percentile(&times, 0.5),
            "p10": percentile(&times, 0.1),
            "p90": percentile(&times, 0.9),
            "mean": mean,
        });
    } else {
        let len = pre.spec().len();
        let flat: Vec<f32> = inputs.concat();
        let batch = a.batch.min(n);
        let starts: Vec<usize> = (0..=n - batch).step_by(batch).collect();
        predict(&flat[..batch * len], batch)?;
        let mut rates = Vec::new();
        let mut images = 0usize;
        let started = Instant::now();
        let mut k = 0usize;
        while k < starts.len() || started.elapsed().as_secs_f64() < a.seconds {
            let s = starts[k % starts.len()];
            let t = Instant::now();
            let p = predict(&flat[s * len..(s + batch) * len], batch)?;
            rates.push(batch as f64 / t.elapsed().as_secs_f64());
            std::hint::black_box(p);
            images += batch;
            k += 1;
        }
        let total = started.elapsed().as_secs_f64();
        rates.sort_by(f64::total_cmp);
        out["batch"] = batch.into();
        out["batches"] = k.into();
        out["throughput_images_per_s"] = (images as f64 / total).into();
        out["throughput_median_batch_images_per_s"] = percentile(&rates, 0.5).into();
    }
    Ok(out)
}

fn main() -> ExitCode {
    let result = parse_args().and_then(run);
    match result {
        Ok(v) => {
            println!("{v}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
