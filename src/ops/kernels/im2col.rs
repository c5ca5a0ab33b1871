//! The im2col matrix of a convolution's input and its adjoint, col2im, in both column orders
//! (`(image, pixel)` and, on narrow maps, `(pixel, image)`).

use rayon::prelude::*;

use super::Activation;
use super::bf16::{Pairs, ShiftMask, Shifted};
use super::buffers::*;
use super::geom::*;

/// The im2col matrix `[c·taps × b·oh·ow]` of `x` over the kernel taps `taps` (row
/// `(ci, t)` for tap `taps[t]`, column `(bi, oy, ox)`); with every tap, `[c·kh·kw × …]`.
pub fn im2col(x: &[f32], g: &ConvGeom, taps: &[(usize, usize)]) -> Vec<f32> {
    let (n, nt) = (g.n(), taps.len());
    let pairs = small_plane_pairs(g, taps);
    rows_filled_by(g.c * nt * n, n, |r, row| {
        fill_batch_row(x, g, taps, pairs.as_deref(), (r / nt, r % nt), row)
    })
}

/// Row `(ci, t)` of [`im2col`], every image's part (see [`fill_col_row`] for what `dst` must
/// hold).
fn fill_batch_row(
    x: &[f32],
    g: &ConvGeom,
    taps: &[(usize, usize)],
    pairs: Option<&[Vec<(u32, u32)>]>,
    (ci, t): (usize, usize),
    dst: &mut [f32],
) {
    let plane = g.h * g.w;
    for (bi, seg) in dst.chunks_exact_mut(g.s()).enumerate() {
        let src = &x[(bi * g.c + ci) * plane..][..plane];
        fill_col_row(src, g, taps, pairs, t, seg);
    }
}

/// One image's part of an im2col row: the input plane `src` of one channel as read by tap
/// `taps[t]` at every output pixel. Writes every value that lies inside the image; padding
/// positions are written as zeros only on the shifted-span path, so `dst` must start zeroed
/// (or hold the same geometry's earlier output, whose padding positions are zeros).
pub(super) fn fill_col_row(
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
pub(super) fn tap_spans(
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
pub(super) fn zero_row_edges(seg: &mut [f32], g: &ConvGeom, (i, j): (usize, usize)) {
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
pub(super) fn add_col_row(
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

/// `[b, c, s]` → `[c, s, b]`: an activation with the batch as its innermost axis.
pub(super) fn batch_to_inner(x: &[f32], b: usize, c: usize, s: usize) -> Vec<f32> {
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
pub(super) fn batch_to_outer(
    xt: &[f32],
    (b, c, s): (usize, usize, usize),
    scale: Option<&[f32]>,
    shift: Option<&[f32]>,
    act: Activation,
) -> Vec<f32> {
    // Image by image: on small maps an iterator per `(image, channel)` row of `s` values cost
    // more than its values (3×3 on 1×1 maps at 28 px, `s` = 1: 43 % of the layer's time).
    let mut y = uninit(xt.len());
    y.par_chunks_mut((c * s).max(1))
        .with_min_len(min_rows(c * s))
        .enumerate()
        .for_each(|(bi, dst)| {
            for (ci, row) in dst.chunks_exact_mut(s.max(1)).enumerate() {
                let (mul, add) = (scale.map_or(1.0, |m| m[ci]), shift.map_or(0.0, |v| v[ci]));
                let src = &xt[ci * s * b + bi..];
                for (p, d) in row.iter_mut().enumerate() {
                    d.write(act.apply(src[p * b] * mul + add));
                }
            }
        });
    // SAFETY: every image's chunk was written value by value above.
    unsafe { assume_init(y) }
}

/// The im2col matrix of [`im2col`] with its columns ordered `(oy, ox, image)` instead of
/// `(image, oy, ox)`, for maps narrower than 8 pixels (`pairs` from [`small_plane_pairs`]):
/// each `(output, input)` pixel pair of a tap then moves `b` adjacent values instead of one,
/// after one pass that lays the input out as `[c, h·w, b]`.
pub(super) fn im2col_batch_inner(
    x: &[f32],
    g: &ConvGeom,
    taps: &[(usize, usize)],
    pairs: &[Vec<(u32, u32)>],
) -> Vec<f32> {
    let (b, n, nt, plane) = (g.b, g.n(), taps.len(), g.h * g.w);
    let xt = batch_to_inner(x, b, g.c, plane);
    rows_filled_by(g.c * nt * n, n, |r, row| {
        fill_inner_row(&xt, g, &pairs[r % nt], r / nt, row)
    })
}

/// Row `(ci, t)` of [`im2col_batch_inner`] from the input laid out as `[c, h·w, b]` (`xt`),
/// `tap_pairs` being tap `t`'s pixel pairs: `b` values for each.
fn fill_inner_row(xt: &[f32], g: &ConvGeom, tap_pairs: &[(u32, u32)], ci: usize, dst: &mut [f32]) {
    let (b, plane) = (g.b, g.h * g.w);
    let src = &xt[ci * plane * b..][..plane * b];
    for &(q, p) in tap_pairs {
        let (q, p) = (q as usize * b, p as usize * b);
        dst[q..q + b].copy_from_slice(&src[p..p + b]);
    }
}

/// Pair row `p` of an im2col block of `rows` rows, `n` columns: rows `2p` and `2p + 1` filled
/// by `fill(row, dst)` into their slots of `buf` (`slots` rows of `n`; a slot only ever holds
/// rows of one tap, so the padding zeros it was made with stay), then rounded into `out`.
pub(super) fn fill_pair_row(
    out: &mut [u16],
    p: usize,
    (rows, n, slots): (usize, usize, usize),
    buf: &mut [f32],
    mut fill: impl FnMut(usize, &mut [f32]),
) {
    let (j0, j1) = (2 * p, 2 * p + 1);
    for j in [j0, j1].into_iter().filter(|&j| j < rows) {
        fill(j, &mut buf[(j % slots) * n..][..n]);
    }
    let row = |j: usize| &buf[(j % slots) * n..][..n];
    Pairs::write_row(out, row(j0), (j1 < rows).then(|| row(j1)));
}

/// Per live tap of a stride-1 convolution with rows as wide as the input (see
/// [`ConvGeom::shifted_span`]), the shift of the input plane it reads and the mask of the output
/// pixels that read inside the image: an image's im2col rows in bf16 pairs are then rounded
/// straight from its planes ([`fill_shifted_pair_row`]). `None` where the shortcut does not apply.
pub(super) fn shifted_taps(
    g: &ConvGeom,
    taps: &[(usize, usize)],
) -> Option<Vec<(isize, ShiftMask)>> {
    if !g.shifts() {
        return None;
    }
    let masks = taps.iter().map(|&(i, j)| {
        let (x0, x1) = g.valid_cols(j);
        match g.shifted_span(i, j) {
            Some((off, lo, hi)) => {
                let keep = |q: usize| (x0..x1).contains(&(q % g.ow));
                (off, ShiftMask::new(g.s(), (lo, hi), keep))
            }
            None => (0, ShiftMask::new(g.s(), (0, 0), |_| false)),
        }
    });
    Some(masks.collect())
}

/// Row `r = (ci, t)` of one image's im2col (`nt` live taps) as a [`Shifted`] row over the
/// image's input planes `x` (`plane` values each), through `shifted` (see [`shifted_taps`]).
pub(super) fn shifted_row<'a>(
    x: &'a [f32],
    (nt, plane): (usize, usize),
    shifted: &'a [(isize, ShiftMask)],
    r: usize,
) -> Shifted<'a> {
    let (off, mask) = &shifted[r % nt];
    Shifted::new(&x[(r / nt) * plane..][..plane], *off, mask)
}

/// The rows `(ci, t)` of one image's im2col (`rows` of them, or those `kept` lists) as
/// [`Shifted`] rows over its input planes (see [`shifted_row`]): a bf16 product's operand
/// packed straight from them.
pub(super) fn shifted_rows<'a>(
    x: &'a [f32],
    (rows, nt, plane): (usize, usize, usize),
    shifted: &'a [(isize, ShiftMask)],
    kept: Option<&[usize]>,
) -> Vec<Shifted<'a>> {
    let row = |r: usize| shifted_row(x, (nt, plane), shifted, r);
    match kept {
        Some(kept) => kept.iter().map(|&r| row(r)).collect(),
        None => (0..rows).map(row).collect(),
    }
}

/// Pair row `p` of one image's im2col in bf16 pairs (rows `(ci, t)` of `rows`, `nt` live
/// taps, or the `rows` that `kept` lists), read from the image's input planes `x` (`plane`
/// values each) through `shifted` (see [`shifted_taps`]) and written into `out`.
pub(super) fn fill_shifted_pair_row(
    out: &mut [u16],
    p: usize,
    (rows, nt, plane): (usize, usize, usize),
    x: &[f32],
    shifted: &[(isize, ShiftMask)],
    kept: Option<&[usize]>,
) {
    let row = |r: usize| shifted_row(x, (nt, plane), shifted, kept.map_or(r, |k| k[r]));
    let second = (2 * p + 1 < rows).then(|| row(2 * p + 1));
    Pairs::write_shifted_row(out, &row(2 * p), second.as_ref());
}

/// col(X) in bf16 reduction pairs, as [`im2col_pairs`] makes it.
pub(super) enum ColPairs {
    /// One block of every row `(ci, t)` when every tap is live (one product), else one block
    /// per live tap, its rows `ci` (one product per tap).
    Blocks(Vec<Pairs>),
    /// One block of every row, ordered `(t, ci)`: each pair row two channels of one tap (the
    /// weight read the same way, `forward::tap_major_weight`).
    TapMajor(Pairs),
}

/// The im2col matrix in bf16 reduction pairs, for bf16 products, in the column order of
/// [`im2col`] or, where `inner` holds the pair tables, of [`im2col_batch_inner`]. On the
/// batch-innermost path the input is rounded once into pairs of channels
/// ([`batch_to_inner_pairs`]) and each pair row copies `b` pairs per pixel from there
/// ([`im2col_inner_pairs`]; with every tap live the caller sees to an even `c`). Elsewhere
/// each task fills two rows at a time in f32, in buffers of its own, and rounds them into a
/// pair row. Either way the f32 matrix is never written whole, and the products read the
/// pairs in place instead of each core packing its columns.
pub(super) fn im2col_pairs(
    x: &[f32],
    g: &ConvGeom,
    taps: &[(usize, usize)],
    inner: Option<&[Vec<(u32, u32)>]>,
) -> ColPairs {
    let (n, nt) = (g.n(), taps.len());
    let every_tap = nt == g.kh * g.kw;
    if let Some(pairs) = inner {
        let mut blocks = im2col_inner_pairs(x, g, pairs, every_tap);
        return if every_tap {
            ColPairs::TapMajor(blocks.remove(0))
        } else {
            ColPairs::Blocks(blocks)
        };
    }
    let small = small_plane_pairs(g, taps);
    // Row `(ci, t)` into `dst`, which holds zeros or an earlier row of the same tap (whose
    // padding positions are zeros).
    let fill = |(ci, t): (usize, usize), dst: &mut [f32]| {
        fill_batch_row(x, g, taps, small.as_deref(), (ci, t), dst)
    };
    let (blocks, rows) = if every_tap { (1, g.c * nt) } else { (nt, g.c) };
    // Row `j` of a block, as `(ci, t)`.
    let row_of = |block: usize, j: usize| {
        if every_tap {
            (j / nt, j % nt)
        } else {
            (j, block)
        }
    };
    // One buffer per tap when consecutive rows have different taps, else two.
    let slots = if every_tap && nt > 1 { nt } else { 2 };
    let per_task = pair_rows_per_task(rows);
    let blocks = (0..blocks)
        .map(|block| {
            Pairs::filled_by(
                rows,
                n,
                per_task,
                || vec![0.0f32; slots * n],
                |buf, p, out| {
                    fill_pair_row(out, p, (rows, n, slots), buf, |j, dst| {
                        fill(row_of(block, j), dst)
                    });
                },
            )
        })
        .collect();
    ColPairs::Blocks(blocks)
}

/// Pair rows per task when `rows` reduction rows are shared out between the cores.
fn pair_rows_per_task(rows: usize) -> usize {
    rows.div_ceil(2).div_ceil(2 * rayon::current_num_threads())
}

/// `[b, c, s]` → `[⌈c/2⌉, s, b]` in bf16 reduction pairs: entry `(cp, p, bi)` holds channels
/// `2cp` and `2cp + 1` (zero past the last) of pixel `p` of image `bi`, side by side. Each value
/// is rounded once here, where filling col(X) row by row would round it once per tap.
pub(super) fn batch_to_inner_pairs(x: &[f32], b: usize, c: usize, s: usize) -> Vec<u16> {
    let mut out = uninit::<u16>(c.div_ceil(2) * s * b * 2);
    out.par_chunks_mut(2 * s * b).enumerate().for_each_init(
        || vec![0u16; 2 * s],
        |row, (cp, dst)| {
            let dst = zeroed(dst);
            let plane = |ci: usize, bi: usize| &x[(bi * c + ci) * s..][..s];
            for bi in 0..b {
                let second = (2 * cp + 1 < c).then(|| plane(2 * cp + 1, bi));
                Pairs::write_row(row, plane(2 * cp, bi), second);
                for (p, pair) in row.chunks_exact(2).enumerate() {
                    dst[2 * (p * b + bi)..][..2].copy_from_slice(pair);
                }
            }
        },
    );
    // SAFETY: every chunk went through `zeroed`.
    unsafe { assume_init(out) }
}

/// col(X) in pairs with columns `(pixel, image)` from the input in pairs of channels
/// ([`batch_to_inner_pairs`]): pair row `(t, cp)` copies, for each `(output, input)` pixel
/// pair of tap `t` (`pairs[t]`), the input pixel's `b` pairs of channels `2cp`, `2cp + 1`.
/// `tap_major`: one block, rows `(t, ci)` (every tap live and an even `c`); else one block per
/// live tap.
pub(super) fn im2col_inner_pairs(
    x: &[f32],
    g: &ConvGeom,
    pairs: &[Vec<(u32, u32)>],
    tap_major: bool,
) -> Vec<Pairs> {
    let (b, n, nt, plane) = (g.b, g.n(), pairs.len(), g.h * g.w);
    assert!(
        !tap_major || (nt == g.kh * g.kw && g.c.is_multiple_of(2)),
        "tap-major pairs"
    );
    let xp = batch_to_inner_pairs(x, b, g.c, plane);
    let cps = g.c.div_ceil(2);
    let (blocks, rows) = if tap_major { (1, g.c * nt) } else { (nt, g.c) };
    (0..blocks)
        .map(|block| {
            Pairs::filled_by(
                rows,
                n,
                pair_rows_per_task(rows),
                || (),
                |_, p, out| {
                    let (t, cp) = if tap_major {
                        (p / cps, p % cps)
                    } else {
                        (block, p)
                    };
                    let src = &xp[2 * cp * plane * b..][..2 * plane * b];
                    for &(q, i) in &pairs[t] {
                        let (q, i) = (2 * q as usize * b, 2 * i as usize * b);
                        out[q..q + 2 * b].copy_from_slice(&src[i..i + 2 * b]);
                    }
                },
            )
        })
        .collect()
}

/// The adjoint of [`im2col_batch_inner`]: `dX` `[b, c, h, w]` from a `dcol` whose columns are
/// `(oy, ox, image)`, summed as runs of `b` values into a `[c, h·w, b]` gradient first.
pub(super) fn col2im_batch_inner(
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

/// [`col2im_batch_inner`] from the transposed `dcolᵀ` (`[n × c·taps]`, rows `(oy, ox, image)`):
/// image by image, each output pixel's row adds its live taps into the input pixels they read,
/// straight into `dX` `[b, c, h, w]`.
pub(super) fn col2im_batch_inner_t(
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
