//! `emolens data stats`: what a dataset holds, file by file, decoded by content.
//!
//! Per split and class: counts; grayscale versus colour (by stored mode and by content: a colour
//! file whose channels are all equal is grayscale content); image sizes, formats and byte sizes;
//! blank (constant) images; undecodable files; exact-duplicate groups (SHA-256) within and across
//! splits, with conflicting labels flagged and held-out files that have a copy in train counted.

use crate::problem::Problem;
use crate::progress;
use crate::scan::{DatasetFile, DatasetScan, Split};
use emolens_core::decode_image;
use emolens_core::fingerprint::sha256_hex;
use emolens_core::DecodeLimits;
use image::{DynamicImage, ImageFormat};
use rayon::prelude::*;
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt::Write as _;

/// What decoding one file found.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ImageInfo {
    pub width: u32,
    pub height: u32,
    /// The format sniffed from the bytes (e.g. `jpeg`, `png`).
    pub format: String,
    /// True when the file's extension names another format (or none we know).
    pub extension_mismatch: bool,
    /// The file is stored with colour channels.
    pub stored_colour: bool,
    /// Some pixel's channels differ (false for a colour file that holds a gray image).
    pub colour_content: bool,
    /// Blank: pixel standard deviation under [`BLANK_STD`] (constant up to decoder rounding).
    pub blank: bool,
    /// Pixel standard deviation (all channel values).
    pub pixel_std: f64,
}

/// One file's analysis.
#[derive(Debug, Clone, PartialEq)]
pub struct FileAnalysis {
    pub bytes: u64,
    /// `None` when the file could not be read.
    pub sha256: Option<String>,
    /// `Err` when it is not a usable image.
    pub image: Result<ImageInfo, Problem>,
}

/// Pixel standard deviation under which an image counts as blank. A truly constant JPEG does not
/// always decode to one value (IDCT rounding differs between decoders: FER2013's grey
/// `Training_3542668.jpg` decodes to 127..=130 here, std 0.7), so "constant" means std < 1.
pub const BLANK_STD: f64 = 1.0;
/// Pixel standard deviation under which a non-blank image is reported as near-blank.
pub const NEAR_BLANK_STD: f64 = 5.0;

/// (stored colour, colour content, pixel std over all channel values).
fn inspect(img: &DynamicImage) -> (bool, bool, f64) {
    let stored_colour = img.color().has_color();
    let rgb;
    let values: &[u8] = match img {
        DynamicImage::ImageLuma8(g) => g.as_raw(),
        _ => {
            rgb = img.to_rgb8();
            rgb.as_raw()
        }
    };
    let colour_content =
        stored_colour && values.chunks_exact(3).any(|p| p[0] != p[1] || p[1] != p[2]);
    let n = values.len().max(1) as f64;
    let (mut sum, mut sq) = (0u64, 0u64);
    for &v in values {
        sum += v as u64;
        sq += (v as u64) * (v as u64);
    }
    let mean = sum as f64 / n;
    let std = (sq as f64 / n - mean * mean).max(0.0).sqrt();
    (stored_colour, colour_content, std)
}

fn format_name(f: ImageFormat) -> String {
    f.extensions_str()
        .first()
        .map(|s| s.to_string())
        .unwrap_or_else(|| format!("{f:?}").to_ascii_lowercase())
}

/// Reads, hashes and decodes one file.
pub fn analyse_file(f: &DatasetFile) -> FileAnalysis {
    let bytes = match std::fs::read(&f.path) {
        Ok(b) => b,
        Err(e) => {
            return FileAnalysis {
                bytes: 0,
                sha256: None,
                image: Err(Problem::new(
                    &f.path,
                    crate::ProblemKind::UnreadableFile,
                    format!("cannot read file ({e})"),
                )),
            }
        }
    };
    let sha = sha256_hex(&bytes);
    if crate::problem::jpeg_truncated(&bytes) {
        return FileAnalysis {
            bytes: bytes.len() as u64,
            sha256: Some(sha),
            image: Err(crate::problem::truncated_jpeg_problem(&f.path)),
        };
    }
    let name = f.path.display().to_string();
    let image = decode_image(&bytes, &name, &DecodeLimits::default())
        .map_err(|e| Problem::from_core(&f.path, e))
        .map(|img| {
            let sniffed = image::guess_format(&bytes).ok();
            let by_ext = ImageFormat::from_path(&f.path).ok();
            let (stored_colour, colour_content, pixel_std) = inspect(&img);
            ImageInfo {
                width: img.width(),
                height: img.height(),
                format: sniffed.map(format_name).unwrap_or_else(|| "unknown".into()),
                extension_mismatch: sniffed.is_some() && by_ext != sniffed,
                stored_colour,
                colour_content,
                blank: pixel_std < BLANK_STD,
                pixel_std,
            }
        });
    FileAnalysis {
        bytes: bytes.len() as u64,
        sha256: Some(sha),
        image,
    }
}

/// Analyses every file of a scan in parallel (rayon), with a progress bar if `show_progress`.
/// The result is in the scan's file order.
pub fn analyse(scan: &DatasetScan, show_progress: bool) -> Vec<FileAnalysis> {
    let bar = progress::bar(scan.files.len(), "reading", show_progress);
    let out = scan
        .files
        .par_iter()
        .map(|f| {
            let a = analyse_file(f);
            bar.inc(1);
            a
        })
        .collect();
    bar.finish_and_clear();
    out
}

/// Byte-size summary.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ByteStats {
    pub total: u64,
    pub min: u64,
    pub max: u64,
    pub mean: f64,
    pub median: u64,
}

impl ByteStats {
    fn of(mut v: Vec<u64>) -> ByteStats {
        if v.is_empty() {
            return ByteStats::default();
        }
        v.sort_unstable();
        let total: u64 = v.iter().sum();
        ByteStats {
            total,
            min: v[0],
            max: v[v.len() - 1],
            mean: total as f64 / v.len() as f64,
            median: v[v.len() / 2],
        }
    }
}

/// One split's figures.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct SplitStats {
    pub split: String,
    pub files: usize,
    /// Files per class (classes in the dataset's order; absent classes count 0).
    pub per_class: BTreeMap<String, usize>,
    pub decoded: usize,
    pub undecodable: usize,
    /// Decoded files stored as grayscale.
    pub grayscale_stored: usize,
    /// Decoded files stored with colour channels.
    pub colour_stored: usize,
    /// Colour files whose channels are all equal (grayscale content).
    pub colour_stored_gray_content: usize,
    /// Grayscale by content (gray-stored plus gray content in colour files).
    pub grayscale_content: usize,
    /// Colour by content.
    pub colour_content: usize,
    /// `WxH` to count.
    pub sizes: BTreeMap<String, usize>,
    /// Sniffed format to count.
    pub formats: BTreeMap<String, usize>,
    /// Files whose extension names another format than their content.
    pub extension_mismatch: usize,
    pub blank: usize,
    pub bytes: ByteStats,
}

/// One copy in a duplicate group.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DupMember {
    pub path: String,
    pub split: Split,
    pub class: String,
}

/// Files with identical bytes.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DupGroup {
    pub sha256: String,
    pub conflicting_labels: bool,
    pub members: Vec<DupMember>,
}

/// Held-out files (valid or test) that have a byte-identical copy in train.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct LeakStats {
    pub files_with_train_copy: usize,
    /// ... of which some train copy carries a different label.
    pub with_different_train_label: usize,
    pub by_class: BTreeMap<String, usize>,
}

/// Exact duplicates (SHA-256 of the file bytes) over all readable files.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct DuplicateStats {
    /// Groups of two or more identical files.
    pub groups: usize,
    /// Files in those groups.
    pub files: usize,
    /// Copies beyond the first of each group (`files - groups`).
    pub redundant: usize,
    /// Distinct contents among all readable files.
    pub distinct_files: usize,
    /// Groups whose copies all lie in one split, per split.
    pub within_split: BTreeMap<String, usize>,
    /// Groups spanning two or more splits.
    pub across_splits: usize,
    /// Groups whose copies carry more than one label.
    pub conflicting_label_groups: usize,
    /// Per held-out split.
    pub leaks: BTreeMap<String, LeakStats>,
    pub group_list: Vec<DupGroup>,
}

/// Everything `emolens data stats` reports.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct DatasetStats {
    pub root: String,
    pub classes: Vec<String>,
    pub files: usize,
    pub decoded: usize,
    pub splits: Vec<SplitStats>,
    pub duplicates: DuplicateStats,
    /// Relative paths of blank (constant) images.
    pub blank: Vec<String>,
    /// Near-blank images (std between [`BLANK_STD`] and [`NEAR_BLANK_STD`]): path and std.
    pub near_blank: Vec<(String, f64)>,
    /// Files that are not usable images, with the reason.
    pub undecodable: Vec<Problem>,
    /// Folder-level problems (unknown/empty classes, unreadable folders, stray folders).
    pub problems: Vec<Problem>,
    /// Unknown class folders skipped (`split/folder` to file count).
    pub skipped_classes: BTreeMap<String, usize>,
    pub hidden_ignored: usize,
    pub seconds: f64,
}

/// Duplicate groups: for each SHA-256 held by two or more readable files, the file indices,
/// ordered by relative path.
pub fn duplicate_groups(
    scan: &DatasetScan,
    analyses: &[FileAnalysis],
) -> Vec<(String, Vec<usize>)> {
    let mut by_hash: HashMap<&str, Vec<usize>> = HashMap::new();
    for (i, a) in analyses.iter().enumerate() {
        if let Some(h) = &a.sha256 {
            by_hash.entry(h.as_str()).or_default().push(i);
        }
    }
    let mut groups: Vec<(String, Vec<usize>)> = by_hash
        .into_iter()
        .filter(|(_, v)| v.len() > 1)
        .map(|(h, mut v)| {
            v.sort_by(|&a, &b| scan.files[a].rel.cmp(&scan.files[b].rel));
            (h.to_string(), v)
        })
        .collect();
    groups.sort_by(|a, b| scan.files[a.1[0]].rel.cmp(&scan.files[b.1[0]].rel));
    groups
}

/// Computes the stats of a scanned dataset from its file analyses.
pub fn compute(scan: &DatasetScan, analyses: &[FileAnalysis]) -> DatasetStats {
    let mut st = DatasetStats {
        root: scan.root.display().to_string(),
        classes: scan.classes.clone(),
        files: scan.files.len(),
        problems: scan.problems.clone(),
        skipped_classes: scan.skipped_classes.clone(),
        hidden_ignored: scan.hidden_ignored,
        ..Default::default()
    };
    for split in &scan.splits {
        let mut s = SplitStats {
            split: split.name().into(),
            per_class: scan.classes.iter().map(|c| (c.clone(), 0)).collect(),
            ..Default::default()
        };
        let mut sizes = Vec::new();
        for (f, a) in scan
            .files
            .iter()
            .zip(analyses)
            .filter(|(f, _)| f.split == *split)
        {
            s.files += 1;
            *s.per_class
                .entry(scan.classes[f.class].clone())
                .or_default() += 1;
            if a.sha256.is_some() {
                sizes.push(a.bytes);
            }
            match &a.image {
                Ok(info) => {
                    s.decoded += 1;
                    if info.stored_colour {
                        s.colour_stored += 1;
                        if !info.colour_content {
                            s.colour_stored_gray_content += 1;
                        }
                    } else {
                        s.grayscale_stored += 1;
                    }
                    if info.colour_content {
                        s.colour_content += 1;
                    } else {
                        s.grayscale_content += 1;
                    }
                    *s.sizes
                        .entry(format!("{}x{}", info.width, info.height))
                        .or_default() += 1;
                    *s.formats.entry(info.format.clone()).or_default() += 1;
                    s.extension_mismatch += info.extension_mismatch as usize;
                    if info.blank {
                        s.blank += 1;
                        st.blank.push(f.rel.clone());
                    } else if info.pixel_std < NEAR_BLANK_STD {
                        st.near_blank
                            .push((f.rel.clone(), (info.pixel_std * 10.0).round() / 10.0));
                    }
                }
                Err(p) => {
                    s.undecodable += 1;
                    st.undecodable.push(p.clone());
                }
            }
        }
        s.bytes = ByteStats::of(sizes);
        st.decoded += s.decoded;
        st.splits.push(s);
    }

    // Duplicates.
    let groups = duplicate_groups(scan, analyses);
    let d = &mut st.duplicates;
    d.distinct_files = analyses
        .iter()
        .filter_map(|a| a.sha256.as_deref())
        .collect::<BTreeSet<_>>()
        .len();
    for (hash, members) in &groups {
        d.groups += 1;
        d.files += members.len();
        let splits: BTreeSet<Split> = members.iter().map(|&i| scan.files[i].split).collect();
        let labels: BTreeSet<usize> = members.iter().map(|&i| scan.files[i].class).collect();
        if splits.len() == 1 {
            let only = splits.iter().next().map(|s| s.name()).unwrap_or_default();
            *d.within_split.entry(only.to_string()).or_default() += 1;
        } else {
            d.across_splits += 1;
        }
        let conflicting = labels.len() > 1;
        d.conflicting_label_groups += conflicting as usize;
        d.group_list.push(DupGroup {
            sha256: hash.clone(),
            conflicting_labels: conflicting,
            members: members
                .iter()
                .map(|&i| DupMember {
                    path: scan.files[i].rel.clone(),
                    split: scan.files[i].split,
                    class: scan.classes[scan.files[i].class].clone(),
                })
                .collect(),
        });
    }
    d.redundant = d.files - d.groups;

    // Leaks: held-out files with a byte-identical copy in train.
    let mut train_labels: HashMap<&str, BTreeSet<usize>> = HashMap::new();
    for (f, a) in scan.files.iter().zip(analyses) {
        if let (Split::Train, Some(h)) = (f.split, a.sha256.as_deref()) {
            train_labels.entry(h).or_default().insert(f.class);
        }
    }
    for split in scan.splits.iter().filter(|s| **s != Split::Train) {
        let mut leak = LeakStats::default();
        for (f, a) in scan
            .files
            .iter()
            .zip(analyses)
            .filter(|(f, _)| f.split == *split)
        {
            if let Some(labels) = a.sha256.as_deref().and_then(|h| train_labels.get(h)) {
                leak.files_with_train_copy += 1;
                *leak
                    .by_class
                    .entry(scan.classes[f.class].clone())
                    .or_default() += 1;
                if labels.iter().any(|&l| l != f.class) {
                    leak.with_different_train_label += 1;
                }
            }
        }
        d.leaks.insert(split.name().to_string(), leak);
    }
    st
}

/// Scans, analyses and computes in one go.
pub fn dataset_stats(scan: &DatasetScan, show_progress: bool) -> DatasetStats {
    let t = std::time::Instant::now();
    let analyses = analyse(scan, show_progress);
    let mut st = compute(scan, &analyses);
    st.seconds = t.elapsed().as_secs_f64();
    st
}

fn thousands(n: usize) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// The human-readable report.
pub fn render_text(st: &DatasetStats) -> String {
    let mut o = String::new();
    let _ = writeln!(o, "Dataset {}", st.root);
    let _ = writeln!(
        o,
        "{} files, {} decoded, {} not usable ({:.1} s)\n",
        thousands(st.files),
        thousands(st.decoded),
        thousands(st.undecodable.len()),
        st.seconds
    );
    // Class table.
    let _ = write!(o, "{:<10}", "class");
    for s in &st.splits {
        let _ = write!(o, "{:>9}", s.split);
    }
    let _ = writeln!(o);
    for c in &st.classes {
        if st
            .splits
            .iter()
            .all(|s| s.per_class.get(c).copied().unwrap_or(0) == 0)
            && st.classes.len() > 7
        {
            continue;
        }
        let _ = write!(o, "{c:<10}");
        for s in &st.splits {
            let _ = write!(
                o,
                "{:>9}",
                thousands(s.per_class.get(c).copied().unwrap_or(0))
            );
        }
        let _ = writeln!(o);
    }
    let _ = write!(o, "{:<10}", "total");
    for s in &st.splits {
        let _ = write!(o, "{:>9}", thousands(s.files));
    }
    let _ = writeln!(o, "\n");
    for s in &st.splits {
        let sizes: Vec<String> = s
            .sizes
            .iter()
            .map(|(k, v)| format!("{k}: {}", thousands(*v)))
            .collect();
        let formats: Vec<String> = s
            .formats
            .iter()
            .map(|(k, v)| format!("{k}: {}", thousands(*v)))
            .collect();
        let _ = writeln!(o, "{}:", s.split);
        let _ = writeln!(
            o,
            "  colour: {} grayscale, {} colour by content ({} stored gray, {} stored colour of which {} gray content)",
            thousands(s.grayscale_content),
            thousands(s.colour_content),
            thousands(s.grayscale_stored),
            thousands(s.colour_stored),
            thousands(s.colour_stored_gray_content)
        );
        let _ = writeln!(o, "  sizes: {}", sizes.join(", "));
        let _ = writeln!(
            o,
            "  formats: {}; extension differs from content: {}",
            formats.join(", "),
            s.extension_mismatch
        );
        let _ = writeln!(
            o,
            "  bytes: total {}, min {}, median {}, mean {:.0}, max {}",
            thousands(s.bytes.total as usize),
            s.bytes.min,
            s.bytes.median,
            s.bytes.mean,
            s.bytes.max
        );
        let _ = writeln!(
            o,
            "  blank (constant) images: {}; not usable: {}",
            s.blank, s.undecodable
        );
    }
    let d = &st.duplicates;
    let within: Vec<String> = d
        .within_split
        .iter()
        .map(|(k, v)| format!("{} within {k}", thousands(*v)))
        .collect();
    let _ = writeln!(o, "\nexact duplicates (SHA-256):");
    let _ = writeln!(
        o,
        "  {} groups hold {} files, {} redundant; {} distinct files",
        thousands(d.groups),
        thousands(d.files),
        thousands(d.redundant),
        thousands(d.distinct_files)
    );
    let _ = writeln!(
        o,
        "  {}, {} across splits",
        within.join(", "),
        thousands(d.across_splits)
    );
    let _ = writeln!(
        o,
        "  {} groups with conflicting labels",
        d.conflicting_label_groups
    );
    for (split, l) in &d.leaks {
        let by: Vec<String> = l.by_class.iter().map(|(k, v)| format!("{k} {v}")).collect();
        let _ = writeln!(
            o,
            "  {} {split} files have a byte-identical copy in train ({} with a different train label); by class: {}",
            thousands(l.files_with_train_copy),
            l.with_different_train_label,
            by.join(", ")
        );
    }
    if !st.blank.is_empty() {
        let _ = writeln!(o, "\nblank (constant) images: {}", st.blank.len());
        for b in &st.blank {
            let _ = writeln!(o, "  {b}");
        }
    }
    for (p, std) in &st.near_blank {
        let _ = writeln!(o, "near-blank: {p} (pixel std {std:.1})");
    }
    if !st.undecodable.is_empty() {
        let _ = writeln!(o, "\nnot usable images: {}", st.undecodable.len());
        for p in &st.undecodable {
            let _ = writeln!(o, "  {p}");
        }
    }
    if !st.problems.is_empty() {
        let _ = writeln!(o, "\nfolder problems: {}", st.problems.len());
        for p in &st.problems {
            let _ = writeln!(o, "  {p}");
        }
    }
    if st.hidden_ignored > 0 {
        let _ = writeln!(o, "\nhidden files ignored: {}", st.hidden_ignored);
    }
    o
}
