//! Bad input never crashes and never loses data: a small real FER2013 subset copied into a temp
//! dir, plus broken files and folders the test makes itself.

use emolens_core::{ColourMode, InputSpec, Preprocessor};
use emolens_data::clean::{clean, CleanOptions};
use emolens_data::scan::{scan_dataset, ScanOptions, Split};
use emolens_data::stats::{analyse, compute};
use emolens_data::{load_cache, open_for_training, DropReason, ProblemKind};
use std::path::{Path, PathBuf};

fn fer() -> PathBuf {
    emolens_test_support::shared("data/fer2013/train");
    emolens_test_support::fer2013()
}

/// Copies the first `n` files (by name) of `fer/<split>/<class>` into `root/<split>/<to_class>`.
fn copy_some(root: &Path, split: &str, class: &str, to_class: &str, n: usize) -> Vec<PathBuf> {
    let src = fer().join(split).join(class);
    let names = emolens_test_support::sorted_entries(&src);
    let dst = root.join(split).join(to_class);
    std::fs::create_dir_all(&dst).unwrap();
    names
        .iter()
        .take(n)
        .map(|p| {
            let to = dst.join(p.file_name().unwrap());
            std::fs::copy(p, &to).unwrap();
            to
        })
        .collect()
}

/// The fixture: 6 happy + 6 sad train images ("happiness" folder name as a synonym), 3 happy test
/// images, a `contempt/` class, an empty `angry/` class, a stray `extras/` folder at the root,
/// and, in train/happiness, a zero-byte file, a text file named .jpg, a truncated JPEG, a WebP
/// named .jpg, a PNG, a dangling symlink and a hidden `.DS_Store`.
fn fixture() -> tempfile::TempDir {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let happy = copy_some(root, "train", "happy", "happiness", 6);
    copy_some(root, "train", "sad", "sad", 6);
    copy_some(root, "test", "happy", "happy", 3);
    copy_some(root, "train", "disgust", "contempt", 2);
    std::fs::create_dir_all(root.join("train/angry")).unwrap();
    std::fs::create_dir_all(root.join("extras/whatever")).unwrap();
    let h = root.join("train/happiness");
    std::fs::write(h.join("zero.jpg"), b"").unwrap();
    std::fs::write(h.join("notes.jpg"), b"these are my notes, not a picture").unwrap();
    let jpg = std::fs::read(&happy[0]).unwrap();
    std::fs::write(h.join("truncated.jpg"), &jpg[..jpg.len() / 3]).unwrap();
    let img = image::load_from_memory(&jpg).unwrap();
    let rgb = image::DynamicImage::ImageRgb8(img.to_rgb8());
    rgb.save_with_format(h.join("webp_named.jpg"), image::ImageFormat::WebP)
        .unwrap();
    img.save_with_format(h.join("real.png"), image::ImageFormat::Png)
        .unwrap();
    std::fs::write(h.join(".DS_Store"), b"junk").unwrap();
    #[cfg(unix)]
    std::os::unix::fs::symlink(root.join("no/such/file.jpg"), h.join("dangling.jpg")).unwrap();
    tmp
}

#[test]
fn every_bad_input_is_named_counted_and_skipped() {
    let tmp = fixture();
    let root = tmp.path();
    let scan = scan_dataset(root, &ScanOptions::default()).unwrap();
    let kinds: Vec<ProblemKind> = scan.problems.iter().map(|p| p.kind).collect();
    for k in [
        ProblemKind::UnknownClass,
        ProblemKind::EmptyClass,
        ProblemKind::UnknownSplit,
    ] {
        assert!(kinds.contains(&k), "{k:?} missing from {:?}", scan.problems);
    }
    let contempt = scan
        .problems
        .iter()
        .find(|p| p.kind == ProblemKind::UnknownClass)
        .unwrap();
    assert!(
        contempt.message.contains("contempt") && contempt.message.contains("--extra-classes"),
        "{contempt}"
    );
    assert_eq!(scan.skipped_classes.get("train/contempt"), Some(&2));
    assert_eq!(scan.hidden_ignored, 1);
    let happy = scan.classes.iter().position(|c| c == "happy").unwrap();
    assert_eq!(
        scan.files
            .iter()
            .filter(|f| f.class == happy && f.split == Split::Train)
            .count(),
        6 + 6
    );

    let analyses = analyse(&scan, false);
    let st = compute(&scan, &analyses);
    let bad: Vec<(String, ProblemKind)> = st
        .undecodable
        .iter()
        .map(|p| {
            (
                p.path.file_name().unwrap().to_string_lossy().into_owned(),
                p.kind,
            )
        })
        .collect();
    assert!(
        bad.contains(&("zero.jpg".into(), ProblemKind::EmptyFile)),
        "{bad:?}"
    );
    assert!(
        bad.contains(&("notes.jpg".into(), ProblemKind::NotAnImage)),
        "{bad:?}"
    );
    assert!(
        bad.contains(&("truncated.jpg".into(), ProblemKind::Undecodable)),
        "{bad:?}"
    );
    #[cfg(unix)]
    assert!(
        bad.contains(&("dangling.jpg".into(), ProblemKind::UnreadableFile)),
        "{bad:?}"
    );
    for p in &st.undecodable {
        assert!(
            p.message.contains(&p.path.display().to_string()),
            "message must name the file: {p}"
        );
    }
    let train = st.splits.iter().find(|s| s.split == "train").unwrap();
    assert_eq!(
        train.formats.get("webp"),
        Some(&1),
        "WebP named .jpg decodes by content"
    );
    assert_eq!(train.formats.get("png"), Some(&1));
    assert_eq!(train.extension_mismatch, 1);
    assert_eq!(train.decoded, 6 + 6 + 2);

    // Extra classes on request.
    let with_extra = scan_dataset(
        root,
        &ScanOptions {
            extra_classes: true,
        },
    )
    .unwrap();
    assert_eq!(
        with_extra.classes.last().map(String::as_str),
        Some("contempt")
    );
    assert_eq!(with_extra.files.len(), scan.files.len() + 2);

    // Clean: bad files dropped with their reason; nothing in the folder changes.
    let before: Vec<_> = walk(root);
    let m = clean(&scan, &analyses, &CleanOptions::default()).unwrap();
    assert_eq!(m.entries.len() + m.dropped.len(), scan.files.len());
    let undecodable = m
        .dropped
        .iter()
        .filter(|d| d.reason == DropReason::Undecodable)
        .count();
    assert_eq!(undecodable, st.undecodable.len());
    assert_eq!(walk(root), before, "clean must never touch the originals");

    // The training loader skips the bad files, names them, and keeps the rest.
    let splits = open_for_training(root, 0.0, 1).unwrap();
    let pre = Preprocessor::new(InputSpec::fer(ColourMode::Grayscale));
    let (cache, problems) = load_cache(&splits.train, &pre, false);
    assert_eq!(cache.len(), 6 + 6 + 2);
    assert_eq!(problems.len(), st.undecodable.len());
    assert!(cache.paths.iter().any(|p| p.ends_with("webp_named.jpg")));
}

fn walk(root: &Path) -> Vec<(PathBuf, u64)> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            match std::fs::symlink_metadata(&p) {
                Ok(m) if m.is_dir() => stack.push(p),
                Ok(m) => out.push((p, m.len())),
                Err(_) => {}
            }
        }
    }
    out.sort();
    out
}

#[test]
fn missing_or_empty_dataset_is_a_clear_error() {
    let tmp = tempfile::tempdir().unwrap();
    let e = scan_dataset(&tmp.path().join("nope"), &ScanOptions::default())
        .unwrap_err()
        .to_string();
    assert!(e.contains("nope") && e.contains("cannot read"), "{e}");
    let e = scan_dataset(tmp.path(), &ScanOptions::default())
        .unwrap_err()
        .to_string();
    assert!(e.contains("no split folders"), "{e}");
    let e = open_for_training(tmp.path(), 1.5, 0)
        .unwrap_err()
        .to_string();
    assert!(e.contains("valid fraction"), "{e}");
}
