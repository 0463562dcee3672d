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
