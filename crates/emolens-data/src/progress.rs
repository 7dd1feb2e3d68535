//! Progress bars for long data work (drawn on stderr; hidden when not a terminal).

use indicatif::{ProgressBar, ProgressStyle};

pub(crate) fn bar(len: usize, msg: &'static str, show: bool) -> ProgressBar {
    if !show {
        return ProgressBar::hidden();
    }
    let pb = ProgressBar::new(len as u64);
    if let Ok(style) = ProgressStyle::with_template(
        "{msg:>9} [{elapsed_precise}] {wide_bar} {pos}/{len} {per_sec} ETA {eta}",
    ) {
        pb.set_style(style.progress_chars("=> "));
    }
    pb.set_message(msg);
    pb
}
