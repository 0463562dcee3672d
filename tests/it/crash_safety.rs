//! Checkpoints survive a crash: a child process trains and checkpoints every epoch,
//! resuming from the latest checkpoint, and is killed (SIGKILL on Unix) at pseudo-random
//! moments, over and over; after every kill the latest checkpoint still loads, a run
//! resumes from it, and its first save removes the temporaries a killed save left. The
//! child is this test binary itself, run with one test selected and
//! `ELBO_CRASH_CHILD_DIR` set.
//!
//! A killed process is not a power cut: what this shows is that no moment of a save
//! leaves `latest` naming a checkpoint that cannot be read. That the bytes also reach the
//! disk before a power cut is what `atomic_write`'s syncs are for; no test here can cut
//! the power.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use elbo::data::{Binarization, ImageData, Images};
use elbo::models::GaussianVaeConfig;
use elbo::train::{FitConfig, fit};

use crate::common;

const CHILD_DIR: &str = "ELBO_CRASH_CHILD_DIR";

fn data() -> ImageData {
    let images = Images {
        count: 16,
        channels: 1,
        rows: 2,
        cols: 2,
        pixels: (0..64).map(|i| ((i * 37) % 256) as u8).collect(),
    };
    ImageData::new(images, Binarization::Dynamic)
}

fn config() -> GaussianVaeConfig {
    GaussianVaeConfig::new(4, 2).with_hidden(vec![8])
}

/// Trains for `epochs` epochs (counting those already in the checkpoint folder `dir`),
/// checkpointing every epoch and resuming from the latest checkpoint if there is one.
fn train(dir: &Path, epochs: usize) -> elbo::Result<usize> {
    let device = common::device();
    let config = config();
    let mut fit_config = FitConfig::new(epochs, 8);
    fit_config.progress = false;
    fit_config.checkpoint_dir = Some(dir.to_path_buf());
    fit_config.resume = true;
    let (_, history) = fit(
        config.init(&device)?,
        &config,
        &data(),
        &fit_config,
        &device,
    )?;
    Ok(history.epochs.len())
}

/// The epoch of the checkpoint `latest` names, if any.
fn latest_epoch(dir: &Path) -> Option<usize> {
    let name = std::fs::read_to_string(dir.join("latest")).ok()?;
    name.trim().strip_prefix("epoch-")?.parse().ok()
}

/// The child's work: when `ELBO_CRASH_CHILD_DIR` is set, trains and checkpoints until it
/// is killed; otherwise (a normal test run) nothing.
#[test]
fn child_trains_and_checkpoints_until_killed() {
    let Some(dir) = std::env::var_os(CHILD_DIR) else {
        return;
    };
    let dir = PathBuf::from(dir);
    loop {
        train(&dir, 1_000_000).expect("the child resumes from every checkpoint");
    }
}

#[test]
fn a_killed_save_leaves_the_previous_checkpoint_loadable() {
    let dir = std::env::temp_dir().join(format!("elbo-crash-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let exe = std::env::current_exe().unwrap();
    // A fixed sequence of kill delays between 0 and 150 ms after the child's first
    // checkpoint of the round (a 64-bit LCG).
    let mut state: u64 = 0x2545_f491_4f6c_dd1d;
    let mut next_delay = || {
        state = state
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        Duration::from_millis((state >> 33) % 150)
    };
    let rounds = 20;
    let mut checked = 0;
    let mut previous = 0;
    for round in 0..rounds {
        let mut child = Command::new(&exe)
            .args([
                "crash_safety::child_trains_and_checkpoints_until_killed",
                "--exact",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(CHILD_DIR, &dir)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        // Once the child has written a checkpoint of its own this round (so it is past
        // its start-up, which takes long on a software GPU), kill it after a delay.
        let started = Instant::now();
        let mut deadline = None;
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                let mut err = String::new();
                if let Some(mut stderr) = child.stderr.take() {
                    use std::io::Read;
                    let _ = stderr.read_to_string(&mut err);
                }
                panic!("round {round}: the child stopped by itself ({status}): {err}");
            }
            match deadline {
                None if latest_epoch(&dir).unwrap_or(0) > previous => {
                    deadline = Some(Instant::now() + next_delay());
                }
                None => assert!(
                    started.elapsed() < Duration::from_secs(120),
                    "round {round}: no checkpoint after 120 s"
                ),
                Some(at) if Instant::now() >= at => break,
                Some(_) => {}
            }
            std::thread::sleep(Duration::from_millis(2));
        }
        child.kill().unwrap();
        child.wait().unwrap();
        // Whatever the moment of the kill, the checkpoint `latest` names loads, and one
        // more epoch trains from it.
        {
            let epoch = latest_epoch(&dir).expect("the child wrote a checkpoint this round");
            assert!(
                epoch >= previous,
                "round {round}: latest went back from {previous} to {epoch}"
            );
            let trained = train(&dir, epoch + 1)
                .unwrap_or_else(|e| panic!("round {round}: resuming from epoch {epoch}: {e}"));
            assert_eq!(trained, epoch + 1, "round {round}");
            // The save that just succeeded removed what the killed child left half-written.
            assert_eq!(
                temporaries(&dir),
                0,
                "round {round}: temporaries left behind"
            );
            previous = epoch + 1;
            checked += 1;
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
    // The kills must have landed while checkpoints were being written, not before the
    // first one: most rounds see a checkpoint, and training advanced overall.
    assert!(
        checked >= rounds / 2,
        "only {checked} of {rounds} rounds found a checkpoint"
    );
    assert!(previous >= rounds, "training reached only epoch {previous}");
}

/// What a save killed half-way leaves (a `.epoch-NNNN.tmp-PID` folder with some files, a
/// `.latest.tmp-PID` pointer), planted here by hand so that the check does not depend on
/// where a kill lands (on flex about half the kills above land inside a save, on a
/// software GPU almost none): the next successful save removes both, and leaves the
/// checkpoint it wrote and everything that is not a save's temporary.
#[test]
fn a_later_save_removes_what_a_killed_save_left() {
    let dir = std::env::temp_dir().join(format!("elbo-leftovers-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let stale = dir.join(".epoch-0007.tmp-4000000");
    std::fs::create_dir_all(&stale).unwrap();
    std::fs::write(stale.join("model.bpk"), b"half a model").unwrap();
    std::fs::write(dir.join(".latest.tmp-4000000"), b"epoch-0007").unwrap();
    std::fs::write(dir.join("notes.txt"), b"the user's own file").unwrap();
    assert_eq!(temporaries(&dir), 2);
    assert_eq!(train(&dir, 1).unwrap(), 1);
    assert_eq!(temporaries(&dir), 0);
    assert_eq!(latest_epoch(&dir), Some(1));
    assert!(dir.join("notes.txt").exists());
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Entries of a checkpoint folder that are a save's temporaries (`.<name>.tmp-<pid>`).
fn temporaries(dir: &std::path::Path) -> usize {
    std::fs::read_dir(dir)
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .file_name()
                .to_string_lossy()
                .contains(".tmp-")
        })
        .count()
}
