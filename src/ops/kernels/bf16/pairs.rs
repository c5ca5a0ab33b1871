//! A right operand already rounded to bf16 in reduction pairs, which the kernels read in place.

use rayon::prelude::*;

#[cfg(target_arch = "x86_64")]
use super::pack;
use super::{KB, Mul, PANEL, Shifted, supports};
use crate::ops::kernels::buffers::{assume_init, uninit, zeroed};

/// A right operand (`k × n`) already rounded to bf16 in reduction pairs: pair row `p` holds
/// `b[2p, j], b[2p + 1, j]` for every column `j`, `2n` values, the rows [`Pairs::stride`]
/// apart; the pair rows are padded with zeros to a multiple of 16 and followed by 64 more
/// values (what the last panel's tiles read past the last column), so the kernels read its
/// tiles in place, unpacked.
pub(crate) struct Pairs {
    pub(super) data: Vec<u16>,
    pub(super) k: usize,
    pub(super) n: usize,
    pub(super) stride: usize,
}

impl Pairs {
    /// Room for `k × n`, zeros.
    pub fn new(k: usize, n: usize) -> Self {
        let stride = Self::row_stride(n);
        Self {
            data: vec![0; Self::len(k, stride)],
            k,
            n,
            stride,
        }
    }

    /// `k × n` made in parallel, pair row `p` by `fill(state, p, row)` (its `2n` values) with
    /// one `init()` state per task and at least `min_rows` pair rows per task. Each row and its
    /// padding are zeroed in the task that writes it, just before, where [`Pairs::new`] would
    /// zero the whole buffer on the calling thread while the other cores wait.
    pub fn filled_by<S>(
        k: usize,
        n: usize,
        min_rows: usize,
        init: impl Fn() -> S + Sync + Send,
        fill: impl Fn(&mut S, usize, &mut [u16]) + Sync + Send,
    ) -> Self {
        let stride = Self::row_stride(n);
        let mut data = uninit::<u16>(Self::len(k, stride));
        let (rows, tail) = data.split_at_mut(Self::len(k, stride) - 2 * PANEL);
        rows.par_chunks_mut(stride)
            .with_min_len(min_rows.max(1))
            .enumerate()
            .for_each_init(init, |state, (p, row)| {
                let row = zeroed(row);
                if 2 * p < k {
                    fill(state, p, &mut row[..2 * n]);
                }
            });
        zeroed(tail);
        Self {
            // SAFETY: every row and the tail went through `zeroed`.
            data: unsafe { assume_init(data) },
            k,
            n,
            stride,
        }
    }

    /// Values from one pair row to the next for rows of `n` columns: whole cache lines, an odd
    /// number of them. Rows a power-of-two distance apart (1 or 4 KB at 16×16 and 32×32 maps)
    /// all fall into one or a few of the L1 cache's sets, and a tile's 16 rows evict each other
    /// (a product at n = 1024 ran at 199 GFLOP/s a core with rows 4 KB apart, 215 with 4 160
    /// bytes, 227 packed).
    pub(super) fn row_stride(n: usize) -> usize {
        let lines = (2 * n).div_ceil(32);
        (lines | 1) * 32
    }

    /// The buffer's length: pair rows padded to whole blocks of [`KB`] reduction values, then
    /// what the last panel's tiles read past the last column.
    fn len(k: usize, stride: usize) -> usize {
        k.div_ceil(KB) * KB / 2 * stride + 2 * PANEL
    }

    /// Pair row `p` (reduction rows `2p`, `2p + 1`), `2n` values.
    pub fn row_mut(&mut self, p: usize) -> &mut [u16] {
        assert!(2 * p < self.k, "pair row {p} of {} rows", self.k);
        &mut self.data[p * self.stride..][..2 * self.n]
    }

    /// Writes reduction rows `r0` and `r1` (`None`: zeros) into `out`, one pair row (twice as
    /// long as each).
    pub fn write_row(out: &mut [u16], r0: &[f32], r1: Option<&[f32]>) {
        let n = r0.len();
        assert!(
            out.len() == 2 * n && r1.is_none_or(|r| r.len() == n),
            "pair rows of {n}"
        );
        #[cfg(target_arch = "x86_64")]
        if supports(Mul::Avx512Bf16) {
            // SAFETY: the CPU has AVX-512 BF16 and BW; both rows and the output hold `n` (pairs).
            unsafe { pack::interleave(r0, r1, out) };
            return;
        }
        for (j, pair) in out.chunks_exact_mut(2).enumerate() {
            pair[0] = half::bf16::from_f32(r0[j]).to_bits();
            pair[1] = r1.map_or(0, |r| half::bf16::from_f32(r[j]).to_bits());
        }
    }

    /// [`Pairs::write_row`] with each row read in place from a shifted plane ([`Shifted`]):
    /// no f32 copy of either row is made. `out` holds `2n` values.
    pub fn write_shifted_row(out: &mut [u16], r0: &Shifted, r1: Option<&Shifted>) {
        let n = out.len() / 2;
        let fits = |r: &Shifted| 16 * r.masks.len() >= n;
        assert!(fits(r0) && r1.is_none_or(fits), "shifted rows of {n}");
        #[cfg(target_arch = "x86_64")]
        if supports(Mul::Avx512Bf16) {
            // SAFETY: the CPU has AVX-512 BF16 and BW; `ShiftMask` sets bits only in its
            // `[lo, hi)`, which `Shifted::new` checked reads inside the plane; the masks cover
            // `n` values.
            unsafe { pack::interleave_shifted(r0, r1, n, out) };
            return;
        }
        for (j, pair) in out.chunks_exact_mut(2).enumerate() {
            pair[0] = half::bf16::from_f32(r0.at(j)).to_bits();
            pair[1] = r1.map_or(0, |r| half::bf16::from_f32(r.at(j)).to_bits());
        }
    }
}
