//! The viewer tracker on its own: ids kept while viewers move, never shared by two faces of a
//! frame, ended after the gap, and not passed to a neighbour who looks different.

use emolens_faces::FaceBox;
use emolens_video::track::{iou, Observation, Tracker, TrackerSettings};

/// Zero mean, unit norm, as `track::appearance` makes its cues.
fn normalise(v: &mut [f32]) {
    let mean = v.iter().sum::<f32>() / v.len() as f32;
    v.iter_mut().for_each(|x| *x -= mean);
    let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    v.iter_mut().for_each(|x| *x /= norm);
}

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
        let mut faces = vec![
            obs(100.0 + dx, 100.0, 120.0, 1),
            obs(400.0 - dx, 110.0, 110.0, 2),
        ];
        let swapped = k % 3 == 0;
        if swapped {
            faces.reverse();
        }
        let ids = t.update(k as f64 * 0.2, &faces);
        let (l, r) = if swapped {
            (ids[1], ids[0])
        } else {
            (ids[0], ids[1])
        };
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
fn a_neighbour_moving_into_a_partly_overlapping_place_is_not_merged() {
    let mut t = Tracker::new(TrackerSettings::default());
    let a = t.update(0.0, &[obs(100.0, 100.0, 100.0, 1)])[0];
    // Someone else (different appearance) at an overlapping place (IoU 0.33): new viewer.
    let other = t.update(0.2, &[obs(150.0, 100.0, 100.0, 7)])[0];
    assert_ne!(a, other);
    // The same look at such a place continues the viewer.
    let mut t = Tracker::new(TrackerSettings::default());
    let a = t.update(0.0, &[obs(100.0, 100.0, 100.0, 1)])[0];
    assert_eq!(t.update(0.2, &[obs(150.0, 100.0, 100.0, 1)])[0], a);
    // The same place keeps the viewer even when the face looks different (an expression).
    assert_eq!(t.update(0.4, &[obs(152.0, 100.0, 100.0, 9)])[0], a);
    // A face of twice the size at the same place is not the same viewer.
    let big = t.update(0.6, &[obs(110.0, 60.0, 200.0, 9)])[0];
    assert_ne!(big, a);
}
