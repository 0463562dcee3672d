//! Colour and folder image data: the CIFAR-10 binary reader and the image-folder reader on
//! files these tests write themselves (known pixels and labels, both formats, grey and RGB,
//! truncated, mixed-size and undecodable inputs), and the CIFAR reader on the shipped
//! emoji-32 files.

use std::io::Write;
use std::path::{Path, PathBuf};

use elbo::Error;
use elbo::data::{CIFAR_RECORD_BYTES, Cifar, ColorMode, read_cifar_batch, read_image_folder};

/// A fresh, empty folder under the system's temporary folder.
fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("elbo-image-data-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// `n` CIFAR records: image `i` has label `i % 10` and pixel value `(i + 7·k) % 256` at
/// byte `k` of its 3072 (so the planes and the records are all told apart).
fn records(n: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(n * CIFAR_RECORD_BYTES);
    for i in 0..n {
        out.push((i % 10) as u8);
        out.extend((0..CIFAR_RECORD_BYTES - 1).map(|k| ((i + 7 * k) % 256) as u8));
    }
    out
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    encoder.write_all(bytes).unwrap();
    encoder.finish().unwrap()
}

fn invalid_data_path(err: Error) -> PathBuf {
    match err {
        Error::InvalidData { path, .. } => path,
        other => panic!("expected InvalidData, got {other:?}"),
    }
}

#[test]
fn cifar_records_read_back_exactly_raw_and_gzipped() {
    let dir = scratch("cifar-records");
    let bytes = records(3);
    for (name, content) in [("raw.bin", bytes.clone()), ("packed.bin.gz", gzip(&bytes))] {
        let path = dir.join(name);
        std::fs::write(&path, content).unwrap();
        let (images, labels) = read_cifar_batch(&path).unwrap();
        assert_eq!(labels, vec![0, 1, 2]);
        assert_eq!(
            (images.count, images.channels, images.rows, images.cols),
            (3, 3, 32, 32)
        );
        assert_eq!(images.dim(), 3072);
        for i in 0..3 {
            let image = &images.pixels[i * 3072..(i + 1) * 3072];
            assert_eq!(image, &bytes[i * 3073 + 1..(i + 1) * 3073], "image {i}");
        }
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn truncated_or_empty_cifar_files_are_errors_naming_the_file() {
    let dir = scratch("cifar-bad");
    let bytes = records(2);
    for (name, content) in [
        ("short.bin", bytes[..bytes.len() - 1].to_vec()),
        ("long.bin", [bytes.as_slice(), &[0]].concat()),
        ("empty.bin", Vec::new()),
        ("short.bin.gz", gzip(&bytes[..3000])),
    ] {
        let path = dir.join(name);
        std::fs::write(&path, content).unwrap();
        assert_eq!(
            invalid_data_path(read_cifar_batch(&path).unwrap_err()),
            path
        );
    }
    // A corrupt gzip stream.
    let path = dir.join("corrupt.bin.gz");
    let mut packed = gzip(&bytes);
    let n = packed.len();
    packed.truncate(n / 2);
    std::fs::write(&path, packed).unwrap();
    assert_eq!(
        invalid_data_path(read_cifar_batch(&path).unwrap_err()),
        path
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_cifar_folder_reads_its_batches_in_numeric_order() {
    let dir = scratch("cifar-folder");
    // Batches 2 and 10 (10 sorts before 2 as text) and a gzipped test file.
    let (two, ten) = (records(2), records(3));
    std::fs::write(dir.join("data_batch_10.bin"), &ten).unwrap();
    std::fs::write(dir.join("data_batch_2.bin.gz"), gzip(&two)).unwrap();
    std::fs::write(dir.join("test_batch.bin"), records(1)).unwrap();
    std::fs::write(dir.join("batches.meta.txt"), "cat\ndog\n\n").unwrap();
    std::fs::write(dir.join("notes.txt"), "not a batch").unwrap();
    let cifar = Cifar::load(&dir).unwrap();
    assert_eq!((cifar.train.count, cifar.test.count), (5, 1));
    assert_eq!(cifar.train_labels, vec![0, 1, 0, 1, 2]);
    assert_eq!(&cifar.train.pixels[..3072], &two[1..3073]);
    assert_eq!(&cifar.train.pixels[2 * 3072..3 * 3072], &ten[1..3073]);
    assert_eq!(cifar.label_names, vec!["cat", "dog"]);

    // The same batch twice (raw and gzipped) is ambiguous.
    std::fs::write(dir.join("data_batch_2.bin"), &two).unwrap();
    assert_eq!(invalid_data_path(Cifar::load(&dir).unwrap_err()), dir);
    std::fs::remove_file(dir.join("data_batch_2.bin")).unwrap();

    // Without a test file, or without training files, the folder error lists what is
    // missing before anything is read.
    std::fs::remove_file(dir.join("test_batch.bin")).unwrap();
    match Cifar::load(&dir).unwrap_err() {
        Error::DataFolder {
            exists, missing, ..
        } => {
            assert!(exists);
            assert_eq!(missing.len(), 1);
            assert!(missing[0].starts_with("test_batch.bin"), "{missing:?}");
        }
        other => panic!("expected DataFolder, got {other:?}"),
    }
    let err = Cifar::load(dir.join("nowhere"))
        .unwrap_err()
        .set_by("--data DIR");
    let message = err.to_string();
    assert!(
        message.contains("data_batch_1.bin") && message.contains("test_batch.bin"),
        "{message}"
    );
    assert!(message.contains("--data DIR"), "{message}");
    std::fs::remove_dir_all(&dir).unwrap();
}

/// The shipped emoji-32 files: 1,611 training and 300 test images of 32×32 RGB with labels
/// below 10 and ten label names. The emoji were composited on white, so the top-left
/// pixel of nearly every image is white in all three planes (an independent check that
/// the planes are where the reader puts them: a shifted record would move colour there).
#[test]
fn the_shipped_emoji_set_reads_as_cifar() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("data/emoji-32");
    let emoji = Cifar::load(&dir).unwrap();
    assert_eq!((emoji.train.count, emoji.test.count), (1611, 300));
    assert_eq!(
        (emoji.train.channels, emoji.train.rows, emoji.train.cols),
        (3, 32, 32)
    );
    assert_eq!(emoji.train_labels.len(), 1611);
    assert!(
        emoji
            .train_labels
            .iter()
            .chain(&emoji.test_labels)
            .all(|&l| l < 10)
    );
    assert_eq!(emoji.label_names.len(), 10);
    for images in [&emoji.train, &emoji.test] {
        let white = (0..images.count)
            .filter(|&i| (0..3).all(|c| images.pixels[i * 3072 + c * 1024] >= 250))
            .count();
        assert!(
            white as f64 >= 0.9 * images.count as f64,
            "{white} of {} images have a white top-left pixel",
            images.count
        );
    }
}

/// Writes `pixels` (`width × height`, RGB) as a PNG.
fn write_rgb_png(path: &Path, width: u32, height: u32, pixels: Vec<u8>) {
    image::RgbImage::from_raw(width, height, pixels)
        .unwrap()
        .save(path)
        .unwrap();
}

#[test]
fn an_image_folder_reads_grey_and_rgb_files_in_name_order() {
    let dir = scratch("folder");
    // b.png: RGB with known values; a.png: grey; c.txt: ignored.
    let rgb: Vec<u8> = (0..2 * 3 * 3).map(|k| (k * 11) as u8).collect();
    write_rgb_png(&dir.join("b.png"), 3, 2, rgb.clone());
    let grey: Vec<u8> = (0..6).map(|k| (k * 40) as u8).collect();
    image::GrayImage::from_raw(3, 2, grey.clone())
        .unwrap()
        .save(dir.join("a.png"))
        .unwrap();
    std::fs::write(dir.join("c.txt"), "not an image").unwrap();

    let images = read_image_folder(&dir, ColorMode::Rgb).unwrap();
    assert_eq!(
        (images.count, images.channels, images.rows, images.cols),
        (2, 3, 2, 3)
    );
    // a.png first, its grey plane three times.
    assert_eq!(
        &images.pixels[..18],
        &[grey.as_slice(), &grey, &grey].concat()[..]
    );
    // b.png's interleaved RGB as three planes.
    for c in 0..3 {
        let plane: Vec<u8> = rgb.iter().skip(c).step_by(3).copied().collect();
        assert_eq!(
            &images.pixels[18 + 6 * c..18 + 6 * (c + 1)],
            plane.as_slice(),
            "plane {c}"
        );
    }

    let images = read_image_folder(&dir, ColorMode::Grey).unwrap();
    assert_eq!((images.count, images.channels), (2, 1));
    assert_eq!(&images.pixels[..6], grey.as_slice());
    // Luma of b.png's pixels: 0.2126 R + 0.7152 G + 0.0722 B, rounded (±1 for rounding).
    for (k, &got) in images.pixels[6..].iter().enumerate() {
        let (r, g, b) = (
            rgb[3 * k] as f64,
            rgb[3 * k + 1] as f64,
            rgb[3 * k + 2] as f64,
        );
        let want = 0.2126 * r + 0.7152 * g + 0.0722 * b;
        assert!(
            (got as f64 - want).abs() <= 1.0,
            "pixel {k}: {got} vs {want}"
        );
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn jpeg_files_are_read_too() {
    let dir = scratch("jpeg");
    // A constant colour survives JPEG's lossy coding to within a few levels.
    image::RgbImage::from_pixel(8, 8, image::Rgb([200, 100, 50]))
        .save(dir.join("x.jpg"))
        .unwrap();
    let images = read_image_folder(&dir, ColorMode::Rgb).unwrap();
    assert_eq!((images.count, images.rows, images.cols), (1, 8, 8));
    for (c, want) in [200i32, 100, 50].into_iter().enumerate() {
        for &v in &images.pixels[c * 64..(c + 1) * 64] {
            assert!((v as i32 - want).abs() <= 4, "plane {c}: {v} vs {want}");
        }
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn mixed_sizes_undecodable_files_and_empty_folders_are_errors() {
    let dir = scratch("folder-bad");
    write_rgb_png(&dir.join("a.png"), 2, 2, vec![0; 12]);
    write_rgb_png(&dir.join("b.png"), 3, 2, vec![0; 18]);
    let err = read_image_folder(&dir, ColorMode::Rgb).unwrap_err();
    let message = err.to_string();
    assert_eq!(invalid_data_path(err), dir.join("b.png"));
    assert!(
        message.contains("3×2") && message.contains("2×2"),
        "{message}"
    );

    std::fs::remove_file(dir.join("b.png")).unwrap();
    std::fs::write(dir.join("c.png"), b"\x89PNG but not really").unwrap();
    assert_eq!(
        invalid_data_path(read_image_folder(&dir, ColorMode::Grey).unwrap_err()),
        dir.join("c.png")
    );

    let empty = scratch("folder-empty");
    std::fs::write(empty.join("readme.txt"), "no images here").unwrap();
    for (folder, should_exist) in [(empty.clone(), true), (empty.join("nowhere"), false)] {
        match read_image_folder(&folder, ColorMode::Grey).unwrap_err() {
            Error::DataFolder { exists, .. } => assert_eq!(exists, should_exist),
            other => panic!("expected DataFolder, got {other:?}"),
        }
    }
    std::fs::remove_dir_all(&dir).unwrap();
    std::fs::remove_dir_all(&empty).unwrap();
}

/// A colour grid read back: two 2×2 RGB images drawn 3× larger, their planes put back
/// together as the pixels' colours, each pixel a 3×3 block, and the 2-pixel grey border.
#[test]
fn colour_grids_are_written_as_rgb_and_enlarged() {
    let dir = scratch("grid");
    let device = crate::common::device();
    // Image i, plane c, pixel p: (10·i + 3·c + p) / 40.
    let values: Vec<f32> = (0..2)
        .flat_map(|i| {
            (0..3).flat_map(move |c| (0..4).map(move |p| (10 * i + 3 * c + p) as f32 / 40.0))
        })
        .collect();
    let images = burn::tensor::Tensor::<2>::from_data(
        burn::tensor::TensorData::new(values.clone(), [2, 12]),
        &device,
    );
    let shape = elbo::image::GridImage::new(3, 2, 2).with_scale(3);
    elbo::image::save_grid(dir.join("grid.png"), images, shape, 2).unwrap();
    let grid = image::open(dir.join("grid.png")).unwrap().to_rgb8();
    // 2 columns × (2·3 + 2) + 2 wide, 1 row × (6 + 2) + 2 high.
    assert_eq!(grid.dimensions(), (18, 10));
    assert_eq!(grid.get_pixel(0, 0).0, [128, 128, 128]);
    for i in 0..2usize {
        for p in 0..4usize {
            let (y, x) = (p / 2, p % 2);
            let want: Vec<u8> = (0..3)
                .map(|c| (values[i * 12 + c * 4 + p] * 255.0).round() as u8)
                .collect();
            for dy in 0..3 {
                for dx in 0..3 {
                    let gx = (2 + i * 8 + x * 3 + dx) as u32;
                    let gy = (2 + y * 3 + dy) as u32;
                    assert_eq!(
                        grid.get_pixel(gx, gy).0.to_vec(),
                        want,
                        "image {i}, pixel {p}"
                    );
                }
            }
        }
    }
    std::fs::remove_dir_all(&dir).unwrap();
}
