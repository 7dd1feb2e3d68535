//! Viewer tracking across sampled frames: each face is given the id of the track it continues,
//! or a new id.
//!
//! A face continues a track when its box overlaps the track's last box (IoU) or its centre
//! moved less than half the box side, the box size changed by at most `max_size_ratio`, and it
//! looks like the track (the correlation of 16x16 grayscale thumbnails of the face crop, an
//! appearance cue that stops a track jumping to another person who sits where the first one
//! was). Pairs are assigned greedily, best first, one face per track and one track per face, so
//! two faces seen in the same frame can never share an id. A track not seen for more than
//! `max_gap_s` seconds ends; a face that comes back after that gets a new id.

use emolens_faces::FaceBox;
use image::{imageops::FilterType, DynamicImage, GenericImageView};

/// Side of the appearance thumbnail.
const THUMB: u32 = 16;

/// Settings of the tracker.
#[derive(Debug, Clone, Copy)]
pub struct TrackerSettings {
    /// Box overlap (intersection over union) at which a face continues a track.
    pub min_iou: f32,
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
            max_size_ratio: 1.6,
            min_appearance: 0.3,
            max_gap_s: 1.0,
        }
    }
}

impl TrackerSettings {
    pub fn validate(&self) -> Result<(), String> {
        if !(0.0..=1.0).contains(&self.min_iou) {
            return Err(format!("min_iou {} is out of range 0..=1", self.min_iou));
        }
        if !(self.max_size_ratio >= 1.0) {
            return Err(format!("max_size_ratio {} must be >= 1", self.max_size_ratio));
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
                if (overlap >= s.min_iou || moved <= 0.5)
                    && ratio <= s.max_size_ratio
                    && look >= s.min_appearance
                {
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

#[cfg(test)]
mod tests {
    use super::*;

    fn b(x: f32, y: f32, s: f32) -> FaceBox {
        FaceBox {
            x,
            y,
            width: s,
            height: s,
        }
    }

    fn cue(seed: u32) -> Vec<f32> {
        // A deterministic pseudo-random pattern per person.
        let mut state = seed.wrapping_mul(2654435761).wrapping_add(12345);
        let mut v: Vec<f32> = (0..256)
            .map(|_| {
                state = state.wrapping_mul(1103515245).wrapping_add(12345);
                ((state >> 16) & 0xff) as f32
            })
            .collect();
        normalise(&mut v);
        v
    }

    fn obs(x: f32, y: f32, s: f32, person: u32) -> Observation {
        Observation {
            bbox: b(x, y, s),
            appearance: cue(person),
        }
    }

    #[test]
    fn iou_of_boxes() {
        assert!((iou(&b(0.0, 0.0, 10.0), &b(0.0, 0.0, 10.0)) - 1.0).abs() < 1e-6);
        assert_eq!(iou(&b(0.0, 0.0, 10.0), &b(20.0, 0.0, 10.0)), 0.0);
        let half = iou(&b(0.0, 0.0, 10.0), &b(5.0, 0.0, 10.0));
        assert!((half - 50.0 / 150.0).abs() < 1e-6, "{half}");
    }

    #[test]
    fn two_viewers_side_by_side_keep_their_ids_while_moving() {
        let mut t = Tracker::new(TrackerSettings::default());
        let mut left = Vec::new();
        let mut right = Vec::new();
        for k in 0..50 {
            let dx = (k % 10) as f32 * 4.0;
            // The order of the faces changes from frame to frame, as detectors' scores do.
            let mut faces = vec![obs(100.0 + dx, 100.0, 120.0, 1), obs(400.0 - dx, 110.0, 110.0, 2)];
            let swapped = k % 3 == 0;
            if swapped {
                faces.reverse();
            }
            let ids = t.update(k as f64 * 0.2, &faces);
            let (l, r) = if swapped { (ids[1], ids[0]) } else { (ids[0], ids[1]) };
            left.push(l);
            right.push(r);
        }
        assert!(left.iter().all(|&i| i == left[0]), "{left:?}");
        assert!(right.iter().all(|&i| i == right[0]), "{right:?}");
        assert_ne!(left[0], right[0]);
        assert_eq!(t.viewers(), 2);
    }

    #[test]
    fn a_face_gone_longer_than_the_gap_gets_a_new_id() {
        let mut t = Tracker::new(TrackerSettings {
            max_gap_s: 1.0,
            ..Default::default()
        });
        let a = t.update(0.0, &[obs(100.0, 100.0, 100.0, 1)])[0];
        // Missed for 0.8 s: same viewer.
        assert_eq!(t.update(0.8, &[obs(102.0, 100.0, 100.0, 1)])[0], a);
        // Gone for 1.4 s: a new id.
        let c = t.update(2.2, &[obs(102.0, 100.0, 100.0, 1)])[0];
        assert_ne!(c, a);
    }

    #[test]
    fn someone_else_in_the_same_place_is_a_new_viewer() {
        let mut t = Tracker::new(TrackerSettings::default());
        let a = t.update(0.0, &[obs(100.0, 100.0, 100.0, 1)])[0];
        // Another person (different appearance) takes the seat at once.
        let other = t.update(0.2, &[obs(100.0, 100.0, 100.0, 7)])[0];
        assert_ne!(a, other);
        // A face of twice the size at the same place is not the same viewer either.
        let big = t.update(0.4, &[obs(60.0, 60.0, 200.0, 7)])[0];
        assert_ne!(big, other);
    }
}
