//! The examples' data loaders (`examples/common/data.rs`, included by `main.rs` as it is): the
//! shipped folders load from any working directory, and a missing or wrong folder is an
//! `elbo::Error` that names the folder, every file it must hold, what it lacks and the
//! flag that sets it, before anything is read.

use std::path::{Path, PathBuf};

use crate::example_loaders::{
    DATA_FLAG, default_emoji_dir, default_mnist_dir, default_text_dir, load_cifar, load_mnist,
    load_sentences,
};
use elbo::Error;
use elbo::data::{Mnist, SentenceCorpus};

/// A fresh, empty folder under the system's temporary folder.
fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("elbo-example-data-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A fresh folder holding copies of the shipped MNIST files `names` (and nothing else).
fn mnist_copy(name: &str, names: &[&str]) -> PathBuf {
    let folder = scratch(name);
    for name in names {
        std::fs::copy(default_mnist_dir().join(name), folder.join(name)).unwrap();
    }
    folder
}

/// Asserts that `err` is a data-folder error for `folder` that lacks exactly `missing`,
/// and that its message names the folder, every required file and the examples' flag.
fn assert_folder_error(
    err: Error,
    folder: &Path,
    exists: bool,
    required: &[&str],
    missing: &[&str],
) {
    let message = err.to_string();
    for name in required {
        assert!(message.contains(name), "{message:?} does not name {name}");
    }
    assert!(
        message.contains(&folder.display().to_string()),
        "{message:?}"
    );
    assert!(
        message.contains(DATA_FLAG),
        "{message:?} does not name the flag"
    );
    match err {
        Error::DataFolder {
            folder: f,
            exists: e,
            missing: m,
            required: r,
            set_by,
            ..
        } => {
            assert_eq!(f, folder);
            assert_eq!(e, exists);
            assert_eq!(m, missing);
            assert_eq!(r, required);
            assert_eq!(set_by.as_deref(), Some(DATA_FLAG));
        }
        other => panic!("expected a data-folder error, got {other:?}"),
    }
}

#[test]
fn the_shipped_folders_load_from_any_working_directory() {
    // The test binary runs with the package root as its working directory; the loaders
    // must not depend on it.
    std::env::set_current_dir(std::env::temp_dir()).unwrap();
    let mnist = load_mnist(&default_mnist_dir()).unwrap();
    assert_eq!((mnist.train.count, mnist.test.count), (8000, 2000));
    assert_eq!((mnist.train.rows, mnist.train.cols), (28, 28));
    assert_eq!(
        (mnist.train_labels.len(), mnist.test_labels.len()),
        (8000, 2000)
    );
    assert!(mnist.train_labels.iter().all(|&l| l < 10));
    let binarized = mnist
        .test_binarized
        .as_ref()
        .expect("the shipped binarised test file");
    assert!(binarized.pixels.iter().all(|&p| p <= 1));
    let corpus = load_sentences(&default_text_dir(), 64).unwrap();
    assert_eq!((corpus.train.len(), corpus.test.len()), (8773, 1000));
}

#[test]
fn a_missing_mnist_folder_names_the_folder_its_files_and_the_flag() {
    let folder = std::env::temp_dir().join("elbo-no-such-folder");
    let err = load_mnist(&folder).unwrap_err();
    assert_folder_error(err, &folder, false, &Mnist::FILES, &Mnist::FILES);
}

#[test]
fn a_wrong_folder_for_mnist_lists_what_it_lacks() {
    // The sentence folder given where MNIST is expected: none of the four files.
    let folder = default_text_dir();
    let err = load_mnist(&folder).unwrap_err();
    assert_folder_error(err, &folder, true, &Mnist::FILES, &Mnist::FILES);

    // Half an MNIST folder: exactly the two absent files are reported.
    let folder = mnist_copy("half-mnist", &Mnist::FILES[..2]);
    let err = load_mnist(&folder).unwrap_err();
    assert_folder_error(err, &folder, true, &Mnist::FILES, &Mnist::FILES[2..]);
    std::fs::remove_dir_all(&folder).unwrap();
}

#[test]
fn a_malformed_or_inconsistent_mnist_file_is_named() {
    let folder = mnist_copy("bad-mnist", &Mnist::FILES);
    // Test labels replaced by the training labels: 8000 labels for 2000 images.
    std::fs::copy(
        default_mnist_dir().join(Mnist::FILES[1]),
        folder.join(Mnist::FILES[3]),
    )
    .unwrap();
    match load_mnist(&folder).unwrap_err() {
        Error::InvalidData { path, reason } => {
            assert_eq!(path, folder.join(Mnist::FILES[3]));
            assert!(reason.contains("8000 labels for 2000 images"), "{reason}");
        }
        other => panic!("expected InvalidData, got {other:?}"),
    }
    // A file that is not IDX at all.
    std::fs::write(folder.join(Mnist::FILES[0]), b"not an IDX file").unwrap();
    match load_mnist(&folder).unwrap_err() {
        Error::InvalidData { path, .. } => assert_eq!(path, folder.join(Mnist::FILES[0])),
        other => panic!("expected InvalidData, got {other:?}"),
    }
    std::fs::remove_dir_all(&folder).unwrap();
}

#[test]
fn without_the_binarised_file_the_test_images_are_binarised_once_with_seed_1234() {
    let folder = mnist_copy("official-mnist", &Mnist::FILES);
    let mnist = load_mnist(&folder).unwrap();
    assert!(mnist.test_binarized.is_none());
    let binarized = mnist.binarized_test();
    assert_eq!(
        (binarized.count, binarized.rows, binarized.cols),
        (2000, 28, 28)
    );
    // The same draws as `Images::binarize_fixed(1234)`, the documented fallback.
    let expected: Vec<u8> = mnist
        .test
        .binarize_fixed(1234)
        .into_iter()
        .map(|v| v as u8)
        .collect();
    assert_eq!(binarized.pixels, expected);
    std::fs::remove_dir_all(&folder).unwrap();
}

#[test]
fn a_missing_or_wrong_sentence_folder_names_the_folder_its_files_and_the_flag() {
    let folder = std::env::temp_dir().join("elbo-no-such-corpus");
    let err = load_sentences(&folder, 64).unwrap_err();
    assert_folder_error(
        err,
        &folder,
        false,
        &SentenceCorpus::FILES,
        &SentenceCorpus::FILES,
    );

    // The MNIST folder given where sentences are expected.
    let folder = default_mnist_dir();
    let err = load_sentences(&folder, 64).unwrap_err();
    assert_folder_error(
        err,
        &folder,
        true,
        &SentenceCorpus::FILES,
        &SentenceCorpus::FILES,
    );

    // Only the training file.
    let folder = scratch("half-corpus");
    std::fs::copy(
        default_text_dir().join("train.txt"),
        folder.join("train.txt"),
    )
    .unwrap();
    let err = load_sentences(&folder, 64).unwrap_err();
    assert_folder_error(err, &folder, true, &SentenceCorpus::FILES, &["test.txt"]);
    std::fs::remove_dir_all(&folder).unwrap();
}

/// The colour example's loader: the shipped emoji-32 folder loads (1,611 + 300 RGB images
/// of 32×32), and the MNIST folder given in its place is a data-folder error that names the
/// folder and the flag.
#[test]
fn the_colour_loader_reads_emoji_and_names_a_wrong_folder() {
    let emoji = load_cifar(&default_emoji_dir()).unwrap();
    assert_eq!((emoji.train.count, emoji.test.count), (1611, 300));
    assert_eq!(
        (emoji.train.channels, emoji.train.rows, emoji.train.cols),
        (3, 32, 32)
    );
    let folder = default_mnist_dir();
    let err = load_cifar(&folder).unwrap_err();
    let message = err.to_string();
    assert!(message.contains(&folder.display().to_string()), "{message}");
    assert!(message.contains(DATA_FLAG), "{message}");
    match err {
        Error::DataFolder { exists, set_by, .. } => {
            assert!(exists);
            assert_eq!(set_by.as_deref(), Some(DATA_FLAG));
        }
        other => panic!("expected a data-folder error, got {other:?}"),
    }
}
