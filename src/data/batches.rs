//! Shuffled mini-batches and the data interface of the fit loop.

use burn::tensor::Device;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;

use crate::Result;

/// A training set the [`fit`](crate::train::fit) loop can draw batches from.
pub trait TrainData {
    /// A batch as the model takes it.
    type Input;

    /// Number of examples.
    fn len(&self) -> usize;

    /// Whether there are no examples.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The examples at `indices`, on `device`. Any randomness (a dynamic binarisation)
    /// comes from `rng`, so a seeded run is reproducible.
    fn batch(&self, indices: &[usize], rng: &mut StdRng, device: &Device) -> Result<Self::Input>;

    /// The batches of one epoch, as lists of example indices: by default a random
    /// permutation cut into batches ([`shuffled_batches`]). Data whose batch cost grows
    /// with its longest member (sentences) override this with [`bucketed_batches`].
    /// An override must return `len().div_ceil(batch_size)` batches covering every example
    /// once: the fit loop's learning-rate schedule counts steps that way.
    fn epoch_batches(&self, batch_size: usize, rng: &mut StdRng) -> Vec<Vec<usize>> {
        shuffled_batches(self.len(), batch_size, rng)
    }
}

/// A random permutation of `0..n` cut into batches of `batch_size`; the last batch keeps
/// the remainder (so every example is seen once per epoch).
///
/// ```
/// use rand::SeedableRng;
/// let mut rng = rand::rngs::StdRng::seed_from_u64(0);
/// let batches = elbo::data::shuffled_batches(10, 4, &mut rng);
/// assert_eq!(batches.iter().map(Vec::len).collect::<Vec<_>>(), vec![4, 4, 2]);
/// ```
pub fn shuffled_batches(n: usize, batch_size: usize, rng: &mut StdRng) -> Vec<Vec<usize>> {
    let mut order: Vec<usize> = (0..n).collect();
    order.shuffle(rng);
    order
        .chunks(batch_size.max(1))
        .map(<[usize]>::to_vec)
        .collect()
}

/// How many batches [`bucketed_batches`] sorts together.
pub const BUCKET_POOL_BATCHES: usize = 32;

/// Batches of examples of similar length, in random order: a random permutation of the
/// examples is cut into pools of [`BUCKET_POOL_BATCHES`] batches, each pool is sorted by
/// `lengths` and cut into batches, and the batches of all pools are shuffled.
///
/// Every example is still seen once per epoch and the number of batches is that of
/// [`shuffled_batches`] (only the last pool can leave a short batch), but a padded batch
/// is as long as its longest member, so sorting within pools removes most of the padding.
/// The pools keep the batches random: which sentences share a batch changes every epoch.
///
/// ```
/// use rand::SeedableRng;
/// let mut rng = rand::rngs::StdRng::seed_from_u64(0);
/// let lengths: Vec<usize> = (0..100).map(|i| (i * 37) % 50).collect();
/// let batches = elbo::data::bucketed_batches(&lengths, 10, &mut rng);
/// assert_eq!(batches.len(), 10);
/// // Each batch spans a narrow range of lengths.
/// for b in &batches {
///     let (lo, hi) = (b.iter().map(|&i| lengths[i]).min(), b.iter().map(|&i| lengths[i]).max());
///     assert!(hi.unwrap() - lo.unwrap() < 10);
/// }
/// ```
pub fn bucketed_batches(lengths: &[usize], batch_size: usize, rng: &mut StdRng) -> Vec<Vec<usize>> {
    let batch_size = batch_size.max(1);
    let mut order: Vec<usize> = (0..lengths.len()).collect();
    order.shuffle(rng);
    let mut batches: Vec<Vec<usize>> = Vec::with_capacity(lengths.len().div_ceil(batch_size));
    for pool in order.chunks_mut(batch_size * BUCKET_POOL_BATCHES) {
        pool.sort_by_key(|&i| lengths[i]);
        batches.extend(pool.chunks(batch_size).map(<[usize]>::to_vec));
    }
    batches.shuffle(rng);
    batches
}
