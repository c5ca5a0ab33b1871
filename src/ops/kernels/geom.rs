//! A convolution's geometry, its live taps and which path of the kernels it takes.

use super::bf16::Mul;
use super::buffers::rows_filled_by;
use super::mat::Mat;

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
    /// How the convolution's products multiply (f32 unless set with [`ConvGeom::with_mul`]).
    pub mul: Mul,
    /// The weight's parameter id when the weight is a model's parameter that does not change
    /// while [`super::with_frozen_weights`] is on: the key of its packed copy there.
    pub weight_id: Option<u64>,
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
            mul: Mul::F32,
            weight_id: None,
        }
    }

    /// The same geometry with its products multiplied as `mul`.
    pub fn with_mul(self, mul: Mul) -> Self {
        Self { mul, ..self }
    }

    /// The same geometry for a weight that is the parameter `id` (see [`ConvGeom::weight_id`]).
    pub fn with_weight_id(self, id: u64) -> Self {
        Self {
            weight_id: Some(id),
            ..self
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
    pub(super) fn in_row(&self, oy: usize, i: usize) -> usize {
        oy * self.stride[0] + i * self.dilation[0] - self.pad[0]
    }

    /// Like [`Self::in_row`] for output column `ox` and kernel column `j`.
    #[inline]
    pub(super) fn in_col(&self, ox: usize, j: usize) -> usize {
        ox * self.stride[1] + j * self.dilation[1] - self.pad[1]
    }

    /// The output columns `ox` whose input column `ox·stride + j·dilation − pad` lies inside
    /// the image, as a half-open range (empty when none does).
    pub(super) fn valid_cols(&self, j: usize) -> (usize, usize) {
        valid_range(
            self.w,
            self.ow,
            self.stride[1],
            self.pad[1],
            j * self.dilation[1],
        )
    }

    /// Like [`Self::valid_cols`] for output rows and kernel row `i`.
    pub(super) fn valid_rows(&self, i: usize) -> (usize, usize) {
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
    pub(super) fn shifted_span(&self, i: usize, j: usize) -> Option<(isize, usize, usize)> {
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
    pub(super) fn shifts(&self) -> bool {
        self.stride == [1, 1] && self.ow == self.w
    }
}

/// Output positions `t` in `0..n_out` with `0 ≤ t·s + off − pad < n_in`.
pub(super) fn valid_range(
    n_in: usize,
    n_out: usize,
    s: usize,
    pad: usize,
    off: usize,
) -> (usize, usize) {
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
pub(super) fn small_plane_pairs(
    g: &ConvGeom,
    taps: &[(usize, usize)],
) -> Option<Vec<Vec<(u32, u32)>>> {
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

/// The share of the live taps' `(output pixel, tap)` pairs that read inside the image, for
/// the pair tables of [`small_plane_pairs`]: what one product over every column of each tap
/// multiplies to some purpose (2×2 maps, 3×3 kernels: 4 of 9).
pub(super) fn live_share(g: &ConvGeom, pairs: &[Vec<(u32, u32)>]) -> f64 {
    let live: usize = pairs.iter().map(Vec::len).sum();
    live as f64 / (pairs.len() * g.s()).max(1) as f64
}

/// Per tap, the runs `(first column, columns)` of the batch-innermost columns `(pixel, image)`
/// that read inside the image: the output pixels of `pairs[t]`, adjacent ones merged, `b`
/// columns each.
pub(super) fn live_runs(pairs: &[Vec<(u32, u32)>], b: usize) -> Vec<Vec<(usize, usize)>> {
    pairs
        .iter()
        .map(|tap| {
            let mut runs: Vec<(usize, usize)> = vec![];
            for &(q, _) in tap {
                let c0 = q as usize * b;
                match runs.last_mut() {
                    Some((first, len)) if *first + *len == c0 => *len += b,
                    _ => runs.push((c0, b)),
                }
            }
            runs
        })
        .collect()
}

/// Output pixels per image from which a convolution runs image by image.
pub(super) const BY_IMAGE_MIN_PIXELS: usize = 64;

/// Whether a convolution's forward and backward run image by image: output maps of at least
/// [`BY_IMAGE_MIN_PIXELS`] pixels with every tap live, and at least two images per core.
/// Each image's im2col block (`[c·kh·kw × oh·ow]`, e.g. 590 KB on ResNet's first stage at
/// 64 px) then stays in the core's cache while the GEMM packs it, and the product lands in the
/// output's `[b, o, oh, ow]` layout directly, with no batch-wide buffers or layout pass.
pub(super) fn by_image(g: &ConvGeom, live_taps: usize) -> bool {
    live_taps == g.kh * g.kw
        && g.s() >= BY_IMAGE_MIN_PIXELS
        && g.b >= 2 * rayon::current_num_threads()
}

/// Images from which convolutions on narrow maps run with the batch as the innermost axis.
pub(super) const BATCH_INNER_MIN_IMAGES: usize = 8;

/// The pair tables of [`small_plane_pairs`] when a convolution runs with the batch innermost
/// (see [`im2col_batch_inner`]): maps narrower than 8 pixels, at least
/// [`BATCH_INNER_MIN_IMAGES`] images and more than one live tap. With one tap (1×1
/// downsampling, 3×3 on 1×1 maps) each input value is read at most once, so the layout passes
/// cost more than the runs save (1×1 stride-2 backward 0.6–1.0 → 0.8–1.5 ms per layer at
/// 28 px).
pub(super) fn batch_inner_pairs(
    g: &ConvGeom,
    taps: &[(usize, usize)],
) -> Option<Vec<Vec<(u32, u32)>>> {
    (g.b >= BATCH_INNER_MIN_IMAGES && taps.len() > 1)
        .then(|| small_plane_pairs(g, taps))
        .flatten()
}

/// Whether the input gradient's `dcol` is better computed transposed, `dcolᵀ = dYᵀ · W`
/// (`[n × k]`), on the batch-innermost path: every tap live and `k ≥ 32·n` (ResNet's last stage
/// at 64 px: `k` = 4608, `n` = 128), where gemm runs `Wᵀ · dY` about half as fast (2.2–2.9
/// against 4.7–5.5 ms per product, measured side by side; no other ResNet-18 shape at 28 or 64 px
/// gains more than the noise).
pub(super) fn dcol_transposed(g: &ConvGeom, live_taps: usize) -> bool {
    live_taps == g.kh * g.kw && g.c * live_taps >= 32 * g.n()
}

/// The weight `[o, c, kh, kw]` as `[o, kh·kw, c]`: each row's reduction values ordered
/// `(t, ci)`, as tap-major pairs of col(X) hold them (`im2col::im2col_pairs`).
pub(super) fn tap_major_weight(w: &[f32], g: &ConvGeom) -> Vec<f32> {
    let (k, nt) = (g.k(), g.kh * g.kw);
    rows_filled_by(g.o * k, k, |o, row| {
        let src = &w[o * k..][..k];
        for (t, dst) in row.chunks_exact_mut(g.c).enumerate() {
            for (ci, v) in dst.iter_mut().enumerate() {
                *v = src[ci * nt + t];
            }
        }
    })
}

/// Tap `(i, j)` of the weight `[o × c·kh·kw]` as an `[o × c]` matrix, read in place.
pub(super) fn tap_weight<'a>(w: &'a [f32], g: &ConvGeom, (i, j): (usize, usize)) -> Mat<'a> {
    let kk = g.kh * g.kw;
    Mat {
        data: &w[i * g.kw + j..],
        rs: g.c * kk,
        cs: kk,
    }
}
