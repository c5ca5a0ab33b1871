//! Images as rows of bf16 pixels (channels innermost, "NHWC"), padded with zeros, which a
//! convolution's products read in place as their left operand: output pixel `(oy, ox)` of
//! any image is one row, and its tap `(i, j)` is pixel `(oy·s + i, ox·s + j)` of the padded
//! image, its `c` channels a constant further on. The weight, packed once, is the right
//! operand, its columns the output channels. Rows run across the images, so every product
//! covers 32 output pixels and 32 channels, with nothing computed to be dropped (over
//! [`super::Planes`] the padding columns are, and each image ends in a partial panel).

use super::{KB, Mul, PANEL, Packed, supports};

/// Images `[c, h, w]` rounded to bf16 as padded pixel rows for a `k × k` convolution of
/// stride `s` and padding `pad` (before the first row and column) with an `oh × ow` output.
pub(crate) struct Pixels {
    data: Vec<u16>,
    images: usize,
    c: usize,
    h: usize,
    w: usize,
    pad: usize,
    s: usize,
    /// Padded rows and pixels per padded row.
    hp: usize,
    wp: usize,
    ow: usize,
    /// Where each tap `(i, j)` reads from an output pixel's start, in bf16 values.
    taps: Vec<isize>,
    /// Per output pixel, the taps that read the image rather than its padding (bit `i·k + j`).
    live: Vec<u64>,
}

impl Pixels {
    /// Zeroed room for `images` images of `c` channels (a multiple of 32) on `h × w` maps;
    /// `live` holds each output pixel's live taps (bit `i·k + j` where tap `(i, j)` reads the
    /// image rather than its padding).
    pub fn new(
        images: usize,
        c: usize,
        (h, w): (usize, usize),
        (k, s, pad): (usize, usize, usize),
        (oh, ow): (usize, usize),
        live: Vec<u64>,
    ) -> Self {
        assert!(
            c.is_multiple_of(KB) && k > 0 && s > 0 && oh > 0 && ow > 0,
            "pixel rows of {c} channels for a {k}×{k} kernel"
        );
        assert!(
            k * k <= 64 && live.len() == oh * ow,
            "a {k}×{k} kernel over {} masks of {oh}×{ow} pixels",
            live.len()
        );
        let (hp, wp) = padded((h, w), (k, s, pad), (oh, ow));
        let taps = (0..k * k)
            .map(|t| (((t / k) * wp + t % k) * c) as isize)
            .collect();
        Self {
            data: vec![0; images.max(1) * hp * wp * c],
            images: images.max(1),
            c,
            h,
            w,
            pad,
            s,
            hp,
            wp,
            ow,
            taps,
            live,
        }
    }

    /// The output pixels of the first `images` images, `(image, pixel)`, in the order the
    /// products take them: pixels that read the same taps together (the interior first),
    /// image by image within those, so that most blocks of 32 skip the same taps over the
    /// padding (at 7×7 a fifth of the work, at 14×14 a tenth).
    pub fn rows(&self, images: usize) -> Vec<(usize, usize)> {
        let mut kinds: Vec<u64> = self.live.clone();
        kinds.sort_unstable_by_key(|m| (std::cmp::Reverse(m.count_ones()), *m));
        kinds.dedup();
        let mut rows = Vec::with_capacity(images * self.live.len());
        for kind in kinds {
            for i in 0..images.min(self.images) {
                let pixels = (0..self.live.len()).filter(|&p| self.live[p] == kind);
                rows.extend(pixels.map(|p| (i, p)));
            }
        }
        rows
    }

    /// bf16 values one image takes.
    pub fn image_len(
        c: usize,
        (h, w): (usize, usize),
        (k, s, pad): (usize, usize, usize),
        (oh, ow): (usize, usize),
    ) -> usize {
        let (hp, wp) = padded((h, w), (k, s, pad), (oh, ow));
        hp * wp * c
    }

    /// Reduction values: `c` per tap, tap-major `(t, ci)`.
    pub fn k(&self) -> usize {
        self.c * self.taps.len()
    }

    /// Rounds image `i` (`[c, h·w]`) into its rows (the padding stays zero).
    pub fn fill(&mut self, i: usize, x: &[f32]) {
        let (c, hw) = (self.c, self.h * self.w);
        assert!(
            i < self.images && x.len() == c * hw,
            "image {i} of {} with {c}×{hw} values",
            self.images
        );
        assert!(supports(Mul::Avx512Bf16), "pixel rows without AVX-512 BF16");
        let base = self.data[i * self.hp * self.wp * c..].as_mut_ptr();
        let (w, wp, pad) = (self.w, self.wp, self.pad);
        #[cfg(target_arch = "x86_64")]
        // SAFETY: the CPU has AVX-512 BF16 (checked); pixel `q` of the image lies at padded
        // `(q / w + pad, q % w + pad)`, inside image `i`'s rows.
        unsafe {
            super::pack::pixel_rows(x, c, hw, |q| {
                base.add(((q / w + pad) * wp + q % w + pad) * c)
            })
        };
    }

    /// `out` (32 × 32, rows 32 apart) = output channels `32·q..32·q + 32` × the output pixels
    /// `rows` (at most 32, `(image, pixel)`, from [`Pixels::rows`]) of the convolution with the
    /// weight `weight` ([`Packed::columns`] of its tap-major `[k × o]` transpose), over the
    /// taps any of them reads inside its image; columns past `rows` (up to a multiple of 8)
    /// mean nothing.
    pub fn block(&self, rows: &[(usize, usize)], weight: &Packed, q: usize, out: &mut [f32]) {
        let (c, k) = (self.c, self.k());
        assert!(
            weight.k == k && weight.kc == k && q < weight.m.div_ceil(PANEL),
            "a {}×{} weight for {k} reduction values, panel {q}",
            weight.k,
            weight.m
        );
        assert!(
            out.len() == PANEL * PANEL && !rows.is_empty() && rows.len() <= PANEL,
            "a 32×32 block of {} rows",
            rows.len()
        );
        let starts: [*const u16; PANEL] = std::array::from_fn(|r| {
            let (i, p) = rows[r.min(rows.len() - 1)];
            assert!(
                i < self.images && p < self.live.len(),
                "pixel {p} of image {i}"
            );
            let (y, x) = (p / self.ow * self.s, p % self.ow * self.s);
            self.data[((i * self.hp + y) * self.wp + x) * c..].as_ptr()
        });
        debug_assert!(supports(Mul::Avx512Bf16), "pixel rows without AVX-512 BF16");
        let live = rows.iter().fold(0, |m, &(_, p)| m | self.live[p]);
        let per_tap = c / KB;
        // The live taps: where each reads from a row's start, and where its blocks lie in a
        // weight panel.
        let (mut left, mut right, mut n) = ([0; 64], [0; 64], 0);
        for (t, &at) in self.taps.iter().enumerate() {
            if live & 1 << t != 0 {
                (left[n], right[n]) = (at, (t * per_tap * super::BLOCK) as isize);
                n += 1;
            }
        }
        let kt = n * per_tap;
        let panel_len = k / KB * super::BLOCK;
        let panel = &weight.panels[q * panel_len..][..panel_len];
        #[cfg(target_arch = "x86_64")]
        // SAFETY: the CPU has AVX-512 BF16 (`fill` checked it, and `weight` exists); each row
        // starts at an output pixel's input pixel, and every tap of it, `(oy·s + i, ox·s + j)`,
        // lies inside its image's `hp × wp` rows; the live taps' blocks lie in the panel;
        // `out` is 32×32.
        unsafe {
            let mut by_pixel = Block([0.0; PANEL * PANEL]);
            let a = super::dot::RowsLeft {
                rows: &starts,
                live: rows.len(),
                taps: &left[..n],
                per_tap,
            };
            let b_at = super::RightLayout {
                taps: right.as_ptr(),
                per_tap,
                ..super::RightLayout::PACKED
            };
            super::dot::block(
                a,
                panel.as_ptr(),
                b_at,
                kt,
                KB / 2,
                PANEL,
                by_pixel.0.as_mut_ptr(),
                PANEL,
                false,
            );
            transpose32(&by_pixel.0, out);
        }
    }
}

/// Padded rows and pixels per row: what every tap of every output pixel reads, and the image.
fn padded(
    (h, w): (usize, usize),
    (k, s, pad): (usize, usize, usize),
    (oh, ow): (usize, usize),
) -> (usize, usize) {
    (
        ((oh - 1) * s + k).max(pad + h),
        ((ow - 1) * s + k).max(pad + w),
    )
}

/// A 32×32 f32 block, aligned to cache lines.
#[repr(C, align(64))]
struct Block([f32; PANEL * PANEL]);

/// `dst` = the transpose of the 32×32 block `src`, as four 16×16 register transposes.
///
/// # Safety
/// The CPU has AVX-512 F; both are 32×32.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn transpose32(src: &[f32], dst: &mut [f32]) {
    use std::arch::x86_64::*;
    debug_assert!(src.len() == PANEL * PANEL && dst.len() == PANEL * PANEL);
    for (rb, cb) in [(0, 0), (0, 16), (16, 0), (16, 16)] {
        // SAFETY: rows `rb..rb + 16`, columns `cb..cb + 16` lie in both blocks.
        unsafe {
            let mut r: [__m512i; 16] = std::array::from_fn(|i| {
                _mm512_castps_si512(_mm512_loadu_ps(src.as_ptr().add((rb + i) * PANEL + cb)))
            });
            super::pack::transpose16(&mut r);
            for (j, v) in r.iter().enumerate() {
                _mm512_storeu_ps(
                    dst.as_mut_ptr().add((cb + j) * PANEL + rb),
                    _mm512_castsi512_ps(*v),
                );
            }
        }
    }
}
