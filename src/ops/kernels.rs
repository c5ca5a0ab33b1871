//! Convolution as a few large GEMMs, on plain `f32` slices (NCHW activations, OIHW weights).
//!
//! Forward `Y = W · col(X)`, weight gradient `dW = dY · col(X)ᵀ`, input gradient
//! `dX = col⁻¹(Wᵀ · dY)`, where `col(X)` is `[C·kh·kw × B·OH·OW]`. Small maps build one im2col
//! matrix for the whole batch, so every product is one large GEMM (with the batch as the
//! innermost column axis, forward and backward, on maps narrower than 8 pixels); maps of 64
//! pixels or more run image by image, each image's im2col block in cache. burn's generic
//! backward (a transposed convolution and a batch/channel-swapped convolution) turns the same
//! work into many skinny products; see docs/kernels.md.
//!
//! One file, though long: the forward, both backward products and their layout passes share
//! the tap and span geometry and the uninitialised-buffer helpers below, and each path is
//! tuned against the others (docs/kernels.md); split apart, they would need those internals
//! public across files.

use std::mem::MaybeUninit;

use rayon::prelude::*;

/// Geometry of one 2-D convolution with groups 1: input `[b, c, h, w]`, weight `[o, c, kh, kw]`,
/// output `[b, o, oh, ow]`; padding is (top, left) with the output size already computed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConvGeom {
    /// Batch, input channels, input height and width.
    pub b: usize,
    /// Input channels.
    pub c: usize,
    /// Input height.
    pub h: usize,
    /// Input width.
    pub w: usize,
    /// Output channels.
    pub o: usize,
    /// Kernel height and width.
    pub kh: usize,
    /// Kernel width.
    pub kw: usize,
    /// Strides (rows, columns).
    pub stride: [usize; 2],
    /// Padding before the first row and column (the end padding only shows in `oh`, `ow`).
    pub pad: [usize; 2],
    /// Dilation (rows, columns).
    pub dilation: [usize; 2],
    /// Output height.
    pub oh: usize,
    /// Output width.
    pub ow: usize,
}

impl ConvGeom {
    /// The geometry of `x_shape` convolved with `w_shape` (groups 1) with per-side padding.
    pub fn new(
        x_shape: [usize; 4],
        w_shape: [usize; 4],
        stride: [usize; 2],
        padding: [(usize, usize); 2],
        dilation: [usize; 2],
    ) -> Self {
        let [b, c, h, w] = x_shape;
        let [o, c_w, kh, kw] = w_shape;
        assert_eq!(
            c, c_w,
            "conv2d: input has {c} channels, weight expects {c_w}"
        );
        let out = |n: usize, k: usize, s: usize, (p0, p1): (usize, usize), d: usize| {
            let span = d * (k - 1) + 1;
            assert!(
                n + p0 + p1 >= span,
                "conv2d: kernel larger than the padded input"
            );
            (n + p0 + p1 - span) / s + 1
        };
        Self {
            b,
            c,
            h,
            w,
            o,
            kh,
            kw,
            stride,
            pad: [padding[0].0, padding[1].0],
            dilation,
            oh: out(h, kh, stride[0], padding[0], dilation[0]),
            ow: out(w, kw, stride[1], padding[1], dilation[1]),
        }
    }

    /// Rows of the full im2col matrix: `c · kh · kw`.
    pub fn k(&self) -> usize {
        self.c * self.kh * self.kw
    }

    /// The kernel taps `(i, j)` that touch the input for at least one output pixel, in
    /// row-major order. Taps that only ever read padding contribute nothing and are left out of
    /// the products: a 3×3 convolution on ResNet-18's 1×1 maps at 28 px has one live tap of 9.
    pub fn live_taps(&self) -> Vec<(usize, usize)> {
        let mut taps = Vec::with_capacity(self.kh * self.kw);
        for i in 0..self.kh {
            let (y0, y1) = self.valid_rows(i);
            for j in 0..self.kw {
                let (x0, x1) = self.valid_cols(j);
                if y0 < y1 && x0 < x1 {
                    taps.push((i, j));
                }
            }
        }
        taps
    }

    /// Output pixels per image: `oh · ow`.
    pub fn s(&self) -> usize {
        self.oh * self.ow
    }

    /// Columns of the im2col matrix: `b · oh · ow`.
    pub fn n(&self) -> usize {
        self.b * self.s()
    }

    /// The input row read by output row `oy` at kernel row `i` (inside the image: `oy` in
    /// [`Self::valid_rows`]`(i)`).
    #[inline]
    fn in_row(&self, oy: usize, i: usize) -> usize {
        oy * self.stride[0] + i * self.dilation[0] - self.pad[0]
    }

    /// Like [`Self::in_row`] for output column `ox` and kernel column `j`.
    #[inline]
    fn in_col(&self, ox: usize, j: usize) -> usize {
        ox * self.stride[1] + j * self.dilation[1] - self.pad[1]
    }

    /// The output columns `ox` whose input column `ox·stride + j·dilation − pad` lies inside
    /// the image, as a half-open range (empty when none does).
    fn valid_cols(&self, j: usize) -> (usize, usize) {
        valid_range(
            self.w,
            self.ow,
            self.stride[1],
            self.pad[1],
            j * self.dilation[1],
        )
    }

    /// Like [`Self::valid_cols`] for output rows and kernel row `i`.
    fn valid_rows(&self, i: usize) -> (usize, usize) {
        valid_range(
            self.h,
            self.oh,
            self.stride[0],
            self.pad[0],
            i * self.dilation[0],
        )
    }

    /// For stride 1 with rows as wide as the input ("same" padding in width), kernel tap
    /// `(i, j)` reads the input plane shifted by a constant: output pixel `t = oy·ow + ox` takes
    /// input pixel `t + off`. Returns `off` and the output range `[lo, hi)` over which that is
    /// inside the plane, so a whole tap is one contiguous copy; the `valid_cols` edges that wrap
    /// into the neighbouring row are then fixed up. `None` when the shortcut does not apply.
    fn shifted_span(&self, i: usize, j: usize) -> Option<(isize, usize, usize)> {
        if !self.shifts() {
            return None;
        }
        let (y0, y1) = self.valid_rows(i);
        let w = self.w as isize;
        let off = (i * self.dilation[0]) as isize * w - self.pad[0] as isize * w
            + (j * self.dilation[1]) as isize
            - self.pad[1] as isize;
        let plane = (self.h * self.w) as isize;
        let lo = ((y0 * self.w) as isize).max(-off);
        let hi = ((y1 * self.w) as isize).min(plane - off);
        (lo < hi).then_some((off, lo as usize, hi as usize))
    }

    /// Whether [`Self::shifted_span`] applies: stride 1 and output rows as wide as the input's.
    fn shifts(&self) -> bool {
        self.stride == [1, 1] && self.ow == self.w
    }
}

/// Output positions `t` in `0..n_out` with `0 ≤ t·s + off − pad < n_in`.
fn valid_range(n_in: usize, n_out: usize, s: usize, pad: usize, off: usize) -> (usize, usize) {
    // t·s ≥ pad − off  and  t·s ≤ n_in − 1 + pad − off
    let lo = pad.saturating_sub(off).div_ceil(s);
    let hi = if n_in + pad > off {
        (n_in - 1 + pad - off) / s + 1
    } else {
        0
    };
    let hi = hi.min(n_out);
    (lo.min(hi), hi)
}

/// For output rows narrower than 8 pixels (ResNet's later stages at small image sizes), the
/// `(output pixel, input pixel)` pairs of each tap in `taps` that fall inside the image: im2col
/// and col2im then move single values by table, instead of copying row spans that are one to
/// four values long (3–7× faster on those layers, measured per layer). `None` for wider rows.
fn small_plane_pairs(g: &ConvGeom, taps: &[(usize, usize)]) -> Option<Vec<Vec<(u32, u32)>>> {
    if g.ow >= 8 {
        return None;
    }
    let pairs = taps.iter().map(|&(i, j)| {
        let ((y0, y1), (x0, x1)) = (g.valid_rows(i), g.valid_cols(j));
        let mut v = Vec::with_capacity((y1 - y0) * (x1 - x0));
        for oy in y0..y1 {
            let iy = g.in_row(oy, i);
            for ox in x0..x1 {
                let ix = g.in_col(ox, j);
                v.push(((oy * g.ow + ox) as u32, (iy * g.w + ix) as u32));
            }
        }
        v
    });
    Some(pairs.collect())
}

/// A fresh buffer of `len` values, not yet written: its chunks go through [`zeroed`] in parallel
/// tasks, then [`assume_init`] makes it values. Each chunk is zeroed just before it is written
/// (in cache) instead of the whole buffer in one serial pass first (`vec![0.0; len]` on the
/// calling thread while the other cores wait: up to 19 MB per convolution).
pub(crate) fn uninit(len: usize) -> Vec<MaybeUninit<f32>> {
    let mut buf = Vec::with_capacity(len);
    // SAFETY: MaybeUninit needs no initialisation.
    unsafe { buf.set_len(len) };
    buf
}

/// A chunk of an [`uninit`] buffer, zeroed, as values to write.
pub(crate) fn zeroed(chunk: &mut [MaybeUninit<f32>]) -> &mut [f32] {
    for v in chunk.iter_mut() {
        v.write(0.0);
    }
    // SAFETY: every element was just initialised, and MaybeUninit<f32> has f32's layout.
    unsafe { &mut *(chunk as *mut [MaybeUninit<f32>] as *mut [f32]) }
}

/// The values of an [`uninit`] buffer.
///
/// # Safety
/// Every element must have been initialised (every chunk passed through [`zeroed`]).
pub(crate) unsafe fn assume_init(buf: Vec<MaybeUninit<f32>>) -> Vec<f32> {
    let mut buf = std::mem::ManuallyDrop::new(buf);
    // SAFETY: the allocation came from a Vec of the same length and capacity, MaybeUninit<f32>
    // is layout-identical to f32, and the caller promises every element is initialised.
    unsafe { Vec::from_raw_parts(buf.as_mut_ptr() as *mut f32, buf.len(), buf.capacity()) }
}

/// A `len`-long buffer made in parallel by `fill(index, chunk)` over its `chunk`-long chunks
/// (at least `min_chunks` per task), each zeroed just before (see [`uninit`]).
pub(crate) fn chunks_filled_by(
    len: usize,
    chunk: usize,
    min_chunks: usize,
    fill: impl Fn(usize, &mut [f32]) + Sync + Send,
) -> Vec<f32> {
    let mut buf = uninit(len);
    buf.par_chunks_mut(chunk.max(1))
        .with_min_len(min_chunks)
        .enumerate()
        .for_each(|(r, c)| fill(r, zeroed(c)));
    // SAFETY: the chunks cover the buffer, and each went through `zeroed`.
    unsafe { assume_init(buf) }
}

/// A row-major matrix of `len / row_len` rows made in parallel by `fill(r, row)` (see
/// [`chunks_filled_by`]).
pub(crate) fn rows_filled_by(
    len: usize,
    row_len: usize,
    fill: impl Fn(usize, &mut [f32]) + Sync + Send,
) -> Vec<f32> {
    chunks_filled_by(len, row_len, min_rows(row_len), fill)
}

/// Rows per rayon task when a matrix is filled row by row: enough work to pay for the task.
fn min_rows(row_len: usize) -> usize {
    (4096 / row_len.max(1)).max(1)
}

/// The im2col matrix `[c·taps × b·oh·ow]` of `x` over the kernel taps `taps` (row
/// `(ci, t)` for tap `taps[t]`, column `(bi, oy, ox)`); with every tap, `[c·kh·kw × …]`.
pub fn im2col(x: &[f32], g: &ConvGeom, taps: &[(usize, usize)]) -> Vec<f32> {
    let (n, s, nt) = (g.n(), g.s(), taps.len());
    let plane = g.h * g.w;
    let pairs = small_plane_pairs(g, taps);
    rows_filled_by(g.c * nt * n, n, |r, row| {
        let ci = r / nt;
        for (bi, dst) in row.chunks_exact_mut(s).enumerate() {
            let src = &x[(bi * g.c + ci) * plane..][..plane];
            fill_col_row(src, g, taps, pairs.as_deref(), r % nt, dst);
        }
    })
}

/// One image's part of an im2col row: the input plane `src` of one channel as read by tap
/// `taps[t]` at every output pixel. Writes every value that lies inside the image; padding
/// positions are written as zeros only on the shifted-span path, so `dst` must start zeroed
/// (or hold the same geometry's earlier output, whose padding positions are zeros).
fn fill_col_row(
    src: &[f32],
    g: &ConvGeom,
    taps: &[(usize, usize)],
    pairs: Option<&[Vec<(u32, u32)>]>,
    t: usize,
    dst: &mut [f32],
) {
    if let Some(pairs) = pairs {
        for &(q, p) in &pairs[t] {
            dst[q as usize] = src[p as usize];
        }
        return;
    }
    tap_spans(g, taps[t], |out, inp, len, step| {
        if step == 1 {
            dst[out..out + len].copy_from_slice(&src[inp..inp + len]);
        } else if step == 2 {
            // Every other value, read as pairs, which the compiler de-interleaves with vector
            // shuffles (the index loop below stays scalar).
            let (head, last) = dst[out..out + len].split_at_mut(len - 1);
            let pairs = src[inp..inp + 2 * (len - 1)].chunks_exact(2);
            for (d, p) in head.iter_mut().zip(pairs) {
                *d = p[0];
            }
            last[0] = src[inp + 2 * (len - 1)];
        } else {
            for (k, d) in dst[out..out + len].iter_mut().enumerate() {
                *d = src[inp + k * step];
            }
        }
    });
    zero_row_edges(dst, g, taps[t]);
}

/// The runs in which tap `(i, j)` reads the input inside the image, as
/// `run(first output pixel, first input pixel, length, input step)` (output pixels adjacent):
/// one shifted span for the whole plane where [`ConvGeom::shifted_span`] applies (its edge
/// entries then lie over the padding, see [`zero_row_edges`]), else one run per output row.
fn tap_spans(
    g: &ConvGeom,
    (i, j): (usize, usize),
    mut run: impl FnMut(usize, usize, usize, usize),
) {
    let (y0, y1) = g.valid_rows(i);
    let (x0, x1) = g.valid_cols(j);
    if x0 >= x1 {
        return;
    }
    if let Some((off, lo, hi)) = g.shifted_span(i, j) {
        run(lo, (lo as isize + off) as usize, hi - lo, 1);
        return;
    }
    let ix0 = g.in_col(x0, j);
    for oy in y0..y1 {
        let iy = g.in_row(oy, i);
        run(oy * g.ow + x0, iy * g.w + ix0, x1 - x0, g.stride[1]);
    }
}

/// The inverse scatter of [`im2col`]: sums every column entry back into its input pixel,
/// giving `dX` `[b, c, h, w]` from `dcol` `[c·taps × b·oh·ow]` (consumed: entries that fall
/// into the padding are zeroed first, so shifted taps can be added as whole spans).
pub fn col2im(mut dcol: Vec<f32>, g: &ConvGeom, taps: &[(usize, usize)]) -> Vec<f32> {
    let (n, s, plane, nt) = (g.n(), g.s(), g.h * g.w, taps.len());
    let pairs = small_plane_pairs(g, taps);
    if pairs.is_none() && g.shifts() {
        dcol.par_chunks_mut(n)
            .with_min_len(min_rows(n))
            .enumerate()
            .for_each(|(r, row)| {
                for seg in row.chunks_mut(s) {
                    zero_row_edges(seg, g, taps[r % nt]);
                }
            });
    }
    let dcol = &dcol;
    let len = g.b * g.c * plane;
    chunks_filled_by(len, plane, min_rows(plane * nt), |idx, dst| {
        let (bi, ci) = (idx / g.c, idx % g.c);
        for t in 0..nt {
            let src = &dcol[(ci * nt + t) * n + bi * s..][..s];
            add_col_row(dst, g, taps, pairs.as_deref(), t, src);
        }
    })
}

/// Zeroes the entries of one image's part of a `dcol` row for tap `(i, j)` that lie over the
/// left and right padding, when that tap is added as one shifted span (see
/// [`ConvGeom::shifted_span`]): the span would otherwise carry them into the neighbouring rows.
fn zero_row_edges(seg: &mut [f32], g: &ConvGeom, (i, j): (usize, usize)) {
    if g.shifted_span(i, j).is_none() {
        return;
    }
    let (y0, y1) = g.valid_rows(i);
    let (x0, x1) = g.valid_cols(j);
    // Column by column down the rows: per row these are one to three values, and `fill` made
    // each a call to memset (5 % of an inference profile at 64 px).
    for ox in (0..x0).chain(x1..g.ow) {
        for oy in y0..y1 {
            seg[oy * g.ow + ox] = 0.0;
        }
    }
}

/// The adjoint of [`fill_col_row`]: adds one image's part of a `dcol` row (tap `taps[t]`, one
/// channel) into that channel's input-gradient plane `dst`. On the shifted-span path the
/// entries over the padding must have been zeroed ([`zero_row_edges`]).
fn add_col_row(
    dst: &mut [f32],
    g: &ConvGeom,
    taps: &[(usize, usize)],
    pairs: Option<&[Vec<(u32, u32)>]>,
    t: usize,
    src: &[f32],
) {
    if let Some(pairs) = pairs {
        for &(q, p) in &pairs[t] {
            dst[p as usize] += src[q as usize];
        }
        return;
    }
    tap_spans(g, taps[t], |out, inp, len, step| {
        if step == 1 {
            for (d, v) in dst[inp..inp + len].iter_mut().zip(&src[out..out + len]) {
                *d += v;
            }
        } else {
            for (k, v) in src[out..out + len].iter().enumerate() {
                dst[inp + k * step] += v;
            }
        }
    });
}

/// A matrix operand: its data and its row and column strides (row-major: `(cols, 1)`).
#[derive(Clone, Copy)]
pub struct Mat<'a> {
    /// The elements.
    pub data: &'a [f32],
    /// Distance between consecutive rows.
    pub rs: usize,
    /// Distance between consecutive columns.
    pub cs: usize,
}

impl<'a> Mat<'a> {
    /// A row-major `rows × cols` matrix.
    pub fn rows(data: &'a [f32], cols: usize) -> Self {
        Self {
            data,
            rs: cols,
            cs: 1,
        }
    }

    /// The transpose of a row-major `rows × cols` matrix, without copying.
    pub fn transposed(data: &'a [f32], cols: usize) -> Self {
        Self {
            data,
            rs: 1,
            cs: cols,
        }
    }

    fn check(&self, rows: usize, cols: usize) {
        if rows > 0 && cols > 0 {
            assert!(
                (rows - 1) * self.rs + (cols - 1) * self.cs < self.data.len(),
                "matmul: operand too small"
            );
        }
    }
}

/// `dst[m × n] (row-major) = a[m × k] · b[k × n]`, one multithreaded GEMM (the `gemm` crate).
pub fn matmul(m: usize, n: usize, k: usize, a: Mat, b: Mat) -> Vec<f32> {
    let mut dst = uninit(m * n);
    product_into_unwritten(&mut dst, m, n, k, a, b, rayon::current_num_threads());
    // SAFETY: `product_into_unwritten` initialised every element.
    unsafe { assume_init(dst) }
}

/// `dst = a · b` into a fresh (unwritten) `m × n` buffer in `parts` per-core blocks (see
/// [`split_gemm`]), returned as values: gemm writes every element without reading it, so the
/// buffer needs no zeroing pass (a memset of every GEMM output was 5 % of a training step).
fn product_into_unwritten<'d>(
    dst: &'d mut [MaybeUninit<f32>],
    m: usize,
    n: usize,
    k: usize,
    a: Mat,
    b: Mat,
    parts: usize,
) -> &'d mut [f32] {
    a.check(m, k);
    b.check(k, n);
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
        split_gemm(m, n, k, ptr, n, a, b, false, parts);
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
) {
    a.check(m, k);
    b.check(k, n);
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
    let threads = rayon::current_num_threads();
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
            threads,
        )
    };
}

/// `dst = a · b`, or `dst += a · b` when `accumulate`, on the calling thread (`dst` row-major
/// `m × n`), for products that already run one per core.
fn matmul_serial(dst: &mut [f32], m: usize, n: usize, k: usize, a: Mat, b: Mat, accumulate: bool) {
    a.check(m, k);
    b.check(k, n);
    assert_eq!(dst.len(), m * n, "matmul: destination size");
    if m == 0 || n == 0 {
        return;
    }
    if k == 0 {
        if !accumulate {
            dst.fill(0.0);
        }
        return;
    }
    // SAFETY: the bounds of all three operands were checked above; `dst` is a distinct mutable
    // borrow, so it overlaps neither input.
    unsafe { split_gemm(m, n, k, Ptr(dst.as_mut_ptr()), n, a, b, accumulate, 1) };
}

/// A raw destination pointer that may cross to another rayon task (the parts it addresses are
/// disjoint).
#[derive(Clone, Copy)]
struct Ptr(*mut f32);
// SAFETY: only used by `split_gemm`, whose parts write disjoint blocks of one checked buffer.
unsafe impl Send for Ptr {}
unsafe impl Sync for Ptr {}

/// The product as `parts` single-threaded GEMMs over blocks of the destination, halving the
/// longer side each time. Measured per layer on 2 cores, this runs ResNet's products up to
/// 1.5–2× faster than `gemm`'s own threading, which splits these shapes unevenly.
///
/// # Safety
/// `dst` must address an `m × n` block with row stride `dst_rs`, valid for writes and
/// overlapping neither `a` (`m × k`) nor `b` (`k × n`), whose bounds the caller checked.
#[allow(clippy::too_many_arguments)]
unsafe fn split_gemm(
    m: usize,
    n: usize,
    k: usize,
    dst: Ptr,
    dst_rs: usize,
    a: Mat,
    b: Mat,
    accumulate: bool,
    parts: usize,
) {
    // Below ~2 MFLOP a split costs more than it saves.
    if parts <= 1 || m * n * k < 1 << 20 || (m < 2 && n < 2) {
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
    }
    let (p0, p1) = (parts / 2, parts - parts / 2);
    if m >= n {
        let h = m * p0 / parts;
        let a1 = Mat {
            data: &a.data[h * a.rs..],
            ..a
        };
        // SAFETY: rows [0, h) and [h, m) of `dst` are disjoint blocks of the caller's block.
        let dst1 = Ptr(unsafe { dst.0.add(h * dst_rs) });
        rayon::join(
            || unsafe { split_gemm(h, n, k, dst, dst_rs, a, b, accumulate, p0) },
            || unsafe { split_gemm(m - h, n, k, dst1, dst_rs, a1, b, accumulate, p1) },
        );
    } else {
        let h = n * p0 / parts;
        let b1 = Mat {
            data: &b.data[h * b.cs..],
            ..b
        };
        // SAFETY: columns [0, h) and [h, n) of `dst` are disjoint blocks of the caller's block.
        let dst1 = Ptr(unsafe { dst.0.add(h) });
        rayon::join(
            || unsafe { split_gemm(m, h, k, dst, dst_rs, a, b, accumulate, p0) },
            || unsafe { split_gemm(m, n - h, k, dst1, dst_rs, a, b1, accumulate, p1) },
        );
    }
}

/// `[d0, d1, s]` → `[d1, d0, s]`: swaps the two leading axes of a 3-D row-major array.
pub fn swap_leading(src: &[f32], d0: usize, d1: usize, s: usize) -> Vec<f32> {
    rows_filled_by(src.len(), s, |idx, row| {
        let (i1, i0) = (idx / d0, idx % d0);
        row.copy_from_slice(&src[(i0 * d1 + i1) * s..][..s]);
    })
}

/// The transpose `[cols × rows]` of a row-major `rows × cols` matrix, in 8×8 tiles.
fn transpose(src: &[f32], rows: usize, cols: usize) -> Vec<f32> {
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

/// Forward convolution: `y` `[b, o, oh, ow]` from `x` `[b, c, h, w]` and `w` `[o, c, kh, kw]`.
pub fn conv2d_forward(x: &[f32], w: &[f32], g: &ConvGeom) -> Vec<f32> {
    conv2d_forward_fused(x, w, g, None, None, Activation::Identity)
}

/// What follows a convolution in inference, applied as its output is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Activation {
    /// Nothing.
    Identity,
    /// max(0, y).
    Relu,
    /// min(max(0, y), 6) (EfficientNet-Lite).
    Relu6,
}

impl Activation {
    #[inline]
    fn apply(self, y: f32) -> f32 {
        match self {
            Activation::Identity => y,
            Activation::Relu => y.max(0.0),
            Activation::Relu6 => y.clamp(0.0, 6.0),
        }
    }
}

/// [`conv2d_forward`] followed by a per-channel affine map `y·scale + shift` (either may be
/// absent) and an activation, fused into the pass that lays the GEMM's output out as
/// `[b, o, oh, ow]`: inference with the BatchNorm applied there instead of folded into the
/// weights, which would rewrite every weight on every call.
pub fn conv2d_forward_fused(
    x: &[f32],
    w: &[f32],
    g: &ConvGeom,
    scale: Option<&[f32]>,
    shift: Option<&[f32]>,
    act: Activation,
) -> Vec<f32> {
    let taps = g.live_taps();
    if by_image(g, taps.len()) {
        return forward_by_image(x, w, g, &taps, scale, shift, act);
    }
    if let Some(pairs) = batch_inner_pairs(g, &taps) {
        return forward_batch_inner(x, w, g, &taps, &pairs, scale, shift, act);
    }
    let col = im2col(x, g, &taps);
    let s = g.s();
    let yt = weight_times_col(w, &col, g, &taps);
    drop(col);
    if scale.is_none() && shift.is_none() && act == Activation::Identity {
        return swap_leading(&yt, g.o, g.b, s);
    }
    output_pass(&yt, g, scale, shift, act, false)
}

/// `W · col` (`[o × n]`) for an im2col matrix over the live taps `taps`: one GEMM with every
/// tap, else one product per live tap, `Y += W_t · col_t`, with `W_t` (`[o × c]`) read in
/// place from the weight (the other taps only read padding).
fn weight_times_col(w: &[f32], col: &[f32], g: &ConvGeom, taps: &[(usize, usize)]) -> Vec<f32> {
    let (nt, n) = (taps.len(), col.len() / (g.c * taps.len()).max(1));
    if nt == g.kh * g.kw {
        return matmul(g.o, n, g.k(), Mat::rows(w, g.k()), Mat::rows(col, n));
    }
    let mut yt = matmul(
        g.o,
        n,
        g.c,
        tap_weight(w, g, taps[0]),
        tap_rows(col, n, nt, 0),
    );
    for (t, &tap) in taps.iter().enumerate().skip(1) {
        let (w_t, col_t) = (tap_weight(w, g, tap), tap_rows(col, n, nt, t));
        matmul_into(&mut yt, n, g.o, n, g.c, w_t, col_t, true);
    }
    yt
}

/// `[b, o, oh, ow]` from a GEMM's `[o × b·oh·ow]` output, whose columns are `(image, pixel)`
/// or, when `batch_inner`, `(pixel, image)`, through a per-channel affine map and activation.
fn output_pass(
    yt: &[f32],
    g: &ConvGeom,
    scale: Option<&[f32]>,
    shift: Option<&[f32]>,
    act: Activation,
    batch_inner: bool,
) -> Vec<f32> {
    let (s, n) = (g.s(), g.n());
    if batch_inner {
        return batch_to_outer(yt, (g.b, g.o, s), scale, shift, act);
    }
    rows_filled_by(yt.len(), s, |idx, row| {
        let (bi, o) = (idx / g.o, idx % g.o);
        let (mul, add) = (scale.map_or(1.0, |m| m[o]), shift.map_or(0.0, |v| v[o]));
        for (d, v) in row.iter_mut().zip(&yt[o * n + bi * s..][..s]) {
            *d = act.apply(v * mul + add);
        }
    })
}

/// Output pixels per image from which a convolution runs image by image.
const BY_IMAGE_MIN_PIXELS: usize = 64;

/// Whether a convolution's forward and backward run image by image: output maps of at least
/// [`BY_IMAGE_MIN_PIXELS`] pixels with every tap live, and at least two images per core.
/// Each image's im2col block (`[c·kh·kw × oh·ow]`, e.g. 590 KB on ResNet's first stage at
/// 64 px) then stays in the core's cache while the GEMM packs it, and the product lands in the
/// output's `[b, o, oh, ow]` layout directly, with no batch-wide buffers or layout pass.
fn by_image(g: &ConvGeom, live_taps: usize) -> bool {
    live_taps == g.kh * g.kw
        && g.s() >= BY_IMAGE_MIN_PIXELS
        && g.b >= 2 * rayon::current_num_threads()
}

/// [`conv2d_forward_fused`] one image at a time (see [`by_image`]): `Y_b = W · col(X_b)`,
/// one single-threaded GEMM per image, images shared out between the cores.
fn forward_by_image(
    x: &[f32],
    w: &[f32],
    g: &ConvGeom,
    taps: &[(usize, usize)],
    scale: Option<&[f32]>,
    shift: Option<&[f32]>,
    act: Activation,
) -> Vec<f32> {
    let (s, k, nt, plane) = (g.s(), g.k(), taps.len(), g.h * g.w);
    let pairs = small_plane_pairs(g, taps);
    let per_core = g.b.div_ceil(rayon::current_num_threads());
    let mut y = uninit(g.b * g.o * s);
    y.par_chunks_mut(g.o * s)
        .with_min_len(per_core)
        .enumerate()
        .for_each_init(
            // Zeroed once per task; every image rewrites the same positions, so the padding
            // stays zero.
            || vec![0.0f32; k * s],
            |col, (bi, yb)| {
                for (r, row) in col.chunks_exact_mut(s).enumerate() {
                    let src = &x[(bi * g.c + r / nt) * plane..][..plane];
                    fill_col_row(src, g, taps, pairs.as_deref(), r % nt, row);
                }
                let yb =
                    product_into_unwritten(yb, g.o, s, k, Mat::rows(w, k), Mat::rows(col, s), 1);
                if scale.is_some() || shift.is_some() || act != Activation::Identity {
                    for (o, row) in yb.chunks_exact_mut(s).enumerate() {
                        let (mul, add) = (scale.map_or(1.0, |m| m[o]), shift.map_or(0.0, |b| b[o]));
                        for v in row.iter_mut() {
                            *v = act.apply(*v * mul + add);
                        }
                    }
                }
            },
        );
    // SAFETY: every image's chunk was written by `product_into_unwritten`.
    unsafe { assume_init(y) }
}

/// Images from which convolutions on narrow maps run with the batch as the innermost axis.
const BATCH_INNER_MIN_IMAGES: usize = 8;

/// The pair tables of [`small_plane_pairs`] when a convolution runs with the batch innermost
/// (see [`im2col_batch_inner`]): maps narrower than 8 pixels, at least
/// [`BATCH_INNER_MIN_IMAGES`] images and more than one live tap. With one tap (1×1
/// downsampling, 3×3 on 1×1 maps) each input value is read at most once, so the layout passes
/// cost more than the runs save (1×1 stride-2 backward 0.6–1.0 → 0.8–1.5 ms per layer at
/// 28 px).
fn batch_inner_pairs(g: &ConvGeom, taps: &[(usize, usize)]) -> Option<Vec<Vec<(u32, u32)>>> {
    (g.b >= BATCH_INNER_MIN_IMAGES && taps.len() > 1)
        .then(|| small_plane_pairs(g, taps))
        .flatten()
}

/// [`conv2d_forward_fused`] on maps narrower than 8 pixels (ResNet's later stages at small
/// sizes), with the batch as the innermost axis of the im2col columns (see
/// [`im2col_batch_inner`]); the output pass reads the product back into `[b, o, oh, ow]`.
#[allow(clippy::too_many_arguments)]
fn forward_batch_inner(
    x: &[f32],
    w: &[f32],
    g: &ConvGeom,
    taps: &[(usize, usize)],
    pairs: &[Vec<(u32, u32)>],
    scale: Option<&[f32]>,
    shift: Option<&[f32]>,
    act: Activation,
) -> Vec<f32> {
    let col = im2col_batch_inner(x, g, taps, pairs);
    let yt = weight_times_col(w, &col, g, taps);
    drop(col);
    output_pass(&yt, g, scale, shift, act, true)
}

/// `[b, c, s]` → `[c, s, b]`: an activation with the batch as its innermost axis.
fn batch_to_inner(x: &[f32], b: usize, c: usize, s: usize) -> Vec<f32> {
    chunks_filled_by(x.len(), s * b, 1, |ci, dst| {
        for bi in 0..b {
            let src = &x[(bi * c + ci) * s..][..s];
            for (p, v) in src.iter().enumerate() {
                dst[p * b + bi] = *v;
            }
        }
    })
}

/// `[c, s, b]` → `[b, c, s]`, the inverse of [`batch_to_inner`], through a per-channel affine
/// map and activation (the convolution's output pass; none for a gradient).
fn batch_to_outer(
    xt: &[f32],
    (b, c, s): (usize, usize, usize),
    scale: Option<&[f32]>,
    shift: Option<&[f32]>,
    act: Activation,
) -> Vec<f32> {
    rows_filled_by(xt.len(), s, |idx, row| {
        let (bi, ci) = (idx / c, idx % c);
        let (mul, add) = (scale.map_or(1.0, |m| m[ci]), shift.map_or(0.0, |v| v[ci]));
        let src = &xt[ci * s * b..][..s * b];
        for (q, d) in row.iter_mut().enumerate() {
            *d = act.apply(src[q * b + bi] * mul + add);
        }
    })
}

/// The im2col matrix of [`im2col`] with its columns ordered `(oy, ox, image)` instead of
/// `(image, oy, ox)`, for maps narrower than 8 pixels (`pairs` from [`small_plane_pairs`]):
/// each `(output, input)` pixel pair of a tap then moves `b` adjacent values instead of one,
/// after one pass that lays the input out as `[c, h·w, b]`.
fn im2col_batch_inner(
    x: &[f32],
    g: &ConvGeom,
    taps: &[(usize, usize)],
    pairs: &[Vec<(u32, u32)>],
) -> Vec<f32> {
    let (b, n, nt, plane) = (g.b, g.n(), taps.len(), g.h * g.w);
    let xt = batch_to_inner(x, b, g.c, plane);
    rows_filled_by(g.c * nt * n, n, |r, row| {
        let src = &xt[(r / nt) * plane * b..][..plane * b];
        for &(q, p) in &pairs[r % nt] {
            let (q, p) = (q as usize * b, p as usize * b);
            row[q..q + b].copy_from_slice(&src[p..p + b]);
        }
    })
}

/// The adjoint of [`im2col_batch_inner`]: `dX` `[b, c, h, w]` from a `dcol` whose columns are
/// `(oy, ox, image)`, summed as runs of `b` values into a `[c, h·w, b]` gradient first.
fn col2im_batch_inner(
    dcol: &[f32],
    g: &ConvGeom,
    taps: &[(usize, usize)],
    pairs: &[Vec<(u32, u32)>],
) -> Vec<f32> {
    let (b, n, nt, plane) = (g.b, g.n(), taps.len(), g.h * g.w);
    let dxt = chunks_filled_by(g.c * plane * b, plane * b, 1, |ci, dst| {
        for (t, pairs) in pairs.iter().enumerate() {
            let src = &dcol[(ci * nt + t) * n..][..n];
            for &(q, p) in pairs {
                let (q, p) = (q as usize * b, p as usize * b);
                for (d, v) in dst[p..p + b].iter_mut().zip(&src[q..q + b]) {
                    *d += v;
                }
            }
        }
    });
    batch_to_outer(&dxt, (b, g.c, plane), None, None, Activation::Identity)
}

/// Whether the input gradient's `dcol` is better computed transposed, `dcolᵀ = dYᵀ · W`
/// (`[n × k]`), on the batch-innermost path: every tap live and `k ≥ 32·n` (ResNet's last stage
/// at 64 px: `k` = 4608, `n` = 128), where gemm runs `Wᵀ · dY` about half as fast (2.2–2.9
/// against 4.7–5.5 ms per product, measured side by side; no other ResNet-18 shape at 28 or 64 px
/// gains more than the noise).
fn dcol_transposed(g: &ConvGeom, live_taps: usize) -> bool {
    live_taps == g.kh * g.kw && g.c * live_taps >= 32 * g.n()
}

/// [`col2im_batch_inner`] from the transposed `dcolᵀ` (`[n × c·taps]`, rows `(oy, ox, image)`):
/// image by image, each output pixel's row adds its live taps into the input pixels they read,
/// straight into `dX` `[b, c, h, w]`.
fn col2im_batch_inner_t(
    dcolt: &[f32],
    g: &ConvGeom,
    taps: &[(usize, usize)],
    pairs: &[Vec<(u32, u32)>],
) -> Vec<f32> {
    let (b, nt, plane) = (g.b, taps.len(), g.h * g.w);
    let k = g.c * nt;
    // Per output pixel, its (tap, input pixel) pairs.
    let mut by_out = vec![Vec::new(); g.s()];
    for (t, pairs) in pairs.iter().enumerate() {
        for &(q, p) in pairs {
            by_out[q as usize].push((t, p as usize));
        }
    }
    chunks_filled_by(b * g.c * plane, g.c * plane, 1, |bi, dxb| {
        for (q, list) in by_out.iter().enumerate() {
            let row = &dcolt[(q * b + bi) * k..][..k];
            for (d, vals) in dxb.chunks_exact_mut(plane).zip(row.chunks_exact(nt)) {
                for &(t, p) in list {
                    d[p] += vals[t];
                }
            }
        }
    })
}

/// Gradients of [`conv2d_forward`] with respect to its input (when `need_dx`) and its weight.
pub fn conv2d_backward(
    x: &[f32],
    w: &[f32],
    dy: &[f32],
    g: &ConvGeom,
    need_dx: bool,
) -> (Option<Vec<f32>>, Vec<f32>) {
    let taps = g.live_taps();
    if by_image(g, taps.len()) {
        return backward_by_image(x, w, dy, g, &taps, need_dx);
    }
    let (k, n) = (g.c * taps.len(), g.n());
    // dY as `[o × n]` and col(X), both with columns `(image, pixel)`, or on narrow maps
    // `(pixel, image)` (see `im2col_batch_inner`); the products do not depend on the order.
    let pairs = batch_inner_pairs(g, &taps);
    let (dyt, col) = match &pairs {
        Some(pairs) => (
            batch_to_inner(dy, g.b, g.o, g.s()),
            im2col_batch_inner(x, g, &taps, pairs),
        ),
        None => (swap_leading(dy, g.b, g.o, g.s()), im2col(x, g, &taps)),
    };
    let dw = if 16 * n >= k {
        // With many columns per row of `col` (early, wide layers) gemm runs the product far
        // faster with the long axis inside and the small weight gradient transposed after it:
        // dWᵀ = col(X) · dYᵀ (2–4× on the stem and the first stage, measured per layer).
        let dwt = matmul(k, g.o, n, Mat::rows(&col, n), Mat::transposed(&dyt, n));
        transpose(&dwt, k, g.o)
    } else {
        matmul(g.o, k, n, Mat::rows(&dyt, n), Mat::transposed(&col, n))
    };
    drop(col);
    let dx = need_dx.then(|| {
        if let Some(pairs) = pairs.as_deref().filter(|_| dcol_transposed(g, taps.len())) {
            let dcolt = matmul(n, k, g.o, Mat::transposed(&dyt, n), Mat::rows(w, k));
            return col2im_batch_inner_t(&dcolt, g, &taps, pairs);
        }
        let dcol = if taps.len() == g.kh * g.kw {
            matmul(k, n, g.o, Mat::transposed(w, k), Mat::rows(&dyt, n))
        } else {
            // `dcol_t = W_tᵀ · dY` into rows `(ci, t)` of dcol, one product per live tap.
            let mut dcol = vec![0.0f32; k * n];
            let nt = taps.len();
            for (t, &tap) in taps.iter().enumerate() {
                let w_t = tap_weight(w, g, tap);
                let w_tt = Mat {
                    data: w_t.data,
                    rs: w_t.cs,
                    cs: w_t.rs,
                };
                let dst = &mut dcol[t * n..];
                matmul_into(dst, nt * n, g.c, n, g.o, w_tt, Mat::rows(&dyt, n), false);
            }
            dcol
        };
        match &pairs {
            Some(pairs) => col2im_batch_inner(&dcol, g, &taps, pairs),
            None => col2im(dcol, g, &taps),
        }
    });
    (dx, scatter_taps(dw, g, &taps))
}

/// [`conv2d_backward`] one image at a time (see [`by_image`]), every tap live: per image,
/// `dW += dY_b · col(X_b)ᵀ` into a per-core sum and `dX_b = col⁻¹(Wᵀ · dY_b)`, each image's
/// `col` and `dcol` blocks in cache and `dY_b` read in its `[o, oh·ow]` layout directly.
fn backward_by_image(
    x: &[f32],
    w: &[f32],
    dy: &[f32],
    g: &ConvGeom,
    taps: &[(usize, usize)],
    need_dx: bool,
) -> (Option<Vec<f32>>, Vec<f32>) {
    let (s, k, nt, plane) = (g.s(), g.k(), taps.len(), g.h * g.w);
    let pairs = small_plane_pairs(g, taps);
    let per_core = g.b.div_ceil(rayon::current_num_threads());
    // As in the batch path: wide layers compute dWᵀ = col · dYᵀ, `gemm`'s faster orientation.
    let transposed = 16 * s >= k;
    let mut dx = uninit(if need_dx { g.b * g.c * plane } else { 0 });
    let images: Vec<Option<&mut [MaybeUninit<f32>]>> = if need_dx {
        dx.chunks_mut(g.c * plane).map(Some).collect()
    } else {
        (0..g.b).map(|_| None).collect()
    };
    let dw = images
        .into_par_iter()
        .enumerate()
        .with_min_len(per_core)
        .fold(
            // Zeroed once per task; every image rewrites the same positions of `col`.
            || (vec![0.0f32; k * s], Vec::new(), vec![0.0f32; k * g.o], true),
            |(mut col, mut dcol, mut dw, first), (bi, dxb)| {
                for (r, row) in col.chunks_exact_mut(s).enumerate() {
                    let src = &x[(bi * g.c + r / nt) * plane..][..plane];
                    fill_col_row(src, g, taps, pairs.as_deref(), r % nt, row);
                }
                let dyb = &dy[bi * g.o * s..][..g.o * s];
                if transposed {
                    let (a, b) = (Mat::rows(&col, s), Mat::transposed(dyb, s));
                    matmul_serial(&mut dw, k, g.o, s, a, b, !first);
                } else {
                    let (a, b) = (Mat::rows(dyb, s), Mat::transposed(&col, s));
                    matmul_serial(&mut dw, g.o, k, s, a, b, !first);
                }
                if let Some(dxb) = dxb {
                    let dxb = zeroed(dxb);
                    dcol.resize(k * s, 0.0);
                    let (a, b) = (Mat::transposed(w, k), Mat::rows(dyb, s));
                    matmul_serial(&mut dcol, k, s, g.o, a, b, false);
                    for (r, row) in dcol.chunks_exact_mut(s).enumerate() {
                        let dst = &mut dxb[(r / nt) * plane..][..plane];
                        if pairs.is_none() {
                            zero_row_edges(row, g, taps[r % nt]);
                        }
                        add_col_row(dst, g, taps, pairs.as_deref(), r % nt, row);
                    }
                }
                (col, dcol, dw, false)
            },
        )
        .map(|(_, _, dw, _)| dw)
        .reduce_with(|mut a, b| {
            a.iter_mut().zip(&b).for_each(|(a, b)| *a += b);
            a
        })
        .unwrap_or_else(|| vec![0.0f32; k * g.o]);
    let dw = if transposed {
        transpose(&dw, k, g.o)
    } else {
        dw
    };
    // SAFETY: with `need_dx`, every image's chunk went through `zeroed`; otherwise it is empty.
    let dx = unsafe { assume_init(dx) };
    (need_dx.then_some(dx), dw)
}

/// Tap `(i, j)` of the weight `[o × c·kh·kw]` as an `[o × c]` matrix, read in place.
fn tap_weight<'a>(w: &'a [f32], g: &ConvGeom, (i, j): (usize, usize)) -> Mat<'a> {
    let kk = g.kh * g.kw;
    Mat {
        data: &w[i * g.kw + j..],
        rs: g.c * kk,
        cs: kk,
    }
}

/// The rows of tap `t` (of `nt`) in an im2col matrix with `n` columns, as a `[c × n]` matrix.
fn tap_rows(col: &[f32], n: usize, nt: usize, t: usize) -> Mat<'_> {
    Mat {
        data: &col[t * n..],
        rs: nt * n,
        cs: 1,
    }
}

/// A weight gradient over the live taps, `[o × c·taps]`, spread into `[o × c·kh·kw]` with
/// zeros at the taps that only read padding.
fn scatter_taps(dw: Vec<f32>, g: &ConvGeom, taps: &[(usize, usize)]) -> Vec<f32> {
    let (kk, nt) = (g.kh * g.kw, taps.len());
    if nt == kk {
        return dw;
    }
    let mut full = vec![0.0f32; dw.len() / nt * kk];
    full.par_chunks_mut(g.c * kk)
        .zip(dw.par_chunks(g.c * nt))
        .for_each(|(dst, src)| {
            for (d, s) in dst.chunks_exact_mut(kk).zip(src.chunks_exact(nt)) {
                for (&(i, j), v) in taps.iter().zip(s) {
                    d[i * g.kw + j] = *v;
                }
            }
        });
    full
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Direct 7-loop convolution, the definition.
    fn naive(x: &[f32], w: &[f32], g: &ConvGeom) -> Vec<f32> {
        let mut y = vec![0.0; g.b * g.o * g.s()];
        for b in 0..g.b {
            for o in 0..g.o {
                for oy in 0..g.oh {
                    for ox in 0..g.ow {
                        let mut acc = 0.0;
                        for c in 0..g.c {
                            for i in 0..g.kh {
                                for j in 0..g.kw {
                                    let iy = (oy * g.stride[0] + i * g.dilation[0]) as isize
                                        - g.pad[0] as isize;
                                    let ix = (ox * g.stride[1] + j * g.dilation[1]) as isize
                                        - g.pad[1] as isize;
                                    if iy >= 0
                                        && ix >= 0
                                        && (iy as usize) < g.h
                                        && (ix as usize) < g.w
                                    {
                                        acc += x[((b * g.c + c) * g.h + iy as usize) * g.w
                                            + ix as usize]
                                            * w[((o * g.c + c) * g.kh + i) * g.kw + j];
                                    }
                                }
                            }
                        }
                        y[((b * g.o + o) * g.oh + oy) * g.ow + ox] = acc;
                    }
                }
            }
        }
        y
    }

    fn ramp(n: usize, seed: f32) -> Vec<f32> {
        (0..n)
            .map(|i| (i as f32 * 0.37 + seed).sin() * 1.3)
            .collect()
    }

    /// Input shape, weight shape, stride, padding (before, after) per axis, dilation.
    type Case = (
        [usize; 4],
        [usize; 4],
        [usize; 2],
        [(usize, usize); 2],
        [usize; 2],
    );

    /// Geometries for the kernels' special paths, in both tests: rows of 8 pixels or more take
    /// the span copies (shifted, then strided), narrower ones the pair tables; taps over padding
    /// only (one live tap of 9, then four).
    const PATH_CASES: [Case; 4] = [
        (
            [1, 2, 9, 10],
            [3, 2, 3, 3],
            [1, 1],
            [(1, 1), (1, 1)],
            [1, 1],
        ),
        (
            [1, 2, 9, 20],
            [2, 2, 3, 3],
            [1, 2],
            [(1, 1), (1, 1)],
            [1, 1],
        ),
        ([2, 3, 1, 1], [4, 3, 3, 3], [1, 1], [(1, 1), (1, 1)], [1, 1]),
        ([2, 5, 2, 2], [3, 5, 3, 3], [2, 2], [(1, 1), (1, 1)], [1, 1]),
    ];

    #[test]
    fn forward_equals_the_definition() {
        for (xs, ws, st, pad, dil) in [
            ([2, 3, 7, 6], [4, 3, 3, 3], [1, 1], [(1, 1), (1, 1)], [1, 1]),
            ([1, 2, 9, 8], [3, 2, 3, 3], [2, 2], [(1, 1), (0, 2)], [1, 1]),
            ([3, 4, 5, 5], [2, 4, 1, 1], [1, 1], [(0, 0), (0, 0)], [1, 1]),
            (
                [1, 3, 11, 11],
                [2, 3, 7, 7],
                [2, 2],
                [(3, 3), (3, 3)],
                [1, 1],
            ),
            ([2, 2, 8, 7], [2, 2, 3, 2], [1, 2], [(2, 0), (1, 1)], [2, 1]),
            // Batches of 8+ on narrow maps: the batch-innermost path (all taps, then dead taps).
            ([8, 3, 5, 6], [4, 3, 3, 3], [1, 1], [(1, 1), (1, 1)], [1, 1]),
            ([9, 2, 5, 5], [3, 2, 3, 3], [2, 2], [(1, 1), (1, 1)], [1, 1]),
            ([8, 4, 2, 2], [3, 4, 3, 3], [2, 2], [(1, 1), (1, 1)], [1, 1]),
        ]
        .into_iter()
        .chain(PATH_CASES)
        {
            let g = ConvGeom::new(xs, ws, st, pad, dil);
            let x = ramp(xs.iter().product(), 0.1);
            let w = ramp(ws.iter().product(), 0.7);
            let want = naive(&x, &w, &g);
            let taps = g.live_taps();
            let mut paths = vec![conv2d_forward(&x, &w, &g)];
            if let Some(pairs) = small_plane_pairs(&g, &taps) {
                let id = Activation::Identity;
                paths.push(forward_batch_inner(
                    &x, &w, &g, &taps, &pairs, None, None, id,
                ));
            }
            if taps.len() == g.kh * g.kw {
                let id = Activation::Identity;
                paths.push(forward_by_image(&x, &w, &g, &taps, None, None, id));
                // With BatchNorm's affine map and ReLU applied in the output pass.
                let scale: Vec<f32> = (0..g.o).map(|o| 0.5 + o as f32 * 0.25).collect();
                let shift: Vec<f32> = (0..g.o).map(|o| o as f32 * 0.3 - 0.4).collect();
                let relu = Activation::Relu;
                let got = forward_by_image(&x, &w, &g, &taps, Some(&scale), Some(&shift), relu);
                for (i, (a, b)) in got.iter().zip(&want).enumerate() {
                    let o = (i / g.s()) % g.o;
                    let b = (b * scale[o] + shift[o]).max(0.0);
                    assert!((a - b).abs() < 1e-4, "{g:?}: {a} vs {b}");
                }
            }
            for got in paths {
                for (a, b) in got.iter().zip(&want) {
                    assert!((a - b).abs() < 1e-4, "{g:?}: {a} vs {b}");
                }
            }
        }
    }

    #[test]
    fn backward_is_the_adjoint_of_forward() {
        // <dy, conv(x, w)> is bilinear: its derivative in x is dX, in w is dW. The second
        // geometry (stride 1, same width) takes the shifted-span path of im2col and col2im.
        let (mut batch_inner, mut transposed) = (0, 0);
        for (xs, ws, st, pad, dil) in [
            ([2, 3, 6, 5], [4, 3, 3, 3], [2, 1], [(1, 1), (1, 0)], [1, 1]),
            ([2, 3, 6, 5], [4, 3, 3, 3], [1, 1], [(1, 1), (1, 1)], [1, 1]),
            ([1, 2, 7, 6], [3, 2, 3, 3], [1, 1], [(0, 2), (2, 2)], [1, 2]),
            // Maps of 64+ pixels in batches of 4, where the image-by-image path runs.
            ([4, 3, 9, 8], [4, 3, 3, 3], [1, 1], [(1, 1), (1, 1)], [1, 1]),
            (
                [4, 3, 17, 16],
                [2, 3, 7, 7],
                [2, 2],
                [(3, 3), (3, 3)],
                [1, 1],
            ),
            // Fewer columns than rows in col(X) (a 1×1 map, as in ResNet's last stage at 28 px).
            ([2, 8, 1, 1], [3, 8, 3, 3], [1, 1], [(1, 1), (1, 1)], [1, 1]),
            // Batches of 8+ on narrow maps: columns `(pixel, image)` (all taps, stride 2, and
            // dead taps).
            ([8, 3, 5, 6], [4, 3, 3, 3], [1, 1], [(1, 1), (1, 1)], [1, 1]),
            ([9, 2, 5, 5], [3, 2, 3, 3], [2, 2], [(1, 1), (1, 1)], [1, 1]),
            ([8, 4, 2, 2], [3, 4, 3, 3], [2, 2], [(1, 1), (1, 1)], [1, 1]),
            // Many more rows than columns in col(X): `dcol` computed transposed.
            (
                [8, 128, 2, 2],
                [4, 128, 3, 3],
                [1, 1],
                [(1, 1), (1, 1)],
                [1, 1],
            ),
        ]
        .into_iter()
        .chain(PATH_CASES)
        {
            let g = ConvGeom::new(xs, ws, st, pad, dil);
            let inner = batch_inner_pairs(&g, &g.live_taps()).is_some();
            batch_inner += inner as usize;
            transposed += (inner && dcol_transposed(&g, g.live_taps().len())) as usize;
            let x = ramp(xs.iter().product(), 0.2);
            let w = ramp(ws.iter().product(), 0.5);
            let dy = ramp(g.b * g.o * g.s(), 0.9);
            let f = |x: &[f32], w: &[f32]| -> f64 {
                naive(x, w, &g)
                    .iter()
                    .zip(&dy)
                    .map(|(a, b)| (a * b) as f64)
                    .sum()
            };
            let taps = g.live_taps();
            let mut paths = vec![conv2d_backward(&x, &w, &dy, &g, true)];
            if taps.len() == g.kh * g.kw {
                paths.push(backward_by_image(&x, &w, &dy, &g, &taps, true));
                // Without the input gradient, the same weight gradient.
                let (none, dw) = backward_by_image(&x, &w, &dy, &g, &taps, false);
                assert!(none.is_none());
                assert_eq!(dw, paths[1].1, "{g:?}");
            }
            for (dx, dw) in paths {
                let dx = dx.unwrap();
                for idx in (0..x.len()).step_by(7) {
                    let mut xp = x.clone();
                    xp[idx] += 1.0;
                    let fd = f(&xp, &w) - f(&x, &w); // exact: f is linear in x
                    assert!(
                        (fd - dx[idx] as f64).abs() < 1e-3,
                        "{g:?} dx[{idx}] {} vs {fd}",
                        dx[idx]
                    );
                }
                for idx in (0..w.len()).step_by(5) {
                    let mut wp = w.clone();
                    wp[idx] += 1.0;
                    let fd = f(&x, &wp) - f(&x, &w);
                    assert!(
                        (fd - dw[idx] as f64).abs() < 1e-3,
                        "{g:?} dw[{idx}] {} vs {fd}",
                        dw[idx]
                    );
                }
            }
        }
        assert_eq!(batch_inner, 4, "cases on the batch-innermost path");
        assert_eq!(transposed, 1, "cases with dcol transposed");
    }

    #[test]
    fn valid_ranges_cover_exactly_the_inside() {
        for (n_in, s, pad, off) in [
            (5usize, 1usize, 1usize, 0usize),
            (5, 2, 1, 2),
            (4, 3, 0, 1),
            (1, 1, 3, 6),
            (7, 2, 3, 0),
        ] {
            let n_out = (n_in + 2 * pad).saturating_sub(off) / s + 1;
            let (lo, hi) = valid_range(n_in, n_out, s, pad, off);
            for t in 0..n_out {
                let p = (t * s + off) as isize - pad as isize;
                assert_eq!(
                    (lo..hi).contains(&t),
                    p >= 0 && p < n_in as isize,
                    "{n_in} {s} {pad} {off} t={t}"
                );
            }
        }
    }
}
