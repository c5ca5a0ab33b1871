//! The bf16 products and the vendor rule against their definitions.

use super::*;

#[test]
#[cfg(target_os = "linux")]
fn the_vendor_check_agrees_with_the_kernel_and_auto_follows_it() {
    let info = std::fs::read_to_string("/proc/cpuinfo").unwrap();
    assert_eq!(amd(), info.contains("AuthenticAMD"));
    let expected = match native() {
        Some(Mul::Avx512Bf16) if !amd() => None,
        unit => unit,
    };
    assert_eq!(faster_than_f32(), expected);
}

fn ramp(n: usize, seed: f64) -> Vec<f32> {
    (0..n)
        .map(|i| ((i as f64 * 0.61 + seed).sin() * 1.7) as f32)
        .collect()
}

/// Reduction slices: 256 values on AMX tiles; with AVX-512 BF16 whole blocks of 32, at most
/// 2 048, a long reduction cut into equal slices; chunks of the right operand whole panels.
#[test]
fn reduction_slices_are_whole_blocks_in_equal_parts() {
    assert_eq!(slice_len(1, Mul::Avx512Bf16), 32);
    assert_eq!(slice_len(576, Mul::Avx512Bf16), 576);
    assert_eq!(slice_len(2048, Mul::Avx512Bf16), 2048);
    assert_eq!(slice_len(2200, Mul::Avx512Bf16), 1120);
    assert_eq!(slice_len(4608, Mul::Avx512Bf16), 1536);
    assert_eq!(slice_len(576, Mul::Amx), 256);
    assert_eq!(slice_len(100, Mul::Amx), 256);
    assert_eq!(chunk_columns(NC_BYTES, 256), 2048);
    assert_eq!(chunk_columns(NC_BYTES, 2048), 256);
    assert_eq!(chunk_columns(NC_SHIFTED_BYTES, 1 << 20), 32);
}

/// `a · b` in f64 with every operand mapped by `r` first.
fn reference(m: usize, n: usize, k: usize, a: Mat, b: Mat, r: impl Fn(f32) -> f64) -> Vec<f64> {
    let mut c = vec![0.0; m * n];
    for i in 0..m {
        for j in 0..n {
            c[i * n + j] = (0..k)
                .map(|l| r(a.data[i * a.rs + l * a.cs]) * r(b.data[l * b.rs + j * b.cs]))
                .sum();
        }
    }
    c
}

/// Every bf16 unit this CPU has, against two f64 references: the product of the
/// operands rounded to bf16 (within 1e-5 of the sum of |products|: only the f32 sums
/// differ) and the exact product (within 2⁻⁸ of it: bf16 keeps 8 significant bits, so each
/// product is off by at most 2·2⁻⁹ relative); both operand layouts the convolutions use
/// (rows and columns contiguous), edges of every size, accumulation, reduction slices (two
/// of them with AVX-512 BF16 at `k` = 2 200), the
/// left operand packed per product and once for many, the right one packed per panel and
/// given as bf16 pairs.
#[test]
fn bf16_products_equal_an_f64_reference() {
    let units = units();
    if units.is_empty() {
        eprintln!("no native bf16 on this CPU: nothing to check");
        return;
    }
    let exact = |x: f32| x as f64;
    let shapes = [
        (1, 1, 1),
        (32, 32, 32),
        (33, 47, 70),
        (64, 96, 800),
        (5, 130, 1600),
        (70, 3, 9),
        (3, 40, 2200),
    ];
    for (m, n, k) in shapes {
        let (av, bv) = (ramp(m * k, 0.3), ramp(k * n, 1.1));
        let (a_rows, a_cols) = (Mat::rows(&av, k), Mat::transposed(&av, m));
        let (b_rows, b_cols) = (Mat::rows(&bv, n), Mat::transposed(&bv, k));
        for (a, b) in [
            (a_rows, b_rows),
            (a_cols, b_cols),
            (a_rows, b_cols),
            (a_cols, b_rows),
        ] {
            let rounded = reference(m, n, k, a, b, |x| half::bf16::from_f32(x).to_f64());
            let want = reference(m, n, k, a, b, exact);
            let scale = reference(m, n, k, a, b, |x| (x as f64).abs());
            for &unit in &units {
                for accumulate in [false, true] {
                    let mut got = vec![0.5f32; m * n];
                    let packed = Packed::new(a, m, k, unit).unwrap();
                    let left = if accumulate {
                        Left::Packed(&packed)
                    } else {
                        Left::Mat(a)
                    };
                    let right = if accumulate && b.cs == 1 {
                        let mut pairs = Pairs::new(k, n);
                        for p in 0..k.div_ceil(2) {
                            let row = |l: usize| &b.data[l * n..][..n];
                            let r1 = (2 * p + 1 < k).then(|| row(2 * p + 1));
                            Pairs::write_row(pairs.row_mut(p), row(2 * p), r1);
                        }
                        Some(pairs)
                    } else {
                        None
                    };
                    let right_op = right.as_ref().map_or(Right::Mat(b), Right::from);
                    unsafe {
                        gemm(
                            m,
                            n,
                            k,
                            got.as_mut_ptr(),
                            n,
                            left,
                            right_op,
                            accumulate,
                            unit,
                        )
                    };
                    for (ij, &g) in got.iter().enumerate() {
                        let g = g as f64 - if accumulate { 0.5 } else { 0.0 };
                        let s = scale[ij].max(1e-30);
                        let (e1, e2) = ((g - rounded[ij]).abs() / s, (g - want[ij]).abs() / s);
                        let at = format!("{unit:?} {m}×{n}×{k} acc={accumulate} [{ij}]");
                        assert!(e1 < 1e-5, "{at}: {g} vs {} (bf16 operands)", rounded[ij]);
                        assert!(e2 < 1.0 / 256.0, "{at}: {g} vs {} (exact)", want[ij]);
                    }
                }
            }
        }
    }
}
