//! Matrix products on strided f32 operands: the `gemm` crate's, split into per-core blocks.

use std::mem::MaybeUninit;

use rayon::prelude::*;

use super::bf16::{self, Left, Mul, Right};
use super::buffers::*;
pub(super) use super::mat::Mat;

/// `dst[m × n] (row-major) = a[m × k] · b[k × n]`, one multithreaded GEMM (the `gemm` crate).
pub fn matmul(m: usize, n: usize, k: usize, a: Mat, b: Mat, mul: Mul) -> Vec<f32> {
    matmul_left(m, n, k, Left::Mat(a), b, mul)
}

/// [`matmul`] with a left operand that may be packed already and a right one that may be in
/// bf16 pairs.
pub(super) fn matmul_left<'b>(
    m: usize,
    n: usize,
    k: usize,
    a: Left,
    b: impl Into<Right<'b>>,
    mul: Mul,
) -> Vec<f32> {
    let mut dst = uninit(m * n);
    product_into_unwritten(&mut dst, m, n, k, a, b, rayon::current_num_threads(), mul);
    // SAFETY: `product_into_unwritten` initialised every element.
    unsafe { assume_init(dst) }
}

/// `dst = a · b` into a fresh (unwritten) `m × n` buffer in `parts` per-core blocks (see
/// [`split_gemm`]), returned as values: gemm writes every element without reading it, so the
/// buffer needs no zeroing pass (a memset of every GEMM output was 5 % of a training step).
#[allow(clippy::too_many_arguments)]
pub(super) fn product_into_unwritten<'d, 'b>(
    dst: &'d mut [MaybeUninit<f32>],
    m: usize,
    n: usize,
    k: usize,
    a: Left,
    b: impl Into<Right<'b>>,
    parts: usize,
    mul: Mul,
) -> &'d mut [f32] {
    let b = b.into();
    check_left(a, m, k);
    check_right(b, k, n);
    assert_eq!(dst.len(), m * n, "matmul: destination size");
    if m == 0 || n == 0 || k == 0 {
        return zeroed(dst);
    }
    let ptr = Ptr(dst.as_mut_ptr() as *mut f32);
    // SAFETY: the operands' bounds were checked and `dst` (a distinct mutable borrow, m×n)
    // overlaps neither; without `accumulate` gemm writes every element of the block before
    // anything reads it, so afterwards all of `dst` is initialised (MaybeUninit<f32> has f32's
    // layout).
    unsafe {
        split_gemm(m, n, k, ptr, n, a, b, false, parts, mul);
        &mut *(dst as *mut [MaybeUninit<f32>] as *mut [f32])
    }
}

/// `dst = a · b` (or `dst += a · b` when `accumulate`) for an `m × n` destination whose rows
/// are `dst_rs` apart (columns adjacent) inside `dst`.
#[allow(clippy::too_many_arguments)]
pub fn matmul_into(
    dst: &mut [f32],
    dst_rs: usize,
    m: usize,
    n: usize,
    k: usize,
    a: Mat,
    b: Mat,
    accumulate: bool,
    mul: Mul,
) {
    let threads = rayon::current_num_threads();
    product_into(
        dst,
        dst_rs,
        m,
        n,
        k,
        Left::Mat(a),
        b,
        accumulate,
        threads,
        mul,
    );
}

/// [`matmul_into`] with a left operand that may be packed already and a right one that may be
/// in bf16 pairs, in `parts` per-core blocks.
#[allow(clippy::too_many_arguments)]
pub(super) fn product_into<'b>(
    dst: &mut [f32],
    dst_rs: usize,
    m: usize,
    n: usize,
    k: usize,
    a: Left,
    b: impl Into<Right<'b>>,
    accumulate: bool,
    parts: usize,
    mul: Mul,
) {
    let b = b.into();
    check_left(a, m, k);
    check_right(b, k, n);
    Mat::rows(dst, dst_rs).check(m, n);
    if m == 0 || n == 0 {
        return;
    }
    if k == 0 {
        if !accumulate {
            dst.chunks_mut(dst_rs)
                .take(m)
                .for_each(|r| r[..n].fill(0.0));
        }
        return;
    }
    // SAFETY: the bounds of all three operands were checked above; `dst` is a distinct mutable
    // borrow, so it overlaps neither input.
    unsafe {
        split_gemm(
            m,
            n,
            k,
            Ptr(dst.as_mut_ptr()),
            dst_rs,
            a,
            b,
            accumulate,
            parts,
            mul,
        )
    };
}

/// `dst = a · b`, or `dst += a · b` when `accumulate`, on the calling thread (`dst` row-major
/// `m × n`), for products that already run one per core.
#[allow(clippy::too_many_arguments)]
pub(super) fn matmul_serial(
    dst: &mut [f32],
    m: usize,
    n: usize,
    k: usize,
    a: Left,
    b: Mat,
    accumulate: bool,
    mul: Mul,
) {
    assert_eq!(dst.len(), m * n, "matmul: destination size");
    product_into(dst, n, m, n, k, a, b, accumulate, 1, mul);
}

/// Checks an unpacked left operand's bounds (a packed one was checked when it was packed, and
/// its shape against the product's in `bf16::gemm`).
fn check_left(a: Left, m: usize, k: usize) {
    if let Left::Mat(a) = a {
        a.check(m, k);
    }
}

/// Checks an f32 right operand's bounds (pairs are checked against the product's shape in
/// `bf16::gemm`, and only bf16 products read them).
fn check_right(b: Right, k: usize, n: usize) {
    if let Right::Mat(b) = b {
        b.check(k, n);
    }
}

/// A raw destination pointer that may cross to another rayon task (the parts it addresses are
/// disjoint).
#[derive(Clone, Copy)]
pub(super) struct Ptr(*mut f32);
// SAFETY: only used by `split_gemm`, whose parts write disjoint blocks of one checked buffer.
unsafe impl Send for Ptr {}
unsafe impl Sync for Ptr {}

impl Ptr {
    /// The pointer `i` values on.
    ///
    /// # Safety
    /// As [`pointer::add`]: the result stays inside the buffer.
    unsafe fn add(self, i: usize) -> Ptr {
        // SAFETY: as promised by the caller.
        Ptr(unsafe { self.0.add(i) })
    }
}

/// The product as `parts` single-threaded GEMMs over blocks of the destination, halving the
/// longer side each time. Measured per layer on 2 cores, this runs ResNet's products up to
/// 1.5–2× faster than `gemm`'s own threading, which splits these shapes unevenly.
///
/// # Safety
/// `dst` must address an `m × n` block with row stride `dst_rs`, valid for writes and
/// overlapping neither `a` (`m × k`) nor `b` (`k × n`), whose bounds the caller checked.
#[allow(clippy::too_many_arguments)]
pub(super) unsafe fn split_gemm(
    m: usize,
    n: usize,
    k: usize,
    dst: Ptr,
    dst_rs: usize,
    a: Left,
    b: Right,
    accumulate: bool,
    parts: usize,
    mul: Mul,
) {
    // Below ~2 MFLOP a split costs more than it saves. A packed left operand is split by
    // columns only (its panels are shared by both halves).
    let packed = matches!(a, Left::Packed(_));
    let split = parts > 1 && m * n * k >= 1 << 20 && (n >= 2 || (m >= 2 && !packed));
    if !split {
        if mul.is_bf16() {
            // SAFETY: as promised by the caller; `bf16::gemm` checks `mul` and packed shapes.
            unsafe { bf16::gemm(m, n, k, dst.0, dst_rs, a, b, accumulate, mul) };
            return;
        }
        let (Left::Mat(a), Right::Mat(b)) = (a, b) else {
            unreachable!("a packed operand or pairs without bf16 products")
        };
        // SAFETY: as promised by the caller.
        unsafe {
            gemm::gemm(
                m,
                n,
                k,
                dst.0,
                1,
                dst_rs as isize,
                accumulate,
                a.data.as_ptr(),
                a.cs as isize,
                a.rs as isize,
                b.data.as_ptr(),
                b.cs as isize,
                b.rs as isize,
                if accumulate { 1.0 } else { 0.0 },
                1.0,
                false,
                false,
                false,
                gemm::Parallelism::None,
            )
        };
        return;
    };
    let (p0, p1) = (parts / 2, parts - parts / 2);
    if let (Left::Mat(a), true) = (a, m >= n) {
        let h = m * p0 / parts;
        let a1 = Mat {
            data: &a.data[h * a.rs..],
            ..a
        };
        // SAFETY: rows [0, h) and [h, m) of `dst` are disjoint blocks of the caller's block.
        let dst1 = Ptr(unsafe { dst.0.add(h * dst_rs) });
        rayon::join(
            || unsafe { split_gemm(h, n, k, dst, dst_rs, Left::Mat(a), b, accumulate, p0, mul) },
            || unsafe {
                split_gemm(
                    m - h,
                    n,
                    k,
                    dst1,
                    dst_rs,
                    Left::Mat(a1),
                    b,
                    accumulate,
                    p1,
                    mul,
                )
            },
        );
    } else {
        let h = n * p0 / parts;
        let b1 = b.columns_from(h);
        // SAFETY: columns [0, h) and [h, n) of `dst` are disjoint blocks of the caller's block.
        let dst1 = Ptr(unsafe { dst.0.add(h) });
        rayon::join(
            || unsafe { split_gemm(m, h, k, dst, dst_rs, a, b, accumulate, p0, mul) },
            || unsafe { split_gemm(m, n - h, k, dst1, dst_rs, a, b1, accumulate, p1, mul) },
        );
    }
}

/// One term of [`sum_over_column_runs`]: `a · b` on the columns `(first, len)` of each run.
pub(super) type RunTerm<'a> = (Left<'a>, Right<'a>, Vec<(usize, usize)>);

/// `Y = Σ a_t · b_t` (`m × n`), each term multiplied only on its own runs of columns (the
/// other columns of `b_t` are zeros: a convolution's taps over padding). The cores take the
/// column ranges between consecutive `splits` (`0` first, `n` last) and each runs its share
/// of every term as single-threaded products.
pub(super) fn sum_over_column_runs(
    m: usize,
    n: usize,
    k: usize,
    terms: &[RunTerm],
    splits: &[usize],
    mul: Mul,
) -> Vec<f32> {
    assert!(
        splits.first() == Some(&0) && splits.last() == Some(&n),
        "column splits"
    );
    assert!(splits.is_sorted(), "column splits");
    for &(a, b, ref runs) in terms {
        check_left(a, m, k);
        check_right(b, k, n);
        assert!(runs.iter().all(|&(c0, len)| c0 + len <= n), "column runs");
    }
    let mut dst = vec![0.0f32; m * n];
    let ptr = Ptr(dst.as_mut_ptr());
    (0..splits.len() - 1).into_par_iter().for_each(|part| {
        let (lo, hi) = (splits[part], splits[part + 1]);
        for &(a, b, ref runs) in terms {
            for &(c0, len) in runs {
                let (from, to) = (c0.max(lo), (c0 + len).min(hi));
                if from < to {
                    // SAFETY: the operands' bounds were checked; each part writes only its
                    // own columns [lo, hi) of `dst`, rows `n` apart, which overlaps neither.
                    unsafe {
                        let at = ptr.add(from);
                        let b = b.columns_from(from);
                        split_gemm(m, to - from, k, at, n, a, b, true, 1, mul)
                    };
                }
            }
        }
    });
    dst
}

/// `[d0, d1, s]` → `[d1, d0, s]`: swaps the two leading axes of a 3-D row-major array.
pub fn swap_leading(src: &[f32], d0: usize, d1: usize, s: usize) -> Vec<f32> {
    rows_from(src.len(), s, |idx| {
        let (i1, i0) = (idx / d0, idx % d0);
        src[(i0 * d1 + i1) * s..][..s].iter().copied()
    })
}

/// The transpose `[cols × rows]` of a row-major `rows × cols` matrix, in 8×8 tiles.
pub(super) fn transpose(src: &[f32], rows: usize, cols: usize) -> Vec<f32> {
    const T: usize = 8;
    assert_eq!(src.len(), rows * cols, "transpose: size");
    // Each task owns T destination rows (T source columns) and walks down the source rows.
    let min_blocks = (16384 / (T * rows).max(1)).max(1);
    chunks_filled_by(src.len(), T * rows, min_blocks, |tc, block| {
        let c0 = tc * T;
        let width = block.len() / rows;
        for (r, src_row) in src.chunks_exact(cols).enumerate() {
            for (dc, v) in src_row[c0..c0 + width].iter().enumerate() {
                block[dc * rows + r] = *v;
            }
        }
    })
}
