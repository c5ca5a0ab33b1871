//! Products in bf16 with f32 accumulation, PyTorch's CPU autocast arithmetic: both operands are
//! rounded to bf16 (nearest even) as they are packed, the sums stay f32, and the result is
//! f32. AMX tiles where the CPU has them (`amx.rs`), AVX-512 BF16 dot products (`dot.rs`)
//! otherwise; [`Mul::F32`] everywhere else.
//!
//! Both kernels read the same packed panels (`pack.rs`): 32 rows of the left operand and 32
//! columns of the right, in reduction blocks of 32 (the AMX tile shapes), so the left panel is
//! two 16×32 bf16 tiles per block and the right one two 16×(16×2) tiles in pair-interleaved
//! ("VNNI") order.

#[cfg(target_arch = "x86_64")]
mod amx;
#[cfg(target_arch = "x86_64")]
mod dot;
#[cfg(target_arch = "x86_64")]
mod pack;
mod pairs;
// Its products run on x86-64 only (`supports`); elsewhere it is built and never used.
#[cfg_attr(not(target_arch = "x86_64"), allow(dead_code, unused_variables))]
mod pixels;
mod planes;
mod shifted;

use std::cell::RefCell;

pub(crate) use pairs::Pairs;
pub(crate) use pixels::Pixels;
pub(crate) use planes::Planes;
pub(crate) use shifted::{ShiftMask, Shifted};

use super::buffers::{assume_init, uninit};
use super::mat::Mat;

/// How a convolution's products multiply.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Mul {
    /// f32 products (the `gemm` crate).
    #[default]
    F32,
    /// bf16 products on AMX tiles (`tdpbf16ps`), f32 sums.
    Amx,
    /// bf16 products by AVX-512 BF16 dot products (`vdpbf16ps`), f32 sums.
    Avx512Bf16,
}

impl Mul {
    /// Whether the products round their operands to bf16.
    pub fn is_bf16(self) -> bool {
        self != Mul::F32
    }
}

/// The CPU's native bf16 arithmetic, fastest first: AMX, else AVX-512 BF16; `None` without
/// either (or on other architectures).
pub fn native() -> Option<Mul> {
    UNITS.into_iter().find(|&mul| supports(mul))
}

/// The bf16 arithmetic that is measured faster than f32 FMAs on this CPU, which `auto`
/// precision takes: AMX tiles (Intel Sapphire Rapids: ResNet-18 1.1–1.8× f32), or AVX-512 BF16
/// on an AMD CPU (Zen 4: a 2048³ product 1.6× f32's, docs/benchmarks.md). `None` elsewhere:
/// Sapphire Rapids' AVX-512 BF16 alone runs at half its f32 FMA rate, other Intel CPUs with it
/// were not measured.
pub fn faster_than_f32() -> Option<Mul> {
    match native()? {
        Mul::Avx512Bf16 if !amd() => None,
        unit => Some(unit),
    }
}

/// Whether the CPU is AMD's (CPUID vendor "AuthenticAMD").
fn amd() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        // SAFETY: CPUID leaf 0 exists on every x86-64 CPU.
        #[allow(unused_unsafe)]
        let id = unsafe { std::arch::x86_64::__cpuid(0) };
        [id.ebx, id.edx, id.ecx]
            .iter()
            .flat_map(|r| r.to_le_bytes())
            .eq(*b"AuthenticAMD")
    }
    #[cfg(not(target_arch = "x86_64"))]
    false
}

/// The bf16 arithmetics the kernels know, fastest first.
const UNITS: [Mul; 2] = [Mul::Amx, Mul::Avx512Bf16];

/// Every bf16 arithmetic this CPU has, fastest first.
pub fn units() -> Vec<Mul> {
    UNITS.into_iter().filter(|&mul| supports(mul)).collect()
}

/// Whether `mul` can run on this CPU.
pub fn supports(mul: Mul) -> bool {
    match mul {
        Mul::F32 => true,
        #[cfg(target_arch = "x86_64")]
        Mul::Amx => amx::available(),
        #[cfg(target_arch = "x86_64")]
        Mul::Avx512Bf16 => dot::available(),
        #[cfg(not(target_arch = "x86_64"))]
        _ => false,
    }
}

/// Rows of the left operand (and columns of the right) per packed panel.
const PANEL: usize = 32;
/// Reduction values per block: one tile row of bf16.
const KB: usize = 32;
/// bf16 values in one block of a panel (two 16×32 tiles).
const BLOCK: usize = PANEL * KB;
/// The reduction slice on AMX tiles: a left panel's slice (16 KB) stays in L1 while it
/// sweeps the right panels.
const KC: usize = 256;
/// The longest reduction slice of the AVX-512 BF16 products (see [`slice_len`]).
const KC_DOT: usize = 2048;
/// Bytes of the right operand packed at a time: 64 panels of a 256-value slice, in L2.
const NC_BYTES: usize = 64 * PANEL * KC * 2;
/// Bytes of a right operand packed from shifted planes at a time: a quarter of [`NC_BYTES`],
/// so the chunk the packing just wrote is still in a 1 MB L2 when the kernels read it.
const NC_SHIFTED_BYTES: usize = NC_BYTES / 4;

/// The longest reduction slice of a product over `k` values by `mul`: [`KC`] on AMX tiles;
/// with AVX-512 BF16 the whole reduction up to [`KC_DOT`] values (longer ones in equal slices
/// of whole blocks), so each 32×32 block of the result is read and written once per slice
/// rather than once per 256 values, which costs more than a left panel kept in L1 saves where
/// the result outgrows L2 (Zen 4: a 2048³ product 1.09–1.17×, ResNet-18's last stage at
/// 224 px, whose `dWᵀ` is 4 608 × 512, its backward 1.05–1.12×).
fn slice_len(k: usize, mul: Mul) -> usize {
    match mul {
        Mul::Avx512Bf16 => k
            .div_ceil(k.div_ceil(KC_DOT).max(1))
            .next_multiple_of(KB)
            .max(KB),
        _ => KC,
    }
}

/// Columns of the right operand packed at a time for slices of `kc` values: `bytes` of
/// packed panels, at least one panel.
fn chunk_columns(bytes: usize, kc: usize) -> usize {
    (bytes / (2 * kc.next_multiple_of(KB)) / PANEL).max(1) * PANEL
}

/// A left operand rounded to bf16 and packed once, for many products on it (a convolution's
/// weight, shared by the images of a batch).
pub(crate) struct Packed {
    panels: Vec<u16>,
    m: usize,
    k: usize,
    /// Reduction values per packed slice ([`slice_len`]).
    kc: usize,
}

impl Packed {
    /// `a` (`m × k`) packed in reduction slices, for products by `mul` (`None` for f32, which
    /// multiplies the operand as it lies).
    pub fn new(a: Mat, m: usize, k: usize, mul: Mul) -> Option<Self> {
        if !mul.is_bf16() || !supports(mul) {
            return None;
        }
        a.check(m, k);
        #[cfg(target_arch = "x86_64")]
        {
            let kc = slice_len(k, mul);
            // Not zeroed first: packing writes every value, the panels' padding included.
            let mut panels = uninit::<u16>(
                (0..k)
                    .step_by(kc)
                    .map(|k0| pack_len(m, (k - k0).min(kc)))
                    .sum(),
            );
            let mut scratch = Vec::new();
            let mut at = 0;
            for k0 in (0..k).step_by(kc) {
                let len = pack_len(m, (k - k0).min(kc));
                // SAFETY: `mul` is supported, so the CPU has AVX-512 BF16; the caller's `a` is
                // `m × k`.
                unsafe {
                    pack::left(
                        a,
                        m,
                        k0,
                        (k - k0).min(kc),
                        &mut panels[at..at + len],
                        &mut scratch,
                    )
                };
                at += len;
            }
            // SAFETY: the slices' packings wrote every value of `panels`, back to back.
            let panels = unsafe { assume_init(panels) };
            Some(Self { panels, m, k, kc })
        }
        #[cfg(not(target_arch = "x86_64"))]
        None
    }

    /// `b` (`k × n`) packed as right panels of 32 columns over the whole reduction, for
    /// products by `mul` (AVX-512 BF16 only) whose left operand is read in place
    /// ([`Pixels`]); `None` where the CPU lacks it.
    pub fn columns(b: Mat, k: usize, n: usize, mul: Mul) -> Option<Self> {
        if mul != Mul::Avx512Bf16 || !supports(mul) || k == 0 {
            return None;
        }
        b.check(k, n);
        #[cfg(target_arch = "x86_64")]
        {
            use rayon::prelude::*;
            let len = k.div_ceil(KB) * BLOCK;
            let mut panels = vec![0; n.div_ceil(PANEL) * len];
            // Panel by panel on the cores (a 4.7 MB weight took 2–3 ms on one).
            panels
                .par_chunks_exact_mut(len)
                .enumerate()
                .for_each(|(q, panel)| {
                    let cols = (n - q * PANEL).min(PANEL);
                    // SAFETY: the CPU has AVX-512 BF16; `b` is `k × n` (checked).
                    unsafe { pack::right(b, q * PANEL, cols, 0, k, panel) };
                });
            Some(Self {
                panels,
                m: n,
                k,
                kc: k,
            })
        }
        #[cfg(not(target_arch = "x86_64"))]
        None
    }

    /// The packed panels of the reduction slice starting at `k0`.
    fn slice(&self, k0: usize) -> &[u16] {
        let at = (k0 / self.kc) * pack_len(self.m, self.kc);
        &self.panels[at..at + pack_len(self.m, (self.k - k0).min(self.kc))]
    }
}

/// The length of `m` rows × `kc` reduction values packed.
fn pack_len(m: usize, kc: usize) -> usize {
    m.div_ceil(PANEL) * kc.div_ceil(KB) * BLOCK
}

/// Where a right panel's tiles lie, in bf16 values: one tile row (16 reduction pairs of 16
/// columns each) after another `row` apart, the second 16-column tile `half` after the first,
/// the next block of 32 reduction values `block` after this one — or, over [`Planes`], block
/// `first + t` of the operand at `taps[(first + t) / per_tap]` plus `block` per block into
/// its tap.
#[derive(Debug, Clone, Copy)]
struct RightLayout {
    row: usize,
    half: usize,
    block: usize,
    taps: *const isize,
    per_tap: usize,
    first: usize,
}

impl RightLayout {
    /// A panel packed by [`pack::right`]: tiles of 16 rows of 32 values, back to back.
    const PACKED: Self = Self {
        row: 32,
        half: 512,
        block: BLOCK,
        taps: std::ptr::null(),
        per_tap: 0,
        first: 0,
    };

    /// Columns `n0..` of a whole operand in reduction pairs ([`Pairs`]) whose pair rows lie
    /// `stride` values apart.
    fn pairs(stride: usize) -> Self {
        Self {
            row: stride,
            half: 32,
            block: KB / 2 * stride,
            ..Self::PACKED
        }
    }

    /// The reduction slice from block `first` on of an operand read in place from
    /// [`Planes`].
    fn planes(planes: &Planes, first: usize) -> Self {
        Self {
            taps: planes.taps.as_ptr(),
            per_tap: planes.blocks_per_tap(),
            first,
            ..Self::pairs(planes.stride)
        }
    }

    /// Where block `t` of the panel starts, in bf16 values from the panel's start.
    ///
    /// # Safety
    /// Over [`Planes`], block `first + t` lies in the operand.
    #[inline]
    unsafe fn block_at(self, t: usize) -> isize {
        if self.taps.is_null() {
            return (t * self.block) as isize;
        }
        let b = self.first + t;
        // SAFETY: `b / per_tap` is a tap of the operand (caller).
        unsafe { *self.taps.add(b / self.per_tap) + ((b % self.per_tap) * self.block) as isize }
    }
}

/// A product's right operand: f32 as it lies (packed panel by panel), or in bf16 pairs.
#[derive(Clone, Copy)]
pub(crate) enum Right<'a> {
    /// An f32 matrix.
    Mat(Mat<'a>),
    /// Already in bf16 reduction pairs: its columns from the given one on (a product split
    /// by columns reads a part).
    Pairs(&'a Pairs, usize),
    /// One row per [`Shifted`] input plane (one image's im2col for a stride-1 convolution),
    /// its columns from the given one on, rounded and packed panel by panel straight from the
    /// planes as the product runs: the operand is never written whole.
    Shifted(&'a [Shifted<'a>], usize),
    /// One image's im2col for a stride-1 convolution read in place from its [`Planes`], its
    /// columns from the given one on (AVX-512 BF16 products only).
    Planes(&'a Planes, usize),
}

impl<'a> Right<'a> {
    /// The operand's columns from `h` on.
    pub fn columns_from(self, h: usize) -> Self {
        match self {
            Right::Mat(b) => Right::Mat(Mat {
                data: &b.data[h * b.cs..],
                ..b
            }),
            Right::Pairs(pairs, col0) => Right::Pairs(pairs, col0 + h),
            Right::Shifted(rows, col0) => Right::Shifted(rows, col0 + h),
            Right::Planes(planes, col0) => Right::Planes(planes, col0 + h),
        }
    }
}

impl<'a> From<Mat<'a>> for Right<'a> {
    fn from(m: Mat<'a>) -> Self {
        Right::Mat(m)
    }
}

impl<'a> From<&'a Pairs> for Right<'a> {
    fn from(p: &'a Pairs) -> Self {
        Right::Pairs(p, 0)
    }
}

/// A product's left operand: as it lies, or already packed.
#[derive(Clone, Copy)]
pub(crate) enum Left<'a> {
    /// An f32 matrix, packed slice by slice as the product runs.
    Mat(Mat<'a>),
    /// Packed once by [`Packed::new`].
    Packed(&'a Packed),
    /// One row per [`Shifted`] input plane (a stride-1 convolution's im2col), rounded and
    /// packed slice by slice straight from the planes.
    Shifted(&'a [Shifted<'a>]),
}

thread_local! {
    /// This thread's packing buffers, reused from product to product: a left operand's slice,
    /// a right operand's panel, a transposed left operand's panel laid out as a right one.
    static BUFFERS: RefCell<(Vec<u16>, Vec<u16>, Vec<u16>)> =
        const { RefCell::new((Vec::new(), Vec::new(), Vec::new())) };
}

/// `dst = a · b` (or `dst += a · b` when `accumulate`) in bf16 with f32 sums, on the calling
/// thread; `dst` is `m × n` with rows `dst_rs` apart.
///
/// # Safety
/// `mul` must be supported ([`supports`]); `dst` must address an `m × n` block with row stride
/// `dst_rs`, valid for reads and writes and overlapping neither operand, whose bounds
/// (`a`: `m × k`, `b`: `k × n`) the caller checked.
#[cfg(target_arch = "x86_64")]
#[allow(clippy::too_many_arguments)]
pub(super) unsafe fn gemm(
    m: usize,
    n: usize,
    k: usize,
    dst: *mut f32,
    dst_rs: usize,
    a: Left,
    b: Right,
    accumulate: bool,
    mul: Mul,
) {
    // Checked here, not only where `mul` was chosen: the instructions fault on a CPU without them.
    assert!(
        mul.is_bf16() && supports(mul),
        "{mul:?} products on a CPU without them"
    );
    let kc_max = slice_len(k, mul);
    if let Left::Packed(p) = a {
        assert!(
            p.m == m && p.k == k && p.kc == kc_max,
            "a packed {}×{} operand in slices of {} for {m}×{k} in slices of {kc_max}",
            p.m,
            p.k,
            p.kc
        );
    }
    if let Left::Shifted(rows) = a {
        assert!(
            rows.len() == m && rows.iter().all(|r| 16 * r.masks.len() >= k),
            "{} shifted rows for {m}×{k}",
            rows.len()
        );
    }
    if let Right::Pairs(pairs, col0) = b {
        assert!(
            pairs.k == k && col0 + n <= pairs.n,
            "{}×{} pairs for {k}×{n} from column {col0}",
            pairs.k,
            pairs.n
        );
    }
    if let Right::Shifted(rows, col0) = b {
        assert!(
            rows.len() == k && rows.iter().all(|r| 16 * r.masks.len() >= col0 + n),
            "{} shifted rows for {k}×{n} from column {col0}",
            rows.len()
        );
    }
    if let Right::Planes(planes, col0) = b {
        assert!(
            mul == Mul::Avx512Bf16 && planes.k() == k && col0 + n <= planes.n(),
            "{mul:?} products over planes of {}×{} for {k}×{n} from column {col0}",
            planes.k(),
            planes.n()
        );
    }
    BUFFERS.with(|buffers| {
        let (ap, bp, scratch) = &mut *buffers.borrow_mut();
        if mul == Mul::Amx {
            // SAFETY: the CPU has AMX (caller); the configuration lasts for this product.
            unsafe { amx::configure() };
        }
        let mut out = Scratch([0.0; PANEL * PANEL]);
        for (slice, k0) in (0..k).step_by(kc_max).enumerate() {
            let kc = (k - k0).min(kc_max);
            let kt = kc.div_ceil(KB);
            // Reduction pairs in the slice's last block: the AVX-512 BF16 kernel skips the
            // zeros after them (a reduction over a 14×14 map's 196 pixels: 7 blocks of 32).
            let last_pairs = (kc - (kt - 1) * KB).div_ceil(2);
            let a_panels: &[u16] = match a {
                Left::Packed(p) => p.slice(k0),
                Left::Shifted(rows) => {
                    ap.resize(pack_len(m, kc), 0);
                    // SAFETY: the CPU has AVX-512 BF16; rows and masks checked above; `k0` is
                    // a multiple of the slice, itself of KB.
                    unsafe { pack::left_shifted(rows, m, k0, kc, overwritten(ap)) };
                    ap
                }
                Left::Mat(a) => {
                    ap.resize(pack_len(m, kc), 0);
                    // SAFETY: the CPU has AVX-512 BF16 (every unit implies it); bounds checked
                    // by the caller.
                    unsafe { pack::left(a, m, k0, kc, overwritten(ap), scratch) };
                    ap
                }
            };
            let add = accumulate || slice > 0;
            // The right operand in chunks of NC_BYTES (NC_SHIFTED_BYTES packed from planes),
            // each chunk's panels packed once and kept in the core's L2 while every left panel
            // sweeps them.
            let chunk = if matches!(b, Right::Shifted(..)) {
                chunk_columns(NC_SHIFTED_BYTES, kc_max)
            } else {
                chunk_columns(NC_BYTES, kc_max)
            };
            for c0 in (0..n).step_by(chunk) {
                let nc = (n - c0).min(chunk);
                let panels = nc.div_ceil(PANEL);
                if !matches!(b, Right::Pairs(..) | Right::Planes(..)) {
                    bp.resize(panels * kt * BLOCK, 0);
                    for (q, panel) in bp.chunks_exact_mut(kt * BLOCK).enumerate() {
                        let (n0, cols) = (c0 + q * PANEL, (nc - q * PANEL).min(PANEL));
                        // SAFETY: as above; shifted rows checked above.
                        unsafe {
                            match b {
                                Right::Mat(b) => pack::right(b, n0, cols, k0, kc, panel),
                                Right::Shifted(rows, col0) => {
                                    pack::right_shifted(rows, col0 + n0, cols, k0, kc, panel)
                                }
                                Right::Pairs(..) | Right::Planes(..) => unreachable!(),
                            }
                        }
                    }
                }
                let right_panel = |q: usize| match b {
                    Right::Mat(_) | Right::Shifted(..) => {
                        (bp[q * kt * BLOCK..].as_ptr(), RightLayout::PACKED)
                    }
                    Right::Pairs(pairs, col0) => {
                        let at = k0 / 2 * pairs.stride + (col0 + c0 + q * PANEL) * 2;
                        (pairs.data[at..].as_ptr(), RightLayout::pairs(pairs.stride))
                    }
                    Right::Planes(planes, col0) => {
                        let at = (col0 + c0 + q * PANEL) * 2;
                        (
                            planes.data[at..].as_ptr(),
                            RightLayout::planes(planes, k0 / KB),
                        )
                    }
                };
                for (p, a_panel) in a_panels.chunks_exact(kt * BLOCK).enumerate() {
                    let rows = (m - p * PANEL).min(PANEL);
                    for q in 0..panels {
                        let (n0, cols) = (c0 + q * PANEL, (nc - q * PANEL).min(PANEL));
                        let (b_panel, b_at) = right_panel(q);
                        // SAFETY: the block lies inside `dst` (rows, cols clipped to m, n).
                        let block = unsafe { dst.add(p * PANEL * dst_rs + n0) };
                        let full = rows == PANEL && cols == PANEL;
                        let (c, c_rs, load) = if full {
                            (block, dst_rs, add)
                        } else {
                            (out.0.as_mut_ptr(), PANEL, false)
                        };
                        // SAFETY: `c` addresses a 32×32 block with row stride `c_rs`.
                        unsafe {
                            match mul {
                                Mul::Amx => {
                                    amx::block(a_panel.as_ptr(), b_panel, b_at, kt, c, c_rs, load)
                                }
                                _ => dot::block(
                                    dot::PackedLeft(a_panel.as_ptr()),
                                    b_panel,
                                    b_at,
                                    kt,
                                    last_pairs,
                                    cols,
                                    c,
                                    c_rs,
                                    load,
                                ),
                            }
                        }
                        if !full {
                            for r in 0..rows {
                                let src = &out.0[r * PANEL..][..cols];
                                // SAFETY: row `r` < rows and `cols` columns lie inside the block.
                                let row = unsafe {
                                    std::slice::from_raw_parts_mut(block.add(r * dst_rs), cols)
                                };
                                if add {
                                    row.iter_mut().zip(src).for_each(|(d, s)| *d += s);
                                } else {
                                    row.copy_from_slice(src);
                                }
                            }
                        }
                    }
                }
            }
        }
        if mul == Mul::Amx {
            // SAFETY: as above.
            unsafe { amx::release() };
        }
    });
}

/// Never called: no CPU but x86-64 multiplies bf16 here ([`supports`]).
#[cfg(not(target_arch = "x86_64"))]
#[allow(clippy::too_many_arguments)]
pub(super) unsafe fn gemm(
    _: usize,
    _: usize,
    _: usize,
    _: *mut f32,
    _: usize,
    _: Left,
    _: Right,
    _: bool,
    mul: Mul,
) {
    unreachable!("{mul:?} products on a CPU without them")
}

/// A packing buffer of values, to be overwritten by a packer (the packers take buffers that
/// need not be initialised, such as [`Packed`]'s).
///
/// # Safety
/// Only initialised values may be stored through the result (the packers store nothing else),
/// so that `buf` still holds values afterwards.
#[cfg(target_arch = "x86_64")]
unsafe fn overwritten(buf: &mut [u16]) -> &mut [std::mem::MaybeUninit<u16>] {
    // SAFETY: MaybeUninit<u16> has u16's layout; the caller stores only initialised values.
    unsafe { &mut *(buf as *mut [u16] as *mut [std::mem::MaybeUninit<u16>]) }
}

/// A 32×32 f32 block aligned for tile stores.
#[repr(C, align(64))]
struct Scratch([f32; PANEL * PANEL]);

#[cfg(all(test, target_arch = "x86_64"))]
mod tests;
