//! The forward convolution with the output pixels as the product's rows (AVX-512 BF16): the
//! images rounded once into padded pixel rows ([`bf16::Pixels`]), which the kernel reads in
//! place, each block 32 output pixels (across images) × 32 output channels, written out to
//! `[b, o, oh, ow]` through inference's affine map and activation as it is made.

use std::mem::MaybeUninit;
use std::sync::Arc;

use rayon::prelude::*;

use super::affine::{Activation, channel_affine, write_affine};
use super::bf16::{self, Packed, Pixels};
use super::buffers::{assume_init, uninit};
use super::frozen::{Part, kept_weight_with};
use super::geom::{ConvGeom, tap_major_weight};
use super::mat::Mat;

/// Bytes of pixel rows a task rounds at a time, about (its buffer holds at least one image):
/// images are swept by every panel of the weight, which is read once per group (7×7 maps
/// with 512 channels, 4.7 MB of weight: 16 images a group 1.06× one a group, single-threaded).
const GROUP_BYTES: usize = 2 << 20;

/// Output pixels per image up to which [`forward`] runs a kernel of more than one tap. Per
/// layer against the paths before it (in bf16, 2 cores, alternating in one process): at
/// 224 px the 3×3 layers on 14×14 maps 1.17×, on 7×7 1.33×, the stride-2 ones into 14×14
/// 1.05–1.18× and into 7×7 1.47×; at 28 and 64 px 1.00–1.39× on 8×8 to 2×2 maps; but on
/// 28×28 maps 0.98–1.02× and on 56×56 or 16×16 maps of 64 channels 0.85–0.97×, where the
/// reduction is short (576) and the planes compute few padding columns.
const MAX_PIXELS: usize = 196;

/// Output pixels per image up to which [`forward`] runs a 1×1 kernel (ResNet's stride-2
/// downsampling: into 4×4 maps 1.28–1.33×, into 7×7 1.02–1.05×, into 14×14 0.66×, into
/// 28×28 0.50×, where a short reduction leaves each block's bookkeeping and the rounding of
/// every input pixel, three in four of them unread, too large a part).
const MAX_PIXELS_1X1: usize = 49;

/// Pixel rows per core below which the weight is read for too few of them (2×2 maps, 16
/// images a core with 512 channels: 0.84×; 32 images with 256: 1.24×).
const MIN_ROWS: usize = 128;

/// Whether [`forward`] runs `g`: AVX-512 BF16 products, a square kernel with every tap live
/// (`taps`, at most 64 of them), equal strides and paddings, no dilation, channels in and out
/// in whole blocks of 32, on maps small enough (see [`MAX_PIXELS`]) and batches large enough
/// ([`MIN_ROWS`]).
pub(super) fn applies(g: &ConvGeom, taps: &[(usize, usize)]) -> bool {
    let pixels = g.oh * g.ow;
    let max = if g.kh == 1 {
        MAX_PIXELS_1X1
    } else {
        MAX_PIXELS
    };
    g.mul == bf16::Mul::Avx512Bf16
        && bf16::supports(g.mul)
        && g.kh == g.kw
        && g.stride[0] == g.stride[1]
        && g.pad[0] == g.pad[1]
        && g.dilation == [1, 1]
        && taps.len() == g.kh * g.kw
        && g.kh * g.kw <= 64
        && g.c.is_multiple_of(32)
        && g.o.is_multiple_of(32)
        && g.c > 0
        && g.o > 0
        && pixels <= max
        && g.b.div_ceil(rayon::current_num_threads()) * pixels >= MIN_ROWS
}

/// `y` `[b, o, oh, ow]` = `act(scale · conv(x, w) + shift)` per output channel; `None` where
/// the weight cannot be packed for these products (a CPU without AVX-512 BF16).
pub(super) fn forward(
    (x, w, g): (&[f32], &[f32], &ConvGeom),
    then: (Option<&[f32]>, Option<&[f32]>, Activation),
) -> Option<Vec<f32>> {
    let k = g.k();
    let columns = || Packed::columns(Mat::transposed(&tap_major_weight(w, g), k), k, g.o, g.mul);
    let weight = kept_weight_with(g.weight_id, w, (g.o, k, g.mul, Part::Columns), columns)
        .or_else(|| columns().map(Arc::new))?;
    Some(run(x, &weight, g, then))
}

/// [`forward`] with the weight already tap-major, `[o, kh·kw, c]` (see `geom::tap_major_weight`),
/// packed on every call (an input gradient's weight, made for it).
pub(super) fn forward_tap_major(
    (x, wtm, g): (&[f32], &[f32], &ConvGeom),
    then: (Option<&[f32]>, Option<&[f32]>, Activation),
) -> Option<Vec<f32>> {
    let k = g.k();
    let weight = Packed::columns(Mat::transposed(wtm, k), k, g.o, g.mul)?;
    Some(run(x, &weight, g, then))
}

/// The products of [`forward`] with the weight packed.
fn run(
    x: &[f32],
    weight: &Packed,
    g: &ConvGeom,
    then: (Option<&[f32]>, Option<&[f32]>, Activation),
) -> Vec<f32> {
    let (s, plane) = (g.s(), g.h * g.w);
    let geom = ((g.h, g.w), (g.kh, g.stride[0], g.pad[0]), (g.oh, g.ow));
    let image_bytes = 2 * Pixels::image_len(g.c, geom.0, geom.1, geom.2);
    // One task per core, its images in groups of at most GROUP_BYTES.
    let per_core = g.b.div_ceil(rayon::current_num_threads());
    let group = (GROUP_BYTES / image_bytes).clamp(1, per_core);
    let live = live_masks(g);
    let mut y = uninit(g.b * g.o * s);
    y.par_chunks_mut(per_core * g.o * s)
        .enumerate()
        .for_each_init(
            || {
                let pixels = Pixels::new(group, g.c, geom.0, geom.1, geom.2, live.clone());
                (pixels, vec![0.0; 32 * 32])
            },
            |(pixels, out), (ci, yc)| {
                let images = yc.len() / (g.o * s);
                let groups = images.div_ceil(group);
                let mut i0 = 0;
                for gi in 0..groups {
                    // Groups of equal size, give or take an image.
                    let i1 = images * (gi + 1) / groups;
                    let yg = &mut yc[i0 * g.o * s..i1 * g.o * s];
                    for i in 0..i1 - i0 {
                        let at = (ci * per_core + i0 + i) * g.c * plane;
                        pixels.fill(i, &x[at..][..g.c * plane]);
                    }
                    let rows = pixels.rows(i1 - i0);
                    let blocks: Vec<_> = rows.chunks(32).map(|b| (b, runs(b))).collect();
                    for q in 0..g.o / 32 {
                        for (block, runs) in &blocks {
                            pixels.block(block, weight, q, out);
                            write_block(yg, out, runs, q, g, then);
                        }
                    }
                    i0 = i1;
                }
            },
        );
    // SAFETY: every (image, channel, pixel) of every group was written by `write_block`.
    unsafe { assume_init(y) }
}

/// Each output pixel's live taps, bit `i·k + j` where tap `(i, j)` reads the image rather
/// than its padding ([`ConvGeom::valid_rows`], [`ConvGeom::valid_cols`]).
fn live_masks(g: &ConvGeom) -> Vec<u64> {
    let (rows, cols): (Vec<_>, Vec<_>) = (0..g.kh)
        .map(|i| (g.valid_rows(i), g.valid_cols(i)))
        .unzip();
    let inside = |(lo, hi): (usize, usize), o: usize| lo <= o && o < hi;
    (0..g.oh * g.ow)
        .map(|p| {
            let (oy, ox) = (p / g.ow, p % g.ow);
            (0..g.kh * g.kw)
                .filter(|t| inside(rows[t / g.kw], oy) && inside(cols[t % g.kw], ox))
                .fold(0, |m, t| m | 1 << t)
        })
        .collect()
}

/// A run of a block's pixels: its first row in the block, image, first pixel and length.
type Run = (usize, usize, usize, usize);

/// A block's pixels (`(image, pixel)`) as runs of consecutive pixels of one image.
fn runs(rows: &[(usize, usize)]) -> Vec<Run> {
    let mut runs: Vec<Run> = Vec::new();
    for (r, &(image, pixel)) in rows.iter().enumerate() {
        match runs.last_mut() {
            Some((_, i, p, len)) if *i == image && *p + *len == pixel => *len += 1,
            _ => runs.push((r, image, pixel, 1)),
        }
    }
    runs
}

/// Writes a block's runs of pixels × channels `32·q..` (`out`, channel-major) into `y`
/// `[images, o, s]` through the affine map and activation.
fn write_block(
    y: &mut [MaybeUninit<f32>],
    out: &[f32],
    runs: &[Run],
    q: usize,
    g: &ConvGeom,
    (scale, shift, act): (Option<&[f32]>, Option<&[f32]>, Activation),
) {
    let s = g.s();
    for &(r0, image, pixel, len) in runs {
        for j in 0..32 {
            let o = 32 * q + j;
            let (mul, add) = channel_affine(scale, shift, o);
            let dst = &mut y[(image * g.o + o) * s + pixel..][..len];
            write_affine(dst, &out[j * 32 + r0..][..len], mul, add, act);
        }
    }
}
