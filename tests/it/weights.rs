//! Weights through safetensors files: what `save_safetensors` writes is read back by the
//! `safetensors` crate itself (names, shapes, values), loads into a freshly initialised
//! model bit for bit, and a file that does not fit the model is an `Error`.

use burn::tensor::Tensor;
use elbo::Error;
use elbo::models::GaussianVaeConfig;
use elbo::weights::{load_safetensors, save_safetensors};

use crate::common::{self, host};

fn path(name: &str) -> std::path::PathBuf {
    std::env::temp_dir().join(format!(
        "elbo-weights-{name}-{}.safetensors",
        std::process::id()
    ))
}

#[test]
fn saved_weights_read_back_independently_and_load_bit_for_bit() {
    let device = common::device();
    let config = GaussianVaeConfig::new(6, 2).with_hidden(vec![5]);
    let original = config.init(&device).unwrap();
    let file = path("round-trip");
    save_safetensors(&original, &file).unwrap();

    // The safetensors crate reads the file: the head's mean map is `[5, 2]` f32 with the
    // model's values.
    let bytes = std::fs::read(&file).unwrap();
    let tensors = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let weight = tensors.tensor("encoder.head.mean.weight").unwrap();
    assert_eq!(weight.shape(), &[5, 2]);
    assert_eq!(weight.dtype(), safetensors::Dtype::F32);
    let values: Vec<f64> = weight
        .data()
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]) as f64)
        .collect();
    assert_eq!(values, host(&original.encoder.head.mean.weight.val()));
    // Five linear maps, a weight and a bias each: the trunk 6→5, the head's mean and
    // log-variance 5→2, the decoder 2→5→6.
    assert_eq!(tensors.len(), 10, "{:?}", tensors.names());

    // A fresh model (other random weights) takes them all.
    let fresh = config.init(&device).unwrap();
    assert_ne!(
        host(&fresh.encoder.head.mean.weight.val()),
        host(&original.encoder.head.mean.weight.val())
    );
    let restored = load_safetensors(fresh, &file).unwrap();
    let x = Tensor::<2>::ones([3, 6], &device);
    let (a, b) = (original.encode(&x).unwrap(), restored.encode(&x).unwrap());
    assert_eq!(host(&a.loc()), host(&b.loc()));
    assert_eq!(host(&a.log_var()), host(&b.log_var()));
    let decoded = |m: &elbo::models::GaussianVae| {
        host(&elbo::Decoder::decode(&m.decoder, &Tensor::<2>::ones([2, 2], &device)).logits())
    };
    assert_eq!(decoded(&original), decoded(&restored));
    std::fs::remove_file(&file).unwrap();
}

#[test]
fn a_file_that_does_not_fit_the_model_is_an_error() {
    let device = common::device();
    let file = path("mismatch");
    let small = GaussianVaeConfig::new(6, 2).with_hidden(vec![5]);
    save_safetensors(&small.init(&device).unwrap(), &file).unwrap();

    // Other widths: shapes differ.
    let wide = GaussianVaeConfig::new(6, 2).with_hidden(vec![7]);
    match load_safetensors(wide.init(&device).unwrap(), &file).unwrap_err() {
        Error::Checkpoint { path, reason } => {
            assert_eq!(path, file);
            assert!(reason.contains("does not fit"), "{reason}");
        }
        other => panic!("expected a checkpoint error, got {other:?}"),
    }
    // Another depth: tensors missing and left over.
    let deep = GaussianVaeConfig::new(6, 2).with_hidden(vec![5, 5]);
    let reason = load_safetensors(deep.init(&device).unwrap(), &file)
        .unwrap_err()
        .to_string();
    assert!(reason.contains("lacks"), "{reason}");

    // Not a safetensors file, and no file at all.
    std::fs::write(&file, b"not safetensors").unwrap();
    assert!(matches!(
        load_safetensors(small.init(&device).unwrap(), &file),
        Err(Error::Checkpoint { .. })
    ));
    std::fs::remove_file(&file).unwrap();
    assert!(matches!(
        load_safetensors(small.init(&device).unwrap(), &file),
        Err(Error::Io { .. })
    ));
}
