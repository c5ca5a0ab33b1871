//! The convolution's gradients: `dW = dY · col(X)ᵀ` and `dX = col⁻¹(Wᵀ · dY)`.

use std::mem::MaybeUninit;

use rayon::prelude::*;

use super::affine::Activation;
use super::bf16::{self, Left, Packed};
use super::buffers::*;
use super::by_pixel;
use super::forward::*;
use super::gemm::*;
use super::geom::*;
use super::im2col::*;
use super::phases::*;

/// Gradients of [`conv2d_forward`] with respect to its input (when `need_dx`) and its weight.
pub fn conv2d_backward(
    x: &[f32],
    w: &[f32],
    dy: &[f32],
    g: &ConvGeom,
    need_dx: bool,
) -> (Option<Vec<f32>>, Vec<f32>) {
    if !need_dx && let Some(g2) = phase_geom(g) {
        // A strided stem (no input gradient) through the input's phases, as its forward, on
        // the reduction rows its weight has.
        let rows = phase_rows(g, &g2);
        let (x2, w2) = (phase_input(x, g, &g2), vec![0.0f32; g.o * rows.len()]);
        let taps = g2.live_taps();
        let (_, dw2) = backward_by_image(&x2, &w2, dy, &g2, &taps, Some(&rows), false);
        return (None, weight_from_phases(&dw2, g, &g2));
    }
    if need_dx
        && g.mul.is_bf16()
        && let Some(dx) = dx_as_forward(w, dy, g)
    {
        let (_, dw) = conv2d_backward(x, w, dy, g, false);
        return (Some(dx), dw);
    }
    let taps = g.live_taps();
    if by_image(g, taps.len()) {
        return backward_by_image(x, w, dy, g, &taps, None, need_dx);
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
        let dwt = matmul(
            k,
            g.o,
            n,
            Mat::rows(&col, n),
            Mat::transposed(&dyt, n),
            g.mul,
        );
        transpose(&dwt, k, g.o)
    } else {
        matmul(
            g.o,
            k,
            n,
            Mat::rows(&dyt, n),
            Mat::transposed(&col, n),
            g.mul,
        )
    };
    drop(col);
    let dx = need_dx.then(|| {
        if let Some(pairs) = pairs.as_deref().filter(|_| dcol_transposed(g, taps.len())) {
            let dcolt = matmul(n, k, g.o, Mat::transposed(&dyt, n), Mat::rows(w, k), g.mul);
            return col2im_batch_inner_t(&dcolt, g, &taps, pairs);
        }
        let dcol = if taps.len() == g.kh * g.kw {
            matmul(k, n, g.o, Mat::transposed(w, k), Mat::rows(&dyt, n), g.mul)
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
                matmul_into(
                    dst,
                    nt * n,
                    g.c,
                    n,
                    g.o,
                    w_tt,
                    Mat::rows(&dyt, n),
                    false,
                    g.mul,
                );
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
#[allow(clippy::too_many_arguments)]
pub(super) fn backward_by_image(
    x: &[f32],
    w: &[f32],
    dy: &[f32],
    g: &ConvGeom,
    taps: &[(usize, usize)],
    kept: Option<&[usize]>,
    need_dx: bool,
) -> (Option<Vec<f32>>, Vec<f32>) {
    let (s, nt, plane) = (g.s(), taps.len(), g.h * g.w);
    let k = kept.map_or(g.k(), <[usize]>::len);
    let pairs = small_plane_pairs(g, taps);
    let per_core = g.b.div_ceil(rayon::current_num_threads());
    // As in the batch path: wide layers compute dWᵀ = col · dYᵀ, `gemm`'s faster orientation.
    let transposed = 16 * s >= k;
    // In bf16, that product's left operand, col(X), is packed straight from shifted planes
    // where the taps read them (the f32 matrix is never written).
    let shifted = (transposed && g.mul.is_bf16() && bf16::supports(g.mul) && pairs.is_none())
        .then(|| shifted_taps(g, taps))
        .flatten();
    // The reduction rows `kept` lists (the weight and its gradient `[o × kept]`), from shifted
    // planes and for the weight's gradient only.
    assert!(
        kept.is_none_or(|rows| shifted.is_some() && !need_dx && rows.iter().all(|&r| r < g.k())),
        "reduction rows kept without shifted planes, or with an input gradient"
    );
    // In bf16 the weight (read transposed for dX) is rounded and packed once for every image.
    let packed = need_dx
        .then(|| Packed::new(Mat::transposed(w, k), k, g.o, g.mul))
        .flatten();
    let wt = packed
        .as_ref()
        .map_or(Left::Mat(Mat::transposed(w, k)), Left::Packed);
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
            || {
                let col = if shifted.is_some() { 0 } else { k * s };
                (vec![0.0f32; col], Vec::new(), vec![0.0f32; k * g.o], true)
            },
            |(mut col, mut dcol, mut dw, first), (bi, dxb)| {
                let dyb = &dy[bi * g.o * s..][..g.o * s];
                let xb = &x[bi * g.c * plane..][..g.c * plane];
                if let Some(sh) = &shifted {
                    let rows = shifted_rows(xb, (k, nt, plane), sh, kept);
                    let (a, b) = (Left::Shifted(&rows), Mat::transposed(dyb, s));
                    matmul_serial(&mut dw, k, g.o, s, a, b, !first, g.mul);
                } else {
                    for (r, row) in col.chunks_exact_mut(s).enumerate() {
                        let src = &xb[(r / nt) * plane..][..plane];
                        fill_col_row(src, g, taps, pairs.as_deref(), r % nt, row);
                    }
                    if transposed {
                        let (a, b) = (Mat::rows(&col, s), Mat::transposed(dyb, s));
                        matmul_serial(&mut dw, k, g.o, s, Left::Mat(a), b, !first, g.mul);
                    } else {
                        let (a, b) = (Mat::rows(dyb, s), Mat::transposed(&col, s));
                        matmul_serial(&mut dw, g.o, k, s, Left::Mat(a), b, !first, g.mul);
                    }
                }
                if let Some(dxb) = dxb {
                    let dxb = zeroed(dxb);
                    dcol.resize(k * s, 0.0);
                    matmul_serial(&mut dcol, k, s, g.o, wt, Mat::rows(dyb, s), false, g.mul);
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

/// Pixels per map from which [`dx_as_forward`] runs by pixel rows where they apply: per
/// layer's backward, 7×7 maps of 64 channels (28 px) 1.32–1.37×, 14×14 (224 px) 1.02–1.07×,
/// 7×7 of 512 channels and 8×8 1.00–1.03×; on 4×4 maps 0.99–1.01× and on 2×2 0.64–0.93×,
/// where the weight, packed anew on every call in training, outweighs the products.
const DX_MIN_PIXELS: usize = 49;

/// The input gradient of a stride-1 convolution computed as a forward convolution: `dY`
/// convolved with the weight flipped in both spatial axes and its channel axes swapped
/// (`[c, o, kh, kw]`), padded by `k − 1 − pad` on each side, is `dX`. Image by image, it is one
/// product per image with a reduction over `o·kh·kw` and `dY`'s im2col made straight into bf16
/// pairs, where `Wᵀ · dY` reduces over `o` alone and writes a `c·kh·kw × oh·ow` matrix to scatter
/// back (7 MB an image in ResNet's first stage at 224 px). `None` where it does not apply
/// (strides or dilations, padding of `k` or more, or a geometry run neither image by image
/// nor by pixel rows, which takes it on small maps).
pub(super) fn dx_as_forward(w: &[f32], dy: &[f32], g: &ConvGeom) -> Option<Vec<f32>> {
    if g.stride != [1, 1] || g.dilation != [1, 1] {
        return None;
    }
    // The padding before and after the transposed convolution's input, from the forward's.
    let pads = |k: usize, p0: usize, out: usize, inp: usize| -> Option<(usize, usize)> {
        let p1 = (out + k - 1).checked_sub(inp + p0)?;
        Some(((k - 1).checked_sub(p0)?, (k - 1).checked_sub(p1)?))
    };
    let padding = [
        pads(g.kh, g.pad[0], g.oh, g.h)?,
        pads(g.kw, g.pad[1], g.ow, g.w)?,
    ];
    let gt = ConvGeom::new(
        [g.b, g.o, g.oh, g.ow],
        [g.c, g.o, g.kh, g.kw],
        [1, 1],
        padding,
        [1, 1],
    )
    .with_mul(g.mul);
    debug_assert_eq!((gt.oh, gt.ow), (g.h, g.w));
    let taps = gt.live_taps();
    let pixel_rows = by_pixel::applies(&gt, &taps) && gt.oh * gt.ow >= DX_MIN_PIXELS;
    // Otherwise image by image, where the layer itself runs so (where it runs on the whole
    // batch, its own backward measured faster).
    let image_by_image = by_image(&gt, taps.len()) && by_image(g, g.live_taps().len());
    if !pixel_rows && !image_by_image {
        return None;
    }
    let kk = g.kh * g.kw;
    let id = Activation::Identity;
    if pixel_rows {
        // The flipped, swapped weight made tap-major at once, `[c, kh·kw, o]`: row `c`, tap
        // `t`, channel `o` is `w[o, c]` at tap `kh·kw − 1 − t`.
        let wtm = rows_filled_by(g.c * kk * g.o, kk * g.o, |c, row| {
            for o in 0..g.o {
                let src = &w[(o * g.c + c) * kk..][..kk];
                for (t, v) in src.iter().rev().enumerate() {
                    row[t * g.o + o] = *v;
                }
            }
        });
        return by_pixel::forward_tap_major((dy, &wtm, &gt), (None, None, id));
    }
    let mut wt = vec![0.0f32; w.len()];
    for (oc, src) in w.chunks_exact(kk).enumerate() {
        let (o, c) = (oc / g.c, oc % g.c);
        let dst = &mut wt[(c * g.o + o) * kk..][..kk];
        for (d, v) in dst.iter_mut().zip(src.iter().rev()) {
            *d = *v;
        }
    }
    Some(forward_by_image(dy, &wt, &gt, &taps, None, None, None, id))
}

/// A weight gradient over the live taps, `[o × c·taps]`, spread into `[o × c·kh·kw]` with
/// zeros at the taps that only read padding.
pub(super) fn scatter_taps(dw: Vec<f32>, g: &ConvGeom, taps: &[(usize, usize)]) -> Vec<f32> {
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
