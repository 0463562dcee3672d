//! Bad input never panics: malformed IDX files, mismatched batches, invalid configs and
//! foreign checkpoints all come back as `elbo::Error`, and nothing half-written is left.

use crate::common;

use std::io::Write;
use std::path::Path;

use burn::tensor::{Device, Tensor};
use elbo::data::{Binarization, ImageData, Images, load_labels, read_idx};
use elbo::models::GaussianVaeConfig;
use elbo::objective::{ElboObjective, LikelihoodConfig, Objective, log_likelihood};
use elbo::train::{FitConfig, LrSchedule, OptimizerKind, fit};
use elbo::{Error, LatentVariableModel};

fn idx_bytes(magic: [u8; 4], dims: &[u32], payload: usize) -> Vec<u8> {
    let mut out = magic.to_vec();
    for d in dims {
        out.extend(d.to_be_bytes());
    }
    out.extend((0..payload).map(|i| (i % 256) as u8));
    out
}

fn write(dir: &Path, name: &str, bytes: &[u8], gzip: bool) -> std::path::PathBuf {
    let path = dir.join(name);
    let mut file = std::fs::File::create(&path).unwrap();
    if gzip {
        let mut enc = flate2::write::GzEncoder::new(file, flate2::Compression::fast());
        enc.write_all(bytes).unwrap();
        enc.finish().unwrap();
    } else {
        file.write_all(bytes).unwrap();
    }
    path
}

/// A scratch folder removed when dropped (also when the test fails).
struct TempDir(std::path::PathBuf);

impl std::ops::Deref for TempDir {
    type Target = std::path::Path;
    fn deref(&self) -> &std::path::Path {
        &self.0
    }
}

impl AsRef<std::path::Path> for TempDir {
    fn as_ref(&self) -> &std::path::Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn tempdir(name: &str) -> TempDir {
    let dir = std::env::temp_dir().join(format!("elbo-test-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    TempDir(dir)
}

fn invalid_data_reason(result: elbo::Result<impl std::fmt::Debug>) -> String {
    match result {
        Err(Error::InvalidData { reason, .. }) => reason,
        other => panic!("expected InvalidData, got {other:?}"),
    }
}

#[test]
fn idx_reader_reads_good_files_raw_and_gzipped() {
    let dir = tempdir("idx-good");
    let bytes = idx_bytes([0, 0, 8, 3], &[2, 3, 4], 24);
    for gzip in [false, true] {
        let path = write(&dir, &format!("good-{gzip}"), &bytes, gzip);
        let images = Images::load(&path).unwrap();
        assert_eq!((images.count, images.rows, images.cols), (2, 3, 4));
        assert_eq!(images.pixels, (0..24).map(|i| i as u8).collect::<Vec<_>>());
    }
    let labels = write(&dir, "labels", &idx_bytes([0, 0, 8, 1], &[5], 5), true);
    assert_eq!(load_labels(labels).unwrap(), vec![0, 1, 2, 3, 4]);
}

#[test]
fn idx_reader_rejects_malformed_files() {
    let dir = tempdir("idx-bad");
    for gzip in [false, true] {
        // Truncated: the header promises 24 bytes, the file holds 20.
        let p = write(
            &dir,
            "truncated",
            &idx_bytes([0, 0, 8, 3], &[2, 3, 4], 20),
            gzip,
        );
        assert!(invalid_data_reason(read_idx(&p)).contains("truncated"));
        // Wrong magic.
        let p = write(
            &dir,
            "magic",
            &idx_bytes([0x12, 0x34, 8, 3], &[2, 3, 4], 24),
            gzip,
        );
        assert!(invalid_data_reason(read_idx(&p)).contains("magic"));
        // Element type other than unsigned byte (0x0D = float).
        let p = write(
            &dir,
            "type",
            &idx_bytes([0, 0, 0x0D, 3], &[2, 3, 4], 24),
            gzip,
        );
        assert!(invalid_data_reason(read_idx(&p)).contains("element type"));
        // Wrong dimensionality for an image file (a label file passed as images).
        let p = write(&dir, "dims", &idx_bytes([0, 0, 8, 1], &[24], 24), gzip);
        assert!(invalid_data_reason(Images::load(&p)).contains("3 (count, rows, cols"));
        // Absurd count: 4 billion images of 4 GiB each; must fail without allocating.
        let p = write(
            &dir,
            "absurd",
            &idx_bytes([0, 0, 8, 3], &[u32::MAX, 65535, 65535], 24),
            gzip,
        );
        let reason = invalid_data_reason(read_idx(&p));
        assert!(
            reason.contains("truncated") || reason.contains("overflow"),
            "{reason}"
        );
        // Trailing bytes after the data.
        let p = write(
            &dir,
            "trailing",
            &idx_bytes([0, 0, 8, 3], &[2, 3, 4], 30),
            gzip,
        );
        assert!(invalid_data_reason(read_idx(&p)).contains("trailing"));
        // Too short for a header.
        let p = write(&dir, "short", &[0, 0], gzip);
        assert!(invalid_data_reason(read_idx(&p)).contains("too short"));
    }
    // A corrupt gzip stream.
    let mut bytes = vec![0x1f, 0x8b, 8, 0];
    bytes.extend([0xff; 40]);
    let p = write(&dir, "corrupt.gz", &bytes, false);
    assert!(invalid_data_reason(read_idx(&p)).contains("gzip"));
    // A missing file is an I/O error naming the path.
    match read_idx(dir.join("missing")) {
        Err(Error::Io { path, .. }) => assert!(path.ends_with("missing")),
        other => panic!("expected Io, got {other:?}"),
    }
}

#[test]
fn batches_of_the_wrong_shape_are_errors() {
    let device = common::device();
    let vae = GaussianVaeConfig::new(6, 2)
        .with_hidden(vec![4])
        .init(&device)
        .unwrap();
    let wrong = Tensor::<2>::ones([3, 5], &device);
    assert!(matches!(vae.elbo(&wrong), Err(Error::ShapeMismatch { .. })));
    assert!(matches!(
        vae.log_importance_weights(&wrong, 4),
        Err(Error::ShapeMismatch { .. })
    ));
    assert!(matches!(
        log_likelihood(&vae, &wrong, &LikelihoodConfig::new(4)),
        Err(Error::ShapeMismatch { .. })
    ));
    let empty = Tensor::<2>::ones([0, 6], &device);
    assert!(vae.elbo(&empty).is_err());
    let good = Tensor::<2>::ones([3, 6], &device);
    assert!(matches!(
        vae.log_importance_weights(&good, 0),
        Err(Error::InvalidConfig { .. })
    ));
    assert!(log_likelihood(&vae, &good, &LikelihoodConfig::new(4).with_sample_chunk(0)).is_err());
    let message = vae.elbo(&wrong).unwrap_err().to_string();
    assert!(
        message.contains("[batch >= 1, 6]") && message.contains("[3, 5]"),
        "{message}"
    );
    // Interpolation endpoints must be single examples.
    assert!(vae.interpolate(&good, &good, 5).is_err());
}

#[test]
fn invalid_configs_are_errors() {
    let device = common::device();
    assert!(GaussianVaeConfig::new(0, 2).init(&device).is_err());
    assert!(GaussianVaeConfig::new(4, 0).init(&device).is_err());
    assert!(
        GaussianVaeConfig::new(4, 2)
            .with_hidden(vec![8, 0])
            .init(&device)
            .is_err()
    );

    let images = Images {
        count: 4,
        channels: 1,
        rows: 2,
        cols: 2,
        pixels: vec![128; 16],
    };
    let data = ImageData::new(images, Binarization::Dynamic);
    let config = GaussianVaeConfig::new(4, 2).with_hidden(vec![4]);
    let model = || config.init(&device).unwrap();
    let bad_configs: Vec<(FitConfig, &str)> = vec![
        (
            {
                let mut c = FitConfig::new(1, 2);
                c.learning_rate = f64::NAN;
                c
            },
            "learning_rate",
        ),
        (
            {
                let mut c = FitConfig::new(1, 2);
                c.learning_rate = -1e-3;
                c
            },
            "learning_rate",
        ),
        (FitConfig::new(0, 2), "epochs"),
        (FitConfig::new(1, 0), "batch_size"),
        (
            {
                let mut c = FitConfig::new(1, 2);
                c.objective = Objective::Elbo(ElboObjective {
                    beta: -1.0,
                    ..Default::default()
                });
                c
            },
            "beta",
        ),
        (
            {
                let mut c = FitConfig::new(1, 2);
                c.objective = Objective::Elbo(ElboObjective {
                    free_bits: f64::NAN,
                    ..Default::default()
                });
                c
            },
            "free_bits",
        ),
        (
            {
                let mut c = FitConfig::new(1, 2);
                c.objective = Objective::Iwae { k: 0 };
                c
            },
            "k",
        ),
        (
            {
                let mut c = FitConfig::new(1, 2);
                c.optimizer = OptimizerKind::AdamW { weight_decay: -0.1 };
                c
            },
            "weight_decay",
        ),
        (
            {
                let mut c = FitConfig::new(1, 2);
                c.lr_schedule = LrSchedule::Exponential { gamma: 1.5 };
                c
            },
            "gamma",
        ),
        (
            {
                let mut c = FitConfig::new(1, 2);
                c.resume = true;
                c
            },
            "resume",
        ),
    ];
    for (fit_config, field) in bad_configs {
        match fit(model(), &config, &data, &fit_config, &device) {
            Err(Error::InvalidConfig { field: f, .. }) => assert_eq!(f, field),
            other => panic!(
                "{field}: expected InvalidConfig, got {:?}",
                other.map(|_| ())
            ),
        }
    }
}

/// Training data whose every batch is NaN.
struct NanData;

impl elbo::data::TrainData for NanData {
    type Input = Tensor<2>;
    fn len(&self) -> usize {
        8
    }
    fn batch(
        &self,
        indices: &[usize],
        _: &mut rand::rngs::StdRng,
        device: &Device,
    ) -> elbo::Result<Tensor<2>> {
        Ok(Tensor::full([indices.len(), 4], f32::NAN, device))
    }
}

#[test]
fn a_non_finite_loss_names_its_step() {
    let device = common::device();
    let config = GaussianVaeConfig::new(4, 2).with_hidden(vec![4]);
    let mut fit_config = FitConfig::new(2, 4);
    fit_config.progress = false;
    match fit(
        config.init(&device).unwrap(),
        &config,
        &NanData,
        &fit_config,
        &device,
    ) {
        Err(Error::NonFiniteLoss {
            epoch,
            step,
            global_step,
            ..
        }) => {
            assert_eq!((epoch, step, global_step), (1, 0, 0));
        }
        other => panic!("expected NonFiniteLoss, got {:?}", other.map(|_| ())),
    }
}

fn no_temporary_files(dir: &Path) -> bool {
    std::fs::read_dir(dir)
        .unwrap()
        .all(|e| !e.unwrap().file_name().to_string_lossy().contains(".tmp"))
}

#[test]
fn checkpoints_resume_and_reject_another_config() {
    let device = common::device();
    let dir = tempdir("checkpoint");
    let images = Images {
        count: 32,
        channels: 1,
        rows: 2,
        cols: 3,
        pixels: (0..192).map(|i| (i * 7 % 256) as u8).collect(),
    };
    let data = ImageData::new(images, Binarization::Dynamic);
    let config = GaussianVaeConfig::new(6, 2).with_hidden(vec![8]);
    let mut fit_config = FitConfig::new(2, 8);
    fit_config.progress = false;
    fit_config.checkpoint_dir = Some(dir.to_path_buf());
    let (_, first) = fit(
        config.init(&device).unwrap(),
        &config,
        &data,
        &fit_config,
        &device,
    )
    .unwrap();
    assert_eq!(
        std::fs::read_to_string(dir.join("latest")).unwrap(),
        "epoch-0002"
    );
    assert!(
        dir.join("epoch-0002/model.bpk").exists() && dir.join("epoch-0002/state.json").exists()
    );
    assert!(no_temporary_files(&dir));

    // Resume to 3 epochs: the first two records come from the checkpoint unchanged.
    fit_config.epochs = 3;
    fit_config.resume = true;
    let (_, resumed) = fit(
        config.init(&device).unwrap(),
        &config,
        &data,
        &fit_config,
        &device,
    )
    .unwrap();
    assert_eq!(resumed.epochs.len(), 3);
    assert_eq!(&resumed.epochs[..2], &first.epochs[..]);

    // The weights load back into a fresh model built from the same config.
    let loaded = elbo::train::load_latest(&dir, config.init(&device).unwrap(), &config);
    assert!(loaded.is_ok());

    // A model built from another config is refused, with both configs named.
    let other = GaussianVaeConfig::new(6, 3).with_hidden(vec![8]);
    match fit(
        other.init(&device).unwrap(),
        &other,
        &data,
        &fit_config,
        &device,
    ) {
        Err(Error::Checkpoint { reason, .. }) => assert!(
            reason.contains("another") || reason.contains("written for"),
            "{reason}"
        ),
        r => panic!("expected Checkpoint error, got {:?}", r.map(|_| ())),
    }
    assert!(matches!(
        elbo::train::load_latest(&dir, other.init(&device).unwrap(), &other),
        Err(Error::Checkpoint { .. })
    ));
    // A corrupt `latest` pointer is an error too.
    std::fs::write(dir.join("latest"), "../elsewhere").unwrap();
    assert!(matches!(
        elbo::train::load_latest(&dir, config.init(&device).unwrap(), &config),
        Err(Error::Checkpoint { .. })
    ));
}

#[test]
fn a_checkpoint_that_cannot_be_written_leaves_nothing_behind() {
    let device = common::device();
    let dir = tempdir("checkpoint-blocked");
    // The checkpoint folder's `latest` is a directory: the final rename must fail.
    std::fs::create_dir_all(dir.join("latest")).unwrap();
    std::fs::write(dir.join("latest/keep"), "x").unwrap();
    let images = Images {
        count: 8,
        channels: 1,
        rows: 2,
        cols: 2,
        pixels: vec![200; 32],
    };
    let data = ImageData::new(images, Binarization::Dynamic);
    let config = GaussianVaeConfig::new(4, 2).with_hidden(vec![4]);
    let mut fit_config = FitConfig::new(1, 4);
    fit_config.progress = false;
    fit_config.checkpoint_dir = Some(dir.to_path_buf());
    assert!(
        fit(
            config.init(&device).unwrap(),
            &config,
            &data,
            &fit_config,
            &device
        )
        .is_err()
    );
    assert!(
        no_temporary_files(&dir),
        "temporary files left in {}",
        dir.display()
    );
}

/// A grey grid image of `height × width` drawn at its own size.
#[cfg(feature = "png")]
fn grey(height: usize, width: usize) -> elbo::image::GridImage {
    elbo::image::GridImage::new(1, height, width).with_scale(1)
}

#[cfg(feature = "png")]
#[test]
fn images_that_cannot_be_written_are_errors_and_leave_nothing() {
    let device = common::device();
    let dir = tempdir("png");
    let images = Tensor::<2>::zeros([4, 6], &device);
    assert!(matches!(
        elbo::image::save_grid(dir.join("grid.png"), images.clone(), grey(2, 2), 2),
        Err(Error::ShapeMismatch { .. })
    ));
    assert!(
        elbo::image::save_grid(dir.join("missing/grid.png"), images.clone(), grey(2, 3), 2)
            .is_err()
    );
    // Two channels, or a zero scale, are config errors.
    let two_planes = elbo::image::GridImage::new(2, 1, 3);
    assert!(matches!(
        elbo::image::save_grid(dir.join("grid.png"), images.clone(), two_planes, 2),
        Err(Error::InvalidConfig { .. })
    ));
    assert!(matches!(
        elbo::image::save_grid(
            dir.join("grid.png"),
            images.clone(),
            grey(2, 3).with_scale(0),
            2
        ),
        Err(Error::InvalidConfig { .. })
    ));
    elbo::image::save_grid(dir.join("grid.png"), images, grey(2, 3), 2).unwrap();
    let written = image_dims(&dir.join("grid.png"));
    // 2 columns × (3 + 2) + 2 wide, 2 rows × (2 + 2) + 2 high.
    assert_eq!(written, (12, 10));
    assert!(no_temporary_files(&dir));
}

#[cfg(feature = "png")]
fn image_dims(path: &Path) -> (u32, u32) {
    // PNG IHDR: width and height are big-endian u32 at bytes 16..24.
    let bytes = std::fs::read(path).unwrap();
    assert_eq!(&bytes[1..4], b"PNG");
    (
        u32::from_be_bytes(bytes[16..20].try_into().unwrap()),
        u32::from_be_bytes(bytes[20..24].try_into().unwrap()),
    )
}
