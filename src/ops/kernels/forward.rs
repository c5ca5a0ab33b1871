//! The forward convolution `Y = W · col(X)`, with inference's affine map and activation fused
//! into the output pass.

use std::sync::Arc;

use rayon::prelude::*;

use super::affine::*;
use super::bf16::{self, Left, Packed, Pairs, Planes, Right, ShiftMask};
use super::buffers::*;
use super::by_pixel;
use super::frozen::{Part, kept_weight, kept_weight_with, left};
use super::gemm::*;
use super::geom::*;
use super::im2col::*;
use super::one_pixel;
use super::phases::*;
use std::mem::MaybeUninit;

/// Forward convolution: `y` `[b, o, oh, ow]` from `x` `[b, c, h, w]` and `w` `[o, c, kh, kw]`.
pub fn conv2d_forward(x: &[f32], w: &[f32], g: &ConvGeom) -> Vec<f32> {
    conv2d_forward_fused(x, w, g, None, None, Activation::Identity)
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
    if let Some(g2) = phase_geom(g) {
        // A strided stem as a stride-1 convolution over the input's phases, on the reduction
        // rows its weight has.
        let rows = phase_rows(g, &g2);
        let (x2, w2) = (phase_input(x, g, &g2), phase_weight(w, g, &g2));
        let taps = g2.live_taps();
        return forward_by_image(&x2, &w2, &g2, &taps, Some(&rows), scale, shift, act);
    }
    let taps = g.live_taps();
    if by_pixel::applies(g, &taps)
        && let Some(y) = by_pixel::forward((x, w, g), (scale, shift, act))
    {
        return y;
    }
    if one_pixel::applies(g, &taps) {
        let yt = one_pixel::product(x, w, g, &taps);
        // Columns `(pixel, image)` with one pixel: the batch-innermost output pass.
        return output_pass(&yt, g, scale, shift, act, true);
    }
    if by_image(g, taps.len()) {
        return forward_by_image(x, w, g, &taps, None, scale, shift, act);
    }
    let inner = batch_inner_pairs(g, &taps);
    forward_batch(x, w, g, &taps, inner.as_deref(), scale, shift, act)
}

/// [`conv2d_forward_fused`] on the whole batch at once: one im2col matrix, its columns
/// `(image, pixel)`, or on narrow maps `(pixel, image)` where `inner` holds the pair tables of
/// [`batch_inner_pairs`].
#[allow(clippy::too_many_arguments)]
pub(super) fn forward_batch(
    x: &[f32],
    w: &[f32],
    g: &ConvGeom,
    taps: &[(usize, usize)],
    inner: Option<&[Vec<(u32, u32)>]>,
    scale: Option<&[f32]>,
    shift: Option<&[f32]>,
    act: Activation,
) -> Vec<f32> {
    let yt = if g.mul.is_bf16() && bf16::supports(g.mul) {
        // bf16 products read col(X) as pairs, made straight from the input.
        // An odd channel count cannot pair channels of one tap: tap by tap too.
        let by_tap = |p: &&[Vec<(u32, u32)>]| live_columns(g, p) || !g.c.is_multiple_of(2);
        if let Some(pairs) = inner.filter(by_tap) {
            let blocks = im2col_inner_pairs(x, g, pairs, false);
            let yt = weight_times_live_cols(w, &blocks, g, taps, pairs);
            return output_pass(&yt, g, scale, shift, act, true);
        }
        match im2col_pairs(x, g, taps, inner) {
            ColPairs::Blocks(cols) => weight_times_col(w, Col::Pairs(&cols), g, taps),
            ColPairs::TapMajor(cols) => weight_times_col(w, Col::TapMajor(&cols), g, taps),
        }
    } else {
        let col = match inner {
            Some(pairs) => im2col_batch_inner(x, g, taps, pairs),
            None => im2col(x, g, taps),
        };
        weight_times_col(w, Col::F32(&col), g, taps)
    };
    let plain = scale.is_none() && shift.is_none() && act == Activation::Identity;
    if inner.is_none() && plain {
        return swap_leading(&yt, g.o, g.b, g.s());
    }
    output_pass(&yt, g, scale, shift, act, inner.is_some())
}

/// col(X) as the forward's products read it: f32 rows `(ci, t)`, or bf16 pairs (see
/// [`im2col_pairs`]).
#[derive(Clone, Copy)]
pub(super) enum Col<'a> {
    /// The im2col matrix, `[c·taps × n]`.
    F32(&'a [f32]),
    /// One block of pairs for every row, or one per live tap.
    Pairs(&'a [Pairs]),
    /// One block of pairs for every row, rows `(t, ci)` (see [`im2col_pairs`]).
    TapMajor(&'a Pairs),
}

impl<'a> Col<'a> {
    /// The whole matrix (every tap live), `n` columns.
    fn all(self, n: usize) -> Right<'a> {
        match self {
            Col::F32(col) => Right::Mat(Mat::rows(col, n)),
            Col::Pairs(blocks) => Right::from(&blocks[0]),
            Col::TapMajor(pairs) => Right::from(pairs),
        }
    }

    /// The `[c × n]` rows of tap `t` of `nt`.
    fn tap(self, n: usize, nt: usize, t: usize) -> Right<'a> {
        match self {
            Col::F32(col) => Right::Mat(tap_rows(col, n, nt, t)),
            Col::Pairs(blocks) => Right::from(&blocks[t]),
            Col::TapMajor(_) => unreachable!("tap-major pairs hold every tap"),
        }
    }
}

/// `W · col` (`[o × n]`) for an im2col matrix over the live taps `taps`: one GEMM with every
/// tap, else one product per live tap, `Y += W_t · col_t`, with `W_t` (`[o × c]`) read in
/// place from the weight (the other taps only read padding). Under `with_frozen_weights` each
/// bf16 weight operand comes packed from there.
pub(super) fn weight_times_col(
    w: &[f32],
    col: Col,
    g: &ConvGeom,
    taps: &[(usize, usize)],
) -> Vec<f32> {
    let (nt, n) = (taps.len(), g.n());
    // Packed here only where it is kept across calls; otherwise each core packs its part.
    let weight =
        |a: Mat<'_>, k: usize, part: Part| kept_weight(g.weight_id, a, g.o, k, g.mul, part);
    if let Col::TapMajor(_) = col {
        // The weight's reduction values reordered as col(X)'s rows, `(t, ci)`.
        let shape = (g.o, g.k(), g.mul, Part::TapMajor);
        let packed = kept_weight_with(g.weight_id, w, shape, || {
            Packed::new(Mat::rows(&tap_major_weight(w, g), g.k()), g.o, g.k(), g.mul)
        });
        let owned;
        let a = match &packed {
            Some(p) => Left::Packed(p),
            None => {
                owned = tap_major_weight(w, g);
                Left::Mat(Mat::rows(&owned, g.k()))
            }
        };
        return matmul_left(g.o, n, g.k(), a, col.all(n), g.mul);
    }
    if nt == g.kh * g.kw {
        let a = Mat::rows(w, g.k());
        let packed = weight(a, g.k(), Part::All);
        return matmul_left(g.o, n, g.k(), left(a, &packed), col.all(n), g.mul);
    }
    let tap_index = |(i, j): (usize, usize)| Part::Tap(i * g.kw + j);
    let w_0 = tap_weight(w, g, taps[0]);
    let packed = weight(w_0, g.c, tap_index(taps[0]));
    let a = left(w_0, &packed);
    let mut yt = matmul_left(g.o, n, g.c, a, col.tap(n, nt, 0), g.mul);
    let threads = rayon::current_num_threads();
    for (t, &tap) in taps.iter().enumerate().skip(1) {
        let (w_t, col_t) = (tap_weight(w, g, tap), col.tap(n, nt, t));
        let packed = weight(w_t, g.c, tap_index(tap));
        let a = left(w_t, &packed);
        product_into(&mut yt, n, g.o, n, g.c, a, col_t, true, threads, g.mul);
    }
    yt
}

/// On the batch-innermost path, the share of live `(pixel, tap)` pairs (see [`live_share`])
/// at or below which each tap is multiplied only where it reads inside the image
/// ([`weight_times_live_cols`]).
pub(super) const LIVE_COLUMNS_MAX_SHARE: f64 = 0.75;

/// Input channels from which the taps of a batch-innermost layer are multiplied on their live
/// columns whatever the share: each tap's product then reduces over at least one whole slice
/// of the bf16 kernels. ResNet's last stage at 224 px (7×7 maps, share 0.82, 512 channels):
/// forward 0.80× per layer; its first stage at 28 px (7×7, 64 channels): inference 0.97×.
pub(super) const LIVE_COLUMNS_MIN_CHANNELS: usize = 256;

/// Whether [`forward_batch`] multiplies each tap on its live columns only (bf16, batch
/// innermost, `pairs` the taps' pixel pairs).
pub(super) fn live_columns(g: &ConvGeom, pairs: &[Vec<(u32, u32)>]) -> bool {
    let share = live_share(g, pairs);
    share < 1.0 && (share <= LIVE_COLUMNS_MAX_SHARE || g.c >= LIVE_COLUMNS_MIN_CHANNELS)
}

/// `W · col` on the batch-innermost path with each tap multiplied only on the output pixels
/// where it reads inside the image (`pairs[t]`): `Y[:, run] += W_t · col_t[:, run]` over the
/// tap's runs of adjacent pixels, `b` columns each, where one product over every column
/// multiplies the padding's zeros too (2×2 maps, 3×3 kernels: 5 of each pixel's 9 taps).
/// `blocks` holds col(X) per live tap ([`im2col_inner_pairs`]); the cores split the columns,
/// balancing the live taps.
fn weight_times_live_cols(
    w: &[f32],
    blocks: &[Pairs],
    g: &ConvGeom,
    taps: &[(usize, usize)],
    pairs: &[Vec<(u32, u32)>],
) -> Vec<f32> {
    let (n, b) = (g.n(), g.b);
    let index = |(i, j): (usize, usize)| i * g.kw + j;
    let kept: Vec<_> = taps
        .iter()
        .map(|&tap| {
            let a = tap_weight(w, g, tap);
            kept_weight(g.weight_id, a, g.o, g.c, g.mul, Part::Tap(index(tap)))
        })
        .collect();
    // Outside inference each tap's weight is packed once here, from the tap-major copy whose
    // rows are contiguous, for the products of both cores.
    let fresh: Vec<Option<Packed>> = if kept.iter().all(Option::is_some) {
        vec![]
    } else {
        let wt = tap_major_weight(w, g);
        taps.par_iter()
            .map(|&tap| {
                let a = Mat::rows(&wt[index(tap) * g.c..], g.k());
                Packed::new(a, g.o, g.c, g.mul)
            })
            .collect()
    };
    let mut work = vec![0usize; g.s()];
    pairs
        .iter()
        .flatten()
        .for_each(|&(q, _)| work[q as usize] += 1);
    let terms: Vec<RunTerm> = live_runs(pairs, b)
        .into_iter()
        .enumerate()
        .map(|(t, runs)| {
            let packed = kept[t].as_deref().or(fresh.get(t).and_then(Option::as_ref));
            let a = packed.map_or(Left::Mat(tap_weight(w, g, taps[t])), Left::Packed);
            (a, Right::from(&blocks[t]), runs)
        })
        .collect();
    let parts = rayon::current_num_threads();
    let total: usize = work.iter().sum();
    let (mut splits, mut done) = (vec![0], 0);
    for (q, live) in work.iter().enumerate() {
        done += live;
        if splits.len() < parts && done * parts >= total * splits.len() {
            splits.push((q + 1) * b);
        }
    }
    if splits.last() != Some(&n) {
        splits.push(n);
    }
    sum_over_column_runs(g.o, n, g.c, &terms, &splits, g.mul)
}

/// `[b, o, oh, ow]` from a GEMM's `[o × b·oh·ow]` output, whose columns are `(image, pixel)`
/// or, when `batch_inner`, `(pixel, image)`, through a per-channel affine map and activation.
pub(super) fn output_pass(
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
    rows_from(yt.len(), s, |idx| {
        let (bi, o) = (idx / g.o, idx % g.o);
        let (mul, add) = channel_affine(scale, shift, o);
        yt[o * n + bi * s..][..s]
            .iter()
            .map(move |v| act.apply(v * mul + add))
    })
}

/// [`conv2d_forward_fused`] one image at a time (see [`by_image`]): `Y_b = W · col(X_b)`,
/// one single-threaded GEMM per image, images shared out between the cores.
#[allow(clippy::too_many_arguments)]
pub(super) fn forward_by_image(
    x: &[f32],
    w: &[f32],
    g: &ConvGeom,
    taps: &[(usize, usize)],
    kept: Option<&[usize]>,
    scale: Option<&[f32]>,
    shift: Option<&[f32]>,
    act: Activation,
) -> Vec<f32> {
    let (s, nt, plane) = (g.s(), taps.len(), g.h * g.w);
    let pairs = small_plane_pairs(g, taps);
    let planes = kept.is_none() && reads_planes(g, nt);
    // In bf16 pairs, where taps read shifted planes, rounded straight from the input.
    let shifted = (g.mul.is_bf16() && pairs.is_none() && !planes)
        .then(|| shifted_taps(g, taps))
        .flatten();
    // The reduction rows: every `(ci, t)`, or those `kept` lists (rounded from shifted planes
    // only), the weight `[o × kept]`.
    assert!(
        kept.is_none_or(|rows| shifted.is_some() && rows.iter().all(|&r| r < g.c * nt)),
        "reduction rows kept without shifted planes"
    );
    let k = kept.map_or(g.c * nt, <[usize]>::len);
    let per_core = g.b.div_ceil(rayon::current_num_threads());
    // In bf16 the weight is rounded and packed once for every image (and every call, under
    // `with_frozen_weights`).
    let a = Mat::rows(w, k);
    let packed = if planes {
        // Over planes the reduction runs tap-major, `(t, ci)`.
        let tap_major = || Packed::new(Mat::rows(&tap_major_weight(w, g), k), g.o, k, g.mul);
        kept_weight_with(g.weight_id, w, (g.o, k, g.mul, Part::TapMajor), tap_major)
            .or_else(|| tap_major().map(Arc::new))
    } else {
        kept_weight(g.weight_id, a, g.o, k, g.mul, Part::All)
            .or_else(|| Packed::new(a, g.o, k, g.mul).map(Arc::new))
    };
    let weight = packed
        .as_deref()
        .map_or(Left::Mat(Mat::rows(w, k)), Left::Packed);
    let mut y = uninit(g.b * g.o * s);
    y.par_chunks_mut(g.o * s)
        .with_min_len(per_core)
        .enumerate()
        .for_each_init(
            // Zeroed once per task; every image rewrites the same positions, so the padding
            // stays zero.
            || ColBuffer::new(g, k, nt, shifted.as_deref(), planes),
            |col, (bi, yb)| {
                let xb = &x[bi * g.c * plane..][..g.c * plane];
                let fill = |r: usize, row: &mut [f32]| {
                    let src = &xb[(r / nt) * plane..][..plane];
                    fill_col_row(src, g, taps, pairs.as_deref(), r % nt, row);
                };
                let yb = match col {
                    ColBuffer::Planes(planes, out) => {
                        planes.fill(xb);
                        let (wp, rows) = (planes.wp(), out.len() / (g.o * planes.wp()));
                        for r0 in (0..g.oh).step_by(rows) {
                            let cols = (g.oh - r0).min(rows) * wp;
                            let b = Right::Planes(planes, r0 * wp);
                            let out = &mut out[..g.o * cols];
                            let out =
                                product_into_unwritten(out, g.o, cols, k, weight, b, 1, g.mul);
                            // Each output row without the padding columns computed beside
                            // it, through inference's affine map and activation.
                            for (o, src) in out.chunks_exact(cols).enumerate() {
                                let (mul, add) = channel_affine(scale, shift, o);
                                let dst = &mut yb[o * s + r0 * g.ow..][..cols / wp * g.ow];
                                let rows = dst.chunks_exact_mut(g.ow).zip(src.chunks_exact(wp));
                                for (d, src) in rows {
                                    write_affine(d, &src[..g.ow], mul, add, act);
                                }
                            }
                        }
                        return;
                    }
                    ColBuffer::F32(col) => {
                        for (r, row) in col.chunks_exact_mut(s).enumerate() {
                            fill(r, row);
                        }
                        product_into_unwritten(yb, g.o, s, k, weight, Mat::rows(col, s), 1, g.mul)
                    }
                    ColBuffer::Shifted(sh) => {
                        // The product rounds and packs col(X) panel by panel from the planes.
                        let rows = shifted_rows(xb, (k, nt, plane), sh, kept);
                        let b = Right::Shifted(&rows, 0);
                        product_into_unwritten(yb, g.o, s, k, weight, b, 1, g.mul)
                    }
                    ColBuffer::Pairs(rows, col) => {
                        // Two rows of col(X) at a time, in f32 (one buffer per tap, so each
                        // keeps its padding zeros), then rounded into one pair row; or, on
                        // shifted planes, rounded from the input directly.
                        let slots = nt.max(2);
                        for p in 0..k.div_ceil(2) {
                            let out = col.row_mut(p);
                            match &shifted {
                                Some(sh) => {
                                    fill_shifted_pair_row(out, p, (k, nt, plane), xb, sh, kept)
                                }
                                None => fill_pair_row(out, p, (k, s, slots), rows, fill),
                            }
                        }
                        product_into_unwritten(yb, g.o, s, k, weight, &*col, 1, g.mul)
                    }
                };
                affine_act(yb, s, scale, shift, act);
            },
        );
    // SAFETY: every image's chunk was written by a product into unwritten memory, or over
    // planes row by row from the product's output.
    unsafe { assume_init(y) }
}

/// One task's im2col buffer for [`forward_by_image`]: one image's `col(X)` in f32, or for bf16
/// products one f32 row per tap (at least two) and the image's `col(X)` in bf16 pairs, which
/// the products read in place (the f32 matrix, 4 bytes a value, is never written).
enum ColBuffer<'a> {
    /// The image's planes (see [`reads_planes`]) and the products' output before its padding
    /// columns are dropped, a few rows at a time.
    Planes(Planes, Vec<MaybeUninit<f32>>),
    F32(Vec<f32>),
    Pairs(Vec<f32>, Pairs),
    /// No buffer, on maps of [`PACKED_FROM_PLANES`] pixels or more: the product packs col(X)
    /// straight from the image's shifted planes through these taps.
    Shifted(&'a [(isize, ShiftMask)]),
}

/// Output pixels from which a bf16 image-by-image product packs its right operand panel by
/// panel straight from the shifted input planes (`bf16::Right::Shifted`) instead of reading
/// the image's col(X) written whole in pairs first: ResNet's stem at 224 px (12 544 pixels)
/// forward 1.13× (21 rounds alternating in one process), the first stage at 224 px (3 136
/// pixels) 0.98×.
const PACKED_FROM_PLANES: usize = 4096;

impl<'a> ColBuffer<'a> {
    /// Zeroed buffers for one image of `g` with `nt` live taps and `k` reduction rows (no f32
    /// rows where every pair row is rounded from shifted planes, no buffer at all where the
    /// product packs from them).
    fn new(
        g: &ConvGeom,
        k: usize,
        nt: usize,
        shifted: Option<&'a [(isize, ShiftMask)]>,
        planes: bool,
    ) -> Self {
        let s = g.s();
        if planes {
            let planes = Planes::new(g.c, g.h, g.w, g.kh);
            let row = g.o * planes.wp();
            let rows = (PLANES_OUTPUT_BYTES / 4 / row).clamp(1, g.oh);
            return Self::Planes(planes, uninit(rows * row));
        }
        if g.mul.is_bf16() {
            match shifted {
                Some(sh) if s >= PACKED_FROM_PLANES => Self::Shifted(sh),
                Some(_) => Self::Pairs(Vec::new(), Pairs::new(k, s)),
                None => Self::Pairs(vec![0.0; nt.max(2) * s], Pairs::new(k, s)),
            }
        } else {
            Self::F32(vec![0.0; k * s])
        }
    }
}

/// Bytes of a product's output over [`Planes`] before its padding columns are dropped: a few
/// output rows at a time, so that they are still in L2 when copied out.
const PLANES_OUTPUT_BYTES: usize = 256 << 10;

/// Whether [`forward_by_image`] reads each image's im2col in place from [`Planes`] (AVX-512
/// BF16 products, a stride-1 "same" convolution with an odd square kernel, every tap live,
/// channels in whole reduction blocks of 32): the image is rounded once into padded planes of
/// channel pairs, where writing its im2col in pairs writes `kh·kw` times as many values.
pub(super) fn reads_planes(g: &ConvGeom, live_taps: usize) -> bool {
    g.mul == bf16::Mul::Avx512Bf16
        && bf16::supports(g.mul)
        && g.stride == [1, 1]
        && g.dilation == [1, 1]
        && g.kh == g.kw
        && g.kh % 2 == 1
        && g.pad == [g.kh / 2; 2]
        && (g.oh, g.ow) == (g.h, g.w)
        && g.c.is_multiple_of(32)
        && live_taps == g.kh * g.kw
        && g.w >= PLANES_MIN_WIDTH
}

/// Map width from which [`reads_planes`] applies: the padding columns computed beside each
/// row cost `pad / (w + pad)` of the work (3×3 kernels: `1 / (w + 1)`), and on 8-pixel rows
/// (ResNet's second stage at 64 px) the forward ran 0.83× per layer (14 pixels: 1.00–1.04×,
/// 56: 1.20–1.25×).
const PLANES_MIN_WIDTH: usize = 14;

/// `y·scale + shift` through `act` on a `[o, s]` output, in place (nothing for the identity).
fn affine_act(
    y: &mut [f32],
    s: usize,
    scale: Option<&[f32]>,
    shift: Option<&[f32]>,
    act: Activation,
) {
    if scale.is_none() && shift.is_none() && act == Activation::Identity {
        return;
    }
    for (o, row) in y.chunks_exact_mut(s).enumerate() {
        let (mul, add) = channel_affine(scale, shift, o);
        for v in row.iter_mut() {
            *v = act.apply(*v * mul + add);
        }
    }
}

/// The rows of tap `t` (of `nt`) in an im2col matrix with `n` columns, as a `[c × n]` matrix.
pub(super) fn tap_rows(col: &[f32], n: usize, nt: usize, t: usize) -> Mat<'_> {
    Mat {
        data: &col[t * n..],
        rs: nt * n,
        cs: 1,
    }
}
