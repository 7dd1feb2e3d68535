//! Viewer tracking across sampled frames: each face is given the id of the track it continues,
//! or a new id.
//!
//! A face continues a track when its box size changed by at most `max_size_ratio` and either
//! its box nearly covers the track's last box (IoU >= `same_place_iou`), or it overlaps it
//! (IoU >= `min_iou`) or its centre moved less than half the box side *and* it looks like the
//! track (the correlation of 16x16 grayscale thumbnails of the face crop: an appearance cue
//! that stops a track jumping to a neighbour who moves into a partly overlapping place). Pairs are assigned greedily, best first, one face per track and one track per face, so
//! two faces seen in the same frame can never share an id. A track not seen for more than
//! `max_gap_s` seconds ends; a face that comes back after that gets a new id.

use emolens_faces::FaceBox;
use image::{imageops::FilterType, DynamicImage, GenericImageView};

/// Side of the appearance thumbnail.
const THUMB: u32 = 16;

/// Settings of the tracker.
#[derive(Debug, Clone, Copy)]
pub struct TrackerSettings {
    /// Box overlap (intersection over union) at which a face continues a track if it also
    /// looks like it.
    pub min_iou: f32,
    /// Box overlap at which a face continues a track whatever its look.
    pub same_place_iou: f32,
    /// Largest change of box side between two sightings (ratio, >= 1).
    pub max_size_ratio: f32,
    /// Smallest appearance correlation (-1..1) for a face to continue a track.
    pub min_appearance: f32,
    /// A track unseen for longer than this (seconds) ends.
    pub max_gap_s: f64,
}

impl Default for TrackerSettings {
    fn default() -> Self {
        TrackerSettings {
            min_iou: 0.3,
            same_place_iou: 0.5,
            max_size_ratio: 1.6,
            min_appearance: 0.3,
            max_gap_s: 1.0,
        }
    }
}

impl TrackerSettings {
    pub fn validate(&self) -> Result<(), String> {
        if !(0.0..=1.0).contains(&self.min_iou) || !(0.0..=1.0).contains(&self.same_place_iou) {
            return Err(format!(
                "min_iou {} and same_place_iou {} must be in 0..=1",
                self.min_iou, self.same_place_iou
            ));
        }
        if self.max_size_ratio.is_nan() || self.max_size_ratio < 1.0 {
            return Err(format!(
                "max_size_ratio {} must be >= 1",
                self.max_size_ratio
            ));
        }
        if !(-1.0..=1.0).contains(&self.min_appearance) {
            return Err(format!(
                "min_appearance {} is out of range -1..=1",
                self.min_appearance
            ));
        }
        if !(self.max_gap_s.is_finite() && self.max_gap_s >= 0.0) {
            return Err(format!(
                "track gap {} s must be a number of seconds >= 0",
                self.max_gap_s
            ));
        }
        Ok(())
    }
}

/// A face as the tracker sees it.
#[derive(Debug, Clone)]
pub struct Observation {
    pub bbox: FaceBox,
    /// From [`appearance`].
    pub appearance: Vec<f32>,
}

#[derive(Debug, Clone)]
struct Track {
    id: u32,
    bbox: FaceBox,
    last_t: f64,
    appearance: Vec<f32>,
}

/// Assigns viewer ids (1, 2, ...) to faces frame after frame.
#[derive(Debug)]
pub struct Tracker {
    settings: TrackerSettings,
    tracks: Vec<Track>,
    next_id: u32,
}

impl Tracker {
    pub fn new(settings: TrackerSettings) -> Self {
        Tracker {
            settings,
            tracks: Vec::new(),
            next_id: 1,
        }
    }

    /// Viewer ids handed out so far.
    pub fn viewers(&self) -> u32 {
        self.next_id - 1
    }

    /// The ids of `faces` seen at time `t` (seconds, non-decreasing between calls), in order.
    pub fn update(&mut self, t: f64, faces: &[Observation]) -> Vec<u32> {
        let s = self.settings;
        self.tracks.retain(|tr| t - tr.last_t <= s.max_gap_s);
        let mut pairs: Vec<(f32, usize, usize)> = Vec::new();
        for (ti, tr) in self.tracks.iter().enumerate() {
            for (fi, f) in faces.iter().enumerate() {
                let overlap = iou(&tr.bbox, &f.bbox);
                let side = tr.bbox.width.max(tr.bbox.height).max(1.0);
                let moved = centre_distance(&tr.bbox, &f.bbox) / side;
                let a = f.bbox.width.max(f.bbox.height).max(1.0);
                let ratio = (a / side).max(side / a);
                let look = correlation(&tr.appearance, &f.appearance);
                // Nearly the same box: the same viewer whatever the look (an expression can
                // change a face's thumbnail a lot; a person cannot swap seats between two
                // samples). A looser match must also look alike.
                let same_place = overlap >= s.same_place_iou;
                let near = overlap >= s.min_iou || moved <= 0.5;
                if ratio <= s.max_size_ratio && (same_place || (near && look >= s.min_appearance)) {
                    pairs.push((overlap + 0.5 * look - 0.25 * moved, ti, fi));
                }
            }
        }
        pairs.sort_by(|a, b| b.0.total_cmp(&a.0));
        let mut face_track: Vec<Option<usize>> = vec![None; faces.len()];
        let mut track_taken = vec![false; self.tracks.len()];
        for (_, ti, fi) in pairs {
            if !track_taken[ti] && face_track[fi].is_none() {
                track_taken[ti] = true;
                face_track[fi] = Some(ti);
            }
        }
        let mut ids = Vec::with_capacity(faces.len());
        for (fi, f) in faces.iter().enumerate() {
            match face_track[fi] {
                Some(ti) => {
                    let tr = &mut self.tracks[ti];
                    tr.bbox = f.bbox;
                    tr.last_t = t;
                    // A slowly moving average, so expressions change it but a swap would not pass.
                    if tr.appearance.len() == f.appearance.len() {
                        for (a, b) in tr.appearance.iter_mut().zip(&f.appearance) {
                            *a = 0.7 * *a + 0.3 * b;
                        }
                        normalise(&mut tr.appearance);
                    }
                    ids.push(tr.id);
                }
                None => {
                    let id = self.next_id;
                    self.next_id += 1;
                    self.tracks.push(Track {
                        id,
                        bbox: f.bbox,
                        last_t: t,
                        appearance: f.appearance.clone(),
                    });
                    ids.push(id);
                }
            }
        }
        ids
    }
}

/// The appearance cue of a face: its crop (clamped to the frame) as a 16x16 grayscale thumbnail,
/// zero mean and unit norm, so the dot product of two is their correlation.
pub fn appearance(frame: &DynamicImage, crop: &FaceBox) -> Vec<f32> {
    let (w, h) = frame.dimensions();
    let x0 = (crop.x.max(0.0) as u32).min(w.saturating_sub(1));
    let y0 = (crop.y.max(0.0) as u32).min(h.saturating_sub(1));
    let x1 = ((crop.x + crop.width).ceil().max(0.0) as u32).clamp(x0 + 1, w);
    let y1 = ((crop.y + crop.height).ceil().max(0.0) as u32).clamp(y0 + 1, h);
    let region = frame.crop_imm(x0, y0, x1 - x0, y1 - y0).to_luma8();
    let small = image::imageops::resize(&region, THUMB, THUMB, FilterType::Triangle);
    let mut v: Vec<f32> = small.pixels().map(|p| p[0] as f32).collect();
    normalise(&mut v);
    v
}

fn normalise(v: &mut [f32]) {
    let n = v.len().max(1) as f32;
    let mean = v.iter().sum::<f32>() / n;
    v.iter_mut().for_each(|x| *x -= mean);
    let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    if norm > 1e-6 {
        v.iter_mut().for_each(|x| *x /= norm);
    }
}

/// Correlation of two normalised cues; 1 when either is missing or flat (no evidence).
fn correlation(a: &[f32], b: &[f32]) -> f32 {
    if a.len() != b.len() || a.is_empty() {
        return 1.0;
    }
    let flat = |v: &[f32]| v.iter().all(|x| x.abs() < 1e-6);
    if flat(a) || flat(b) {
        return 1.0;
    }
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// Intersection over union of two boxes.
pub fn iou(a: &FaceBox, b: &FaceBox) -> f32 {
    let x0 = a.x.max(b.x);
    let y0 = a.y.max(b.y);
    let x1 = (a.x + a.width).min(b.x + b.width);
    let y1 = (a.y + a.height).min(b.y + b.height);
    let inter = (x1 - x0).max(0.0) * (y1 - y0).max(0.0);
    let union = a.width * a.height + b.width * b.height - inter;
    if union <= 0.0 {
        0.0
    } else {
        inter / union
    }
}

fn centre_distance(a: &FaceBox, b: &FaceBox) -> f32 {
    let dx = (a.x + a.width / 2.0) - (b.x + b.width / 2.0);
    let dy = (a.y + a.height / 2.0) - (b.y + b.height / 2.0);
    (dx * dx + dy * dy).sqrt()
}
