//! The file readers under mutation: valid IDX, CIFAR-10 and PNG files, truncated,
//! with flipped bytes, with huge counts written into their headers, or cut to a wrong
//! size, must each give a value or an `elbo::Error` — never a panic (proptest reports a
//! panic as a failure). 2,000 cases per reader here run in seconds; `PROPTEST_CASES`
//! raises the count for a longer run.

use std::path::PathBuf;

use elbo::data::{ColorMode, Images, read_cifar_batch, read_idx, read_image_folder};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};

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

/// Runs `check` on 2,000 mutations (or `$PROPTEST_CASES`) of `valid`, written to `path`.
fn fuzz(valid: Vec<u8>, path: PathBuf, check: impl Fn(&std::path::Path)) {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|c| c.parse().ok())
        .unwrap_or(2000);
    let mut runner = TestRunner::new(Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    });
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
