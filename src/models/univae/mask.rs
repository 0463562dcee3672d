//! Who may attend to whom in UniVAE's one Transformer: the segment masks that make its
//! lower layers an encoder and a decoder side by side, and its top layers a decoder that
//! reads the encoder only through the latent slot.
//!
//! [`visibility`] states the masks over the one sequence `[x ; x]`, as the paper does. The
//! model runs the two segments as separate sequences instead (the encoder with a padding
//! mask, the decoder with a causal one and the latent slot put in front at the latent
//! layers), which is the same computation at half the attention cost, because these masks
//! let nothing else pass between the segments; `tests/univae.rs` checks the two agree.

/// Which keys each query may attend to in a UniVAE layer over the sequence
/// `[encoder segment (s0 positions) ; decoder segment (s1 positions)]`: entry `[i][j]` is
/// `true` when position `i` may see position `j`.
///
/// # Formula
/// ```text
/// encoder i < s0:   sees encoder j < s0                    (bidirectional, within segment 0)
/// decoder i ≥ s0:   sees decoder s0 ≤ j ≤ i                (causal, within segment 1)
///                   and, in a latent layer, also j = 0     (the encoder's first position,
///                                                           whose state is the latent)
/// ```
/// The segments see nothing else of each other (Su 2021, UniVAE). Padding is handled
/// separately, by a key mask over the encoder segment.
///
/// ```
/// use elbo::models::univae::visibility;
///
/// // 2 encoder positions, 2 decoder positions, a latent layer:
/// let v = visibility(2, 2, true);
/// assert_eq!(v[0], [true, true, false, false]);   // encoder: both encoder positions
/// assert_eq!(v[2], [true, false, true, false]);   // decoder 0: the slot and itself
/// assert_eq!(v[3], [true, false, true, true]);    // decoder 1: the slot, decoder 0 and 1
/// assert!(!visibility(2, 2, false)[3][0]);        // a lower layer hides the slot
/// ```
pub fn visibility(s0: usize, s1: usize, latent_layer: bool) -> Vec<Vec<bool>> {
    let s = s0 + s1;
    (0..s)
        .map(|i| {
            (0..s)
                .map(|j| {
                    if i < s0 {
                        j < s0
                    } else {
                        (j >= s0 && j <= i) || (latent_layer && j == 0)
                    }
                })
                .collect()
        })
        .collect()
}
