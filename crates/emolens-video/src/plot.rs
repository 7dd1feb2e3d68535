//! The emotion timeline of a video (`--timeline PATH.png|.svg`): one panel per viewer, one line
//! per emotion (mean probability per second), the valence as a dashed black line, drawn with
//! the evaluation plots' code (embedded font, PNG and SVG from the same drawing).

use crate::analyze::VideoResult;
use crate::error::VideoError;
use emolens_eval::plots::{render, series_colour, Plot};
use plotters::coord::Shift;
use plotters::prelude::*;
use std::path::Path;

/// At most this many viewers get a panel (the rest are named in a note on the last panel).
pub const MAX_PANELS: usize = 12;

pub struct TimelinePlot<'a> {
    pub result: &'a VideoResult,
    pub classes: &'a [String],
}

fn font(size: f64) -> TextStyle<'static> {
    TextStyle::from(("sans-serif", size).into_font())
}

impl Plot for TimelinePlot<'_> {
    fn name(&self) -> &str {
        "timeline"
    }

    fn size(&self) -> (u32, u32) {
        let panels = self.result.viewers.len().clamp(1, MAX_PANELS) as u32;
        (1000, 80 + 260 * panels)
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<(), String> {
        let pe = |e: DrawingAreaErrorKind<DB::ErrorType>| format!("{e:?}");
        let r = self.result;
        let name = Path::new(&r.source)
            .file_name()
            .map_or(r.source.clone(), |n| n.to_string_lossy().into_owned());
        let mut title = format!("{name}: emotions per second");
        if !r.complete {
            if let Some(s) = &r.stopped {
                title.push_str(&format!(" (partial: up to {:.1} s)", s.at_s));
            }
        }
        let root = root.titled(&title, font(22.0)).map_err(pe)?;
        let x_max = (r.seconds.max(1)) as f64;
        if r.viewers.is_empty() {
            root.draw(&Text::new(
                "no face found in the sampled frames",
                (40, 60),
                font(18.0),
            ))
            .map_err(pe)?;
            return Ok(());
        }
        let shown = &r.viewers[..r.viewers.len().min(MAX_PANELS)];
        let panels = root.split_evenly((shown.len(), 1));
        for (i, (area, v)) in panels.iter().zip(shown).enumerate() {
            let mut caption = format!("viewer {}", v.viewer);
            if let Some(val) = v.valence {
                caption.push_str(&format!("  (mean valence {val:+.2})"));
            }
            if i + 1 == shown.len() && r.viewers.len() > shown.len() {
                caption.push_str(&format!(
                    "  [{} more viewers not drawn]",
                    r.viewers.len() - shown.len()
                ));
            }
            let mut chart = ChartBuilder::on(area)
                .caption(caption, font(16.0))
                .margin(8)
                .x_label_area_size(30)
                .y_label_area_size(50)
                .right_y_label_area_size(50)
                .build_cartesian_2d(0.0..x_max, 0.0..1.0f64)
                .map_err(pe)?
                .set_secondary_coord(0.0..x_max, -1.0..1.0f64);
            chart
                .configure_mesh()
                .x_desc("video time (s)")
                .y_desc("mean probability")
                .x_label_style(font(12.0))
                .y_label_style(font(12.0))
                .axis_desc_style(font(13.0))
                .draw()
                .map_err(pe)?;
            chart
                .configure_secondary_axes()
                .y_desc("valence")
                .label_style(font(12.0))
                .axis_desc_style(font(13.0))
                .draw()
                .map_err(pe)?;
            for (ci, class) in self.classes.iter().enumerate() {
                let colour = series_colour(ci);
                // One segment per run of seconds with faces: no line across seconds without.
                let lines = runs(&v.seconds, |s| {
                    s.probabilities.get(ci).map(|p| p.probability as f64)
                });
                for (ri, run) in lines.into_iter().enumerate() {
                    let series = chart
                        .draw_series(LineSeries::new(run, colour.stroke_width(2)))
                        .map_err(pe)?;
                    if i == 0 && ri == 0 {
                        series.label(class.clone()).legend(move |(x, y)| {
                            PathElement::new(vec![(x, y), (x + 16, y)], colour.stroke_width(2))
                        });
                    }
                }
            }
            for run in runs(&v.seconds, |s| s.valence) {
                let dashed = DashedLineSeries::new(run, 6, 4, BLACK.stroke_width(1));
                chart.draw_secondary_series(dashed).map_err(pe)?;
            }
            if i == 0 {
                chart
                    .configure_series_labels()
                    .position(SeriesLabelPosition::UpperRight)
                    .background_style(WHITE.mix(0.85))
                    .border_style(BLACK.mix(0.3))
                    .label_font(font(12.0))
                    .draw()
                    .map_err(pe)?;
            }
        }
        Ok(())
    }
}

/// Points at the middle of each second, split where a second has no value.
fn runs(
    seconds: &[crate::timeline::ViewerSecond],
    value: impl Fn(&crate::timeline::ViewerSecond) -> Option<f64>,
) -> Vec<Vec<(f64, f64)>> {
    let mut out: Vec<Vec<(f64, f64)>> = Vec::new();
    let mut cur = Vec::new();
    for s in seconds {
        match value(s) {
            Some(v) => cur.push((s.second as f64 + 0.5, v)),
            None if !cur.is_empty() => out.push(std::mem::take(&mut cur)),
            None => {}
        }
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

/// Writes the timeline to `path`: SVG when it ends in `.svg`, else PNG.
pub fn write_timeline(
    result: &VideoResult,
    classes: &[String],
    path: &Path,
) -> Result<(), VideoError> {
    let plot = TimelinePlot { result, classes };
    let rendered = render(&plot).map_err(|e| VideoError::Io {
        path: path.to_path_buf(),
        detail: format!("cannot draw the timeline of {}: {e}", result.source),
    })?;
    let svg = path
        .extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| e.eq_ignore_ascii_case("svg"));
    let written = if svg {
        std::fs::write(path, rendered.svg)
    } else {
        std::fs::write(path, rendered.png)
    };
    written.map_err(|e| VideoError::Io {
        path: path.to_path_buf(),
        detail: format!("cannot write the timeline: {e}"),
    })
}
