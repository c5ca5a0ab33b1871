//! One image as padded planes of bf16 channel pairs, which a stride-1 "same" convolution's
//! products read in place as their right operand: the im2col matrix is never written, each
//! tap's rows are the planes read a constant further on.

use super::{KB, PANEL, Pairs};

/// An image `[c, h, w]` rounded to bf16 in channel pairs `(2p, 2p + 1)`, each pair one plane
/// of rows `wp = w + pad` pixels wide: the image at row `pad`, column `pad`, zeros around it.
/// The `pad` zero columns serve as the right padding of a row and the left padding of the next,
/// so output pixel `(oy, ox)` of a `(2·pad + 1)²` stride-1 convolution is column `oy·wp + ox`
/// and its tap `(i, j)` reads column `oy·wp + ox + i·wp + j`. Columns `ox ≥ w` are computed and
/// dropped (`pad / wp` of the work: 1.8 % on 56-pixel rows, 6.7 % on 14). The reduction runs
/// tap-major, `(t, ci)`, so each block of 32 values lies in one tap.
pub(crate) struct Planes {
    pub(super) data: Vec<u16>,
    c: usize,
    h: usize,
    w: usize,
    pad: usize,
    /// bf16 values from one pair plane to the next: an odd number of cache lines.
    pub(super) stride: usize,
    /// Where each tap `(i, j)` starts reading, in bf16 values: `2·(i·wp + j)`, row-major.
    pub(super) taps: Vec<isize>,
}

impl Planes {
    /// Zeroed planes for images of `c` channels (a multiple of 32) on `h × w` maps under a
    /// `k × k` kernel (`k` odd, padding `k / 2`).
    pub fn new(c: usize, h: usize, w: usize, k: usize) -> Self {
        assert!(
            c.is_multiple_of(KB) && k % 2 == 1,
            "planes of {c} channels for a {k}×{k} kernel"
        );
        let pad = k / 2;
        let wp = w + pad;
        // A panel reads 32 columns from wherever a product split starts it, the last from
        // column `h·wp − 1` at most, and each tap up to `(k − 1)·wp + k − 1` further on.
        let len = h * wp + PANEL + (k - 1) * wp + k;
        // Planes an odd number of cache lines apart, as pair rows are.
        let stride = Pairs::row_stride(len);
        let taps = (0..k * k)
            .map(|t| 2 * ((t / k) * wp + t % k) as isize)
            .collect();
        Self {
            data: vec![0; c / 2 * stride],
            c,
            h,
            w,
            pad,
            stride,
            taps,
        }
    }

    /// Reduction values: `c` per tap.
    pub fn k(&self) -> usize {
        self.c * self.taps.len()
    }

    /// Columns: `h` rows of `wp`.
    pub fn n(&self) -> usize {
        self.h * self.wp()
    }

    /// Pixels per row, the shared padding column(s) included.
    pub fn wp(&self) -> usize {
        self.w + self.pad
    }

    /// Reduction blocks of 32 values per tap.
    pub(super) fn blocks_per_tap(&self) -> usize {
        self.c / KB
    }

    /// Rounds one image `[c, h·w]` into the planes (the padding stays zero).
    pub fn fill(&mut self, x: &[f32]) {
        let (w, hw, wp, pad) = (self.w, self.h * self.w, self.wp(), self.pad);
        assert_eq!(x.len(), self.c * hw, "an image of {}×{hw}", self.c);
        for (p, plane) in self.data.chunks_exact_mut(self.stride).enumerate() {
            let (r0, r1) = (&x[2 * p * hw..][..hw], &x[(2 * p + 1) * hw..][..hw]);
            for (y, (a, b)) in r0.chunks_exact(w).zip(r1.chunks_exact(w)).enumerate() {
                let at = 2 * ((y + pad) * wp + pad);
                Pairs::write_row(&mut plane[at..][..2 * w], a, Some(b));
            }
        }
    }
}
