//! The file readers under mutation: valid IDX, CIFAR-10 and PNG files, truncated,
//! with flipped bytes, with huge counts written into their headers, or cut to a wrong
//! size, must each give a value or an `elbo::Error` — never a panic (proptest reports a
//! panic as a failure). 2,000 cases per reader here run in seconds; `PROPTEST_CASES`
//! raises the count for a longer run.

use std::path::PathBuf;

use elbo::data::{ColorMode, Images, read_cifar_batch, read_idx, read_image_folder};
use proptest::prelude::*;
use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};

/// A fresh, empty folder under the system's temporary folder.
fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("elbo-fuzz-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// What is done to a valid file.
#[derive(Clone, Debug)]
enum Mutation {
    /// Keep the first `fraction` of the bytes.
    Truncate(f64),
    /// XOR the byte at `fraction` of the length with `mask` (never 0), `n` times at
    /// spread positions.
    Flip { fraction: f64, mask: u8, n: usize },
    /// Write a big-endian `u32` at byte `offset` (a header count or size, for example).
    Word { offset: usize, value: u32 },
    /// Append `n` bytes of `value`.
    Append { n: usize, value: u8 },
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (0.0f64..1.0).prop_map(Mutation::Truncate),
        (0.0f64..1.0, 1u8..=255, 1usize..8).prop_map(|(fraction, mask, n)| Mutation::Flip {
            fraction,
            mask,
            n
        }),
        (
            0usize..40,
            prop_oneof![Just(u32::MAX), Just(1 << 30), Just(0), any::<u32>()]
        )
            .prop_map(|(offset, value)| Mutation::Word { offset, value }),
        (1usize..5000, any::<u8>()).prop_map(|(n, value)| Mutation::Append { n, value }),
    ]
}

fn apply(valid: &[u8], m: &Mutation) -> Vec<u8> {
    let mut bytes = valid.to_vec();
    match *m {
        Mutation::Truncate(f) => bytes.truncate((f * valid.len() as f64) as usize),
        Mutation::Flip { fraction, mask, n } => {
            for i in 0..n {
                let at = ((fraction + i as f64 * 0.137) % 1.0 * bytes.len() as f64) as usize;
                if let Some(b) = bytes.get_mut(at) {
                    *b ^= mask;
                }
            }
        }
        Mutation::Word { offset, value } => {
            if offset + 4 <= bytes.len() {
                bytes[offset..offset + 4].copy_from_slice(&value.to_be_bytes());
            }
        }
        Mutation::Append { n, value } => bytes.extend(std::iter::repeat_n(value, n)),
    }
    bytes
}

/// A runner of `cases` cases from a fixed seed (the same mutations on every run; a longer
/// run with more cases covers more of them).
fn runner(cases: u32) -> TestRunner {
    let config = Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    };
    TestRunner::new_with_rng(config, TestRng::deterministic_rng(RngAlgorithm::ChaCha))
}

/// Runs `check` on 2,000 mutations (or `$PROPTEST_CASES`) of `valid`, written to `path`.
fn fuzz(valid: Vec<u8>, path: PathBuf, check: impl Fn(&std::path::Path)) {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|c| c.parse().ok())
        .unwrap_or(2000);
    let mut runner = runner(cases);
    runner
        .run(&mutation(), |m| {
            std::fs::write(&path, apply(&valid, &m)).unwrap();
            check(&path);
            Ok(())
        })
        .unwrap();
}

fn idx_images(count: u32, rows: u32, cols: u32) -> Vec<u8> {
    let mut out = vec![0, 0, 0x08, 3];
    for d in [count, rows, cols] {
        out.extend(d.to_be_bytes());
    }
    out.extend((0..count * rows * cols).map(|i| (i % 256) as u8));
    out
}

#[test]
fn the_idx_reader_never_panics_on_mutated_files() {
    let dir = scratch("idx");
    fuzz(idx_images(3, 5, 4), dir.join("images.idx"), |p| {
        if let Ok(images) = Images::load(p) {
            assert_eq!(images.pixels.len(), images.count * images.dim());
        }
        let _ = read_idx(p);
    });
    // The same on a gzipped file.
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    std::io::Write::write_all(&mut encoder, &idx_images(2, 3, 3)).unwrap();
    fuzz(encoder.finish().unwrap(), dir.join("images.idx.gz"), |p| {
        let _ = read_idx(p);
    });
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn the_cifar_reader_never_panics_on_mutated_files() {
    let dir = scratch("cifar");
    let valid: Vec<u8> = (0..2 * 3073).map(|i| (i % 251) as u8).collect();
    fuzz(valid, dir.join("data_batch_1.bin"), |p| {
        if let Ok((images, labels)) = read_cifar_batch(p) {
            assert_eq!(labels.len(), images.count);
            assert_eq!(images.pixels.len(), images.count * 3072);
        }
    });
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn the_image_folder_reader_never_panics_on_mutated_files() {
    let dir = scratch("png");
    let mut png = Vec::new();
    image::RgbImage::from_fn(6, 5, |x, y| image::Rgb([(x * 40) as u8, (y * 50) as u8, 7]))
        .write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)
        .unwrap();
    fuzz(png, dir.join("a.png"), |_| {
        for color in [ColorMode::Grey, ColorMode::Rgb] {
            if let Ok(images) = read_image_folder(&dir, color) {
                assert_eq!(images.pixels.len(), images.count * images.dim());
            }
        }
    });
    std::fs::remove_dir_all(&dir).unwrap();
}

/// A checkpoint folder written by the fit loop, then each of its files mutated in turn
/// (`state.json`, the weights, the optimizer state): resuming from it gives a trained
/// model or an `Error`, never a panic. Fewer cases (300 per file): each one runs the fit
/// loop's resume.
#[test]
fn resuming_from_a_mutated_checkpoint_never_panics() {
    use elbo::data::{Binarization, ImageData};
    use elbo::models::GaussianVaeConfig;
    use elbo::train::{FitConfig, fit};

    let device = crate::common::device();
    let dir = scratch("checkpoint");
    let images = Images {
        count: 8,
        channels: 1,
        rows: 2,
        cols: 2,
        pixels: (0..32).map(|i| (i * 8) as u8).collect(),
    };
    let data = ImageData::new(images, Binarization::Dynamic);
    let config = GaussianVaeConfig::new(4, 2).with_hidden(vec![4]);
    let fit_config = |epochs: usize| {
        let mut c = FitConfig::new(epochs, 4);
        c.progress = false;
        c.checkpoint_dir = Some(dir.clone());
        c.resume = true;
        c
    };
    fit(
        config.init(&device).unwrap(),
        &config,
        &data,
        &fit_config(1),
        &device,
    )
    .unwrap();
    let checkpoint = dir.join("epoch-0001");
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|c| c.parse::<u32>().ok())
        .map_or(300, |c| c / 10);
    for file in ["state.json", "model.bpk", "optimizer.bpk"] {
        let path = checkpoint.join(file);
        let valid = std::fs::read(&path).unwrap();
        let mut runner = runner(cases);
        runner
            .run(&mutation(), |m| {
                std::fs::write(&path, apply(&valid, &m)).unwrap();
                // Two epochs: the resumed run trains one more and saves epoch 2, which is
                // removed so that the next case resumes from the mutated epoch 1 again.
                let _ = fit(
                    config.init(&device).unwrap(),
                    &config,
                    &data,
                    &fit_config(2),
                    &device,
                );
                let _ = std::fs::remove_dir_all(dir.join("epoch-0002"));
                std::fs::write(dir.join("latest"), "epoch-0001").unwrap();
                Ok(())
            })
            .unwrap();
        std::fs::write(&path, valid).unwrap();
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Mutated safetensors files: loading them into the model they were saved from gives the
/// model or an `Error`, never a panic.
#[test]
fn loading_mutated_safetensors_never_panics() {
    use elbo::models::GaussianVaeConfig;
    use elbo::weights::{load_safetensors, save_safetensors};

    let device = crate::common::device();
    let dir = scratch("safetensors");
    let config = GaussianVaeConfig::new(4, 2).with_hidden(vec![3]);
    let path = dir.join("model.safetensors");
    save_safetensors(&config.init(&device).unwrap(), &path).unwrap();
    let valid = std::fs::read(&path).unwrap();
    fuzz(valid, path, |p| {
        let _ = load_safetensors(config.init(&device).unwrap(), p);
    });
    std::fs::remove_dir_all(&dir).unwrap();
}
