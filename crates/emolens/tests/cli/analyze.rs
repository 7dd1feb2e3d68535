//! `emolens analyze` end to end: the real binary, the real model loader, real photos
//! (public-domain ones from `assets/photos/`, FER2013 crops copied from `shared/`).
//!
//! The model is the one bundled in the binary when the build has one; otherwise the test writes
//! a freshly initialised (untrained) model file through the real model-file code and passes
//! `--model`, since these tests check the pipeline and its outputs, not accuracy.

use emolens_core::{ColourMode, InputSpec, ModelMeta};
use std::path::{Path, PathBuf};
use std::process::Output;

const CLASSES: [&str; 7] = [
    "angry", "disgust", "fear", "happy", "neutral", "sad", "surprise",
];

pub(crate) fn assets() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../assets/photos")
}

fn tempdir(name: &str) -> PathBuf {
    emolens_test_support::scratch(&format!("cli-analyze-{name}"))
}

/// `--model FILE` args: none with a bundled model, else an untrained model written here.
pub(crate) fn model_args(dir: &Path) -> Vec<String> {
    if emolens_model::BUNDLED_MODEL.is_some() {
        return Vec::new();
    }
    let arch = emolens_model::Architecture::from_json(
        r#"{"name":"cli-test","layers":[
            {"type":"conv2d","filters":4,"kernel":3,"activation":"relu"},
            {"type":"global_avg_pool"},
            {"type":"dense","units":7,"activation":"softmax"}]}"#,
    )
    .unwrap();
    let device = emolens_model::inference_device();
    let net = emolens_model::Network::new(&arch, 1, 48, 48, &device).unwrap();
    let meta = ModelMeta {
        flip_tta: false,
        flip_tta_below: None,
        int8: None,
        format_version: ModelMeta::FORMAT_VERSION,
        name: "cli-test-untrained".into(),
        // Not alphabetical, so the output must follow the file's order.
        classes: CLASSES.iter().rev().map(|s| s.to_string()).collect(),
        input: InputSpec::fer(ColourMode::Grayscale),
        architecture: serde_json::to_value(&arch).unwrap(),
        training: serde_json::Value::Null,
        data_fingerprint: None,
        metrics: Default::default(),
    };
    let path = dir.join("untrained.emolens");
    std::fs::write(&path, emolens_model::ModelFile::encode(&meta, net).unwrap()).unwrap();
    vec!["--model".into(), path.display().to_string()]
}

/// `emolens analyze ARGS` with the extra environment `envs`.
pub(crate) fn emolens(args: &[String], envs: &[(&str, &str)]) -> Output {
    emolens_test_support::output(
        emolens_test_support::emolens!()
            .arg("analyze")
            .args(args)
            .envs(envs.iter().copied()),
    )
}

/// A folder with a one-face photo, a no-face photo and a file that is no image.
fn mixed_folder(name: &str) -> PathBuf {
    let d = tempdir(name);
    let photos = d.join("photos");
    std::fs::create_dir_all(&photos).unwrap();
    for f in ["astronaut.png", "chelsea.png"] {
        std::fs::copy(assets().join(f), photos.join(f)).unwrap_or_else(|e| panic!("{f}: {e}"));
    }
    std::fs::write(photos.join("broken.jpg"), b"this is not a jpeg").unwrap();
    d
}

pub(crate) fn s(p: &Path) -> String {
    p.display().to_string()
}

#[test]
fn json_lines_per_photo_with_errors_in_place() {
    let d = mixed_folder("json");
    let mut args = model_args(&d);
    args.extend(["--json".into(), s(&d.join("photos"))]);
    let out = emolens(&args, &[]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(2),
        "some photos failed -> exit 2; stderr: {stderr}"
    );
    assert!(stderr.contains("broken.jpg"), "{stderr}");
    let lines: Vec<serde_json::Value> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 3, "{lines:?}");
    // Sorted walk: astronaut, broken, chelsea.
    let astro = &lines[0];
    assert!(astro["source"].as_str().unwrap().ends_with("astronaut.png"));
    assert_eq!(astro["width"], 512);
    let faces = astro["faces"].as_array().unwrap();
    assert_eq!(faces.len(), 1);
    let probs = faces[0]["probabilities"].as_array().unwrap();
    let names: Vec<&str> = probs
        .iter()
        .map(|p| p["emotion"].as_str().unwrap())
        .collect();
    let classes = model_classes();
    assert_eq!(
        names,
        classes.iter().map(|s| s.as_str()).collect::<Vec<_>>(),
        "model order"
    );
    let sum: f64 = probs
        .iter()
        .map(|p| p["probability"].as_f64().unwrap())
        .sum();
    assert!((sum - 1.0).abs() < 1e-3, "softmax sums to 1: {sum}");
    let x = faces[0]["bbox"]["x"].as_f64().unwrap();
    assert!((150.0..200.0).contains(&x), "{x}");
    assert!(faces[0]["top_emotion"].is_string());
    assert!(faces[0]["quality"]["sharpness"].as_f64().unwrap() > 0.0);

    assert!(lines[1]["source"].as_str().unwrap().ends_with("broken.jpg"));
    assert_eq!(lines[1]["status"], 415);
    assert!(lines[1]["error"].as_str().unwrap().contains("broken.jpg"));

    let cat = &lines[2];
    assert_eq!(cat["faces"].as_array().unwrap().len(), 0);
    assert!(
        cat["notes"][0].as_str().unwrap().contains("no face found"),
        "{cat}"
    );
    std::fs::remove_dir_all(&d).ok();
}

/// The class order of the model the tests run with.
pub(crate) fn model_classes() -> Vec<String> {
    match emolens_model::load_classifier(None) {
        Ok(c) if emolens_model::BUNDLED_MODEL.is_some() => c.meta().classes.clone(),
        _ => CLASSES.iter().rev().map(|s| s.to_string()).collect(),
    }
}

/// Splits one CSV line, honouring quotes.
pub(crate) fn csv_fields(line: &str) -> Vec<String> {
    let mut out = vec![String::new()];
    let mut quoted = false;
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '"' if quoted && chars.peek() == Some(&'"') => {
                chars.next();
                out.last_mut().unwrap().push('"');
            }
            '"' => quoted = !quoted,
            ',' if !quoted => out.push(String::new()),
            c => out.last_mut().unwrap().push(c),
        }
    }
    out
}

#[test]
fn csv_rows_per_face_annotations_and_env_flags() {
    let d = mixed_folder("csv");
    let annotated = d.join("annotated");
    let csv = d.join("out.csv");
    let mut args = model_args(&d);
    args.push(s(&d.join("photos")));
    // Flags given through their environment variables.
    let out = emolens(
        &args,
        &[
            ("EMOLENS_ANALYZE_CSV", "true"),
            ("EMOLENS_ANALYZE_OUTPUT", &s(&csv)),
            ("EMOLENS_ANALYZE_ANNOTATE", &s(&annotated)),
        ],
    );
    assert_eq!(
        out.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = std::fs::read_to_string(&csv).unwrap();
    let rows: Vec<Vec<String>> = text.lines().map(csv_fields).collect();
    assert_eq!(
        rows.len(),
        4,
        "header + astronaut face + broken + chelsea: {text}"
    );
    let header = &rows[0];
    for c in model_classes() {
        assert!(header.contains(&format!("p_{c}")), "{header:?}");
    }
    for r in &rows {
        assert_eq!(r.len(), header.len(), "every row has every column: {r:?}");
    }
    let col = |name: &str| header.iter().position(|h| h == name).unwrap();
    assert!(rows[1][col("source")].ends_with("astronaut.png"));
    assert_eq!(rows[1][col("face")], "1");
    assert!(rows[2][col("error")].contains("broken.jpg"));
    assert!(rows[3][col("notes")].contains("no face found"));

    let jpg =
        std::fs::read(annotated.join("astronaut.annotated.jpg")).expect("annotated copy written");
    assert_eq!(&jpg[..2], &[0xFF, 0xD8], "a JPEG");
    assert!(annotated.join("chelsea.annotated.jpg").exists());
    assert!(!annotated.join("broken.annotated.jpg").exists());
    std::fs::remove_dir_all(&d).ok();
}

/// Text cells a spreadsheet would run as formulas (photos named `=...`, `@...`, `+...`, given by
/// relative path) get a leading `'`; numbers, negative ones included, stay numbers.
#[test]
fn csv_cells_are_formula_safe() {
    let d = tempdir("csv-formula");
    let names = ["=HYPERLINK(1).png", "@SUM(1).png", "+cmd.png"];
    for n in names {
        std::fs::copy(assets().join("astronaut.png"), d.join(n)).unwrap();
    }
    let mut args = model_args(&d);
    args.push("--csv".into());
    args.extend(names.iter().map(|n| n.to_string()));
    let out = emolens_test_support::success(
        emolens_test_support::emolens!()
            .current_dir(&d)
            .arg("analyze")
            .args(&args),
    );
    let text = String::from_utf8_lossy(&out.stdout);
    let rows: Vec<Vec<String>> = text.lines().map(csv_fields).collect();
    assert_eq!(rows.len(), 1 + names.len(), "{text}");
    let source = rows[0].iter().position(|h| h == "source").unwrap();
    for (row, name) in rows[1..].iter().zip(names) {
        assert_eq!(row[source], format!("'{name}"), "{text}");
        for cell in row {
            let risky = cell.starts_with(['=', '+', '-', '@', '\t', '\r']);
            assert!(!risky || cell.parse::<f64>().is_ok(), "{cell:?} in {text}");
        }
    }
    std::fs::remove_dir_all(&d).ok();
}

#[test]
fn assume_crop_and_text_output_on_fer_crops() {
    let d = tempdir("crops");
    let src = emolens_test_support::shared("data/fer2013/test/happy");
    let files = emolens_test_support::sorted_entries(&src);
    for f in files.iter().take(3) {
        std::fs::copy(f, d.join(f.file_name().unwrap())).unwrap();
    }
    let mut args = model_args(&d);
    args.extend([
        "--assume-crop".into(),
        "--min-confidence".into(),
        "0".into(),
        s(&d),
    ]);
    let out = emolens(&args, &[]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(stdout.matches("48x48  1 face(s)").count(), 3, "{stdout}");
    assert_eq!(stdout.matches("box 0,0 48x48").count(), 3, "{stdout}");
    std::fs::remove_dir_all(&d).ok();
}

#[test]
fn missing_input_is_a_clear_error() {
    let d = tempdir("missing");
    let mut args = model_args(&d);
    args.push(s(&d.join("nope.jpg")));
    let out = emolens(&args, &[]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("nope.jpg") && err.contains("no such photo"),
        "{err}"
    );
    std::fs::remove_dir_all(&d).ok();
}
