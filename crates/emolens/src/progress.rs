//! The CLI's one progress-bar style (drawn on stderr, hidden when stderr is not a terminal).
//! Library crates report progress through callbacks; only the CLI draws.

use indicatif::{ProgressBar, ProgressStyle};
use std::io::IsTerminal;

/// A bar of `len` steps labelled `what` (`images`, `photos`); `set_message` adds a note at the
/// end (e.g. faces found so far).
pub fn bar(len: u64, what: &str) -> ProgressBar {
    if !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let pb = ProgressBar::new(len);
    if let Ok(style) = ProgressStyle::with_template(&format!(
        "[{{elapsed_precise}}] {{wide_bar}} {{pos}}/{{len}} {what} {{per_sec}} ETA {{eta}} {{msg}}"
    )) {
        pb.set_style(style.progress_chars("=> "));
    }
    pb
}
