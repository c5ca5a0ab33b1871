//! Experiment: gemm operand layouts and parallel splits for the conv backward products.
use std::time::Instant;

unsafe fn g(
    m: usize,
    n: usize,
    k: usize,
    dst: *mut f32,
    drs: usize,
    a: *const f32,
    ars: usize,
    acs: usize,
    b: *const f32,
    brs: usize,
    bcs: usize,
    par: gemm::Parallelism,
    acc: bool,
) {
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            dst,
            1,
            drs as isize,
            acc,
            a,
            acs as isize,
            ars as isize,
            b,
            bcs as isize,
            brs as isize,
            if acc { 1.0 } else { 0.0 },
            1.0,
            false,
            false,
            false,
            par,
        );
    }
}

unsafe fn g2(
    m: usize,
    n: usize,
    k: usize,
    dst: *mut f32,
    drs: usize,
    dcs: usize,
    a: *const f32,
    ars: usize,
    acs: usize,
    b: *const f32,
    brs: usize,
    bcs: usize,
) {
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            dst,
            dcs as isize,
            drs as isize,
            false,
            a,
            acs as isize,
            ars as isize,
            b,
            bcs as isize,
            brs as isize,
            0.0,
            1.0,
            false,
            false,
            false,
            gemm::Parallelism::Rayon(0),
        );
    }
}

fn time(reps: usize, mut f: impl FnMut()) -> f64 {
    f();
    let t = Instant::now();
    for _ in 0..reps {
        f();
    }
    t.elapsed().as_secs_f64() / reps as f64 * 1e3
}

fn main() {
    // (o, k, n): dW = dY[o×n]·colᵀ[n×k]; dcol[k×n] = Wᵀ[k×o]·dY[o×n]
    for (name, o, k, n) in [
        ("stem64", 64, 147, 32768),
        ("l1_64", 64, 576, 8192),
        ("l2_64", 128, 1152, 2048),
        ("l4_64", 512, 4608, 128),
        ("l1_28", 64, 576, 3136),
        ("l4_28", 512, 4608, 64),
        ("l3_28", 256, 2304, 256),
    ] {
        let dy: Vec<f32> = (0..o * n).map(|i| (i % 7) as f32).collect();
        let col: Vec<f32> = (0..k * n).map(|i| (i % 5) as f32).collect();
        let w: Vec<f32> = (0..o * k).map(|i| (i % 3) as f32).collect();
        let mut dw = vec![0.0f32; o * k];
        let reps = 5;
        let fl = 2.0 * (o * k * n) as f64 / 1e6;
        let cur = time(reps, || unsafe {
            g(
                o,
                k,
                n,
                dw.as_mut_ptr(),
                k,
                dy.as_ptr(),
                n,
                1,
                col.as_ptr(),
                1,
                n,
                gemm::Parallelism::Rayon(0),
                false,
            )
        });
        // K split in 2 halves, single-threaded each, then add
        let split = time(reps, || {
            let h = n / 2;
            let mut part = vec![0.0f32; o * k];
            rayon::join(
                || unsafe {
                    g(
                        o,
                        k,
                        h,
                        dw.as_ptr() as *mut f32,
                        k,
                        dy.as_ptr(),
                        n,
                        1,
                        col.as_ptr(),
                        1,
                        n,
                        gemm::Parallelism::None,
                        false,
                    )
                },
                || unsafe {
                    g(
                        o,
                        k,
                        n - h,
                        part.as_mut_ptr(),
                        k,
                        dy.as_ptr().add(h),
                        n,
                        1,
                        col.as_ptr().add(h),
                        1,
                        n,
                        gemm::Parallelism::None,
                        false,
                    )
                },
            );
            for (a, b) in dw.iter_mut().zip(&part) {
                *a += b;
            }
        });
        // dWᵀ[k×o] = col[k×n]·dyᵀ[n×o]
        let mut dwt = vec![0.0f32; o * k];
        let tr = time(reps, || unsafe {
            g(
                k,
                o,
                n,
                dwt.as_mut_ptr(),
                o,
                col.as_ptr(),
                n,
                1,
                dy.as_ptr(),
                1,
                n,
                gemm::Parallelism::Rayon(0),
                false,
            )
        });
        // dWᵀ product written straight into dW's layout: P[k×o] with P[r][o] at dw[o*k + r]
        let trd = time(reps, || unsafe {
            g2(
                k,
                o,
                n,
                dw.as_mut_ptr(),
                1,
                k,
                col.as_ptr(),
                n,
                1,
                dy.as_ptr(),
                1,
                n,
            )
        });
        println!(
            "   transposed-out into dW layout: {trd:6.2} ms ({:5.0})",
            fl / trd
        );
        let mut dcol = vec![0.0f32; k * n];
        let dc = time(reps, || unsafe {
            g(
                k,
                n,
                o,
                dcol.as_mut_ptr(),
                n,
                w.as_ptr(),
                1,
                k,
                dy.as_ptr(),
                n,
                1,
                gemm::Parallelism::Rayon(0),
                false,
            )
        });
        // with W transposed explicitly first
        let dct = time(reps, || {
            let mut wt = vec![0.0f32; o * k];
            for r in 0..o {
                for c in 0..k {
                    wt[c * o + r] = w[r * k + c];
                }
            }
            unsafe {
                g(
                    k,
                    n,
                    o,
                    dcol.as_mut_ptr(),
                    n,
                    wt.as_ptr(),
                    o,
                    1,
                    dy.as_ptr(),
                    n,
                    1,
                    gemm::Parallelism::Rayon(0),
                    false,
                )
            }
        });
        // N split in 2, single threaded
        let dcs = time(reps, || {
            let h = n / 2;
            let p = dcol.as_mut_ptr() as usize;
            rayon::join(
                || unsafe {
                    g(
                        k,
                        h,
                        o,
                        p as *mut f32,
                        n,
                        w.as_ptr(),
                        1,
                        k,
                        dy.as_ptr(),
                        n,
                        1,
                        gemm::Parallelism::None,
                        false,
                    )
                },
                || unsafe {
                    g(
                        k,
                        n - h,
                        o,
                        (p as *mut f32).add(h),
                        n,
                        w.as_ptr(),
                        1,
                        k,
                        dy.as_ptr().add(h),
                        n,
                        1,
                        gemm::Parallelism::None,
                        false,
                    )
                },
            );
        });
        println!(
            "{name:7} dW: cur {cur:6.2} ms ({:5.0} GF/s) ksplit {split:6.2} ({:5.0}) transposed-out {tr:6.2} ({:5.0}) | dcol: cur {dc:6.2} ({:5.0}) wT-copy {dct:6.2} ({:5.0}) nsplit {dcs:6.2} ({:5.0})",
            fl / cur,
            fl / split,
            fl / tr,
            fl / dc,
            fl / dct,
            fl / dcs
        );
    }
}
