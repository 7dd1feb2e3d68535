//! Comparing training runs from their histories: Keras `History.history` JSON files (the
//! original design's `*_history.json`) and emolens run folders (`runs/<name>/history.json` +
//! `config.json`). The best run by val_accuracy, rankings, per-run max/min of each metric,
//! mean and median, grouped comparisons and plots (rendered in `plots.rs`).

use crate::error::EvalError;
use crate::report::{html_page, img_tag, markdown_to_html, write_plots};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

mod plots;

pub use plots::experiment_plots;

/// The metric runs are ranked by.
pub const RANK_METRIC: &str = "val_accuracy";

/// The parts of a run name in the original's convention
/// `modelname_optimizer_colormode_batchsize[_augment|_balanced|_balanced-2]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunName {
    pub model: String,
    pub optimizer: String,
    pub colour_mode: String,
    pub batch_size: u32,
    /// `augment`, `balanced`, `balanced-2`, or `None` when the name has no mode part.
    pub mode: Option<String>,
}

/// Parses a run name from the right, so model names may contain underscores
/// (`model_4_best_nodroupout_nobatchn_adam_rgb_64_augment`). A trailing `_history` is ignored.
pub fn parse_run_name(name: &str) -> Option<RunName> {
    let name = name.strip_suffix("_history").unwrap_or(name);
    let mut parts: Vec<&str> = name.split('_').collect();
    let mode = match parts.last() {
        Some(&m) if matches!(m, "augment" | "balanced" | "balanced-2") => {
            parts.pop();
            Some(m.to_string())
        }
        _ => None,
    };
    if parts.len() < 4 {
        return None;
    }
    let batch_size: u32 = parts.pop()?.parse().ok()?;
    let colour = parts.pop()?.to_ascii_lowercase();
    if !matches!(
        colour.as_str(),
        "rgb" | "grayscale" | "greyscale" | "gray" | "grey"
    ) {
        return None;
    }
    let optimizer = parts.pop()?.to_ascii_lowercase();
    let model = parts.join("_");
    if model.is_empty() || optimizer.is_empty() {
        return None;
    }
    let colour_mode = if colour == "rgb" { "rgb" } else { "grayscale" }.to_string();
    Some(RunName {
        model,
        optimizer,
        colour_mode,
        batch_size,
        mode,
    })
}

/// One training run's history.
#[derive(Debug, Clone, PartialEq)]
pub struct Run {
    pub name: String,
    pub source: PathBuf,
    pub parts: Option<RunName>,
    /// Metric name -> one value per epoch (NaN where the file had NaN/null).
    pub metrics: BTreeMap<String, Vec<f64>>,
}

/// An input that was not used, and why.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Skipped {
    pub path: String,
    pub reason: String,
}

/// Max and min of one metric over a run's epochs (epochs counted from 1).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MetricRange {
    pub max: f64,
    pub max_epoch: usize,
    pub min: f64,
    pub min_epoch: usize,
    pub last: f64,
}

/// A run's headline figures.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunSummary {
    pub name: String,
    pub source: String,
    pub parts: Option<RunName>,
    pub epochs: usize,
    /// Max val_accuracy over the epochs.
    pub best_val_accuracy: f64,
    pub best_epoch: usize,
    pub metrics: BTreeMap<String, MetricRange>,
}

/// Mean/median/spread of a set of runs' best val_accuracy.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Stats {
    pub n: usize,
    pub mean: f64,
    pub median: f64,
    pub std: f64,
    pub min: f64,
    pub max: f64,
}

/// Runs grouped by one part of their name.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GroupStats {
    /// `optimizer`, `batch_size`, `colour_mode`, `model` or `mode`.
    pub by: String,
    pub value: String,
    /// Set for groups split further by colour mode.
    pub colour_mode: Option<String>,
    pub stats: Stats,
}

/// Everything `experiments` computes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExperimentsReport {
    pub ranked_by: String,
    pub n_runs: usize,
    pub best: RunSummary,
    /// All runs, best first (ties by name).
    pub ranking: Vec<RunSummary>,
    pub top10: Vec<String>,
    pub worst5: Vec<String>,
    /// Over the runs' best val_accuracy.
    pub best_val_accuracy_stats: Stats,
    /// Mean and median of each metric's per-run max and min.
    pub metric_stats: BTreeMap<String, BTreeMap<String, Stats>>,
    pub groups: Vec<GroupStats>,
    pub skipped: Vec<Skipped>,
}

/// Sum with Neumaier compensation, so a mean does not depend on the order of the runs.
fn exact_sum(values: &[f64]) -> f64 {
    let mut sum = 0.0f64;
    let mut c = 0.0f64;
    for &v in values {
        let t = sum + v;
        if sum.abs() >= v.abs() {
            c += (sum - t) + v;
        } else {
            c += (v - t) + sum;
        }
        sum = t;
    }
    sum + c
}

/// Mean, median (average of the middle two for even counts), population std, min, max.
pub fn stats(values: &[f64]) -> Stats {
    let v: Vec<f64> = values.iter().copied().filter(|x| x.is_finite()).collect();
    if v.is_empty() {
        return Stats {
            n: 0,
            mean: f64::NAN,
            median: f64::NAN,
            std: f64::NAN,
            min: f64::NAN,
            max: f64::NAN,
        };
    }
    let n = v.len();
    let mean = exact_sum(&v) / n as f64;
    let mut s = v.clone();
    s.sort_unstable_by(f64::total_cmp);
    let median = if n % 2 == 1 {
        s[n / 2]
    } else {
        (s[n / 2 - 1] + s[n / 2]) / 2.0
    };
    let var = exact_sum(
        &v.iter()
            .map(|x| (x - mean) * (x - mean))
            .collect::<Vec<_>>(),
    ) / n as f64;
    Stats {
        n,
        mean,
        median,
        std: var.sqrt(),
        min: s[0],
        max: s[n - 1],
    }
}

/// Parses a Keras `History.history` JSON text: an object of metric name -> array of numbers.
/// `NaN`/`Infinity` literals (Python's json writes them) and nulls are accepted as NaN.
pub fn parse_history(text: &str) -> Result<BTreeMap<String, Vec<f64>>, String> {
    let value: serde_json::Value = match serde_json::from_str(text) {
        Ok(v) => v,
        Err(first) => {
            let patched = text
                .replace("-Infinity", "null")
                .replace("Infinity", "null")
                .replace("NaN", "null");
            serde_json::from_str(&patched).map_err(|_| format!("not valid JSON ({first})"))?
        }
    };
    let obj = value
        .as_object()
        .ok_or("not a Keras History JSON object (expected {\"loss\": [...], ...})")?;
    let mut out = BTreeMap::new();
    for (k, v) in obj {
        let Some(arr) = v.as_array() else {
            // Extra scalar keys are allowed; only per-epoch arrays are metrics.
            continue;
        };
        let vals: Option<Vec<f64>> = arr
            .iter()
            .map(|x| {
                if x.is_null() {
                    Some(f64::NAN)
                } else {
                    x.as_f64()
                }
            })
            .collect();
        let Some(vals) = vals else {
            return Err(format!("metric '{k}' holds non-numbers"));
        };
        // Older Keras wrote `acc`/`val_acc`.
        let key = match k.as_str() {
            "acc" => "accuracy",
            "val_acc" => "val_accuracy",
            other => other,
        };
        out.insert(key.to_string(), vals);
    }
    if out.is_empty() {
        return Err("no per-epoch metric arrays found".into());
    }
    Ok(out)
}

fn read_run(name: String, history: &Path, config: Option<&Path>) -> Result<Run, Skipped> {
    let skip = |reason: String| Skipped {
        path: history.display().to_string(),
        reason,
    };
    let text = std::fs::read_to_string(history).map_err(|e| skip(format!("cannot read: {e}")))?;
    let metrics = parse_history(&text).map_err(skip)?;
    let val = metrics.get(RANK_METRIC).ok_or_else(|| {
        skip(format!(
            "has no '{RANK_METRIC}' (keys: {}); runs are ranked by it",
            metrics.keys().cloned().collect::<Vec<_>>().join(", ")
        ))
    })?;
    if val.iter().all(|v| !v.is_finite()) {
        return Err(skip(format!("'{RANK_METRIC}' has no finite value")));
    }
    let mut parts = parse_run_name(&name);
    if parts.is_none() {
        if let Some(cfg) = config.and_then(|c| std::fs::read_to_string(c).ok()) {
            parts = parts_from_config(&cfg);
        }
    }
    Ok(Run {
        name,
        source: history.to_path_buf(),
        parts,
        metrics,
    })
}

/// Reads a run's parts from an emolens `config.json` when its folder name does not follow the
/// original's convention.
fn parts_from_config(text: &str) -> Option<RunName> {
    let v: serde_json::Value = serde_json::from_str(text).ok()?;
    let find = |keys: &[&str]| -> Option<String> {
        keys.iter().find_map(|k| match v.get(*k)? {
            serde_json::Value::String(s) => Some(s.clone()),
            serde_json::Value::Number(n) => Some(n.to_string()),
            serde_json::Value::Object(o) => {
                o.get("name").and_then(|n| n.as_str()).map(String::from)
            }
            _ => None,
        })
    };
    Some(RunName {
        model: find(&["model", "architecture", "arch", "model_name"])?,
        optimizer: find(&["optimizer", "optimiser"])?.to_ascii_lowercase(),
        colour_mode: find(&["colour_mode", "color_mode", "colour", "color"])?.to_ascii_lowercase(),
        batch_size: find(&["batch_size", "batch"])?.parse().ok()?,
        mode: find(&["mode", "variant"]),
    })
}

fn run_from_file(path: &Path) -> Result<Run, Skipped> {
    let stem = path
        .file_stem()
        .map(|s| s.to_string_lossy().to_string())
        .unwrap_or_default();
    let name = stem.strip_suffix("_history").unwrap_or(&stem).to_string();
    read_run(name, path, None)
}

fn run_from_folder(dir: &Path) -> Result<Run, Skipped> {
    let name = dir
        .file_name()
        .map(|s| s.to_string_lossy().to_string())
        .unwrap_or_default();
    let cfg = dir.join("config.json");
    read_run(
        name,
        &dir.join("history.json"),
        cfg.is_file().then_some(cfg.as_path()),
    )
}

/// Loads runs from history files, run folders (`history.json` + `config.json`), and folders of
/// either (one level deep). Unusable inputs are returned as skipped, each with its reason.
pub fn load_runs(inputs: &[PathBuf]) -> (Vec<Run>, Vec<Skipped>) {
    let mut runs = Vec::new();
    let mut skipped = Vec::new();
    fn push(runs: &mut Vec<Run>, skipped: &mut Vec<Skipped>, r: Result<Run, Skipped>) {
        match r {
            Ok(run) => runs.push(run),
            Err(s) => {
                tracing::warn!(path = %s.path, reason = %s.reason, "skipping history");
                skipped.push(s)
            }
        }
    }
    for input in inputs {
        if input.is_file() {
            push(&mut runs, &mut skipped, run_from_file(input));
        } else if input.join("history.json").is_file() {
            push(&mut runs, &mut skipped, run_from_folder(input));
        } else if input.is_dir() {
            let mut entries: Vec<PathBuf> = match std::fs::read_dir(input) {
                Ok(rd) => rd.filter_map(|e| e.ok().map(|e| e.path())).collect(),
                Err(e) => {
                    push(
                        &mut runs,
                        &mut skipped,
                        Err(Skipped {
                            path: input.display().to_string(),
                            reason: format!("cannot list folder: {e}"),
                        }),
                    );
                    continue;
                }
            };
            entries.sort();
            let before = runs.len() + skipped.len();
            for e in entries {
                if e.is_dir() && e.join("history.json").is_file() {
                    push(&mut runs, &mut skipped, run_from_folder(&e));
                } else if e.is_file() && e.extension().is_some_and(|x| x == "json") {
                    push(&mut runs, &mut skipped, run_from_file(&e));
                }
            }
            if runs.len() + skipped.len() == before {
                push(
                    &mut runs,
                    &mut skipped,
                    Err(Skipped {
                        path: input.display().to_string(),
                        reason:
                            "holds no history files (*.json) or run folders (<name>/history.json)"
                                .into(),
                    }),
                );
            }
        } else {
            push(
                &mut runs,
                &mut skipped,
                Err(Skipped {
                    path: input.display().to_string(),
                    reason: "no such file or folder".into(),
                }),
            );
        }
    }
    (runs, skipped)
}

fn metric_range(vals: &[f64]) -> Option<MetricRange> {
    let finite: Vec<(usize, f64)> = vals
        .iter()
        .copied()
        .enumerate()
        .filter(|(_, v)| v.is_finite())
        .collect();
    let &(first_i, first_v) = finite.first()?;
    let (mut max, mut max_i, mut min, mut min_i) = (first_v, first_i, first_v, first_i);
    for &(i, v) in &finite {
        if v > max {
            (max, max_i) = (v, i);
        }
        if v < min {
            (min, min_i) = (v, i);
        }
    }
    Some(MetricRange {
        max,
        max_epoch: max_i + 1,
        min,
        min_epoch: min_i + 1,
        last: finite.last().map(|x| x.1).unwrap_or(f64::NAN),
    })
}

fn summarise(run: &Run) -> Option<RunSummary> {
    let metrics: BTreeMap<String, MetricRange> = run
        .metrics
        .iter()
        .filter_map(|(k, v)| metric_range(v).map(|r| (k.clone(), r)))
        .collect();
    let best = metrics.get(RANK_METRIC)?.clone();
    Some(RunSummary {
        name: run.name.clone(),
        source: run.source.display().to_string(),
        parts: run.parts.clone(),
        epochs: run.metrics.values().map(Vec::len).max().unwrap_or(0),
        best_val_accuracy: best.max,
        best_epoch: best.max_epoch,
        metrics,
    })
}

fn group_key(p: &RunName, by: &str) -> String {
    match by {
        "optimizer" => p.optimizer.clone(),
        "batch_size" => p.batch_size.to_string(),
        "colour_mode" => p.colour_mode.clone(),
        "model" => p.model.clone(),
        _ => p.mode.clone().unwrap_or_else(|| "-".into()),
    }
}

/// Group values in a natural order (numbers numerically).
fn sort_group_values(values: &mut [String]) {
    values.sort_by(|a, b| match (a.parse::<u64>(), b.parse::<u64>()) {
        (Ok(x), Ok(y)) => x.cmp(&y),
        _ => a.cmp(b),
    });
}

/// Ranks runs and computes the statistics. Errors only when no run is usable.
pub fn analyse(runs: &[Run], skipped: Vec<Skipped>) -> Result<ExperimentsReport, EvalError> {
    let mut ranking: Vec<RunSummary> = runs.iter().filter_map(summarise).collect();
    if ranking.is_empty() {
        let why: Vec<String> = skipped
            .iter()
            .map(|s| format!("{}: {}", s.path, s.reason))
            .collect();
        return Err(EvalError::History {
            path: PathBuf::from("(inputs)"),
            detail: format!(
                "no usable training history among the inputs; give Keras History JSON files or run folders. Skipped: {}",
                if why.is_empty() { "none".into() } else { why.join("; ") }
            ),
        });
    }
    ranking.sort_by(|a, b| {
        b.best_val_accuracy
            .total_cmp(&a.best_val_accuracy)
            .then_with(|| a.name.cmp(&b.name))
    });
    let bests: Vec<f64> = ranking.iter().map(|r| r.best_val_accuracy).collect();
    let mut metric_stats = BTreeMap::new();
    let metric_names: std::collections::BTreeSet<&String> =
        ranking.iter().flat_map(|r| r.metrics.keys()).collect();
    for m in metric_names {
        let maxes: Vec<f64> = ranking
            .iter()
            .filter_map(|r| r.metrics.get(m).map(|x| x.max))
            .collect();
        let mins: Vec<f64> = ranking
            .iter()
            .filter_map(|r| r.metrics.get(m).map(|x| x.min))
            .collect();
        let mut e = BTreeMap::new();
        e.insert("max".to_string(), stats(&maxes));
        e.insert("min".to_string(), stats(&mins));
        metric_stats.insert(m.clone(), e);
    }
    let mut groups = Vec::new();
    for by in ["optimizer", "batch_size", "colour_mode", "model", "mode"] {
        let mut values: Vec<String> = ranking
            .iter()
            .filter_map(|r| r.parts.as_ref().map(|p| group_key(p, by)))
            .collect();
        sort_group_values(&mut values);
        values.dedup();
        for v in &values {
            let vals: Vec<f64> = ranking
                .iter()
                .filter(|r| r.parts.as_ref().is_some_and(|p| &group_key(p, by) == v))
                .map(|r| r.best_val_accuracy)
                .collect();
            groups.push(GroupStats {
                by: by.into(),
                value: v.clone(),
                colour_mode: None,
                stats: stats(&vals),
            });
            if by == "optimizer" || by == "batch_size" {
                for cm in ["grayscale", "rgb"] {
                    let vals: Vec<f64> = ranking
                        .iter()
                        .filter(|r| {
                            r.parts
                                .as_ref()
                                .is_some_and(|p| &group_key(p, by) == v && p.colour_mode == cm)
                        })
                        .map(|r| r.best_val_accuracy)
                        .collect();
                    if !vals.is_empty() {
                        groups.push(GroupStats {
                            by: by.into(),
                            value: v.clone(),
                            colour_mode: Some(cm.into()),
                            stats: stats(&vals),
                        });
                    }
                }
            }
        }
    }
    Ok(ExperimentsReport {
        ranked_by: RANK_METRIC.into(),
        n_runs: ranking.len(),
        best: ranking[0].clone(),
        top10: ranking.iter().take(10).map(|r| r.name.clone()).collect(),
        worst5: ranking
            .iter()
            .rev()
            .take(5)
            .map(|r| r.name.clone())
            .collect(),
        best_val_accuracy_stats: stats(&bests),
        metric_stats,
        groups,
        ranking,
        skipped,
    })
}

fn run_row(r: &RunSummary, rank: usize, out: &mut String) {
    let (m, o, c, b, mode) = match &r.parts {
        Some(p) => (
            p.model.clone(),
            p.optimizer.clone(),
            p.colour_mode.clone(),
            p.batch_size.to_string(),
            p.mode.clone().unwrap_or_default(),
        ),
        None => Default::default(),
    };
    let _ = writeln!(
        out,
        "| {rank} | `{}` | {m} | {o} | {c} | {b} | {mode} | {} | {} | {} |",
        r.name, r.best_val_accuracy, r.best_epoch, r.epochs
    );
}

/// Markdown of the report.
pub fn experiments_markdown(report: &ExperimentsReport) -> String {
    let mut out = String::new();
    let s = &report.best_val_accuracy_stats;
    let _ = writeln!(out, "# Training runs compared\n");
    let _ = writeln!(
        out,
        "- runs: {} (ranked by max {}); skipped inputs: {}",
        report.n_runs,
        report.ranked_by,
        report.skipped.len()
    );
    let _ = writeln!(
        out,
        "- best run: `{}` with max val_accuracy {} at epoch {}",
        report.best.name, report.best.best_val_accuracy, report.best.best_epoch
    );
    let _ = writeln!(
        out,
        "- runs' max val_accuracy: mean {}, median {}, std {:.4}, min {}, max {}\n",
        s.mean, s.median, s.std, s.min, s.max
    );
    let header = "| rank | run | model | optimizer | colour | batch | mode | max val_accuracy | epoch | epochs |\n|---:|---|---|---|---|---:|---|---:|---:|---:|";
    let _ = writeln!(out, "## Top 10\n\n{header}");
    for (i, r) in report.ranking.iter().take(10).enumerate() {
        run_row(r, i + 1, &mut out);
    }
    let _ = writeln!(out, "\n## Worst 5\n\n{header}");
    for (i, r) in report.ranking.iter().enumerate().rev().take(5) {
        run_row(r, i + 1, &mut out);
    }
    let _ = writeln!(
        out,
        "\n## Mean and median of each metric's per-run max and min\n"
    );
    let _ = writeln!(
        out,
        "| metric | mean of max | median of max | mean of min | median of min |"
    );
    let _ = writeln!(out, "|---|---:|---:|---:|---:|");
    for (m, e) in &report.metric_stats {
        let _ = writeln!(
            out,
            "| {m} | {:.4} | {:.4} | {:.4} | {:.4} |",
            e["max"].mean, e["max"].median, e["min"].mean, e["min"].median
        );
    }
    let _ = writeln!(out, "\n## Groups (best val_accuracy)\n");
    let _ = writeln!(
        out,
        "| by | value | colour mode | runs | mean | median | max |"
    );
    let _ = writeln!(out, "|---|---|---|---:|---:|---:|---:|");
    for g in &report.groups {
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {:.4} | {:.4} | {:.4} |",
            g.by,
            g.value,
            g.colour_mode.as_deref().unwrap_or("all"),
            g.stats.n,
            g.stats.mean,
            g.stats.median,
            g.stats.max
        );
    }
    let metrics: Vec<&String> = report.metric_stats.keys().collect();
    let _ = writeln!(out, "\n## Max / min of each metric per run\n");
    let cols: Vec<String> = metrics
        .iter()
        .map(|m| format!("{m} max | {m} min"))
        .collect();
    let _ = writeln!(out, "| run | {} |", cols.join(" | "));
    let _ = writeln!(out, "|---|{}", "---:|".repeat(metrics.len() * 2));
    for r in &report.ranking {
        let cells: Vec<String> = metrics
            .iter()
            .map(|m| match r.metrics.get(*m) {
                Some(x) => format!(
                    "{:.4} (ep {}) | {:.4} (ep {})",
                    x.max, x.max_epoch, x.min, x.min_epoch
                ),
                None => " | ".into(),
            })
            .collect();
        let _ = writeln!(out, "| `{}` | {} |", r.name, cells.join(" | "));
    }
    if !report.skipped.is_empty() {
        let _ = writeln!(out, "\n## Skipped inputs\n");
        for s in &report.skipped {
            let _ = writeln!(out, "- `{}`: {}", s.path, s.reason);
        }
    }
    out
}

/// Writes `experiments.json`, `experiments.md`, `experiments.html` and the plots (PNG + SVG)
/// into `dir`. Returns the paths written.
pub fn write_experiments_report(
    report: &ExperimentsReport,
    runs: &[Run],
    dir: &Path,
) -> Result<Vec<PathBuf>, EvalError> {
    std::fs::create_dir_all(dir)
        .map_err(|e| EvalError::io(dir, format!("cannot create the report folder: {e}")))?;
    let mut written = Vec::new();
    let path = dir.join("experiments.json");
    let json =
        serde_json::to_string_pretty(report).map_err(|e| EvalError::io(&path, e.to_string()))?;
    std::fs::write(&path, json).map_err(|e| EvalError::io(&path, format!("cannot write: {e}")))?;
    written.push(path);
    let plots = experiment_plots(report, runs)?;
    let mut md = experiments_markdown(report);
    let mut html = markdown_to_html(&md);
    let _ = writeln!(md, "\n## Plots\n");
    html.push_str("<h2>Plots</h2>\n");
    for p in &plots {
        let _ = writeln!(md, "![{0}](plots/{0}.png) ([SVG](plots/{0}.svg))\n", p.name);
        html.push_str(&img_tag(&p.png, &p.name));
    }
    written.extend(write_plots(dir, &plots)?);
    let path = dir.join("experiments.md");
    std::fs::write(&path, md).map_err(|e| EvalError::io(&path, format!("cannot write: {e}")))?;
    written.push(path);
    let path = dir.join("experiments.html");
    std::fs::write(&path, html_page("emolens: training runs compared", &html))
        .map_err(|e| EvalError::io(&path, format!("cannot write: {e}")))?;
    written.push(path);
    Ok(written)
}

/// Keeps the runs whose name's mode part (`augment`, `balanced`, `balanced-2`) equals `mode`.
pub fn filter_by_mode(runs: Vec<Run>, mode: &str) -> Vec<Run> {
    runs.into_iter()
        .filter(|r| r.parts.as_ref().and_then(|p| p.mode.as_deref()) == Some(mode))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn run_names_parse_from_the_right() {
        let p =
            parse_run_name("model_4_best_nodroupout_nobatchn_adam_grayscale_64_augment").unwrap();
        assert_eq!(p.model, "model_4_best_nodroupout_nobatchn");
        assert_eq!(p.optimizer, "adam");
        assert_eq!(p.colour_mode, "grayscale");
        assert_eq!(p.batch_size, 64);
        assert_eq!(p.mode.as_deref(), Some("augment"));
        let p = parse_run_name("model_2_best_sgd_rgb_128_balanced-2_history").unwrap();
        assert_eq!(p.model, "model_2_best");
        assert_eq!(p.mode.as_deref(), Some("balanced-2"));
        let p = parse_run_name("model_2_best_sgd_rgb_128").unwrap();
        assert_eq!(p.mode, None);
        assert!(parse_run_name("my_experiment").is_none());
        assert!(parse_run_name("sgd_rgb_128_augment").is_none());
    }

    #[test]
    fn history_parsing_accepts_nan_and_old_keys() {
        let h =
            parse_history(r#"{"acc":[0.1,0.2],"val_acc":[0.3,NaN],"lr":[0.01,0.01],"note":"x"}"#)
                .unwrap();
        assert_eq!(h["accuracy"], vec![0.1, 0.2]);
        assert!(h["val_accuracy"][1].is_nan());
        assert!(parse_history("[1,2]").is_err());
        assert!(parse_history("{\"loss\": [\"a\"]}").is_err());
        assert!(parse_history("{").is_err());
    }

    #[test]
    fn median_and_mean() {
        let s = stats(&[3.0, 1.0, 2.0, 10.0]);
        assert_eq!(s.median, 2.5);
        assert_eq!(s.mean, 4.0);
        assert_eq!(s.max, 10.0);
    }
}
