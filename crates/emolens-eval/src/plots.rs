//! Plots drawn with plotters, each rendered to PNG (with an embedded font, so a bare machine
//! needs no system fonts) and SVG from the same drawing code.

use crate::error::EvalError;
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor;
use std::io::Cursor;
use std::sync::Once;

/// DejaVu Sans (Bitstream Vera licence, see `assets/DejaVuSans-LICENSE.txt`).
static FONT: &[u8] = include_bytes!("../assets/DejaVuSans.ttf");
const FAMILY: &str = "sans-serif";

fn ensure_font() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        for style in [FontStyle::Normal, FontStyle::Bold] {
            // The bytes are a font shipped in this crate; a failure is a build defect.
            if plotters::style::register_font(FAMILY, style, FONT).is_err() {
                tracing::error!("the embedded DejaVu Sans font could not be registered");
            }
        }
    });
}

/// Something drawable at a fixed size.
pub trait Plot {
    /// File stem, e.g. `confusion_matrix`.
    fn name(&self) -> &str;
    /// Width and height in pixels.
    fn size(&self) -> (u32, u32) {
        (900, 650)
    }
    /// Draws onto a white area of [`Plot::size`].
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<(), String>;
}

/// A plot rendered both ways.
#[derive(Debug, Clone)]
pub struct Rendered {
    pub name: String,
    pub png: Vec<u8>,
    pub svg: String,
}

/// Turns any plotters error into text for [`EvalError::Plot`].
pub(crate) fn pe<E: std::fmt::Debug>(e: E) -> String {
    format!("{e:?}")
}

/// Renders a plot to PNG bytes and an SVG document.
pub fn render(plot: &impl Plot) -> Result<Rendered, EvalError> {
    ensure_font();
    let (w, h) = plot.size();
    let err = |detail: String| EvalError::Plot {
        plot: plot.name().to_string(),
        detail,
    };
    let mut buf = vec![0u8; (w * h * 3) as usize];
    {
        let root = BitMapBackend::with_buffer(&mut buf, (w, h)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| err(pe(e)))?;
        plot.draw(&root).map_err(err)?;
        root.present().map_err(|e| err(pe(e)))?;
    }
    let img = image::RgbImage::from_raw(w, h, buf).ok_or_else(|| err("buffer size".into()))?;
    let mut png = Cursor::new(Vec::new());
    img.write_to(&mut png, image::ImageFormat::Png)
        .map_err(|e| err(e.to_string()))?;
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (w, h)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| err(pe(e)))?;
        plot.draw(&root).map_err(err)?;
        root.present().map_err(|e| err(pe(e)))?;
    }
    Ok(Rendered {
        name: plot.name().to_string(),
        png: png.into_inner(),
        svg,
    })
}

fn font(size: f64) -> TextStyle<'static> {
    TextStyle::from((FAMILY, size).into_font())
}

/// Matplotlib's "tab10" palette, for series and groups.
pub fn series_colour(i: usize) -> RGBColor {
    const TAB10: [(u8, u8, u8); 10] = [
        (31, 119, 180),
        (255, 127, 14),
        (44, 160, 44),
        (214, 39, 40),
        (148, 103, 189),
        (140, 86, 75),
        (227, 119, 194),
        (127, 127, 127),
        (188, 189, 34),
        (23, 190, 207),
    ];
    let (r, g, b) = TAB10[i % TAB10.len()];
    RGBColor(r, g, b)
}

/// White to dark blue (matplotlib's "Blues" ends) for t in [0, 1].
fn ramp(t: f64) -> RGBColor {
    let t = if t.is_finite() {
        t.clamp(0.0, 1.0)
    } else {
        0.0
    };
    let lerp = |a: f64, b: f64| (a + (b - a) * t).round() as u8;
    RGBColor(lerp(247.0, 8.0), lerp(251.0, 48.0), lerp(255.0, 107.0))
}

/// Category name at an integer axis position (empty between categories).
fn category(names: &[String], v: f64) -> String {
    let r = v.round();
    if (v - r).abs() > 1e-6 || r < 0.0 {
        return String::new();
    }
    names.get(r as usize).cloned().unwrap_or_default()
}

/// A matrix of values as coloured cells, optionally with text in each cell.
pub struct Heatmap {
    pub name: String,
    pub title: String,
    pub x_desc: String,
    pub y_desc: String,
    pub x_labels: Vec<String>,
    /// Row labels, top row first.
    pub y_labels: Vec<String>,
    pub values: Vec<Vec<f64>>,
    pub cell_text: Option<Vec<Vec<String>>>,
    pub range: (f64, f64),
    pub size: (u32, u32),
    /// Show every n-th x label (long axes such as epochs).
    pub x_label_every: usize,
}

impl Plot for Heatmap {
    fn name(&self) -> &str {
        &self.name
    }
    fn size(&self) -> (u32, u32) {
        self.size
    }
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<(), String> {
        let rows = self.y_labels.len();
        let cols = self.x_labels.len();
        let longest = self.y_labels.iter().map(|s| s.len()).max().unwrap_or(4);
        let label_px = (longest as u32 * 7 + 20).min(420);
        let y_font = if rows > 40 { 10.0 } else { 15.0 };
        let (area, legend) = root.split_horizontally(self.size.0 - 90);
        let mut chart = ChartBuilder::on(&area)
            .caption(&self.title, font(22.0))
            .margin(10)
            .x_label_area_size(60)
            .y_label_area_size(label_px)
            .build_cartesian_2d(-0.5f64..cols as f64 - 0.5, -0.5f64..rows as f64 - 0.5)
            .map_err(pe)?;
        let x_names: Vec<String> = self
            .x_labels
            .iter()
            .enumerate()
            .map(|(i, s)| {
                if i % self.x_label_every.max(1) == 0 {
                    s.clone()
                } else {
                    String::new()
                }
            })
            .collect();
        let y_names: Vec<String> = self.y_labels.iter().rev().cloned().collect();
        let fx = |v: &f64| category(&x_names, *v);
        let fy = |v: &f64| category(&y_names, *v);
        chart
            .configure_mesh()
            .disable_mesh()
            .x_labels(cols)
            .y_labels(rows)
            .x_label_formatter(&fx)
            .y_label_formatter(&fy)
            .x_label_style(font(14.0))
            .y_label_style(font(y_font))
            .x_desc(&self.x_desc)
            .y_desc(&self.y_desc)
            .axis_desc_style(font(16.0))
            .draw()
            .map_err(pe)?;
        let (lo, hi) = self.range;
        let span = if hi > lo { hi - lo } else { 1.0 };
        let mut cells = Vec::new();
        for (i, row) in self.values.iter().enumerate() {
            let y = (rows - 1 - i) as f64;
            for (j, &v) in row.iter().enumerate() {
                let x = j as f64;
                cells.push(Rectangle::new(
                    [(x - 0.5, y - 0.5), (x + 0.5, y + 0.5)],
                    ramp((v - lo) / span).filled(),
                ));
            }
        }
        chart.draw_series(cells).map_err(pe)?;
        if let Some(text) = &self.cell_text {
            let mut labels = Vec::new();
            for (i, row) in text.iter().enumerate() {
                let y = (rows - 1 - i) as f64;
                for (j, t) in row.iter().enumerate() {
                    let v = self.values[i][j];
                    let colour: &'static RGBColor = if (v - lo) / span > 0.5 {
                        &WHITE
                    } else {
                        &BLACK
                    };
                    let style = font(14.0).color(colour).pos(text_anchor::Pos::new(
                        text_anchor::HPos::Center,
                        text_anchor::VPos::Center,
                    ));
                    labels.push(Text::new(t.clone(), (j as f64, y), style));
                }
            }
            chart.draw_series(labels).map_err(pe)?;
        }
        draw_colour_bar(&legend, lo, hi)
    }
}

fn draw_colour_bar<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    lo: f64,
    hi: f64,
) -> Result<(), String> {
    let mut chart = ChartBuilder::on(area)
        .margin_top(50)
        .margin_bottom(70)
        .margin_right(10)
        .y_label_area_size(50)
        .build_cartesian_2d(0f64..1.0, lo..hi.max(lo + 1e-9))
        .map_err(pe)?;
    chart
        .configure_mesh()
        .disable_mesh()
        .disable_x_axis()
        .y_labels(6)
        .y_label_style(font(12.0))
        .y_label_formatter(&|v| format!("{v:.2}"))
        .draw()
        .map_err(pe)?;
    let steps = 100;
    let span = hi - lo;
    chart
        .draw_series((0..steps).map(|s| {
            let a = lo + span * s as f64 / steps as f64;
            let b = lo + span * (s + 1) as f64 / steps as f64;
            Rectangle::new(
                [(0.0, a), (1.0, b)],
                ramp((s as f64 + 0.5) / steps as f64).filled(),
            )
        }))
        .map_err(pe)?;
    Ok(())
}

/// A named series of points.
#[derive(Debug, Clone)]
pub struct Series {
    pub label: String,
    pub xs: Vec<f64>,
    pub ys: Vec<f64>,
    pub dashed: bool,
    pub width: u32,
}

/// Lines on numeric axes (ROC curves, training curves).
pub struct LinePlot {
    pub name: String,
    pub title: String,
    pub x_desc: String,
    pub y_desc: String,
    pub x_range: (f64, f64),
    pub y_range: (f64, f64),
    pub series: Vec<Series>,
    /// Draw the chance diagonal from (0, 0) to (1, 1).
    pub diagonal: bool,
    pub legend_lower_right: bool,
}

impl Plot for LinePlot {
    fn name(&self) -> &str {
        &self.name
    }
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<(), String> {
        let mut chart = ChartBuilder::on(root)
            .caption(&self.title, font(22.0))
            .margin(15)
            .x_label_area_size(50)
            .y_label_area_size(65)
            .build_cartesian_2d(
                self.x_range.0..self.x_range.1,
                self.y_range.0..self.y_range.1,
            )
            .map_err(pe)?;
        chart
            .configure_mesh()
            .light_line_style(RGBColor(235, 235, 235))
            .label_style(font(14.0))
            .x_desc(&self.x_desc)
            .y_desc(&self.y_desc)
            .axis_desc_style(font(16.0))
            .draw()
            .map_err(pe)?;
        if self.diagonal {
            chart
                .draw_series(DashedLineSeries::new(
                    [(0.0, 0.0), (1.0, 1.0)],
                    6,
                    4,
                    RGBColor(150, 150, 150).stroke_width(1),
                ))
                .map_err(pe)?;
        }
        for (i, s) in self.series.iter().enumerate() {
            let colour = series_colour(i);
            let style = colour.stroke_width(s.width.max(1));
            let points: Vec<(f64, f64)> = s.xs.iter().copied().zip(s.ys.iter().copied()).collect();
            let ann = if s.dashed {
                chart
                    .draw_series(DashedLineSeries::new(points, 8, 5, style))
                    .map_err(pe)?
            } else {
                chart
                    .draw_series(LineSeries::new(points, style))
                    .map_err(pe)?
            };
            ann.label(s.label.clone()).legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 20, y)], colour.stroke_width(3))
            });
        }
        chart
            .configure_series_labels()
            .position(if self.legend_lower_right {
                SeriesLabelPosition::LowerRight
            } else {
                SeriesLabelPosition::UpperRight
            })
            .label_font(font(13.0))
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK)
            .draw()
            .map_err(pe)?;
        Ok(())
    }
}

/// Bars grouped by category: one bar per group inside each category (e.g. precision, recall
/// and F1 per class; mean best val_accuracy per optimiser, one bar per colour mode).
pub struct GroupedBars {
    pub name: String,
    pub title: String,
    pub x_desc: String,
    pub y_desc: String,
    pub categories: Vec<String>,
    /// (group name, one value per category; NaN for no bar).
    pub groups: Vec<(String, Vec<f64>)>,
    pub y_range: (f64, f64),
    /// Print each bar's value above it.
    pub value_labels: bool,
}

impl Plot for GroupedBars {
    fn name(&self) -> &str {
        &self.name
    }
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<(), String> {
        let n = self.categories.len();
        let mut chart = ChartBuilder::on(root)
            .caption(&self.title, font(22.0))
            .margin(15)
            .x_label_area_size(55)
            .y_label_area_size(65)
            .build_cartesian_2d(-0.5f64..n as f64 - 0.5, self.y_range.0..self.y_range.1)
            .map_err(pe)?;
        let fx = |v: &f64| category(&self.categories, *v);
        chart
            .configure_mesh()
            .disable_x_mesh()
            .light_line_style(RGBColor(235, 235, 235))
            .x_labels(n)
            .x_label_formatter(&fx)
            .label_style(font(14.0))
            .x_desc(&self.x_desc)
            .y_desc(&self.y_desc)
            .axis_desc_style(font(16.0))
            .draw()
            .map_err(pe)?;
        let g = self.groups.len().max(1) as f64;
        let width = 0.8 / g;
        for (gi, (gname, values)) in self.groups.iter().enumerate() {
            let colour = series_colour(gi);
            let bars: Vec<_> = values
                .iter()
                .enumerate()
                .filter(|(_, v)| v.is_finite())
                .map(|(ci, &v)| {
                    let x0 = ci as f64 - 0.4 + gi as f64 * width;
                    Rectangle::new(
                        [(x0, self.y_range.0), (x0 + width * 0.95, v)],
                        colour.filled(),
                    )
                })
                .collect();
            chart
                .draw_series(bars)
                .map_err(pe)?
                .label(gname.clone())
                .legend(move |(x, y)| {
                    Rectangle::new([(x, y - 6), (x + 14, y + 6)], colour.filled())
                });
            if self.value_labels {
                let style = font(11.0).pos(text_anchor::Pos::new(
                    text_anchor::HPos::Center,
                    text_anchor::VPos::Bottom,
                ));
                let texts: Vec<_> = values
                    .iter()
                    .enumerate()
                    .filter(|(_, v)| v.is_finite())
                    .map(|(ci, &v)| {
                        let x = ci as f64 - 0.4 + (gi as f64 + 0.5) * width;
                        Text::new(format!("{v:.3}"), (x, v), style.clone())
                    })
                    .collect();
                chart.draw_series(texts).map_err(pe)?;
            }
        }
        if self.groups.len() > 1 {
            chart
                .configure_series_labels()
                .position(SeriesLabelPosition::UpperRight)
                .label_font(font(13.0))
                .background_style(WHITE.mix(0.85))
                .border_style(BLACK)
                .draw()
                .map_err(pe)?;
        }
        Ok(())
    }
}

/// Reliability diagram: accuracy per confidence bin against the diagonal of perfect
/// calibration, with each bin's mean confidence marked.
pub struct Reliability {
    pub name: String,
    pub title: String,
    /// (lower, upper, count, mean confidence, accuracy) per bin.
    pub bins: Vec<(f64, f64, u64, f64, f64)>,
}

impl Plot for Reliability {
    fn name(&self) -> &str {
        &self.name
    }
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<(), String> {
        let mut chart = ChartBuilder::on(root)
            .caption(&self.title, font(22.0))
            .margin(15)
            .x_label_area_size(50)
            .y_label_area_size(65)
            .build_cartesian_2d(0f64..1.0, 0f64..1.0)
            .map_err(pe)?;
        chart
            .configure_mesh()
            .light_line_style(RGBColor(235, 235, 235))
            .label_style(font(14.0))
            .x_desc("confidence (top-1 probability)")
            .y_desc("accuracy")
            .axis_desc_style(font(16.0))
            .draw()
            .map_err(pe)?;
        let used: Vec<_> = self.bins.iter().filter(|b| b.2 > 0).collect();
        chart
            .draw_series(used.iter().map(|b| {
                Rectangle::new([(b.0, 0.0), (b.1, b.4)], series_colour(0).mix(0.8).filled())
            }))
            .map_err(pe)?
            .label("accuracy in bin")
            .legend(|(x, y)| {
                Rectangle::new([(x, y - 6), (x + 14, y + 6)], series_colour(0).filled())
            });
        chart
            .draw_series(used.iter().map(|b| {
                Rectangle::new(
                    [(b.0, b.4.min(b.3)), (b.1, b.4.max(b.3))],
                    series_colour(3).mix(0.35).filled(),
                )
            }))
            .map_err(pe)?
            .label("gap to mean confidence")
            .legend(|(x, y)| {
                Rectangle::new(
                    [(x, y - 6), (x + 14, y + 6)],
                    series_colour(3).mix(0.35).filled(),
                )
            });
        chart
            .draw_series(DashedLineSeries::new(
                [(0.0, 0.0), (1.0, 1.0)],
                6,
                4,
                BLACK.stroke_width(1),
            ))
            .map_err(pe)?
            .label("perfect calibration")
            .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], BLACK));
        let count_style = font(11.0).pos(text_anchor::Pos::new(
            text_anchor::HPos::Center,
            text_anchor::VPos::Bottom,
        ));
        chart
            .draw_series(used.iter().map(|b| {
                Text::new(
                    format!("{}", b.2),
                    ((b.0 + b.1) / 2.0, b.4.max(b.3) + 0.01),
                    count_style.clone(),
                )
            }))
            .map_err(pe)?;
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperLeft)
            .label_font(font(13.0))
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK)
            .draw()
            .map_err(pe)?;
        Ok(())
    }
}

/// A histogram of values over a fixed range.
pub struct Histogram {
    pub name: String,
    pub title: String,
    pub x_desc: String,
    pub values: Vec<f64>,
    pub bins: usize,
}

impl Plot for Histogram {
    fn name(&self) -> &str {
        &self.name
    }
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<(), String> {
        let lo = self.values.iter().copied().fold(f64::INFINITY, f64::min);
        let hi = self
            .values
            .iter()
            .copied()
            .fold(f64::NEG_INFINITY, f64::max);
        let (lo, hi) = if lo.is_finite() && hi > lo {
            (lo, hi)
        } else if lo.is_finite() {
            (lo - 0.01, lo + 0.01)
        } else {
            (0.0, 1.0)
        };
        let bins = self.bins.max(1);
        let width = (hi - lo) / bins as f64;
        let mut counts = vec![0u32; bins];
        for &v in &self.values {
            let b = (((v - lo) / width) as usize).min(bins - 1);
            counts[b] += 1;
        }
        let top = counts.iter().copied().max().unwrap_or(1).max(1);
        let mut chart = ChartBuilder::on(root)
            .caption(&self.title, font(22.0))
            .margin(15)
            .x_label_area_size(50)
            .y_label_area_size(55)
            .build_cartesian_2d(lo..hi, 0u32..top + 1)
            .map_err(pe)?;
        chart
            .configure_mesh()
            .disable_x_mesh()
            .light_line_style(RGBColor(235, 235, 235))
            .label_style(font(14.0))
            .x_label_formatter(&|v| format!("{v:.3}"))
            .x_desc(&self.x_desc)
            .y_desc("runs")
            .axis_desc_style(font(16.0))
            .draw()
            .map_err(pe)?;
        chart
            .draw_series(counts.iter().enumerate().map(|(b, &c)| {
                let x0 = lo + b as f64 * width;
                let mut r = Rectangle::new([(x0, 0), (x0 + width, c)], series_colour(0).filled());
                r.set_margin(0, 0, 1, 1);
                r
            }))
            .map_err(pe)?;
        Ok(())
    }
}

/// Quartiles by linear interpolation (numpy's default `percentile`).
pub fn percentile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let pos = q * (sorted.len() - 1) as f64;
    let i = pos.floor() as usize;
    let frac = pos - i as f64;
    if i + 1 < sorted.len() {
        sorted[i] + (sorted[i + 1] - sorted[i]) * frac
    } else {
        sorted[i]
    }
}

/// Box plots of several groups (box from Q1 to Q3, median line, whiskers to the furthest point
/// within 1.5 IQR, points beyond drawn as outliers), as matplotlib draws them.
pub struct BoxPlots {
    pub name: String,
    pub title: String,
    pub x_desc: String,
    pub y_desc: String,
    pub groups: Vec<(String, Vec<f64>)>,
}

impl Plot for BoxPlots {
    fn name(&self) -> &str {
        &self.name
    }
    fn size(&self) -> (u32, u32) {
        // Long group names (model names) need room side by side.
        let longest = self.groups.iter().map(|g| g.0.len()).max().unwrap_or(0) as u32;
        (
            (self.groups.len() as u32 * (longest * 9 + 70)).clamp(900, 2400),
            650,
        )
    }
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<(), String> {
        let names: Vec<String> = self
            .groups
            .iter()
            .map(|(n, v)| format!("{n} (n={})", v.len()))
            .collect();
        let all: Vec<f64> = self
            .groups
            .iter()
            .flat_map(|g| g.1.iter().copied())
            .collect();
        let lo = all.iter().copied().fold(f64::INFINITY, f64::min);
        let hi = all.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let (lo, hi) = if lo.is_finite() && hi > lo {
            let pad = (hi - lo) * 0.08;
            (lo - pad, hi + pad)
        } else {
            (0.0, 1.0)
        };
        let n = self.groups.len();
        let mut chart = ChartBuilder::on(root)
            .caption(&self.title, font(22.0))
            .margin(15)
            .x_label_area_size(55)
            .y_label_area_size(65)
            .build_cartesian_2d(-0.5f64..n as f64 - 0.5, lo..hi)
            .map_err(pe)?;
        let fx = |v: &f64| category(&names, *v);
        chart
            .configure_mesh()
            .disable_x_mesh()
            .light_line_style(RGBColor(235, 235, 235))
            .x_labels(n)
            .x_label_formatter(&fx)
            .label_style(font(14.0))
            .y_label_formatter(&|v| format!("{v:.3}"))
            .x_desc(&self.x_desc)
            .y_desc(&self.y_desc)
            .axis_desc_style(font(16.0))
            .draw()
            .map_err(pe)?;
        for (i, (_, values)) in self.groups.iter().enumerate() {
            if values.is_empty() {
                continue;
            }
            let mut s = values.clone();
            s.sort_unstable_by(f64::total_cmp);
            let (q1, med, q3) = (
                percentile(&s, 0.25),
                percentile(&s, 0.5),
                percentile(&s, 0.75),
            );
            let iqr = q3 - q1;
            let low = s
                .iter()
                .copied()
                .find(|&v| v >= q1 - 1.5 * iqr)
                .unwrap_or(q1);
            let high = s
                .iter()
                .rev()
                .copied()
                .find(|&v| v <= q3 + 1.5 * iqr)
                .unwrap_or(q3);
            let x = i as f64;
            let colour = series_colour(i);
            chart
                .draw_series([
                    Rectangle::new([(x - 0.25, q1), (x + 0.25, q3)], colour.mix(0.35).filled()),
                    Rectangle::new([(x - 0.25, q1), (x + 0.25, q3)], colour.stroke_width(2)),
                ])
                .map_err(pe)?;
            chart
                .draw_series([
                    PathElement::new(
                        vec![(x - 0.25, med), (x + 0.25, med)],
                        BLACK.stroke_width(3),
                    ),
                    PathElement::new(vec![(x, q3), (x, high)], BLACK.stroke_width(1)),
                    PathElement::new(vec![(x, q1), (x, low)], BLACK.stroke_width(1)),
                    PathElement::new(
                        vec![(x - 0.12, high), (x + 0.12, high)],
                        BLACK.stroke_width(1),
                    ),
                    PathElement::new(
                        vec![(x - 0.12, low), (x + 0.12, low)],
                        BLACK.stroke_width(1),
                    ),
                ])
                .map_err(pe)?;
            chart
                .draw_series(
                    s.iter()
                        .filter(|&&v| v < low || v > high)
                        .map(|&v| Circle::new((x, v), 4, BLACK.stroke_width(1))),
                )
                .map_err(pe)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_png_and_svg_with_text() {
        let p = GroupedBars {
            name: "t".into(),
            title: "Per-class scores".into(),
            x_desc: "class".into(),
            y_desc: "score".into(),
            categories: vec!["angry".into(), "happy".into()],
            groups: vec![
                ("precision".into(), vec![0.5, 0.9]),
                ("recall".into(), vec![0.4, f64::NAN]),
            ],
            y_range: (0.0, 1.0),
            value_labels: true,
        };
        let r = render(&p).unwrap();
        assert_eq!(&r.png[1..4], b"PNG");
        assert!(r.svg.contains("<svg") && r.svg.contains("Per-class scores"));
        assert!(r.svg.contains("happy"));
        let img = image::load_from_memory(&r.png).unwrap().to_rgb8();
        // The title is drawn with the embedded font: dark pixels in the caption band.
        let dark = (0..img.width())
            .flat_map(|x| (5..30).map(move |y| (x, y)))
            .filter(|&(x, y)| img.get_pixel(x, y).0[0] < 100)
            .count();
        assert!(
            dark > 50,
            "title text missing from the PNG ({dark} dark pixels)"
        );
    }

    #[test]
    fn percentile_matches_numpy() {
        let s = [1.0, 2.0, 3.0, 4.0];
        assert_eq!(percentile(&s, 0.25), 1.75);
        assert_eq!(percentile(&s, 0.5), 2.5);
        assert_eq!(percentile(&s, 0.75), 3.25);
    }
}
