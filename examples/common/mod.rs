//! What the examples share: the entry point (flags, logger), the device flag, the data
//! folders, and (for the MNIST examples, which write pictures) the evaluation lines and
//! the picture grids.

// Each example uses its own subset.
#![allow(dead_code)]

pub mod data;
pub mod learner;
#[cfg(feature = "png")]
pub mod report;

use burn::tensor::Device;

/// Runs `run` on the flags `A` parses (clap: `--help` and flag errors exit before it
/// starts). Before running, installs the logger that shows the library's reports (the fit
/// loop's epoch lines, at `info`; burn-train's own lines only from `warn`; `RUST_LOG`
/// changes the levels) and keeps freed memory in
/// the process ([`elbo::retain_freed_memory`]), as a training program should; exits with 1
/// on a run error, printing its message.
pub fn main_with<A: clap::Parser>(run: impl FnOnce(A) -> Result<(), Box<dyn std::error::Error>>) {
    let args = A::parse();
    init_logger();
    elbo::retain_freed_memory();
    if let Err(e) = run(args) {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}

/// Log records as plain lines on standard output, in order with the examples' own
/// output (`info` and above unless `RUST_LOG` says otherwise); warnings and errors name
/// their level.
fn init_logger() {
    use std::io::Write;
    env_logger::Builder::from_env(
        env_logger::Env::default().default_filter_or("info,burn_train=warn"),
    )
    .target(env_logger::Target::Stdout)
    .format(|buf, record| match record.level() {
        log::Level::Info => writeln!(buf, "{}", record.args()),
        level => writeln!(buf, "{}: {}", level.as_str().to_lowercase(), record.args()),
    })
    .init();
}

/// The device named by `--device` (see [`elbo::device::from_name`]).
pub fn device(name: &str) -> Result<Device, elbo::Error> {
    elbo::device::from_name(name)
}

/// Writes one NLL per example to `<out>/test_nll.txt`, one per line in test-file order (for
/// paired comparisons of two runs on the same examples): to a temporary name, then renamed.
pub fn write_test_nll(out: &std::path::Path, nll: &[f64]) -> std::io::Result<()> {
    let lines: String = nll.iter().map(|v| format!("{v}\n")).collect();
    std::fs::create_dir_all(out)?;
    let (tmp, path) = (out.join(".test_nll.txt.tmp"), out.join("test_nll.txt"));
    std::fs::write(&tmp, lines)?;
    std::fs::rename(&tmp, &path)
}
