//! The plots of an experiments report: the histogram of the runs' best val_accuracy, the
//! val_accuracy heatmap (runs against epochs), box plots by each part of the run names, grouped
//! bars by colour mode, the training curves of the best run and the val_accuracy curves of the
//! top 10.

use std::collections::BTreeMap;

use super::{group_key, sort_group_values, ExperimentsReport, Run, RANK_METRIC};
use crate::error::EvalError;
use crate::plots::{render, BoxPlots, GroupedBars, Heatmap, Histogram, LinePlot, Rendered, Series};

/// Runs by name.
type ByName<'a> = BTreeMap<&'a str, &'a Run>;

/// Renders the experiment plots.
pub fn experiment_plots(
    report: &ExperimentsReport,
    runs: &[Run],
) -> Result<Vec<Rendered>, EvalError> {
    let by_name: ByName = runs.iter().map(|r| (r.name.as_str(), r)).collect();
    let mut out = vec![
        render(&best_val_accuracy_histogram(report))?,
        render(&val_accuracy_heatmap(report, &by_name))?,
    ];
    for by in ["optimizer", "batch_size", "colour_mode", "model"] {
        if let Some(plot) = box_plots_by(report, by) {
            out.push(render(&plot)?);
        }
    }
    // Grouped comparisons per colour mode: mean best val_accuracy.
    for by in ["optimizer", "batch_size"] {
        if let Some(plot) = compare_by_colour_mode(report, by) {
            out.push(render(&plot)?);
        }
    }
    // Training curves of the best run.
    if let Some(best) = by_name.get(report.best.name.as_str()) {
        for (plot, keys, desc) in [
            (
                "best_run_accuracy",
                ["accuracy", "val_accuracy"],
                "accuracy",
            ),
            ("best_run_loss", ["loss", "val_loss"], "loss"),
        ] {
            if let Some(plot) = best_run_curves(report, best, plot, keys, desc) {
                out.push(render(&plot)?);
            }
        }
    }
    if let Some(plot) = top10_curves(report, &by_name) {
        out.push(render(&plot)?);
    }
    Ok(out)
}

/// The histogram of every run's best val_accuracy.
fn best_val_accuracy_histogram(report: &ExperimentsReport) -> Histogram {
    let bests: Vec<f64> = report.ranking.iter().map(|r| r.best_val_accuracy).collect();
    Histogram {
        name: "best_val_accuracy_histogram".into(),
        title: format!("Best val_accuracy of {} runs", report.n_runs),
        x_desc: "best val_accuracy".into(),
        values: bests,
        bins: 15,
    }
}

/// Heatmap: runs (best first) against epochs.
fn val_accuracy_heatmap(report: &ExperimentsReport, by_name: &ByName) -> Heatmap {
    let rows: Vec<(&str, &Vec<f64>)> = report
        .ranking
        .iter()
        .filter_map(|s| {
            by_name
                .get(s.name.as_str())
                .and_then(|r| r.metrics.get(RANK_METRIC))
                .map(|v| (s.name.as_str(), v))
        })
        .collect();
    let epochs = rows.iter().map(|r| r.1.len()).max().unwrap_or(0);
    let mut finite: Vec<f64> = rows
        .iter()
        .flat_map(|r| r.1.iter().copied())
        .filter(|v| v.is_finite())
        .collect();
    finite.sort_unstable_by(f64::total_cmp);
    // The colour scale spans the 2nd percentile to the max, so a few failed early epochs do
    // not wash out the differences between runs (lower values clamp to the lightest colour).
    let (lo, hi) = (
        crate::plots::percentile(&finite, 0.02),
        finite.last().copied().unwrap_or(f64::NAN),
    );
    let values: Vec<Vec<f64>> = rows
        .iter()
        .map(|(_, v)| {
            (0..epochs)
                .map(|e| v.get(e).copied().unwrap_or(f64::NAN))
                .collect()
        })
        .collect();
    let height = (160 + rows.len() as u32 * 14).clamp(500, 3000);
    Heatmap {
        name: "val_accuracy_heatmap".into(),
        title: "val_accuracy by epoch (runs ranked best first)".into(),
        x_desc: "epoch".into(),
        y_desc: String::new(),
        x_labels: (1..=epochs).map(|e| e.to_string()).collect(),
        y_labels: rows.iter().map(|r| r.0.to_string()).collect(),
        values,
        cell_text: None,
        range: if lo.is_finite() && hi > lo {
            (lo, hi)
        } else {
            (0.0, 1.0)
        },
        size: (1500, height),
        x_label_every: if epochs > 20 { 5 } else { 1 },
    }
}

/// Box plots of the best val_accuracy of the runs grouped by the name part `by`; `None` when
/// no run name parses.
fn box_plots_by(report: &ExperimentsReport, by: &str) -> Option<BoxPlots> {
    let mut values: Vec<String> = report
        .ranking
        .iter()
        .filter_map(|r| r.parts.as_ref().map(|p| group_key(p, by)))
        .collect();
    sort_group_values(&mut values);
    values.dedup();
    let groups: Vec<(String, Vec<f64>)> = values
        .into_iter()
        .map(|v| {
            let vals = report
                .ranking
                .iter()
                .filter(|r| r.parts.as_ref().is_some_and(|p| group_key(p, by) == v))
                .map(|r| r.best_val_accuracy)
                .collect();
            (v, vals)
        })
        .collect();
    if groups.is_empty() {
        return None;
    }
    Some(BoxPlots {
        name: format!("box_by_{by}"),
        title: format!("Best val_accuracy by {}", by.replace('_', " ")),
        x_desc: by.replace('_', " "),
        y_desc: "best val_accuracy".into(),
        groups,
    })
}

/// Bars of the mean best val_accuracy of each value of `by`, one bar per colour mode; `None`
/// when the report has no group by `by`.
fn compare_by_colour_mode(report: &ExperimentsReport, by: &str) -> Option<GroupedBars> {
    let mut cats: Vec<String> = report
        .groups
        .iter()
        .filter(|g| g.by == by && g.colour_mode.is_none())
        .map(|g| g.value.clone())
        .collect();
    sort_group_values(&mut cats);
    if cats.is_empty() {
        return None;
    }
    let modes: Vec<String> = ["grayscale", "rgb"]
        .iter()
        .filter(|cm| {
            report
                .groups
                .iter()
                .any(|g| g.by == by && g.colour_mode.as_deref() == Some(**cm))
        })
        .map(|s| s.to_string())
        .collect();
    let groups: Vec<(String, Vec<f64>)> = modes
        .iter()
        .map(|cm| {
            let vals = cats
                .iter()
                .map(|c| {
                    report
                        .groups
                        .iter()
                        .find(|g| {
                            g.by == by && &g.value == c && g.colour_mode.as_deref() == Some(cm)
                        })
                        .map(|g| g.stats.mean)
                        .unwrap_or(f64::NAN)
                })
                .collect();
            (cm.clone(), vals)
        })
        .collect();
    let all: Vec<f64> = groups
        .iter()
        .flat_map(|g| g.1.iter().copied())
        .filter(|v| v.is_finite())
        .collect();
    let lo = all.iter().copied().fold(f64::INFINITY, f64::min);
    let hi = all.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    Some(GroupedBars {
        name: format!("compare_{by}_by_colour_mode"),
        title: format!(
            "Mean best val_accuracy by {} and colour mode",
            by.replace('_', " ")
        ),
        x_desc: by.replace('_', " "),
        y_desc: "mean best val_accuracy".into(),
        categories: cats,
        groups,
        y_range: if lo.is_finite() {
            ((lo - 0.05).max(0.0), (hi + 0.03).min(1.05))
        } else {
            (0.0, 1.0)
        },
        value_labels: true,
    })
}

/// One curve per epoch-indexed series of values.
fn curve(label: &str, values: &[f64], width: u32) -> Series {
    Series {
        label: label.to_string(),
        xs: (1..=values.len()).map(|e| e as f64).collect(),
        ys: values.to_vec(),
        dashed: false,
        width,
    }
}

/// The smallest and largest finite value of the series (infinities when there is none).
fn finite_range(series: &[Series]) -> (f64, f64) {
    series
        .iter()
        .flat_map(|s| s.ys.iter().copied())
        .filter(|v| v.is_finite())
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), v| {
            (a.min(v), b.max(v))
        })
}

/// The curves of the metrics `keys` of the best run, as plot `plot` of `desc`; `None` when the
/// run has none of them.
fn best_run_curves(
    report: &ExperimentsReport,
    best: &Run,
    plot: &str,
    keys: [&str; 2],
    desc: &str,
) -> Option<LinePlot> {
    let series: Vec<Series> = keys
        .iter()
        .filter_map(|k| best.metrics.get(*k).map(|v| curve(k, v, 2)))
        .collect();
    if series.is_empty() {
        return None;
    }
    let (lo, hi) = finite_range(&series);
    let pad = ((hi - lo) * 0.05).max(1e-3);
    let n = series.iter().map(|s| s.xs.len()).max().unwrap_or(1) as f64;
    Some(LinePlot {
        name: plot.into(),
        title: format!("{} of the best run {}", desc, report.best.name),
        x_desc: "epoch".into(),
        y_desc: desc.into(),
        x_range: (1.0, n.max(2.0)),
        y_range: (lo - pad, hi + pad),
        series,
        diagonal: false,
        legend_lower_right: desc == "accuracy",
    })
}

/// val_accuracy curves of the top 10; `None` when none has a finite value.
fn top10_curves(report: &ExperimentsReport, by_name: &ByName) -> Option<LinePlot> {
    let series: Vec<Series> = report
        .top10
        .iter()
        .filter_map(|n| {
            by_name
                .get(n.as_str())
                .and_then(|r| r.metrics.get(RANK_METRIC))
                .map(|v| curve(n, v, 1))
        })
        .collect();
    let (lo, hi) = finite_range(&series);
    if !lo.is_finite() {
        return None;
    }
    let n = series.iter().map(|s| s.xs.len()).max().unwrap_or(1) as f64;
    Some(LinePlot {
        name: "top10_val_accuracy".into(),
        title: "val_accuracy of the top 10 runs".into(),
        x_desc: "epoch".into(),
        y_desc: "val_accuracy".into(),
        x_range: (1.0, n.max(2.0)),
        y_range: (lo - 0.01, hi + 0.01),
        series,
        diagonal: false,
        legend_lower_right: true,
    })
}
