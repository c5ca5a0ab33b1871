//! MixUp and CutMix: callbacks that blend each training batch with a shuffled copy of itself.

use rand::seq::SliceRandom;
use rand::{Rng, RngExt, SeedableRng, rngs::StdRng};
use rand_distr::{Beta, Distribution};

use super::callback::{Callback, FitState, Listener};
use crate::data::loader::mix;
use crate::data::{Batch, Mix};

/// fastai's `MixUp`: λ ~ Beta(α, α) per image, λ = max(λ, 1−λ); image and label become
/// λ·own + (1−λ)·partner's.
#[derive(Debug, Clone, Copy)]
pub struct MixUp {
    /// Beta parameter (fastai: 0.4).
    pub alpha: f64,
    /// Seed of the draws (mixed with the iteration).
    pub seed: u64,
}

/// fastai's `CutMix`: one λ ~ Beta(α, α) per batch; a box of area 1−λ from the partner image is
/// pasted in, and λ becomes the share of the image left untouched.
#[derive(Debug, Clone, Copy)]
pub struct CutMix {
    /// Beta parameter (fastai: 1.0).
    pub alpha: f64,
    /// Seed of the draws (mixed with the iteration).
    pub seed: u64,
}

impl MixUp {
    /// MixUp with fastai's α = 0.4.
    pub fn new(seed: u64) -> Self {
        Self { alpha: 0.4, seed }
    }
}

impl CutMix {
    /// CutMix with fastai's α = 1.
    pub fn new(seed: u64) -> Self {
        Self { alpha: 1.0, seed }
    }
}

/// A beta sampler; α ≤ 0 is refused by the CLI, so fall back to 1 (uniform) defensively.
fn beta(alpha: f64) -> Beta<f64> {
    #[allow(clippy::expect_used, reason = "Beta(1, 1) has valid parameters")]
    Beta::new(alpha, alpha).unwrap_or_else(|_| Beta::new(1.0, 1.0).expect("Beta(1, 1) is valid"))
}

/// The partner of each image: a seeded permutation of the batch.
fn partners(n: usize, rng: &mut impl Rng) -> Vec<usize> {
    let mut p: Vec<usize> = (0..n).collect();
    p.shuffle(rng);
    p
}

/// One MixUp weight: max(λ, 1−λ) for λ ~ Beta(α, α).
pub fn mixup_lambda(alpha: f64, rng: &mut impl Rng) -> f64 {
    let l = beta(alpha).sample(rng);
    l.max(1.0 - l)
}

/// The CutMix box `(x0, y0, x1, y1)` for weight `lam` in an image of side `size` (fastai's
/// `rand_bbox`: centre uniform, sides √(1−λ)·size, clipped at the border).
pub fn cutmix_box(size: usize, lam: f64, rng: &mut impl Rng) -> (usize, usize, usize, usize) {
    let cut = ((1.0 - lam).sqrt() * size as f64) as i64;
    let cx = rng.random_range(0..size as i64);
    let cy = rng.random_range(0..size as i64);
    let clip = |v: i64| v.clamp(0, size as i64) as usize;
    (
        clip(cx - cut / 2),
        clip(cy - cut / 2),
        clip(cx + cut / 2),
        clip(cy + cut / 2),
    )
}

impl MixUp {
    /// Mixes `batch` in place with the draws of iteration `iter`.
    pub fn mix_batch(&self, batch: &mut Batch, iter: usize) {
        let mut rng = StdRng::seed_from_u64(mix(self.seed, iter as u64, 0x4D49_5855));
        let n = batch.len();
        let other = partners(n, &mut rng);
        let lam: Vec<f32> = (0..n)
            .map(|_| mixup_lambda(self.alpha, &mut rng) as f32)
            .collect();
        let plane = 3 * batch.size * batch.size;
        let src = batch.images.clone();
        for i in 0..n {
            let (l, j) = (lam[i], other[i]);
            let (own, theirs) = (
                &src[i * plane..(i + 1) * plane],
                &src[j * plane..(j + 1) * plane],
            );
            for (v, (a, b)) in batch.images[i * plane..(i + 1) * plane]
                .iter_mut()
                .zip(own.iter().zip(theirs))
            {
                *v = l * a + (1.0 - l) * b;
            }
        }
        batch.mix = Some(Mix {
            other: other.iter().map(|&j| batch.labels[j]).collect(),
            lam,
        });
    }
}

impl CutMix {
    /// Pastes a box of each partner image into `batch` in place, with the draws of iteration `iter`.
    pub fn mix_batch(&self, batch: &mut Batch, iter: usize) {
        let mut rng = StdRng::seed_from_u64(mix(self.seed, iter as u64, 0x4355_544D));
        let n = batch.len();
        let other = partners(n, &mut rng);
        let lam = beta(self.alpha).sample(&mut rng);
        let s = batch.size;
        let (x0, y0, x1, y1) = cutmix_box(s, lam, &mut rng);
        let src = batch.images.clone();
        let plane = s * s;
        for (i, &j) in other.iter().enumerate() {
            for c in 0..3 {
                let (dst, from) = ((i * 3 + c) * plane, (j * 3 + c) * plane);
                for y in y0..y1 {
                    let row = y * s;
                    batch.images[dst + row + x0..dst + row + x1]
                        .copy_from_slice(&src[from + row + x0..from + row + x1]);
                }
            }
        }
        let kept = 1.0 - ((x1 - x0) * (y1 - y0)) as f32 / plane as f32;
        batch.mix = Some(Mix {
            other: other.iter().map(|&j| batch.labels[j]).collect(),
            lam: vec![kept; n],
        });
    }
}

impl Listener for MixUp {}

impl Callback for MixUp {
    fn before_batch(&mut self, state: &mut FitState, batch: &mut Batch) {
        self.mix_batch(batch, state.iter);
    }
}

impl Listener for CutMix {}

impl Callback for CutMix {
    fn before_batch(&mut self, state: &mut FitState, batch: &mut Batch) {
        self.mix_batch(batch, state.iter);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn batch(n: usize, size: usize) -> Batch {
        let plane = 3 * size * size;
        Batch {
            images: (0..n * plane).map(|i| (i / plane) as f32).collect(),
            labels: (0..n as i64).collect(),
            size,
            indices: (0..n).collect(),
            mix: None,
        }
    }

    #[test]
    fn mixup_lambda_has_its_analytic_mean() {
        // E[max(λ, 1−λ)] for λ ~ Beta(0.4, 0.4), by quadrature of the density (not the sampler).
        let a = 0.4f64;
        let steps = 2_000_000;
        let (mut num, mut den) = (0.0, 0.0);
        for k in 0..steps {
            let x = (k as f64 + 0.5) / steps as f64;
            let w = (x * (1.0 - x)).powf(a - 1.0);
            num += x.max(1.0 - x) * w;
            den += w;
        }
        let analytic = num / den;
        let mut rng = StdRng::seed_from_u64(1);
        let n = 200_000;
        let mean = (0..n).map(|_| mixup_lambda(a, &mut rng)).sum::<f64>() / n as f64;
        assert!((0.5..=1.0).contains(&mean));
        assert!((mean - analytic).abs() < 0.003, "{mean} vs {analytic}");
    }

    #[test]
    fn mixup_blends_images_with_their_weights() {
        let mut b = batch(8, 2);
        MixUp::new(3).mix_batch(&mut b, 0);
        let mix = b.mix.clone().unwrap();
        for i in 0..8 {
            let (l, j) = (mix.lam[i], mix.other[i] as f32);
            assert!((0.5..=1.0).contains(&l));
            let want = l * i as f32 + (1.0 - l) * j;
            assert!((b.images[i * 12] - want).abs() < 1e-5);
        }
    }

    #[test]
    fn cutmix_weight_is_the_untouched_area() {
        let size = 16;
        let mut b = batch(6, size);
        CutMix::new(11).mix_batch(&mut b, 5);
        let mix = b.mix.clone().unwrap();
        let plane = 3 * size * size;
        for i in 0..6 {
            let own = b.images[i * plane..(i + 1) * plane]
                .iter()
                .filter(|&&v| v == i as f32)
                .count();
            let j = mix.other[i] as usize;
            if j != i {
                let kept = own as f32 / plane as f32;
                assert!((kept - mix.lam[i]).abs() < 1e-6, "{kept} vs {}", mix.lam[i]);
            }
        }
        let mut rng = StdRng::seed_from_u64(0);
        let (x0, y0, x1, y1) = cutmix_box(100, 0.75, &mut rng);
        assert!(x1 - x0 <= 50 && y1 - y0 <= 50);
    }
}
