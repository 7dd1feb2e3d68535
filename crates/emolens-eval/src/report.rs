//! Evaluation report files: `report.json` (everything, machine-readable), `report.md`, a
//! self-contained `report.html` (plots embedded), the plots as PNG and SVG under `plots/`, and
//! a contact sheet of the most confidently wrong images.

use crate::error::EvalError;
use crate::metrics::EvalReport;
use crate::plots::{
    self, render, GroupedBars, Heatmap, LinePlot, Plot, Reliability, Rendered, Series,
};
use base64::Engine;
use plotters::prelude::*;
use serde::{Deserialize, Serialize};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// A file that could not be evaluated, and why.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ItemFailure {
    pub file: String,
    pub error: String,
}

/// One evaluated set of files (all of them, or those left after removing train duplicates).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EvalSection {
    /// Short key used in file names (`all`, `dedup`).
    pub key: String,
    pub title: String,
    pub report: EvalReport,
    /// Source file of each evaluated sample, in the report's sample order.
    #[serde(skip)]
    pub files: Vec<String>,
    /// Files left out of this section (train duplicates), if any.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub excluded: Vec<String>,
}

/// Files that a label source leaves out of the evaluation for one reason.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LeftOut {
    pub reason: String,
    pub count: usize,
    /// The files, relative to the data folder.
    pub files: Vec<String>,
}

/// Where the true labels came from, and which candidate files it left out and why.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LabelSource {
    /// `folders` (the class folder of each file) or `ferplus` (the FER+ votes' majority).
    pub kind: String,
    /// One line for a reader, e.g. `FER+ majority vote (../votes.csv), PrivateTest rows`.
    pub description: String,
    /// The labels file, when the labels come from one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file: Option<String>,
    /// Fingerprint of the labels file's content.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fingerprint: Option<String>,
    /// Candidate files before any was left out (for FER+: the rows of the chosen usage).
    pub candidates: usize,
    /// Files left out by the label rule, grouped by reason (unreadable files are in
    /// `failures` instead).
    #[serde(default)]
    pub left_out: Vec<LeftOut>,
}

impl Default for LabelSource {
    fn default() -> Self {
        LabelSource {
            kind: "folders".into(),
            description: "the class folder of each file".into(),
            file: None,
            fingerprint: None,
            candidates: 0,
            left_out: Vec::new(),
        }
    }
}

/// Everything the `eval` command measured.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EvalDocument {
    pub emolens_version: String,
    pub model_name: String,
    /// `bundled` or the model file's path.
    pub model_source: String,
    pub data_dir: String,
    /// Where the true labels came from (class folders unless stated), and what was left out.
    #[serde(default)]
    pub labels: LabelSource,
    /// Dataset class (folder or label name) -> model class, as used.
    pub class_map: Vec<(String, String)>,
    /// Whether the model ran with flip test-time augmentation (the model file's setting, or
    /// `eval --flip-tta`'s replacement of it).
    pub flip_tta: bool,
    /// The confidence below which faces were mirrored; `None` with `flip_tta`: every face.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub flip_tta_below: Option<f32>,
    /// How the model ran (kernels and number format, e.g. `onednn plan (bf16)`).
    #[serde(default)]
    pub runtime: String,
    pub seconds: f64,
    pub images_per_second: f64,
    pub failures: Vec<ItemFailure>,
    pub sections: Vec<EvalSection>,
}

/// The confidently wrong predictions of a section with their source files.
#[derive(Debug, Clone, PartialEq, Serialize)]
struct WrongWithFile<'a> {
    file: &'a str,
    #[serde(flatten)]
    wrong: &'a crate::metrics::WrongPrediction,
}

/// Renders every plot of one section.
pub fn section_plots(s: &EvalSection) -> Result<Vec<Rendered>, EvalError> {
    let r = &s.report;
    let k = r.classes.len();
    let prefix = if s.key == "all" {
        String::new()
    } else {
        format!("{}_", s.key)
    };
    let side = (620 + 60 * k as u32).min(1400);
    let counts = Heatmap {
        name: format!("{prefix}confusion_matrix"),
        title: format!("Confusion matrix ({}, n={})", s.title, r.n_samples),
        x_desc: "predicted".into(),
        y_desc: "true".into(),
        x_labels: r.classes.clone(),
        y_labels: r.classes.clone(),
        values: r.confusion_normalised.clone(),
        cell_text: Some(
            r.confusion
                .iter()
                .zip(&r.confusion_normalised)
                .map(|(c, n)| {
                    c.iter()
                        .zip(n)
                        .map(|(c, n)| format!("{c} ({:.0}%)", n * 100.0))
                        .collect()
                })
                .collect(),
        ),
        range: (0.0, 1.0),
        size: (side + 100, side),
        x_label_every: 1,
    };
    let mut series: Vec<Series> = r
        .roc
        .per_class
        .iter()
        .filter(|c| c.auc.is_some())
        .map(|c| Series {
            label: format!("{} (AUC {:.3})", c.name, c.auc.unwrap_or(f64::NAN)),
            xs: c.fpr.clone(),
            ys: c.tpr.clone(),
            dashed: false,
            width: 2,
        })
        .collect();
    for (c, w) in [(&r.roc.micro, 3), (&r.roc.macro_curve, 3)] {
        if let Some(auc) = c.auc {
            series.push(Series {
                label: format!("{} (AUC {auc:.3})", c.name),
                xs: c.fpr.clone(),
                ys: c.tpr.clone(),
                dashed: true,
                width: w,
            });
        }
    }
    let roc = LinePlot {
        name: format!("{prefix}roc_curves"),
        title: format!("One-vs-rest ROC curves ({})", s.title),
        x_desc: "false positive rate".into(),
        y_desc: "true positive rate".into(),
        x_range: (0.0, 1.0),
        y_range: (0.0, 1.0),
        series,
        diagonal: true,
        legend_lower_right: true,
    };
    let reliability = Reliability {
        name: format!("{prefix}reliability"),
        title: format!(
            "Reliability diagram ({}, ECE {:.3}, {} bins)",
            s.title,
            r.calibration.ece,
            r.calibration.bins.len()
        ),
        bins: r
            .calibration
            .bins
            .iter()
            .map(|b| (b.lower, b.upper, b.count, b.mean_confidence, b.accuracy))
            .collect(),
    };
    let bars = GroupedBars {
        name: format!("{prefix}per_class"),
        title: format!("Per-class precision, recall and F1 ({})", s.title),
        x_desc: "class (support)".into(),
        y_desc: "score".into(),
        categories: r
            .per_class
            .iter()
            .map(|m| format!("{} ({})", m.class, m.support))
            .collect(),
        groups: vec![
            (
                "precision".into(),
                r.per_class.iter().map(|m| m.precision).collect(),
            ),
            (
                "recall".into(),
                r.per_class.iter().map(|m| m.recall).collect(),
            ),
            ("F1".into(), r.per_class.iter().map(|m| m.f1).collect()),
        ],
        y_range: (0.0, 1.05),
        value_labels: false,
    };
    Ok(vec![
        render(&counts)?,
        render(&roc)?,
        render(&reliability)?,
        render(&bars)?,
    ])
}

/// Tiles the most confidently wrong images per true class into one PNG, each captioned with
/// the predicted class and its probability. `load` returns the image of a source file (or
/// `None` if it cannot be read any more; the tile stays grey).
pub fn contact_sheet(
    s: &EvalSection,
    load: &dyn Fn(&str) -> Option<image::DynamicImage>,
) -> Result<Vec<u8>, EvalError> {
    const TILE: u32 = 96;
    const CAPTION: u32 = 34;
    const LABEL_W: u32 = 120;
    let r = &s.report;
    let cols = r
        .confidently_wrong
        .iter()
        .map(|v| v.len())
        .max()
        .unwrap_or(0)
        .max(1) as u32;
    let rows = r.classes.len() as u32;
    let (w, h) = (
        LABEL_W + cols * (TILE + 6),
        40 + rows * (TILE + CAPTION + 6),
    );
    let mut canvas = image::RgbImage::from_pixel(w, h, image::Rgb([255, 255, 255]));
    for (ri, wrongs) in r.confidently_wrong.iter().enumerate() {
        for (ci, wp) in wrongs.iter().enumerate() {
            let x = LABEL_W + ci as u32 * (TILE + 6);
            let y = 40 + ri as u32 * (TILE + CAPTION + 6);
            let tile = s
                .files
                .get(wp.index)
                .and_then(|f| load(f))
                .map(|img| {
                    img.resize_exact(TILE, TILE, image::imageops::FilterType::Triangle)
                        .to_rgb8()
                })
                .unwrap_or_else(|| {
                    image::RgbImage::from_pixel(TILE, TILE, image::Rgb([200, 200, 200]))
                });
            image::imageops::replace(&mut canvas, &tile, x as i64, y as i64);
        }
    }
    let plot_err = |e: String| EvalError::Plot {
        plot: "contact_sheet".into(),
        detail: e,
    };
    {
        plots::render(&NoopPlot)?; // registers the embedded font
        let mut raw = canvas.into_raw();
        {
            let root = BitMapBackend::with_buffer(&mut raw, (w, h)).into_drawing_area();
            let title = TextStyle::from(("sans-serif", 18.0).into_font());
            let small = TextStyle::from(("sans-serif", 12.0).into_font());
            let label = TextStyle::from(("sans-serif", 15.0).into_font());
            root.draw_text(
                &format!(
                    "Most confidently wrong per true class ({}): predicted class, probability",
                    s.title
                ),
                &title,
                (10, 10),
            )
            .map_err(|e| plot_err(plots::pe(e)))?;
            for (ri, wrongs) in r.confidently_wrong.iter().enumerate() {
                let y = 40 + ri as i32 * (TILE + CAPTION + 6) as i32;
                root.draw_text(
                    &format!("true: {}", r.classes[ri]),
                    &label,
                    (8, y + TILE as i32 / 2 - 8),
                )
                .map_err(|e| plot_err(plots::pe(e)))?;
                if wrongs.is_empty() {
                    root.draw_text(
                        "(none wrong)",
                        &small,
                        (LABEL_W as i32, y + TILE as i32 / 2 - 6),
                    )
                    .map_err(|e| plot_err(plots::pe(e)))?;
                }
                for (ci, wp) in wrongs.iter().enumerate() {
                    let x = (LABEL_W + ci as u32 * (TILE + 6)) as i32;
                    root.draw_text(&wp.predicted_class, &small, (x, y + TILE as i32 + 3))
                        .map_err(|e| plot_err(plots::pe(e)))?;
                    root.draw_text(
                        &format!("p={:.2}", wp.confidence),
                        &small,
                        (x, y + TILE as i32 + 17),
                    )
                    .map_err(|e| plot_err(plots::pe(e)))?;
                }
            }
            root.present().map_err(|e| plot_err(plots::pe(e)))?;
        }
        let img = image::RgbImage::from_raw(w, h, raw).ok_or_else(|| plot_err("buffer".into()))?;
        let mut png = std::io::Cursor::new(Vec::new());
        img.write_to(&mut png, image::ImageFormat::Png)
            .map_err(|e| plot_err(e.to_string()))?;
        Ok(png.into_inner())
    }
}

/// A 1x1 plot used only to make sure the embedded font is registered.
struct NoopPlot;
impl Plot for NoopPlot {
    fn name(&self) -> &str {
        "font"
    }
    fn size(&self) -> (u32, u32) {
        (1, 1)
    }
    fn draw<DB: DrawingBackend>(
        &self,
        _root: &DrawingArea<DB, plotters::coord::Shift>,
    ) -> Result<(), String> {
        Ok(())
    }
}

fn write(path: &Path, bytes: &[u8]) -> Result<(), EvalError> {
    std::fs::write(path, bytes).map_err(|e| EvalError::io(path, format!("cannot write: {e}")))
}

fn pct(v: f64) -> String {
    format!("{:.2} %", v * 100.0)
}

fn auc_text(a: Option<f64>) -> String {
    a.map(|v| format!("{v:.4}"))
        .unwrap_or_else(|| "n/a (no positives)".into())
}

/// Markdown for one section (shared by `report.md` and, converted, `report.html`).
fn section_markdown(s: &EvalSection, out: &mut String) {
    let r = &s.report;
    let _ = writeln!(out, "## {}\n", s.title);
    if !s.excluded.is_empty() {
        let _ = writeln!(
            out,
            "{} files left out because a byte-identical copy is in the training folder.\n",
            s.excluded.len()
        );
    }
    let _ = writeln!(
        out,
        "| measure | model | {} | {} |",
        r.baselines[0].name, r.baselines[1].name
    );
    let _ = writeln!(out, "|---|---:|---:|---:|");
    let _ = writeln!(
        out,
        "| accuracy | {} | {} | {} |",
        pct(r.accuracy),
        pct(r.baselines[0].accuracy),
        pct(r.baselines[1].accuracy)
    );
    let _ = writeln!(
        out,
        "| macro F1 | {:.4} | {:.4} | {:.4} |",
        r.macro_avg.f1, r.baselines[0].macro_f1, r.baselines[1].macro_f1
    );
    let _ = writeln!(
        out,
        "| weighted F1 | {:.4} | {:.4} | {:.4} |",
        r.weighted_avg.f1, r.baselines[0].weighted_f1, r.baselines[1].weighted_f1
    );
    let _ = writeln!(out, "| top-2 accuracy | {} | | |", pct(r.top2_accuracy));
    let _ = writeln!(
        out,
        "| macro ROC AUC | {} | | 0.5 |",
        auc_text(r.roc.macro_auc)
    );
    let _ = writeln!(
        out,
        "| micro ROC AUC | {} | | 0.5 |",
        auc_text(r.roc.micro.auc)
    );
    let _ = writeln!(
        out,
        "| expected calibration error (15 bins) | {:.4} | | |",
        r.calibration.ece
    );
    let _ = writeln!(
        out,
        "\nSamples: {}. Baselines: {}; {}.\n",
        r.n_samples, r.baselines[0].description, r.baselines[1].description
    );
    if let Some(nr) = &r.neutral {
        let _ = writeln!(
            out,
            "**Neutral faces:** recall {:.4}; {} of {} ({}) read as a negative emotion ({}).\n",
            nr.recall,
            nr.as_negative,
            nr.support,
            pct(nr.as_negative_share),
            nr.negative_classes.join(", ")
        );
    }
    let _ = writeln!(out, "### Classification report\n");
    let _ = writeln!(
        out,
        "| class | precision | recall | F1 | support | ROC AUC |"
    );
    let _ = writeln!(out, "|---|---:|---:|---:|---:|---:|");
    for (m, c) in r.per_class.iter().zip(&r.roc.per_class) {
        let _ = writeln!(
            out,
            "| {} | {:.4} | {:.4} | {:.4} | {} | {} |",
            m.class,
            m.precision,
            m.recall,
            m.f1,
            m.support,
            auc_text(c.auc)
        );
    }
    for (name, a) in [
        ("macro avg", &r.macro_avg),
        ("weighted avg", &r.weighted_avg),
        ("micro avg", &r.micro_avg),
    ] {
        let _ = writeln!(
            out,
            "| **{name}** | {:.4} | {:.4} | {:.4} | {} | |",
            a.precision, a.recall, a.f1, a.support
        );
    }
    let _ = writeln!(
        out,
        "\n### Confusion matrix (rows: true, columns: predicted; count and row %)\n"
    );
    let _ = writeln!(out, "| true \\ predicted | {} |", r.classes.join(" | "));
    let _ = writeln!(out, "|---|{}", "---:|".repeat(r.classes.len()));
    for (i, row) in r.confusion.iter().enumerate() {
        let cells: Vec<String> = row
            .iter()
            .zip(&r.confusion_normalised[i])
            .map(|(c, n)| format!("{c} ({:.1} %)", n * 100.0))
            .collect();
        let _ = writeln!(out, "| **{}** | {} |", r.classes[i], cells.join(" | "));
    }
    let _ = writeln!(out, "\n### Calibration bins\n");
    let _ = writeln!(out, "| confidence | count | mean confidence | accuracy |");
    let _ = writeln!(out, "|---|---:|---:|---:|");
    for b in r.calibration.bins.iter().filter(|b| b.count > 0) {
        let _ = writeln!(
            out,
            "| ({:.3}, {:.3}] | {} | {:.4} | {:.4} |",
            b.lower, b.upper, b.count, b.mean_confidence, b.accuracy
        );
    }
    let _ = writeln!(out, "\n### Most confidently wrong (per true class)\n");
    let _ = writeln!(out, "| true | predicted | p(predicted) | p(true) | file |");
    let _ = writeln!(out, "|---|---|---:|---:|---|");
    for list in &r.confidently_wrong {
        for w in list.iter().take(3) {
            let file = s.files.get(w.index).map(String::as_str).unwrap_or("?");
            let _ = writeln!(
                out,
                "| {} | {} | {:.3} | {:.3} | `{}` |",
                w.true_class, w.predicted_class, w.confidence, w.true_class_probability, file
            );
        }
    }
    let _ = writeln!(out);
}

fn header_markdown(doc: &EvalDocument, out: &mut String) {
    let _ = writeln!(out, "# Evaluation of `{}`\n", doc.model_name);
    let _ = writeln!(out, "- model: {}", doc.model_source);
    if !doc.runtime.is_empty() {
        let _ = writeln!(out, "- runtime: {}", doc.runtime);
    }
    let _ = writeln!(out, "- data: `{}`", doc.data_dir);
    let map: Vec<String> = doc
        .class_map
        .iter()
        .map(|(a, b)| format!("{a}→{b}"))
        .collect();
    let _ = writeln!(out, "- labels: {}", doc.labels.description);
    if let Some(fp) = &doc.labels.fingerprint {
        let _ = writeln!(out, "- labels file fingerprint: `{fp}`");
    }
    if !doc.labels.left_out.is_empty() {
        let total: usize = doc.labels.left_out.iter().map(|l| l.count).sum();
        let _ = writeln!(
            out,
            "- {} candidate files, {} left out by the labels:",
            doc.labels.candidates, total
        );
        for l in &doc.labels.left_out {
            let _ = writeln!(out, "    - {}: {}", l.reason, l.count);
        }
    }
    let _ = writeln!(out, "- class map (label→model): {}", map.join(", "));
    let _ = writeln!(
        out,
        "- horizontal-flip test-time augmentation: {}",
        match (doc.flip_tta, doc.flip_tta_below) {
            (false, _) => "off".to_string(),
            (true, None) => "on, every image".to_string(),
            (true, Some(t)) => format!("on, images the model is under {t:.2} sure of"),
        }
    );
    let _ = writeln!(
        out,
        "- {:.2} s, {:.0} images/s; {} unreadable files skipped",
        doc.seconds,
        doc.images_per_second,
        doc.failures.len()
    );
    let _ = writeln!(out, "- emolens {}\n", doc.emolens_version);
    if !doc.failures.is_empty() {
        let _ = writeln!(out, "Unreadable files:\n");
        for f in doc.failures.iter().take(50) {
            let _ = writeln!(out, "- `{}`: {}", f.file, f.error);
        }
        let _ = writeln!(out);
    }
}

/// Escapes text for HTML.
pub fn html_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// A small Markdown-to-HTML conversion for what the report writers emit: headings, pipe
/// tables, bullet lists, paragraphs, `code` and **bold**.
pub fn markdown_to_html(md: &str) -> String {
    fn inline(s: &str) -> String {
        let mut out = String::new();
        let esc = html_escape(s);
        let mut code = false;
        for (i, part) in esc.split('`').enumerate() {
            if i > 0 {
                out.push_str(if code { "</code>" } else { "<code>" });
                code = !code;
            }
            let mut bold = false;
            for (j, b) in part.split("**").enumerate() {
                if j > 0 {
                    out.push_str(if bold { "</b>" } else { "<b>" });
                    bold = !bold;
                }
                out.push_str(b);
            }
            if bold {
                out.push_str("</b>");
            }
        }
        if code {
            out.push_str("</code>");
        }
        out
    }
    let mut html = String::new();
    let mut in_table = false;
    let mut in_list = false;
    for line in md.lines() {
        let t = line.trim();
        if !t.starts_with('|') && in_table {
            html.push_str("</table>\n");
            in_table = false;
        }
        if !t.starts_with("- ") && in_list {
            html.push_str("</ul>\n");
            in_list = false;
        }
        if let Some(h) = t.strip_prefix("### ") {
            let _ = writeln!(html, "<h3>{}</h3>", inline(h));
        } else if let Some(h) = t.strip_prefix("## ") {
            let _ = writeln!(html, "<h2>{}</h2>", inline(h));
        } else if let Some(h) = t.strip_prefix("# ") {
            let _ = writeln!(html, "<h1>{}</h1>", inline(h));
        } else if t.starts_with('|') {
            let cells: Vec<&str> = t.trim_matches('|').split(" | ").map(str::trim).collect();
            if cells
                .iter()
                .all(|c| c.chars().all(|ch| ch == '-' || ch == ':' || ch == '|'))
            {
                continue;
            }
            let tag = if in_table { "td" } else { "th" };
            if !in_table {
                html.push_str("<table>\n");
                in_table = true;
            }
            html.push_str("<tr>");
            for c in cells {
                let _ = write!(html, "<{tag}>{}</{tag}>", inline(c));
            }
            html.push_str("</tr>\n");
        } else if let Some(item) = t.strip_prefix("- ") {
            if !in_list {
                html.push_str("<ul>\n");
                in_list = true;
            }
            let _ = writeln!(html, "<li>{}</li>", inline(item));
        } else if !t.is_empty() {
            let _ = writeln!(html, "<p>{}</p>", inline(t));
        }
    }
    if in_table {
        html.push_str("</table>\n");
    }
    if in_list {
        html.push_str("</ul>\n");
    }
    html
}

/// The HTML page frame around a body.
pub fn html_page(title: &str, body: &str) -> String {
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{}</title>\n<style>\
body{{font-family:system-ui,sans-serif;max-width:1200px;margin:2em auto;padding:0 1em;color:#222}}\
table{{border-collapse:collapse;margin:1em 0}}td,th{{border:1px solid #ccc;padding:3px 8px;text-align:right}}\
td:first-child,th:first-child{{text-align:left}}th{{background:#f0f0f0}}img{{max-width:100%;border:1px solid #eee}}\
code{{font-size:90%}}figure{{margin:1em 0}}</style></head><body>\n{}\n</body></html>\n",
        html_escape(title),
        body
    )
}

/// A PNG as an `<img>` with a data URI.
pub fn img_tag(png: &[u8], alt: &str) -> String {
    format!(
        "<figure><img alt=\"{}\" src=\"data:image/png;base64,{}\"></figure>\n",
        html_escape(alt),
        base64::engine::general_purpose::STANDARD.encode(png)
    )
}

/// Writes plots as `<dir>/plots/<name>.png` and `.svg`; returns the written paths.
pub fn write_plots(dir: &Path, plots: &[Rendered]) -> Result<Vec<PathBuf>, EvalError> {
    let pdir = dir.join("plots");
    std::fs::create_dir_all(&pdir)
        .map_err(|e| EvalError::io(&pdir, format!("cannot create: {e}")))?;
    let mut written = Vec::new();
    for p in plots {
        let png = pdir.join(format!("{}.png", p.name));
        let svg = pdir.join(format!("{}.svg", p.name));
        write(&png, &p.png)?;
        write(&svg, p.svg.as_bytes())?;
        written.push(png);
        written.push(svg);
    }
    Ok(written)
}

/// Writes `report.json`, `report.md`, `report.html`, the plots and the contact sheets into
/// `dir` (created if missing). Returns the paths written.
pub fn write_eval_report(
    doc: &EvalDocument,
    dir: &Path,
    load: &dyn Fn(&str) -> Option<image::DynamicImage>,
) -> Result<Vec<PathBuf>, EvalError> {
    std::fs::create_dir_all(dir)
        .map_err(|e| EvalError::io(dir, format!("cannot create the report folder: {e}")))?;
    let mut written = Vec::new();

    // JSON: the document plus each section's wrong predictions with their files.
    let mut json = serde_json::to_value(doc).map_err(|e| EvalError::io(dir, e.to_string()))?;
    for (i, s) in doc.sections.iter().enumerate() {
        let wrong: Vec<Vec<WrongWithFile>> = s
            .report
            .confidently_wrong
            .iter()
            .map(|l| {
                l.iter()
                    .map(|w| WrongWithFile {
                        file: s.files.get(w.index).map(String::as_str).unwrap_or(""),
                        wrong: w,
                    })
                    .collect()
            })
            .collect();
        json["sections"][i]["report"]["confidently_wrong"] =
            serde_json::to_value(wrong).map_err(|e| EvalError::io(dir, e.to_string()))?;
    }
    let path = dir.join("report.json");
    let text =
        serde_json::to_string_pretty(&json).map_err(|e| EvalError::io(&path, e.to_string()))?;
    write(&path, text.as_bytes())?;
    written.push(path);

    let mut md = String::new();
    header_markdown(doc, &mut md);
    let mut html_body = markdown_to_html(&md);
    let mut all_plots = Vec::new();
    for s in &doc.sections {
        let mut smd = String::new();
        section_markdown(s, &mut smd);
        let plots = section_plots(s)?;
        let sheet = contact_sheet(s, load)?;
        let sheet_name = if s.key == "all" {
            "contact_sheet_wrong.png".to_string()
        } else {
            format!("{}_contact_sheet_wrong.png", s.key)
        };
        let _ = writeln!(smd, "### Plots\n");
        for p in &plots {
            let _ = writeln!(
                smd,
                "![{0}](plots/{0}.png) ([SVG](plots/{0}.svg))\n",
                p.name
            );
        }
        let _ = writeln!(smd, "![most confidently wrong](plots/{sheet_name})\n");
        md.push_str(&smd);

        // HTML: the same text, then the plots embedded.
        let text_part = smd.split("### Plots").next().unwrap_or("");
        html_body.push_str(&markdown_to_html(text_part));
        html_body.push_str("<h3>Plots</h3>\n");
        for p in &plots {
            html_body.push_str(&img_tag(&p.png, &p.name));
        }
        html_body.push_str(&img_tag(&sheet, "most confidently wrong"));
        written.extend(write_plots(dir, &plots)?);
        let sheet_path = dir.join("plots").join(&sheet_name);
        write(&sheet_path, &sheet)?;
        written.push(sheet_path);
        all_plots.extend(plots);
    }
    let path = dir.join("report.md");
    write(&path, md.as_bytes())?;
    written.push(path);
    let path = dir.join("report.html");
    write(
        &path,
        html_page(
            &format!("emolens evaluation: {}", doc.model_name),
            &html_body,
        )
        .as_bytes(),
    )?;
    written.push(path);
    Ok(written)
}

/// Reads and decodes an image file for a contact sheet (`None` if it is gone or unreadable).
pub fn load_from_disk(path: &str) -> Option<image::DynamicImage> {
    let bytes = std::fs::read(path).ok()?;
    emolens_core::decode_image(&bytes, path, &emolens_core::DecodeLimits::default()).ok()
}
