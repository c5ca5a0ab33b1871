//! AVX-512 BF16: a 32×32 output block eight rows at a time, sixteen f32 accumulators (eight
//! rows × two 16-column halves), each `vdpbf16ps` adding one reduction pair of a left row
//! (broadcast) times the matching pair row of a right tile; a block of at most 16 columns
//! sixteen rows at a time over one half.

use std::arch::x86_64::*;

use super::{KB, PANEL, RightLayout};

/// Where row `r` of a left panel's reduction block `t` starts, in bf16 values: what the
/// kernel broadcasts its pairs from.
pub(super) trait LeftAt: Copy {
    /// The start of row `r`'s 32 values in block `t`.
    ///
    /// # Safety
    /// Row `r` < 32 and block `t` lie in the operand.
    unsafe fn row(self, t: usize, r: usize) -> *const u16;

    /// Rows of the panel worth computing (the rest of the block is left as it was), rounded
    /// up to the kernel's passes.
    fn rows(self) -> usize {
        PANEL
    }
}

/// A left panel packed by `pack::left`: per block, 32 rows of 32 values back to back.
#[derive(Clone, Copy)]
pub(super) struct PackedLeft(pub *const u16);

impl LeftAt for PackedLeft {
    #[inline(always)]
    unsafe fn row(self, t: usize, r: usize) -> *const u16 {
        // SAFETY: inside the panel (caller).
        unsafe { self.0.add((t * PANEL + r) * KB) }
    }
}

/// Rows read in place, each at its own start (a pixel's channels, see [`super::Pixels`]), block
/// `t` at `taps[t / per_tap]` plus 32 values per block into its tap.
#[derive(Clone, Copy)]
pub(super) struct RowsLeft<'a> {
    pub rows: &'a [*const u16; PANEL],
    /// Rows worth computing: the block's first `live`.
    pub live: usize,
    pub taps: &'a [isize],
    pub per_tap: usize,
}

impl LeftAt for RowsLeft<'_> {
    #[inline(always)]
    unsafe fn row(self, t: usize, r: usize) -> *const u16 {
        let at = self.taps[t / self.per_tap] + ((t % self.per_tap) * KB) as isize;
        // SAFETY: inside the operand (caller).
        unsafe { self.rows[r].offset(at) }
    }

    fn rows(self) -> usize {
        self.live
    }
}

/// Whether the CPU has AVX-512 BF16 (with AVX-512 BW, which packing uses).
pub(super) fn available() -> bool {
    is_x86_feature_detected!("avx512bf16") && is_x86_feature_detected!("avx512bw")
}

/// `C (= or +=) Σ_t A_t · B_t` over `kt` reduction blocks (see [`super::amx::block`]), the
/// last block's reduction pairs after `last_pairs` (zeros in both panels) skipped; only the
/// first 16 columns when `cols` ≤ 16, only the rows [`LeftAt::rows`] asks for (the rest of `c`
/// is left as it was).
///
/// # Safety
/// [`available`] returned true; `a` and `b` hold `kt` blocks; `c` is valid for reads and
/// writes of the 32×32 block with rows `c_rs` values apart.
#[allow(clippy::too_many_arguments)]
#[target_feature(enable = "avx512f,avx512bf16")]
pub(super) unsafe fn block(
    a: impl LeftAt,
    b: *const u16,
    b_at: RightLayout,
    kt: usize,
    last_pairs: usize,
    cols: usize,
    c: *mut f32,
    c_rs: usize,
    load: bool,
) {
    let last_pairs = last_pairs.clamp(1, KB / 2);
    // SAFETY: as promised by the caller.
    unsafe {
        if cols <= 16 {
            for r0 in (0..a.rows().min(PANEL)).step_by(16) {
                pass::<_, 16, 1>(a, b, b_at, kt, last_pairs, c, c_rs, load, r0);
            }
        } else {
            for r0 in (0..a.rows().min(PANEL)).step_by(8) {
                pass::<_, 8, 2>(a, b, b_at, kt, last_pairs, c, c_rs, load, r0);
            }
        }
    }
}

/// Rows `r0..r0 + R` of the block over its first `H` 16-column halves: `R × H` accumulators.
///
/// # Safety
/// As [`block`].
#[inline]
#[allow(clippy::too_many_arguments)]
#[target_feature(enable = "avx512f,avx512bf16")]
unsafe fn pass<A: LeftAt, const R: usize, const H: usize>(
    a: A,
    b: *const u16,
    b_at: RightLayout,
    kt: usize,
    last_pairs: usize,
    c: *mut f32,
    c_rs: usize,
    load: bool,
    r0: usize,
) {
    // SAFETY: every pointer below stays inside the caller's panels and block.
    unsafe {
        let mut acc = [[_mm512_setzero_ps(); H]; R];
        if load {
            for (r, row) in acc.iter_mut().enumerate() {
                let src = c.add((r0 + r) * c_rs);
                for (h, v) in row.iter_mut().enumerate() {
                    *v = _mm512_loadu_ps(src.add(16 * h));
                }
            }
        }
        for t in 0..kt {
            let rows: [*const u16; R] = std::array::from_fn(|r| a.row(t, r0 + r));
            let bb = b.offset(b_at.block_at(t));
            let pairs = if t + 1 == kt { last_pairs } else { KB / 2 };
            for p in 0..pairs {
                let mut bv = [std::mem::transmute::<__m512i, __m512bh>(_mm512_setzero_si512()); H];
                for (h, v) in bv.iter_mut().enumerate() {
                    *v = std::mem::transmute::<__m512i, __m512bh>(_mm512_loadu_si512(
                        bb.add(h * b_at.half + p * b_at.row) as *const __m512i,
                    ));
                }
                for (row, start) in acc.iter_mut().zip(rows) {
                    let pair = (start.add(2 * p) as *const i32).read_unaligned();
                    let av = std::mem::transmute::<__m512i, __m512bh>(_mm512_set1_epi32(pair));
                    for (v, bh) in row.iter_mut().zip(bv) {
                        *v = _mm512_dpbf16_ps(*v, av, bh);
                    }
                }
            }
        }
        for (r, row) in acc.iter().enumerate() {
            let dst = c.add((r0 + r) * c_rs);
            for (h, v) in row.iter().enumerate() {
                _mm512_storeu_ps(dst.add(16 * h), *v);
            }
        }
    }
}
