//! Helpers shared by this crate's test binaries.

/// Asserts that `got` matches `want` element by element within `tol` times the larger of
/// `want`'s largest magnitude and 0.01.
pub fn assert_close(what: &str, want: &[f32], got: &[f32], tol: f32) {
    assert_eq!(want.len(), got.len(), "{what}: lengths differ");
    let scale = want.iter().fold(0f32, |m, v| m.max(v.abs())).max(1e-2);
    let worst = want
        .iter()
        .zip(got)
        .map(|(x, y)| (x - y).abs())
        .fold(0f32, f32::max);
    assert!(
        worst <= tol * scale,
        "{what}: max difference {worst} over scale {scale} (tolerance {tol})"
    );
}
