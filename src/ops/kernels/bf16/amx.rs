//! Intel AMX: 32×32 output blocks as four 16×16 f32 tiles, each reduction block two left and
//! two right tiles and four `tdpbf16ps`. Written as inline assembly (Rust's AMX intrinsics are
//! not stable); Linux hands out tile state only to a process that asks for it
//! (`arch_prctl(ARCH_REQ_XCOMP_PERM)`), which [`available`] does once.

use std::arch::asm;
use std::sync::OnceLock;

use super::RightLayout;

/// Whether this process can run AMX bf16 tiles: the CPU has AMX-TILE and AMX-BF16 (and AVX-512
/// BF16 for packing), and the kernel granted the tile data state.
pub(super) fn available() -> bool {
    static READY: OnceLock<bool> = OnceLock::new();
    *READY.get_or_init(|| super::dot::available() && cpu_has_amx() && granted())
}

/// CPUID leaf 7: AMX-BF16 (EDX bit 22) and AMX-TILE (bit 24).
fn cpu_has_amx() -> bool {
    let leaf = std::arch::x86_64::__cpuid_count(7, 0);
    leaf.edx & (1 << 22) != 0 && leaf.edx & (1 << 24) != 0
}

/// Asks Linux for permission to use the AMX tile data state (XFEATURE 18) in this process.
#[cfg(target_os = "linux")]
fn granted() -> bool {
    const ARCH_REQ_XCOMP_PERM: libc::c_long = 0x1023;
    const XFEATURE_XTILEDATA: libc::c_long = 18;
    // SAFETY: arch_prctl with this request only changes the process's permitted XSAVE features.
    unsafe {
        libc::syscall(
            libc::SYS_arch_prctl,
            ARCH_REQ_XCOMP_PERM,
            XFEATURE_XTILEDATA,
        ) == 0
    }
}

#[cfg(not(target_os = "linux"))]
fn granted() -> bool {
    false
}

/// The 64-byte tile configuration (palette 1).
#[repr(C, align(64))]
struct Config {
    palette: u8,
    start_row: u8,
    reserved: [u8; 14],
    colsb: [u16; 16],
    rows: [u8; 16],
}

/// Configures this thread's tiles 0–7 as 16 rows of 64 bytes.
///
/// # Safety
/// [`available`] returned true.
pub(super) unsafe fn configure() {
    let mut cfg = Config {
        palette: 1,
        start_row: 0,
        reserved: [0; 14],
        colsb: [0; 16],
        rows: [0; 16],
    };
    cfg.colsb[..8].fill(64);
    cfg.rows[..8].fill(16);
    // SAFETY: a valid palette-1 configuration, on a CPU with AMX (caller).
    unsafe { asm!("ldtilecfg [{}]", in(reg) &cfg, options(nostack, readonly)) };
}

/// Returns this thread's tiles to their initial state.
///
/// # Safety
/// [`available`] returned true.
pub(super) unsafe fn release() {
    // SAFETY: AMX is available (caller).
    unsafe { asm!("tilerelease", options(nostack, nomem)) };
}

/// `C (= or +=) Σ_t A_t · B_t` over `kt` reduction blocks: `a` a left panel of
/// [`super::pack`], `b` a right panel laid out as `b_at` says, `c` a 32×32 f32 block with rows
/// `c_rs` values apart, read first when `load`.
///
/// # Safety
/// Tiles configured ([`configure`]) on this thread; `a` and `b` hold `kt` blocks; `c` is valid
/// for reads and writes of the block.
pub(super) unsafe fn block(
    a: *const u16,
    b: *const u16,
    b_at: RightLayout,
    kt: usize,
    c: *mut f32,
    c_rs: usize,
    load: bool,
) {
    let stride = c_rs * 4;
    let RightLayout {
        row,
        half,
        block: step,
        ..
    } = b_at;
    // SAFETY: rows 16–31 of the block (caller).
    let c_low = unsafe { c.add(16 * c_rs) };
    unsafe {
        if load {
            asm!(
                "tileloadd tmm0, [{c} + {s}*1]",
                "tileloadd tmm1, [{c} + {s}*1 + 64]",
                "tileloadd tmm2, [{d} + {s}*1]",
                "tileloadd tmm3, [{d} + {s}*1 + 64]",
                c = in(reg) c, d = in(reg) c_low, s = in(reg) stride,
                options(nostack, readonly),
            );
        } else {
            asm!(
                "tilezero tmm0",
                "tilezero tmm1",
                "tilezero tmm2",
                "tilezero tmm3",
                options(nostack, nomem)
            );
        }
        if kt > 0 {
            asm!(
                "2:",
                // Each product starts as soon as its two tiles are in, so the other loads
                // overlap it (the next block's first loads overlap this block's last two).
                "tileloadd tmm4, [{a} + {r}*1]",
                "tileloadd tmm6, [{b} + {br}*1]",
                "tdpbf16ps tmm0, tmm4, tmm6",
                "tileloadd tmm7, [{bh} + {br}*1]",
                "tdpbf16ps tmm1, tmm4, tmm7",
                "tileloadd tmm5, [{a} + {r}*1 + 1024]",
                "tdpbf16ps tmm2, tmm5, tmm6",
                "tdpbf16ps tmm3, tmm5, tmm7",
                "add {a}, 2048",
                "add {b}, {step}",
                "add {bh}, {step}",
                "dec {n}",
                "jnz 2b",
                a = inout(reg) a => _, b = inout(reg) b => _, n = inout(reg) kt => _,
                bh = inout(reg) (b as usize + half * 2) => _,
                r = in(reg) 64usize, br = in(reg) row * 2, step = in(reg) step * 2,
                options(nostack, readonly),
            );
        }
        asm!(
            "tilestored [{c} + {s}*1], tmm0",
            "tilestored [{c} + {s}*1 + 64], tmm1",
            "tilestored [{d} + {s}*1], tmm2",
            "tilestored [{d} + {s}*1 + 64], tmm3",
            c = in(reg) c, d = in(reg) c_low, s = in(reg) stride,
            options(nostack),
        );
    }
}
