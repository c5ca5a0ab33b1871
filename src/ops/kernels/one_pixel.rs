//! The bf16 forward of a convolution whose output map is one pixel (ResNet-18's last stage at
//! 28 px: 3×3 kernels on 1×1 maps, the 2×2 → 1×1 downsampling): every live tap reads one
//! fixed input pixel of each image, so `Y = Σ_t W_t · X_tᵀ` with `X_t` the images' channels at
//! that pixel, `[b × c]`, read in place on 1×1 maps. No im2col: the general path gathers
//! col(X) value by value (per layer at 28 px, 3×3 on 1×1 maps: 0.36–0.45 ms this way,
//! 0.13–0.14 ms with the output pass below image by image).

use super::bf16::Right;
use super::frozen::{Part, kept_weight, left};
use super::gemm::{Mat, matmul_left, product_into};
use super::geom::{ConvGeom, tap_weight};

/// Whether [`product`] takes `g` with these live taps: bf16 products, a one-pixel output, one
/// to [`MAX_TAPS`] live taps.
pub(super) fn applies(g: &ConvGeom, taps: &[(usize, usize)]) -> bool {
    g.mul.is_bf16()
        && super::bf16::supports(g.mul)
        && g.s() == 1
        && (1..=MAX_TAPS).contains(&taps.len())
}

/// The most live taps [`product`] takes (ResNet-18 has one or four): each is its own product
/// reducing over `c`, where the general path makes one over every tap; shapes with more were
/// not measured.
const MAX_TAPS: usize = 4;

/// `Y = W · col(X)`, `[o × b]`, for a geometry [`applies`] takes: the forward's product
/// before its output pass.
pub(super) fn product(x: &[f32], w: &[f32], g: &ConvGeom, taps: &[(usize, usize)]) -> Vec<f32> {
    let plane = g.h * g.w;
    let threads = rayon::current_num_threads();
    let mut yt = Vec::new();
    for (t, &(i, j)) in taps.iter().enumerate() {
        // A live tap reads inside the image at the one output pixel.
        let p = g.in_row(0, i) * g.w + g.in_col(0, j);
        let gathered: Vec<f32>;
        let xt = if plane == 1 {
            x
        } else {
            gathered = x.iter().skip(p).step_by(plane).copied().collect();
            &gathered
        };
        // `[c × b]`: image `bi`'s channels are row `bi` of `xt`.
        let b = Right::Mat(Mat::transposed(xt, g.c));
        let w_t = tap_weight(w, g, (i, j));
        let packed = kept_weight(g.weight_id, w_t, g.o, g.c, g.mul, Part::Tap(i * g.kw + j));
        let a = left(w_t, &packed);
        if t == 0 {
            yt = matmul_left(g.o, g.b, g.c, a, b, g.mul);
        } else {
            product_into(&mut yt, g.b, g.o, g.b, g.c, a, b, true, threads, g.mul);
        }
    }
    yt
}
