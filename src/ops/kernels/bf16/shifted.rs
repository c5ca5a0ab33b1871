//! Rows read in place from a shifted input plane, for bf16 operands made straight from a
//! convolution's input: a stride-1 convolution's im2col row for one tap and channel is the
//! channel's plane shifted by a constant, with the padding masked off.

/// Which values of a [`Shifted`] row are read: bit `q % 16` of word `q / 16` set for the `q`
/// in `[lo, hi)` that `keep` accepts (a tap's valid output pixels), the rest zeros.
pub(crate) struct ShiftMask {
    bits: Vec<u16>,
    lo: usize,
    hi: usize,
}

impl ShiftMask {
    /// The mask of `n` values.
    pub fn new(n: usize, (lo, hi): (usize, usize), keep: impl Fn(usize) -> bool) -> Self {
        let hi = hi.min(n);
        let mut bits = vec![0u16; n.div_ceil(16)];
        for q in (lo..hi).filter(|&q| keep(q)) {
            bits[q / 16] |= 1 << (q % 16);
        }
        Self { bits, lo, hi }
    }
}

/// One reduction row read in place from a shifted input plane: value `q` is `src[q + off]`
/// where its [`ShiftMask`] bit is set, zero elsewhere (a stride-1 convolution's im2col row for
/// one tap and channel, the padding masked off), for [`super::Pairs::write_shifted_row`].
pub(crate) struct Shifted<'a> {
    pub(super) src: &'a [f32],
    pub(super) off: isize,
    pub(super) masks: &'a [u16],
}

impl<'a> Shifted<'a> {
    /// The row over `src`; every value `mask` keeps must read inside `src` (checked).
    pub fn new(src: &'a [f32], off: isize, mask: &'a ShiftMask) -> Self {
        let (lo, hi) = (mask.lo as isize, mask.hi as isize);
        assert!(
            lo >= hi || (lo + off >= 0 && hi + off <= src.len() as isize),
            "shifted row [{lo}, {hi}) + {off} over {} values",
            src.len()
        );
        Self {
            src,
            off,
            masks: &mask.bits,
        }
    }

    /// The mask bits of values `q..q + 16`, bit `i` for value `q + i` (zeros past the row).
    pub(super) fn mask16(&self, q: usize) -> u16 {
        let word = |w: usize| u32::from(self.masks.get(w).copied().unwrap_or(0));
        ((word(q / 16) | word(q / 16 + 1) << 16) >> (q % 16)) as u16
    }

    /// Value `q`.
    pub(super) fn at(&self, q: usize) -> f32 {
        if self.masks[q / 16] & (1 << (q % 16)) == 0 {
            0.0
        } else {
            self.src[(q as isize + self.off) as usize]
        }
    }
}
