use super::Activation;
use super::backward::*;
use super::forward::*;
use super::geom::*;

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
                                if iy >= 0 && ix >= 0 && (iy as usize) < g.h && (ix as usize) < g.w
                                {
                                    acc += x
                                        [((b * g.c + c) * g.h + iy as usize) * g.w + ix as usize]
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

pub(super) fn ramp(n: usize, seed: f32) -> Vec<f32> {
    (0..n)
        .map(|i| (i as f32 * 0.37 + seed).sin() * 1.3)
        .collect()
}

/// Input shape, weight shape, stride, padding (before, after) per axis, dilation.
pub(super) type Case = (
    [usize; 4],
    [usize; 4],
    [usize; 2],
    [(usize, usize); 2],
    [usize; 2],
);

/// Geometries for the kernels' special paths, in both tests: rows of 8 pixels or more take
/// the span copies (shifted, then strided), narrower ones the pair tables; taps over padding
/// only (one live tap of 9, then four).
pub(super) const PATH_CASES: [Case; 4] = [
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
            paths.push(forward_batch(
                &x,
                &w,
                &g,
                &taps,
                Some(&pairs),
                None,
                None,
                id,
            ));
        }
        if taps.len() == g.kh * g.kw {
            let id = Activation::Identity;
            paths.push(forward_by_image(&x, &w, &g, &taps, None, None, None, id));
            // With BatchNorm's affine map and ReLU applied in the output pass.
            let scale: Vec<f32> = (0..g.o).map(|o| 0.5 + o as f32 * 0.25).collect();
            let shift: Vec<f32> = (0..g.o).map(|o| o as f32 * 0.3 - 0.4).collect();
            let relu = Activation::Relu;
            let got = forward_by_image(&x, &w, &g, &taps, None, Some(&scale), Some(&shift), relu);
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
            paths.push(backward_by_image(&x, &w, &dy, &g, &taps, None, true));
            // Without the input gradient, the same weight gradient.
            let (none, dw) = backward_by_image(&x, &w, &dy, &g, &taps, None, false);
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

/// With bf16 products (every unit this CPU has), every path of the forward equals the
/// definition on the operands rounded to bf16 (only the f32 sums differ: within 1e-5 of the
/// sum of |products|), and so do both gradients (against the f32 kernels on rounded operands).
#[test]
fn bf16_convolutions_equal_the_definition_on_rounded_operands() {
    // Two cores, whichever the machine has: the paths taken depend on the images per core.
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(2)
        .build()
        .unwrap();
    pool.install(check_bf16_paths);
}

fn check_bf16_paths() {
    use super::bf16::Mul;
    let units = super::bf16::units();
    if units.is_empty() {
        eprintln!("no native bf16 on this CPU: nothing to check");
        return;
    }
    let round = |v: &[f32]| -> Vec<f32> {
        v.iter()
            .map(|&x| half::bf16::from_f32(x).to_f32())
            .collect()
    };
    let abs = |v: &[f32]| -> Vec<f32> { v.iter().map(|x| x.abs()).collect() };
    let (mut on_live_columns, mut tap_major, mut planes, mut one_pixel) = (0, 0, 0, 0);
    let mut by_pixel = 0;
    for (xs, ws, st, pad, dil) in [
        ([4, 3, 9, 8], [4, 3, 3, 3], [1, 1], [(1, 1), (1, 1)], [1, 1]),
        (
            [4, 5, 17, 16],
            [6, 5, 3, 3],
            [2, 2],
            [(1, 1), (1, 1)],
            [1, 1],
        ),
        ([4, 7, 9, 9], [5, 7, 1, 1], [1, 1], [(0, 0), (0, 0)], [1, 1]),
        ([8, 3, 5, 6], [4, 3, 3, 3], [1, 1], [(1, 1), (1, 1)], [1, 1]),
        (
            [2, 33, 6, 5],
            [40, 33, 3, 3],
            [1, 1],
            [(1, 1), (1, 1)],
            [1, 1],
        ),
        // Stems at stride 2 through the input's phases (even and odd sides).
        (
            [8, 3, 20, 20],
            [8, 3, 7, 7],
            [2, 2],
            [(3, 3), (3, 3)],
            [1, 1],
        ),
        (
            [8, 2, 21, 19],
            [5, 2, 7, 7],
            [2, 2],
            [(3, 3), (3, 3)],
            [1, 1],
        ),
        // Maps of 4 096 pixels or more, whose product packs col(X) from the shifted planes
        // (a stem through its phases, a 3×3 layer and its input gradient; a partial last panel).
        (
            [2, 3, 130, 134],
            [8, 3, 7, 7],
            [2, 2],
            [(3, 3), (3, 3)],
            [1, 1],
        ),
        (
            [2, 4, 65, 66],
            [40, 4, 3, 3],
            [1, 1],
            [(1, 1), (1, 1)],
            [1, 1],
        ),
        // Dead taps on a narrow map (one product per tap, pairs per tap); products large
        // enough to be split between cores, by columns (the first two: pairs read from a
        // column on) and by rows (the third).
        ([8, 4, 2, 2], [3, 4, 3, 3], [2, 2], [(1, 1), (1, 1)], [1, 1]),
        (
            [2, 16, 10, 12],
            [48, 16, 3, 3],
            [1, 1],
            [(1, 1), (1, 1)],
            [1, 1],
        ),
        (
            [16, 32, 6, 6],
            [64, 32, 3, 3],
            [1, 1],
            [(1, 1), (1, 1)],
            [1, 1],
        ),
        (
            [8, 32, 2, 2],
            [256, 32, 3, 3],
            [1, 1],
            [(1, 1), (1, 1)],
            [1, 1],
        ),
        // The batch-innermost path: taps multiplied on their live columns only (an odd
        // channel count, an odd batch whose columns split unevenly), every tap at once in
        // tap-major pairs (an even channel count; `[8, 3, 5, 6]` above, odd: tap by tap).
        ([8, 5, 2, 2], [3, 5, 3, 3], [1, 1], [(1, 1), (1, 1)], [1, 1]),
        ([9, 4, 3, 3], [6, 4, 3, 3], [1, 1], [(1, 1), (1, 1)], [1, 1]),
        ([9, 6, 7, 7], [5, 6, 3, 3], [1, 1], [(1, 1), (1, 1)], [1, 1]),
        // Live columns on a map whose share of them is high, with many channels.
        (
            [8, 256, 5, 5],
            [4, 256, 3, 3],
            [1, 1],
            [(1, 1), (1, 1)],
            [1, 1],
        ),
        // One-pixel outputs: a 3×3 kernel on 1×1 maps (the centre tap, read in place), a 1×1
        // downsampling of 2×2 maps (gathered, an odd channel count), a stride-2 3×3 kernel on
        // 2×2 maps (four live taps summed).
        (
            [8, 64, 1, 1],
            [40, 64, 3, 3],
            [1, 1],
            [(1, 1), (1, 1)],
            [1, 1],
        ),
        (
            [6, 33, 2, 2],
            [20, 33, 1, 1],
            [2, 2],
            [(0, 0), (0, 0)],
            [1, 1],
        ),
        (
            [9, 16, 2, 2],
            [24, 16, 3, 3],
            [2, 2],
            [(1, 1), (1, 1)],
            [1, 1],
        ),
        // Image by image over padded planes of channel pairs: output rows in two chunks, the
        // input gradient over planes too (64 output channels); a 5×5 kernel, a partial left
        // panel.
        (
            [4, 32, 70, 14],
            [64, 32, 3, 3],
            [1, 1],
            [(1, 1), (1, 1)],
            [1, 1],
        ),
        (
            [4, 64, 15, 16],
            [40, 64, 5, 5],
            [1, 1],
            [(2, 2), (2, 2)],
            [1, 1],
        ),
        // Output pixels as the products' rows (AVX-512 BF16): an odd batch over 7×7 maps,
        // a stride-2 3×3 and a 1×1 downsampling into 4×4 maps, a 5×5 kernel, 2×2 maps whose
        // pixels each skip a different five taps.
        (
            [5, 64, 7, 7],
            [64, 64, 3, 3],
            [1, 1],
            [(1, 1), (1, 1)],
            [1, 1],
        ),
        (
            [16, 32, 8, 8],
            [64, 32, 3, 3],
            [2, 2],
            [(1, 1), (1, 1)],
            [1, 1],
        ),
        (
            [17, 32, 8, 8],
            [32, 32, 1, 1],
            [2, 2],
            [(0, 0), (0, 0)],
            [1, 1],
        ),
        (
            [3, 32, 9, 9],
            [32, 32, 5, 5],
            [1, 1],
            [(2, 2), (2, 2)],
            [1, 1],
        ),
        (
            [64, 32, 2, 2],
            [96, 32, 3, 3],
            [1, 1],
            [(1, 1), (1, 1)],
            [1, 1],
        ),
        // More taps than a pixel's mask holds: another path.
        (
            [4, 32, 14, 14],
            [32, 32, 9, 9],
            [1, 1],
            [(4, 4), (4, 4)],
            [1, 1],
        ),
    ]
    .into_iter()
    .chain(PATH_CASES)
    {
        let g = ConvGeom::new(xs, ws, st, pad, dil);
        let taps = g.live_taps();
        if let Some(pairs) = batch_inner_pairs(&g, &taps) {
            if live_columns(&g, &pairs) {
                on_live_columns += 1;
            } else if taps.len() == g.kh * g.kw && g.c.is_multiple_of(2) {
                tap_major += 1;
            }
        }
        for &unit in &units {
            let g = ConvGeom::new(xs, ws, st, pad, dil).with_mul(unit);
            let g32 = ConvGeom { mul: Mul::F32, ..g };
            let x = ramp(xs.iter().product(), 0.1);
            let w = ramp(ws.iter().product(), 0.7);
            let dy = ramp(g.b * g.o * g.s(), 0.9);
            let want = naive(&round(&x), &round(&w), &g);
            let scale = naive(&abs(&x), &abs(&w), &g);
            let taps = g.live_taps();
            let id = Activation::Identity;
            let mut paths = vec![
                conv2d_forward(&x, &w, &g),
                forward_batch(&x, &w, &g, &taps, None, None, None, id),
            ];
            if let Some(pairs) = small_plane_pairs(&g, &taps) {
                paths.push(forward_batch(
                    &x,
                    &w,
                    &g,
                    &taps,
                    Some(&pairs),
                    None,
                    None,
                    id,
                ));
            }
            if taps.len() == g.kh * g.kw {
                paths.push(forward_by_image(&x, &w, &g, &taps, None, None, None, id));
            }
            if reads_planes(&g, taps.len()) {
                planes += 1;
                // Inference's affine map and activation, applied as the rows are copied out.
                let plain = paths.last().expect("the image-by-image path");
                let fused = |m: &[f32], a: &[f32]| {
                    forward_by_image(&x, &w, &g, &taps, None, Some(m), Some(a), Activation::Relu)
                };
                check_fused(&g, plain, fused, |i| i / g.s() % g.o);
            }
            if super::by_pixel::applies(&g, &taps) {
                by_pixel += 1;
                // Inference's affine map and activation, applied as the blocks are written.
                let fused = |m: &[f32], a: &[f32]| {
                    conv2d_forward_fused(&x, &w, &g, Some(m), Some(a), Activation::Relu)
                };
                check_fused(&g, &paths[0], fused, |i| i / g.s() % g.o);
            }
            if super::one_pixel::applies(&g, &taps) {
                one_pixel += 1;
                // Inference's affine map and activation in the batch-innermost output pass.
                let fused = |m: &[f32], a: &[f32]| {
                    conv2d_forward_fused(&x, &w, &g, Some(m), Some(a), Activation::Relu)
                };
                check_fused(&g, &paths[0], fused, |i| i % g.o);
            }
            for got in paths {
                for ((a, b), s) in got.iter().zip(&want).zip(&scale) {
                    assert!((a - b).abs() <= 1e-5 * s.max(1e-6), "{g:?}: {a} vs {b}");
                }
            }
            let (dx, dw) = conv2d_backward(&x, &w, &dy, &g, true);
            let (rx, rw, rdy) = (round(&x), round(&w), round(&dy));
            let (dx32, dw32) = conv2d_backward(&rx, &rw, &rdy, &g32, true);
            let (dxs, dws) = conv2d_backward(&abs(&x), &abs(&w), &abs(&dy), &g32, true);
            // Without the input gradient (a stem) the weight gradient may take another path.
            let (_, dw_alone) = conv2d_backward(&x, &w, &dy, &g, false);
            for (name, got, want, s) in [
                ("dx", dx.unwrap(), dx32.unwrap(), dxs.unwrap()),
                ("dw", dw, dw32.clone(), dws.clone()),
                ("dw alone", dw_alone, dw32, dws),
            ] {
                for (i, ((a, b), s)) in got.iter().zip(&want).zip(&s).enumerate() {
                    assert!(
                        (a - b).abs() <= 1e-5 * s.max(1e-6),
                        "{g:?} {name}[{i}]: {a} vs {b} (scale {s})"
                    );
                }
            }
        }
    }
    assert!(
        on_live_columns >= 4 && tap_major >= 2,
        "{on_live_columns} {tap_major}"
    );
    if units.contains(&Mul::Avx512Bf16) {
        assert!(planes >= 2, "{planes} geometries over planes");
        assert!(by_pixel >= 6, "{by_pixel} geometries by pixel rows");
    }
    assert!(
        one_pixel >= 3 * units.len(),
        "{one_pixel} one-pixel outputs"
    );
}

/// A path's output with inference's affine map and ReLU fused (`fused(scale, shift)`) equals
/// its plain output `plain` mapped afterwards; `channel(i)` is value `i`'s channel.
fn check_fused(
    g: &ConvGeom,
    plain: &[f32],
    fused: impl Fn(&[f32], &[f32]) -> Vec<f32>,
    channel: impl Fn(usize) -> usize,
) {
    let (mul, add) = (ramp(g.o, 0.3), ramp(g.o, 0.5));
    let got = fused(&mul, &add);
    assert_eq!(got.len(), plain.len(), "{g:?}");
    for (i, (a, b)) in got.iter().zip(plain).enumerate() {
        let o = channel(i);
        assert_eq!(*a, (b * mul[o] + add[o]).max(0.0), "{g:?} affine[{i}]");
    }
}
