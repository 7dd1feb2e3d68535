//! Helpers shared by the modules of this test binary.

/// Asserts that `got` matches `want` element by element within `tol` times the larger of
/// `want`'s largest magnitude and 0.01.
#[cfg_attr(not(emolens_onednn), allow(dead_code))] // used by the oneDNN modules
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

/// The oneDNN kernel switch is process-wide and this binary runs its tests on parallel threads:
/// tests that turn the kernels off and on hold this lock exclusively ([`switch_lock`]); tests
/// that run networks and need the switch left alone hold it shared ([`kernels_fixed`]).
static SWITCH: std::sync::RwLock<()> = std::sync::RwLock::new(());

/// Exclusive: for tests that call `onednn::set_enabled`.
#[cfg_attr(not(emolens_onednn), allow(dead_code))] // used by the oneDNN modules
pub fn switch_lock() -> std::sync::RwLockWriteGuard<'static, ()> {
    SWITCH.write().unwrap_or_else(|e| e.into_inner())
}

/// Shared: for tests whose results depend on which kernels run.
pub fn kernels_fixed() -> std::sync::RwLockReadGuard<'static, ()> {
    SWITCH.read().unwrap_or_else(|e| e.into_inner())
}

/// Why this process cannot check the oneDNN kernels, if it cannot: built without them, or
/// switched to burn's kernels by `EMOLENS_KERNELS=flex`. Tests of oneDNN paths print this as
/// their skip reason.
pub fn onednn_unavailable() -> Option<String> {
    if !emolens_model::onednn::BUILT_IN {
        return Some("this build has no oneDNN kernels (libdnnl-dev missing or EMOLENS_ONEDNN=0 at build time)".into());
    }
    if std::env::var("EMOLENS_KERNELS").is_ok_and(|v| v.eq_ignore_ascii_case("flex")) {
        return Some("EMOLENS_KERNELS=flex switches the oneDNN kernels off".into());
    }
    None
}
