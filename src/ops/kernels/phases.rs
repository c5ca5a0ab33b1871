//! Stride-2 convolutions with large kernels (ResNet's 7×7 stem) as stride-1 convolutions over
//! the input's four phases (space-to-depth): input pixel `(2y + ry, 2x + rx)` of channel `ci`
//! becomes pixel `(y, x)` of channel `(ci, ry, rx)`, and tap `(i, j)` of the weight the tap of
//! the phase it reads. A 7×7 kernel becomes 4×4 over four times the channels, whose im2col rows
//! are shifted planes, which bf16 products round into pairs straight from the input
//! (`shifted_taps` in im2col) where stride 2 gathers every other value of every row; of its
//! 192 reduction rows only the 147 that some tap maps to are multiplied ([`phase_rows`]).

use super::buffers::*;
use super::geom::*;

/// The taps over the phases of a kernel of `k` taps at stride 2 with padding `p` before the
/// input: (taps, padding before, padding after). Tap `i` reads the phase `(i − p) mod 2` at
/// tap `⌊(i − p)/2⌋ + ⌈p/2⌉`.
fn phase_taps(k: usize, p: usize) -> Option<(usize, usize, usize)> {
    if p >= k {
        return None;
    }
    let before = p.div_ceil(2);
    let taps = (k - 1 - p) / 2 + before + 1;
    Some((taps, before, taps - 1 - before))
}

/// The stride-1 geometry over the phases of `g`, or `None` where the rewrite does not pay or
/// apply: bf16 products, stride 2, no dilation, kernels of 7 or more (a 3×3 kernel would
/// become 2×2 over four times the channels: 16 reduction rows for 9), the same output size,
/// and the phase geometry run image by image.
pub(super) fn phase_geom(g: &ConvGeom) -> Option<ConvGeom> {
    let applies =
        g.mul.is_bf16() && g.stride == [2, 2] && g.dilation == [1, 1] && g.kh >= 7 && g.kw >= 7;
    if !applies {
        return None;
    }
    let (th, top, bottom) = phase_taps(g.kh, g.pad[0])?;
    let (tw, left, right) = phase_taps(g.kw, g.pad[1])?;
    let (h2, w2) = (g.h.div_ceil(2), g.w.div_ceil(2));
    let g2 = ConvGeom::new(
        [g.b, 4 * g.c, h2, w2],
        [g.o, 4 * g.c, th, tw],
        [1, 1],
        [(top, bottom), (left, right)],
        [1, 1],
    )
    .with_mul(g.mul);
    ((g2.oh, g2.ow) == (g.oh, g.ow) && by_image(&g2, th * tw)).then_some(g2)
}

/// The input's phases, `[b, 4c, ⌈h/2⌉, ⌈w/2⌉]` (zeros past an odd edge).
pub(super) fn phase_input(x: &[f32], g: &ConvGeom, g2: &ConvGeom) -> Vec<f32> {
    let plane2 = g2.h * g2.w;
    rows_filled_by(g.b * 4 * g.c * plane2, plane2, |idx, dst| {
        let (bc, r) = (idx / 4, idx % 4);
        let (ry, rx) = (r / 2, r % 2);
        let src = &x[bc * g.h * g.w..][..g.h * g.w];
        for (y, row) in dst.chunks_exact_mut(g2.w).enumerate() {
            let Some(line) = src.chunks_exact(g.w).nth(2 * y + ry) else {
                break;
            };
            for (d, v) in row.iter_mut().zip(line.iter().skip(rx).step_by(2)) {
                *d = *v;
            }
        }
    })
}

/// For every tap `(i, j)` of `g`'s weight, its index in the phase weight `[o, 4c, th, tw]`
/// (without the output channel's offset), in weight order.
fn phase_index(g: &ConvGeom, g2: &ConvGeom) -> Vec<usize> {
    let mut index = Vec::with_capacity(g.c * g.kh * g.kw);
    for ci in 0..g.c {
        for i in 0..g.kh {
            for j in 0..g.kw {
                let (si, sj) = (i + 2 * g2.pad[0] - g.pad[0], j + 2 * g2.pad[1] - g.pad[1]);
                let channel = ci * 4 + (si % 2) * 2 + sj % 2;
                index.push((channel * g2.kh + si / 2) * g2.kw + sj / 2);
            }
        }
    }
    index
}

/// The reduction rows `(channel, tap)` of the phase geometry `g2` that some tap of `g` maps to,
/// in order, one per tap of `g`: the others would multiply zeros (a 7×7 kernel on 3 channels:
/// 147 of 192).
pub(super) fn phase_rows(g: &ConvGeom, g2: &ConvGeom) -> Vec<usize> {
    let mut rows = phase_index(g, g2);
    rows.sort_unstable();
    rows
}

/// The weight `[o, c, kh, kw]` of `g` on the phase geometry's reduction rows ([`phase_rows`]):
/// `[o × c·kh·kw]`, its columns in the rows' order.
pub(super) fn phase_weight(w: &[f32], g: &ConvGeom, g2: &ConvGeom) -> Vec<f32> {
    let at = columns(g, g2);
    let mut w2 = vec![0.0f32; w.len()];
    for (src, dst) in w.chunks_exact(g.k()).zip(w2.chunks_exact_mut(g.k())) {
        for (v, &a) in src.iter().zip(&at) {
            dst[a] = *v;
        }
    }
    w2
}

/// The weight gradient of `g` from the phase geometry's on its reduction rows, `[o × rows]`.
pub(super) fn weight_from_phases(dw2: &[f32], g: &ConvGeom, g2: &ConvGeom) -> Vec<f32> {
    let at = columns(g, g2);
    let mut dw = Vec::with_capacity(dw2.len());
    for src in dw2.chunks_exact(g.k()) {
        dw.extend(at.iter().map(|&a| src[a]));
    }
    dw
}

/// For every tap of `g`, in weight order, its column among the phase geometry's reduction
/// rows: its row's rank among them.
fn columns(g: &ConvGeom, g2: &ConvGeom) -> Vec<usize> {
    let index = phase_index(g, g2);
    let mut order: Vec<usize> = (0..index.len()).collect();
    order.sort_unstable_by_key(|&t| index[t]);
    let mut at = vec![0; index.len()];
    for (column, &t) in order.iter().enumerate() {
        at[t] = column;
    }
    at
}
