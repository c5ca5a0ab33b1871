//! Operands rounded to bf16 and laid out as AMX tiles: the left operand in panels of 32 rows,
//! the right one in panels of 32 pair-interleaved columns, both in reduction blocks of 32 and
//! zero-padded past the matrix. Contiguous rows (or columns) convert 16 values per
//! instruction (`vcvtne2ps2bf16`, round to nearest even); a transposed right operand goes
//! through 16×16 register transposes, a transposed left one through an f32 transpose first.

use std::arch::x86_64::*;
use std::mem::MaybeUninit;

use super::super::buffers::zeroed;
use super::super::mat::Mat;
use super::{BLOCK, KB, PANEL, pack_len};

/// One value rounded to bf16 (nearest even), as its bits.
fn bf16(x: f32) -> u16 {
    half::bf16::from_f32(x).to_bits()
}

/// The mask of the first `n` (at most 16) lanes.
fn lanes(n: usize) -> __mmask16 {
    if n >= 16 { 0xffff } else { (1u16 << n) - 1 }
}

/// `len` (at most 32) contiguous values from `src` rounded to bf16, zeros after them.
///
/// # Safety
/// The CPU has AVX-512 BF16; `src` is valid for `len` reads.
#[target_feature(enable = "avx512f,avx512bf16")]
unsafe fn convert32(src: *const f32, len: usize) -> __m512i {
    // SAFETY: masked loads touch only the first `len` values (the caller's bound).
    unsafe {
        let lo = _mm512_maskz_loadu_ps(lanes(len), src);
        let hi = _mm512_maskz_loadu_ps(lanes(len.saturating_sub(16)), src.wrapping_add(16));
        std::mem::transmute::<__m512bh, __m512i>(_mm512_cvtne2ps_pbh(hi, lo))
    }
}

/// Packs rows `[0, m)` × reduction `[k0, k0 + kc)` of `a` into `out` ([`pack_len`] long): per
/// panel of 32 rows and per block of 32 reduction values, 32 rows of 32 bf16 (rows 16–31 the
/// second tile). A transposed `a` is packed as right panels in `scratch` first.
///
/// # Safety
/// The CPU has AVX-512 BF16 and BW; `a` holds `m` rows and `k0 + kc` columns.
#[target_feature(enable = "avx512f,avx512bw,avx512bf16")]
pub(super) unsafe fn left(
    a: Mat,
    m: usize,
    k0: usize,
    kc: usize,
    out: &mut [MaybeUninit<u16>],
    scratch: &mut Vec<u16>,
) {
    let kt = kc.div_ceil(KB);
    debug_assert_eq!(out.len(), pack_len(m, kc));
    if a.cs != 1 && a.rs == 1 {
        // Columns contiguous (a weight read transposed): each panel of 32 rows is the
        // transpose, 16×16 pairs at a time, of the right panel its columns make.
        let panel_len = pack_len(PANEL, kc);
        if scratch.len() < panel_len {
            scratch.resize(panel_len, 0);
        }
        let cols = Mat {
            data: a.data,
            rs: a.cs,
            cs: 1,
        };
        for (p, out) in out.chunks_exact_mut(panel_len).enumerate() {
            let (i0, rows) = (p * PANEL, (m - p * PANEL).min(PANEL));
            // SAFETY: as promised by the caller: `cols` holds `k0 + kc` rows of `i0 + rows`.
            unsafe { right(cols, i0, rows, k0, kc, &mut scratch[..panel_len]) };
            for t in 0..kt {
                for half in 0..2 {
                    let tile = ((t * 2 + half) * 16) * 32;
                    let mut r = [_mm512_setzero_si512(); 16];
                    for (q, v) in r.iter_mut().enumerate() {
                        // SAFETY: tile row `q` lies inside the right panel.
                        *v = unsafe {
                            _mm512_loadu_si512(scratch.as_ptr().add(tile + q * 32) as *const _)
                        };
                    }
                    transpose16(&mut r);
                    for (j, v) in r.iter().enumerate() {
                        let at = (t * PANEL + half * 16 + j) * KB;
                        // SAFETY: row `half·16 + j` of block `t` lies inside the panel.
                        unsafe { _mm512_storeu_si512(out.as_mut_ptr().add(at) as *mut _, *v) };
                    }
                }
            }
        }
        return;
    }
    if a.cs != 1 {
        let out = zeroed(out);
        for i in 0..m {
            for l in 0..kc {
                let at = ((i / PANEL * kt + l / KB) * PANEL + i % PANEL) * KB + l % KB;
                out[at] = bf16(a.data[i * a.rs + (k0 + l) * a.cs]);
            }
        }
        return;
    }
    // SAFETY: as promised by the caller.
    unsafe { rows_into(a, m, k0, kc, out) }
}

/// [`left`] for rows that are contiguous: every block of every row written (the panel's rows
/// past `m` as zeros).
///
/// # Safety
/// As [`left`], and `a.cs == 1`.
#[target_feature(enable = "avx512f,avx512bf16")]
unsafe fn rows_into(a: Mat, m: usize, k0: usize, kc: usize, out: &mut [MaybeUninit<u16>]) {
    // SAFETY: row `i` holds `len` values from `k0 + q` (the caller's bound).
    let block = |i: usize, q: usize, len: usize| unsafe {
        convert32(a.data.as_ptr().wrapping_add(i * a.rs + k0 + q), len)
    };
    // SAFETY: `out` is `pack_len(m, kc)` long (the caller's bound).
    unsafe { blocks_into(m, kc, out, block) }
}

/// The packed layout of [`left`] for rows `[0, m)` × `kc` reduction values: `block(i, q, len)`
/// gives row `i`'s 32 values from reduction offset `q` rounded to bf16 (`len` of them, at most
/// 32, zeros after), called for every row below `m`; the panel's rows past `m` are zeros.
///
/// # Safety
/// The CPU has AVX-512 F; `out` is [`pack_len`]`(m, kc)` long.
#[target_feature(enable = "avx512f")]
unsafe fn blocks_into(
    m: usize,
    kc: usize,
    out: &mut [MaybeUninit<u16>],
    block: impl Fn(usize, usize, usize) -> __m512i,
) {
    let kt = kc.div_ceil(KB);
    debug_assert_eq!(out.len(), pack_len(m, kc));
    for i in 0..m.div_ceil(PANEL) * PANEL {
        for t in 0..kt {
            let at = ((i / PANEL * kt + t) * PANEL + i % PANEL) * KB;
            let v = if i < m {
                block(i, t * KB, (kc - t * KB).min(KB))
            } else {
                _mm512_setzero_si512()
            };
            // SAFETY: the block row at `at` has room for 32 values inside `out`.
            unsafe { _mm512_storeu_si512(out.as_mut_ptr().add(at) as *mut __m512i, v) };
        }
    }
}

/// Packs columns `[n0, n0 + cols)` (at most 32) × reduction `[k0, k0 + kc)` of `b` into `out`
/// (one block per 32 reduction values): per block two tiles (columns 0–15, 16–31), each 16
/// rows of reduction pairs, row `p` holding `b[2p, j], b[2p + 1, j]` for its 16 columns `j`.
///
/// # Safety
/// The CPU has AVX-512 BF16 and BW; `b` holds `k0 + kc` rows and `n0 + cols` columns; `out`
/// is `kc.div_ceil(32) · 1024` long.
#[target_feature(enable = "avx512f,avx512bw,avx512bf16")]
pub(super) unsafe fn right(b: Mat, n0: usize, cols: usize, k0: usize, kc: usize, out: &mut [u16]) {
    let kt = kc.div_ceil(KB);
    debug_assert_eq!(out.len(), kt * BLOCK);
    // Tile row `p` of block `t`, tile `half`, starts here.
    let at = |t: usize, half: usize, p: usize| ((t * 2 + half) * 16 + p) * 32;
    let dst = out.as_mut_ptr();
    if b.cs == 1 {
        // Two reduction rows at a time: 16 columns of each, converted together, interleaved.
        let row = |l: usize, half: usize| {
            let width = cols.saturating_sub(half * 16).min(16);
            let src = b
                .data
                .as_ptr()
                .wrapping_add((k0 + l) * b.rs + n0 + half * 16);
            // SAFETY: row `l` < kc holds `width` values from `src`.
            unsafe { _mm512_maskz_loadu_ps(lanes(width), src) }
        };
        // SAFETY: `out` is `kt` blocks long (the caller's bound).
        unsafe { tile_rows_into(kc, out, row) }
    } else if b.rs == 1 {
        // Each column is contiguous down the reduction: 32 values make its 16 pairs, one per
        // tile row; 16 columns at a time are transposed into the tile's rows.
        for t in 0..kt {
            let len = (kc - t * KB).min(KB);
            for half in 0..2 {
                let mut r = [_mm512_setzero_si512(); 16];
                for (j, v) in r.iter_mut().enumerate() {
                    let c = half * 16 + j;
                    if c < cols {
                        // SAFETY: column `n0 + c` holds `kc` values from `k0`.
                        *v = unsafe {
                            convert32(b.data.as_ptr().add((n0 + c) * b.cs + k0 + t * KB), len)
                        };
                    }
                }
                transpose16(&mut r);
                for (p, v) in r.iter().enumerate() {
                    // SAFETY: the tile row lies inside `out`.
                    unsafe { _mm512_storeu_si512(dst.add(at(t, half, p)) as *mut __m512i, *v) };
                }
            }
        }
    } else {
        out.fill(0);
        for l in 0..kc {
            for j in 0..cols {
                out[at(l / KB, j / 16, (l % KB) / 2) + (j % 16) * 2 + l % 2] =
                    bf16(b.data[(k0 + l) * b.rs + (n0 + j) * b.cs]);
            }
        }
    }
}

/// One image `[c, hw]` (`c` a multiple of 32) rounded to bf16 as pixel rows: pixel `q`'s `c`
/// channels, in order, from `row(q)` on; 16 pixels × 32 channels at a time, converted in
/// channel pairs and transposed in registers.
///
/// # Safety
/// The CPU has AVX-512 BF16 and BW; `x` holds `c · hw` values; `row(q)` is valid for `c`
/// writes for every `q < hw`.
#[target_feature(enable = "avx512f,avx512bw,avx512bf16")]
pub(super) unsafe fn pixel_rows(x: &[f32], c: usize, hw: usize, row: impl Fn(usize) -> *mut u16) {
    debug_assert!(c.is_multiple_of(KB) && x.len() >= c * hw);
    for c0 in (0..c).step_by(KB) {
        for q0 in (0..hw).step_by(16) {
            let n = (hw - q0).min(16);
            // SAFETY: channel `c0 + ci` holds `n` pixels from `q0` (the caller's bound).
            let load = |ci: usize| unsafe {
                _mm512_maskz_loadu_ps(lanes(n), x.as_ptr().add((c0 + ci) * hw + q0))
            };
            // Vector `p`: the 16 pixels' channel pair `p`, one dword each.
            let mut r: [__m512i; 16] =
                std::array::from_fn(|p| pairs16(load(2 * p), load(2 * p + 1)));
            transpose16(&mut r);
            for (j, v) in r.iter().take(n).enumerate() {
                // SAFETY: pixel `q0 + j` has room for `c` values from `row` (caller).
                unsafe { _mm512_storeu_si512(row(q0 + j).add(c0) as *mut __m512i, *v) };
            }
        }
    }
}

/// Transposes 16 rows of 16 dwords in registers (interleave dwords, then qwords, then 128-bit
/// lanes twice).
#[target_feature(enable = "avx512f")]
pub(super) fn transpose16(r: &mut [__m512i; 16]) {
    let mut t = [_mm512_setzero_si512(); 16];
    for i in 0..8 {
        t[2 * i] = _mm512_unpacklo_epi32(r[2 * i], r[2 * i + 1]);
        t[2 * i + 1] = _mm512_unpackhi_epi32(r[2 * i], r[2 * i + 1]);
    }
    for i in 0..4 {
        let (a, b, c, d) = (t[4 * i], t[4 * i + 1], t[4 * i + 2], t[4 * i + 3]);
        r[4 * i] = _mm512_unpacklo_epi64(a, c);
        r[4 * i + 1] = _mm512_unpackhi_epi64(a, c);
        r[4 * i + 2] = _mm512_unpacklo_epi64(b, d);
        r[4 * i + 3] = _mm512_unpackhi_epi64(b, d);
    }
    for h in 0..2 {
        for i in 0..4 {
            let (a, b) = (r[8 * h + i], r[8 * h + i + 4]);
            t[8 * h + i] = _mm512_shuffle_i32x4::<0x88>(a, b);
            t[8 * h + i + 4] = _mm512_shuffle_i32x4::<0xdd>(a, b);
        }
    }
    for i in 0..8 {
        r[i] = _mm512_shuffle_i32x4::<0x88>(t[i], t[i + 8]);
        r[i + 8] = _mm512_shuffle_i32x4::<0xdd>(t[i], t[i + 8]);
    }
}

/// 16 values of two reduction rows rounded to bf16 as 16 pairs, `r0[j], r1[j]` side by side: one
/// tile row of a right panel, or 16 columns of a pair row.
#[target_feature(enable = "avx512f,avx512bw,avx512bf16")]
fn pairs16(r0: __m512, r1: __m512) -> __m512i {
    // Word 2j takes word j (row 0's j-th value), word 2j + 1 takes word 16 + j (row 1's).
    let interleave = _mm512_set_epi16(
        31, 15, 30, 14, 29, 13, 28, 12, 27, 11, 26, 10, 25, 9, 24, 8, 23, 7, 22, 6, 21, 5, 20, 4,
        19, 3, 18, 2, 17, 1, 16, 0,
    );
    // SAFETY: both are plain bit reinterpretations of 512-bit vectors.
    let v = unsafe { std::mem::transmute::<__m512bh, __m512i>(_mm512_cvtne2ps_pbh(r1, r0)) };
    _mm512_permutexvar_epi16(interleave, v)
}

/// Rows `r0` and `r1` (`None`: zeros) rounded to bf16 and interleaved as reduction pairs,
/// `out[2j] = r0[j]`, `out[2j + 1] = r1[j]`: one pair row of a [`super::Pairs`].
///
/// # Safety
/// The CPU has AVX-512 BF16 and BW; `out` is twice as long as `r0` (and `r1`).
#[target_feature(enable = "avx512f,avx512bw,avx512bf16")]
pub(super) unsafe fn interleave(r0: &[f32], r1: Option<&[f32]>, out: &mut [u16]) {
    let n = r0.len();
    debug_assert_eq!(out.len(), 2 * n);
    // SAFETY: lanes past `n` are masked off.
    let load = |r: &[f32], c: usize| unsafe {
        _mm512_maskz_loadu_ps(lanes(n - 16 * c), r.as_ptr().add(16 * c))
    };
    let second = |c: usize| r1.map_or(_mm512_setzero_ps(), |r1| load(r1, c));
    // SAFETY: `out` holds `2n` values.
    unsafe { pairs_into(n, out, |c| load(r0, c), second) }
}

/// `n` reduction pairs into `out` (`2n` values): per 16 columns `c`, the 16 values of each row
/// that `r0(c)` and `r1(c)` give, rounded to bf16 and interleaved; the store stops at `out`'s end.
///
/// # Safety
/// The CPU has AVX-512 BF16 and BW; `out` holds `2n` values.
#[target_feature(enable = "avx512f,avx512bw,avx512bf16")]
unsafe fn pairs_into(
    n: usize,
    out: &mut [u16],
    r0: impl Fn(usize) -> __m512,
    r1: impl Fn(usize) -> __m512,
) {
    for c in 0..n.div_ceil(16) {
        let j = 16 * c;
        let v = pairs16(r0(c), r1(c));
        let words = if n - j >= 16 {
            u32::MAX
        } else {
            (1u32 << (2 * (n - j))) - 1
        };
        // SAFETY: `out` holds `2n` values; words past it are masked off.
        unsafe { _mm512_mask_storeu_epi16(out.as_mut_ptr().add(2 * j) as *mut i16, words, v) };
    }
}

/// Like [`interleave`], with each row read from a shifted input plane under a lane mask
/// ([`super::Shifted`]): value `q` of a row is `src[q + off]` where bit `q` of its masks is set,
/// zero elsewhere. The rows are never written in f32.
///
/// # Safety
/// The CPU has AVX-512 BF16 and BW; `out` holds `2n` values; each row's masks hold `n` bits
/// and set only bits `q` with `q + off` inside its `src`.
#[target_feature(enable = "avx512f,avx512bw,avx512bf16")]
pub(super) unsafe fn interleave_shifted(
    r0: &super::Shifted,
    r1: Option<&super::Shifted>,
    n: usize,
    out: &mut [u16],
) {
    debug_assert_eq!(out.len(), 2 * n);
    // SAFETY (every load): only lanes whose mask bit is set are read, each inside `src`
    // (caller); the pointers of masked-off lanes are formed with wrapping arithmetic only.
    let load = |r: &super::Shifted, c: usize| unsafe {
        let base = r.src.as_ptr().wrapping_offset(r.off + 16 * c as isize);
        _mm512_maskz_loadu_ps(r.masks[c], base)
    };
    let second = |c: usize| r1.map_or(_mm512_setzero_ps(), |r1| load(r1, c));
    // SAFETY: `out` holds `2n` values.
    unsafe { pairs_into(n, out, |c| load(r0, c), second) }
}

/// [`right`] for an operand whose rows are read in place from shifted input planes
/// ([`super::Shifted`]: one image's im2col for a stride-1 convolution): columns
/// `n0..n0 + cols` of rows `k0..k0 + kc`, 16 columns of two rows at a time loaded under their
/// masks, rounded and interleaved into the panel's tile rows (rows past the slice and columns
/// past `cols` as zeros). The operand is never written whole, in f32 or in pairs.
///
/// # Safety
/// The CPU has AVX-512 BF16 and BW; `rows` holds at least `k0 + kc` rows, each of whose set
/// mask bits reads inside its plane; `out` is `kc.div_ceil(KB) * BLOCK` long.
#[target_feature(enable = "avx512f,avx512bw,avx512bf16")]
pub(super) unsafe fn right_shifted(
    rows: &[super::Shifted],
    n0: usize,
    cols: usize,
    k0: usize,
    kc: usize,
    out: &mut [u16],
) {
    debug_assert!(rows.len() >= k0 + kc);
    let row = |l: usize, half: usize| {
        let (q, width) = (n0 + half * 16, cols.saturating_sub(half * 16).min(16));
        let r = &rows[k0 + l];
        let base = r.src.as_ptr().wrapping_offset(r.off + q as isize);
        // SAFETY: only lanes whose mask bit is set are read, each inside its plane (the
        // caller); the pointers of masked-off lanes are formed with wrapping arithmetic.
        unsafe { _mm512_maskz_loadu_ps(r.mask16(q) & lanes(width), base) }
    };
    // SAFETY: `out` is `kc.div_ceil(KB)` blocks long (the caller's bound).
    unsafe { tile_rows_into(kc, out, row) }
}

/// The packed layout of [`right`] for `kc` reduction values: `row(l, half)` gives reduction row
/// `l`'s 16 columns of tile `half` (called for `l < kc` only; zeros past it), two rows at a
/// time rounded to bf16 and interleaved into one tile row.
///
/// # Safety
/// The CPU has AVX-512 BF16 and BW; `out` is `kc.div_ceil(KB) · BLOCK` long.
#[target_feature(enable = "avx512f,avx512bw,avx512bf16")]
unsafe fn tile_rows_into(kc: usize, out: &mut [u16], row: impl Fn(usize, usize) -> __m512) {
    let kt = kc.div_ceil(KB);
    debug_assert_eq!(out.len(), kt * BLOCK);
    // Tile row `p` of block `t`, tile `half`, starts here.
    let at = |t: usize, half: usize, p: usize| ((t * 2 + half) * 16 + p) * 32;
    let load = |l: usize, half: usize| {
        if l < kc {
            row(l, half)
        } else {
            _mm512_setzero_ps()
        }
    };
    for l in (0..kt * KB).step_by(2) {
        for half in 0..2 {
            let v = pairs16(load(l, half), load(l + 1, half));
            // SAFETY: the tile row lies inside `out`.
            unsafe {
                _mm512_storeu_si512(
                    out.as_mut_ptr().add(at(l / KB, half, (l % KB) / 2)) as *mut __m512i,
                    v,
                )
            };
        }
    }
}

/// [`left`] for rows read in place from shifted input planes ([`super::Shifted`]): the 32
/// values of each block of a row are two masked loads from its plane, rounded and stored (the
/// panel's rows past `m`, and values past the slice, as zeros).
///
/// # Safety
/// The CPU has AVX-512 BF16; `rows` holds `m` rows whose masks cover `k0 + kc` values; `out`
/// is [`pack_len`]`(m, kc)` long; `k0` is a multiple of 16.
#[target_feature(enable = "avx512f,avx512bf16")]
pub(super) unsafe fn left_shifted(
    rows: &[super::Shifted],
    m: usize,
    k0: usize,
    kc: usize,
    out: &mut [MaybeUninit<u16>],
) {
    debug_assert!(rows.len() == m && k0.is_multiple_of(16));
    // SAFETY: a row's set mask bits read inside its plane (`Shifted::new`); lanes past `len`
    // are masked off, and the pointers of masked-off lanes are formed with wrapping arithmetic.
    let block = |i: usize, q: usize, len: usize| unsafe {
        let (r, q) = (&rows[i], k0 + q);
        let word = |w: usize| r.masks.get(w).copied().unwrap_or(0);
        let base = r.src.as_ptr().wrapping_offset(r.off + q as isize);
        let lo = _mm512_maskz_loadu_ps(word(q / 16) & lanes(len), base);
        let hi_mask = word(q / 16 + 1) & lanes(len.saturating_sub(16));
        let hi = _mm512_maskz_loadu_ps(hi_mask, base.wrapping_add(16));
        std::mem::transmute::<__m512bh, __m512i>(_mm512_cvtne2ps_pbh(hi, lo))
    };
    // SAFETY: `out` is `pack_len(m, kc)` long (the caller's bound).
    unsafe { blocks_into(m, kc, out, block) }
}
