//! Data order: the seeds every random choice of a run derives from `(seed, epoch, stream)`, and
//! the images each epoch draws from every source, in order.

use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

fn splitmix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

/// Seed for a `(seed, epoch, stream)` triple.
pub(super) fn derive_seed(seed: u64, epoch: usize, stream: u64) -> u64 {
    splitmix(splitmix(seed ^ splitmix(epoch as u64)) ^ stream)
}

/// How many training images source `n` images large with sampling weight `weight` gives an
/// epoch: `round(weight * n)`, at least 1 (0 for an empty source).
pub fn draws_per_epoch(n: usize, weight: f64) -> usize {
    if n == 0 {
        0
    } else {
        ((weight * n as f64).round() as usize).max(1)
    }
}

/// The images of one epoch, in order. `by_source[s]` lists source `s`'s images (cache indices);
/// it contributes `k = draws_per_epoch(n, weights[s])` draws: each of its images `k / n` times,
/// plus `k % n` images picked without replacement by a `ChaCha8Rng` seeded from
/// `(seed, epoch, 16 + s)`. All draws are then shuffled with the `(seed, epoch, 2)` stream. One
/// source of weight 1 gives every image once in the order single-source runs always had.
pub fn epoch_order(
    by_source: &[Vec<usize>],
    weights: &[f64],
    seed: u64,
    epoch: usize,
) -> Vec<usize> {
    let mut order = Vec::new();
    for (s, (idx, &w)) in by_source.iter().zip(weights).enumerate() {
        let n = idx.len();
        let k = draws_per_epoch(n, w);
        if n == 0 {
            continue;
        }
        for _ in 0..k / n {
            order.extend_from_slice(idx);
        }
        if k % n > 0 {
            let mut pick = idx.clone();
            pick.shuffle(&mut ChaCha8Rng::seed_from_u64(derive_seed(
                seed,
                epoch,
                16 + s as u64,
            )));
            order.extend_from_slice(&pick[..k % n]);
        }
    }
    order.shuffle(&mut ChaCha8Rng::seed_from_u64(derive_seed(seed, epoch, 2)));
    order
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn epoch_order_draws_by_weight_and_keeps_the_single_source_order() {
        // One source of weight 1: the order single-source runs always had.
        let mut old: Vec<usize> = (0..50).collect();
        old.shuffle(&mut ChaCha8Rng::seed_from_u64(derive_seed(7, 3, 2)));
        assert_eq!(epoch_order(&[(0..50).collect()], &[1.0], 7, 3), old);

        let a: Vec<usize> = (0..40).collect();
        let b: Vec<usize> = (40..100).collect();
        let o = epoch_order(&[a.clone(), b.clone()], &[1.5, 0.5], 7, 0);
        assert_eq!(o.len(), 60 + 30);
        let count = |i: usize| o.iter().filter(|&&x| x == i).count();
        // Weight 1.5: every image once, half of them twice; weight 0.5: half, none twice.
        assert!(a.iter().all(|&i| (1..=2).contains(&count(i))));
        assert_eq!(a.iter().filter(|&&i| count(i) == 2).count(), 20);
        assert!(b.iter().all(|&i| count(i) <= 1));
        // Deterministic from (seed, epoch); another epoch draws another half.
        assert_eq!(o, epoch_order(&[a.clone(), b.clone()], &[1.5, 0.5], 7, 0));
        let half = |o: &[usize]| {
            let mut h: Vec<usize> = o.iter().copied().filter(|&i| i >= 40).collect();
            h.sort();
            h
        };
        assert_ne!(half(&o), half(&epoch_order(&[a, b], &[1.5, 0.5], 7, 1)));
        assert_eq!(draws_per_epoch(3, 0.01), 1);
        assert_eq!(draws_per_epoch(0, 2.0), 0);
    }
}
