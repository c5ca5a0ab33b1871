//! fastai's `aug_transforms`: flip, rotate, zoom and perspective warp composed into one projective
//! matrix and resampled once (bilinear, reflection padding), then brightness and contrast.

use rand::{Rng, RngExt};
use serde::{Deserialize, Serialize};

/// A 3×3 projective matrix mapping an output point (x, y, 1) in [-1, 1]² to its source point.
pub type Mat3 = [[f64; 3]; 3];

/// The identity matrix.
pub const IDENTITY: Mat3 = [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]];

/// Random augmentation of training images, with fastai's `aug_transforms` parameters.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct AugTransforms {
    /// Flip horizontally with probability 0.5.
    pub flip: bool,
    /// Largest rotation, degrees (fastai: 10).
    pub max_rotate: f64,
    /// Zoom range (fastai: 1.0 to 1.1).
    pub min_zoom: f64,
    /// Largest zoom.
    pub max_zoom: f64,
    /// Largest perspective warp of each axis (fastai: 0.2).
    pub max_warp: f64,
    /// Largest brightness/contrast change (fastai: 0.2).
    pub max_lighting: f64,
    /// Probability of each of rotate, zoom and warp (fastai: 0.75).
    pub p_affine: f64,
    /// Probability of each of brightness and contrast (fastai: 0.75).
    pub p_lighting: f64,
}

impl Default for AugTransforms {
    fn default() -> Self {
        Self {
            flip: true,
            max_rotate: 10.0,
            min_zoom: 1.0,
            max_zoom: 1.1,
            max_warp: 0.2,
            max_lighting: 0.2,
            p_affine: 0.75,
            p_lighting: 0.75,
        }
    }
}

/// The `--aug` presets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum AugLevel {
    /// No augmentation beyond the random-resized crop.
    None,
    /// Horizontal flip only.
    Light,
    /// fastai's `aug_transforms()` defaults.
    #[default]
    Default,
    /// fastai's `aug_transforms(mult=2)` with zoom up to 1.2.
    Heavy,
}

impl AugLevel {
    /// The transforms of this preset (`None` for none).
    pub fn transforms(self) -> Option<AugTransforms> {
        let d = AugTransforms::default();
        match self {
            AugLevel::None => None,
            AugLevel::Light => Some(AugTransforms {
                max_rotate: 0.0,
                max_zoom: 1.0,
                max_warp: 0.0,
                max_lighting: 0.0,
                ..d
            }),
            AugLevel::Default => Some(d),
            AugLevel::Heavy => Some(AugTransforms {
                max_rotate: 2.0 * d.max_rotate,
                max_zoom: 1.2,
                max_warp: 2.0 * d.max_warp,
                max_lighting: 2.0 * d.max_lighting,
                ..d
            }),
        }
    }
}

/// The random draws of one image: its geometry and lighting.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AugDraw {
    /// Output→source matrix.
    pub matrix: Mat3,
    /// Brightness shift in logit space.
    pub brightness: f32,
    /// Contrast factor in logit space.
    pub contrast: f32,
}

impl AugTransforms {
    /// Draws one image's parameters; every random number comes from `rng`.
    pub fn draw(&self, rng: &mut impl Rng) -> AugDraw {
        let mut parts = Vec::new();
        if self.flip && rng.random_bool(0.5) {
            parts.push(flip_mat());
        }
        if self.max_rotate > 0.0 && rng.random_bool(self.p_affine) {
            parts.push(rotate_mat(
                rng.random_range(-self.max_rotate..=self.max_rotate),
            ));
        }
        if self.max_zoom > self.min_zoom && rng.random_bool(self.p_affine) {
            let s = rng.random_range(self.min_zoom..=self.max_zoom);
            parts.push(zoom_mat(s, rng.random::<f64>(), rng.random::<f64>()));
        }
        if self.max_warp > 0.0 && rng.random_bool(self.p_affine) {
            let m = self.max_warp;
            parts.push(warp_mat(rng.random_range(-m..=m), rng.random_range(-m..=m)));
        }
        let matrix = compose(&parts);
        let (mut brightness, mut contrast) = (0.0, 1.0);
        let m = self.max_lighting;
        if m > 0.0 {
            if rng.random_bool(self.p_lighting) {
                let b = rng.random_range(0.5 * (1.0 - m)..=0.5 * (1.0 + m));
                brightness = (b / (1.0 - b)).ln() as f32;
            }
            if rng.random_bool(self.p_lighting) {
                let lo = (1.0 - m).ln();
                contrast = rng.random_range(lo..=-lo).exp() as f32;
            }
        }
        AugDraw {
            matrix,
            brightness,
            contrast,
        }
    }

    /// Augments one CHW image of side `size` with values in 0..1, in place.
    pub fn apply(&self, planes: &mut [f32], size: usize, rng: &mut impl Rng) {
        let d = self.draw(rng);
        if d.matrix != IDENTITY {
            let src = planes.to_vec();
            warp_planes(&src, planes, size, &d.matrix);
        }
        if d.brightness != 0.0 || d.contrast != 1.0 {
            for v in planes.iter_mut() {
                let x = v.clamp(1e-7, 1.0 - 1e-7);
                let logit = (x / (1.0 - x)).ln();
                *v = 1.0 / (1.0 + (-(logit + d.brightness) * d.contrast).exp());
            }
        }
    }
}

/// Horizontal flip.
pub fn flip_mat() -> Mat3 {
    [[-1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]]
}

/// Rotation by `deg` degrees about the centre.
pub fn rotate_mat(deg: f64) -> Mat3 {
    let (s, c) = deg.to_radians().sin_cos();
    [[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]]
}

/// Zoom in by `scale` towards the point at (`col_pct`, `row_pct`) of the image (fastai's `zoom_mat`).
pub fn zoom_mat(scale: f64, col_pct: f64, row_pct: f64) -> Mat3 {
    let inv = 1.0 / scale;
    let col = (1.0 - inv) * (2.0 * col_pct - 1.0);
    let row = (1.0 - inv) * (2.0 * row_pct - 1.0);
    [[inv, 0.0, col], [0.0, inv, row], [0.0, 0.0, 1.0]]
}

/// fastai's perspective `Warp`: the homography moving the corners by `mx` horizontally and `my`
/// vertically, as a keystone.
pub fn warp_mat(mx: f64, my: f64) -> Mat3 {
    let orig = [(-1.0, -1.0), (-1.0, 1.0), (1.0, -1.0), (1.0, 1.0)];
    let targ = [
        (-1.0 - my, -1.0 - mx),
        (-1.0 + my, 1.0 + mx),
        (1.0 + my, -1.0 + mx),
        (1.0 - my, 1.0 - mx),
    ];
    homography(&orig, &targ)
}

/// The projective matrix sending each of four points `from` to the matching point of `to`.
pub fn homography(from: &[(f64, f64); 4], to: &[(f64, f64); 4]) -> Mat3 {
    let mut a = [[0.0f64; 9]; 8];
    for (k, (&(x, y), &(u, v))) in from.iter().zip(to).enumerate() {
        a[2 * k] = [x, y, 1.0, 0.0, 0.0, 0.0, -u * x, -u * y, u];
        a[2 * k + 1] = [0.0, 0.0, 0.0, x, y, 1.0, -v * x, -v * y, v];
    }
    for col in 0..8 {
        let pivot = (col..8)
            .max_by(|&i, &j| a[i][col].abs().total_cmp(&a[j][col].abs()))
            .unwrap_or(col);
        a.swap(col, pivot);
        let p = a[col][col];
        if p.abs() < 1e-12 {
            return IDENTITY;
        }
        a[col][col..].iter_mut().for_each(|v| *v /= p);
        let pivot_row = a[col];
        for (i, row) in a.iter_mut().enumerate() {
            if i != col {
                let f = row[col];
                for (v, &pv) in row[col..].iter_mut().zip(&pivot_row[col..]) {
                    *v -= f * pv;
                }
            }
        }
    }
    let h: Vec<f64> = (0..8).map(|i| a[i][8]).collect();
    [[h[0], h[1], h[2]], [h[3], h[4], h[5]], [h[6], h[7], 1.0]]
}

/// Matrix product `a · b`.
pub fn mat_mul(a: &Mat3, b: &Mat3) -> Mat3 {
    std::array::from_fn(|i| std::array::from_fn(|j| (0..3).map(|k| a[i][k] * b[k][j]).sum()))
}

/// One matrix doing `parts[0]` first, then `parts[1]`, …, on the output→source coordinates.
pub fn compose(parts: &[Mat3]) -> Mat3 {
    parts.iter().fold(IDENTITY, |acc, m| mat_mul(m, &acc))
}

/// Applies `m` to the point (x, y).
pub fn transform_point(m: &Mat3, x: f64, y: f64) -> (f64, f64) {
    let w = m[2][0] * x + m[2][1] * y + m[2][2];
    (
        (m[0][0] * x + m[0][1] * y + m[0][2]) / w,
        (m[1][0] * x + m[1][1] * y + m[1][2]) / w,
    )
}

/// Reflects a pixel coordinate into 0..=size-1 about the image border (grid_sample's reflection).
fn reflect(c: f64, size: usize) -> f64 {
    let n = size as f64;
    let mut t = (c + 0.5).rem_euclid(2.0 * n);
    if t > n {
        t = 2.0 * n - t;
    }
    (t - 0.5).clamp(0.0, n - 1.0)
}

/// Resamples every channel of `src` into `dst` through `m` (bilinear, reflection padding).
pub fn warp_planes(src: &[f32], dst: &mut [f32], size: usize, m: &Mat3) {
    let plane = size * size;
    let n = size as f64;
    for yi in 0..size {
        let y = (2.0 * yi as f64 + 1.0) / n - 1.0;
        for xi in 0..size {
            let x = (2.0 * xi as f64 + 1.0) / n - 1.0;
            let (sx, sy) = transform_point(m, x, y);
            let u = reflect(((sx + 1.0) * n - 1.0) / 2.0, size);
            let v = reflect(((sy + 1.0) * n - 1.0) / 2.0, size);
            let (x0, y0) = (u.floor() as usize, v.floor() as usize);
            let (x1, y1) = ((x0 + 1).min(size - 1), (y0 + 1).min(size - 1));
            let (fx, fy) = ((u - x0 as f64) as f32, (v - y0 as f64) as f32);
            for c in 0..src.len() / plane {
                let p = &src[c * plane..(c + 1) * plane];
                let top = p[y0 * size + x0] * (1.0 - fx) + p[y0 * size + x1] * fx;
                let bottom = p[y1 * size + x0] * (1.0 - fx) + p[y1 * size + x1] * fx;
                dst[c * plane + yi * size + xi] = top * (1.0 - fy) + bottom * fy;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{SeedableRng, rngs::StdRng};

    fn close(a: (f64, f64), b: (f64, f64)) -> bool {
        (a.0 - b.0).abs() < 1e-9 && (a.1 - b.1).abs() < 1e-9
    }

    #[test]
    fn composed_matrix_equals_its_parts_applied_in_turn() {
        let parts = [
            flip_mat(),
            rotate_mat(7.5),
            zoom_mat(1.08, 0.3, 0.9),
            warp_mat(0.15, -0.1),
        ];
        let m = compose(&parts);
        for &(x, y) in &[(0.0, 0.0), (-1.0, 1.0), (0.3, -0.7), (0.9, 0.9)] {
            let step = parts
                .iter()
                .fold((x, y), |(px, py), part| transform_point(part, px, py));
            assert!(close(transform_point(&m, x, y), step), "at ({x}, {y})");
        }
    }

    #[test]
    fn warp_moves_the_corners_where_asked() {
        let m = warp_mat(0.2, -0.1);
        assert!(close(transform_point(&m, -1.0, -1.0), (-0.9, -1.2)));
        assert!(close(transform_point(&m, 1.0, 1.0), (1.1, 0.8)));
        assert!(close(
            transform_point(&warp_mat(0.0, 0.0), 0.4, 0.2),
            (0.4, 0.2)
        ));
    }

    #[test]
    fn identity_keeps_and_flip_mirrors_the_pixels() {
        let size = 4;
        let src: Vec<f32> = (0..3 * size * size).map(|i| i as f32).collect();
        let mut dst = vec![0.0; src.len()];
        warp_planes(&src, &mut dst, size, &IDENTITY);
        assert_eq!(dst, src);
        warp_planes(&src, &mut dst, size, &flip_mat());
        for c in 0..3 {
            for y in 0..size {
                for x in 0..size {
                    let at = |x: usize| c * 16 + y * size + x;
                    assert_eq!(dst[at(x)], src[at(size - 1 - x)]);
                }
            }
        }
    }

    #[test]
    fn reflection_padding_mirrors_beyond_the_border() {
        assert_eq!(reflect(-1.0, 4), 0.0);
        assert_eq!(reflect(-2.0, 4), 1.0);
        assert_eq!(reflect(4.0, 4), 3.0);
        assert_eq!(reflect(5.0, 4), 2.0);
        assert_eq!(reflect(1.25, 4), 1.25);
    }

    #[test]
    fn augmentation_is_seeded_and_keeps_values_in_range() {
        let aug = AugLevel::Heavy.transforms().unwrap();
        let img: Vec<f32> = (0..3 * 64).map(|i| (i % 17) as f32 / 16.0).collect();
        let run = |seed| {
            let mut x = img.clone();
            aug.apply(&mut x, 8, &mut StdRng::seed_from_u64(seed));
            x
        };
        assert_eq!(run(3), run(3));
        assert_ne!(run(3), run(4));
        assert!(run(5).iter().all(|v| (0.0..=1.0).contains(v)));
    }

    #[test]
    fn lighting_draws_stay_within_fastai_ranges() {
        let aug = AugTransforms::default();
        let mut rng = StdRng::seed_from_u64(0);
        for _ in 0..500 {
            let d = aug.draw(&mut rng);
            let b = 1.0 / (1.0 + (-d.brightness).exp());
            assert!((0.4 - 1e-6..=0.6 + 1e-6).contains(&b));
            assert!((0.8 - 1e-6..=1.25 + 1e-6).contains(&d.contrast));
        }
    }
}
