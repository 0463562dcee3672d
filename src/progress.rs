//! The progress bars of the fit loop and the samplers.

/// A progress bar of `len` steps labelled `prefix`, drawn on standard error when `show` is
/// set and standard error is a terminal (hidden otherwise: no bar in a log file or a pipe);
/// shared by the fit loop and the samplers.
pub(crate) fn progress_bar(show: bool, len: usize, prefix: String) -> indicatif::ProgressBar {
    use std::io::IsTerminal;
    if !show || !std::io::stderr().is_terminal() {
        return indicatif::ProgressBar::hidden();
    }
    let bar = indicatif::ProgressBar::new(len as u64);
    if let Ok(style) = indicatif::ProgressStyle::with_template(
        "{prefix} [{bar:30}] {pos}/{len} {msg} ({elapsed} < {eta})",
    ) {
        bar.set_style(style.progress_chars("=> "));
    }
    bar.set_prefix(prefix);
    bar
}
