//! AVX-512 BF16: a 32×32 output block eight rows at a time, sixteen f32 accumulators (eight
//! rows × two 16-column halves), each `vdpbf16ps` adding one reduction pair of a left row
//! (broadcast) times the matching pair row of a right tile.

use std::arch::x86_64::*;

use super::{KB, PANEL, RightLayout};

/// Whether the CPU has AVX-512 BF16 (with AVX-512 BW, which packing uses).
pub(super) fn available() -> bool {
    is_x86_feature_detected!("avx512bf16") && is_x86_feature_detected!("avx512bw")
}

/// Rows of the block per pass.
const ROWS: usize = 8;

/// `C (= or +=) Σ_t A_t · B_t` over `kt` reduction blocks (see [`super::amx::block`]).
///
/// # Safety
/// [`available`] returned true; `a` and `b` hold `kt` blocks; `c` is valid for reads and
/// writes of the 32×32 block with rows `c_rs` values apart.
#[target_feature(enable = "avx512f,avx512bf16")]
pub(super) unsafe fn block(
    a: *const u16,
    b: *const u16,
    b_at: RightLayout,
    kt: usize,
    c: *mut f32,
    c_rs: usize,
    load: bool,
) {
    for r0 in (0..PANEL).step_by(ROWS) {
        // SAFETY: every pointer below stays inside the caller's panels and block.
        unsafe {
            let mut acc = [[_mm512_setzero_ps(); 2]; ROWS];
            if load {
                for (r, row) in acc.iter_mut().enumerate() {
                    let src = c.add((r0 + r) * c_rs);
                    *row = [_mm512_loadu_ps(src), _mm512_loadu_ps(src.add(16))];
                }
            }
            for t in 0..kt {
                let (ab, bb) = (a.add(t * PANEL * KB), b.add(t * b_at.block));
                for p in 0..KB / 2 {
                    let b0 = std::mem::transmute::<__m512i, __m512bh>(_mm512_loadu_si512(
                        bb.add(p * b_at.row) as *const __m512i,
                    ));
                    let b1 = std::mem::transmute::<__m512i, __m512bh>(_mm512_loadu_si512(
                        bb.add(b_at.half + p * b_at.row) as *const __m512i,
                    ));
                    for (r, row) in acc.iter_mut().enumerate() {
                        let pair = (ab.add((r0 + r) * KB + 2 * p) as *const i32).read_unaligned();
                        let av = std::mem::transmute::<__m512i, __m512bh>(_mm512_set1_epi32(pair));
                        row[0] = _mm512_dpbf16_ps(row[0], av, b0);
                        row[1] = _mm512_dpbf16_ps(row[1], av, b1);
                    }
                }
            }
            for (r, row) in acc.iter().enumerate() {
                let dst = c.add((r0 + r) * c_rs);
                _mm512_storeu_ps(dst, row[0]);
                _mm512_storeu_ps(dst.add(16), row[1]);
            }
        }
    }
}
