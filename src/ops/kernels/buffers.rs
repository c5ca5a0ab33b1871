//! Output buffers filled in parallel, each chunk zeroed just before it is written.

use std::mem::MaybeUninit;

use rayon::prelude::*;

/// A fresh buffer of `len` values, not yet written: its chunks go through [`zeroed`] in parallel
/// tasks, then [`assume_init`] makes it values. Each chunk is zeroed just before it is written
/// (in cache) instead of the whole buffer in one serial pass first (`vec![0.0; len]` on the
/// calling thread while the other cores wait: up to 19 MB per convolution).
pub(crate) fn uninit<T>(len: usize) -> Vec<MaybeUninit<T>> {
    let mut buf = Vec::with_capacity(len);
    // SAFETY: MaybeUninit needs no initialisation.
    unsafe { buf.set_len(len) };
    huge_pages(buf.as_mut_ptr() as *mut u8, len * std::mem::size_of::<T>());
    buf
}

/// Asks Linux for transparent huge pages on the 2 MB-aligned interior of a fresh buffer of 8 MB
/// or more, before anything touches it: its first writes then fault 2 MB at a time instead of
/// 4 KB (the 224 px stem's 103 MB output, new every pass: forward 1.15–1.18×, a bench run's page
/// faults 510 k → 150–160 k). Advice only: where the kernel has no huge pages, nothing changes.
fn huge_pages(ptr: *mut u8, bytes: usize) {
    const HUGE_PAGE: usize = 2 << 20;
    if bytes < 4 * HUGE_PAGE {
        return;
    }
    let start = (ptr as usize).next_multiple_of(HUGE_PAGE);
    let end = (ptr as usize + bytes) / HUGE_PAGE * HUGE_PAGE;
    #[cfg(target_os = "linux")]
    if end > start {
        // SAFETY: advice on whole pages inside an allocation this call owns and nothing has
        // touched yet; it changes neither the mapping's contents nor its validity.
        unsafe { libc::madvise(start as *mut libc::c_void, end - start, libc::MADV_HUGEPAGE) };
    }
    #[cfg(not(target_os = "linux"))]
    let _ = (start, end);
}

/// A chunk of an [`uninit`] buffer, zeroed, as values to write.
pub(crate) fn zeroed<T: Default + Copy>(chunk: &mut [MaybeUninit<T>]) -> &mut [T] {
    for v in chunk.iter_mut() {
        v.write(T::default());
    }
    // SAFETY: every element was just initialised, and MaybeUninit<T> has T's layout.
    unsafe { &mut *(chunk as *mut [MaybeUninit<T>] as *mut [T]) }
}

/// The values of an [`uninit`] buffer.
///
/// # Safety
/// Every element must have been initialised (every chunk passed through [`zeroed`]).
pub(crate) unsafe fn assume_init<T>(buf: Vec<MaybeUninit<T>>) -> Vec<T> {
    let mut buf = std::mem::ManuallyDrop::new(buf);
    // SAFETY: the allocation came from a Vec of the same length and capacity, MaybeUninit<T>
    // is layout-identical to T, and the caller promises every element is initialised.
    unsafe { Vec::from_raw_parts(buf.as_mut_ptr() as *mut T, buf.len(), buf.capacity()) }
}

/// A `len`-long buffer made in parallel by `fill(index, chunk)` over its `chunk`-long chunks
/// (at least `min_chunks` per task), each zeroed just before (see [`uninit`]).
pub(crate) fn chunks_filled_by(
    len: usize,
    chunk: usize,
    min_chunks: usize,
    fill: impl Fn(usize, &mut [f32]) + Sync + Send,
) -> Vec<f32> {
    let mut buf = uninit(len);
    buf.par_chunks_mut(chunk.max(1))
        .with_min_len(min_chunks)
        .enumerate()
        .for_each(|(r, c)| fill(r, zeroed(c)));
    // SAFETY: the chunks cover the buffer, and each went through `zeroed`.
    unsafe { assume_init(buf) }
}

/// A row-major matrix of `len / row_len` rows made in parallel by `fill(r, row)` (see
/// [`chunks_filled_by`]).
pub(crate) fn rows_filled_by(
    len: usize,
    row_len: usize,
    fill: impl Fn(usize, &mut [f32]) + Sync + Send,
) -> Vec<f32> {
    chunks_filled_by(len, row_len, min_rows(row_len), fill)
}

/// A `len`-long buffer made in parallel from `values(index)`, the values of each `chunk`-long
/// chunk in order (at least `min_chunks` chunks per task), written once each: for outputs whose
/// every element is computed, which [`chunks_filled_by`] would zero first for nothing (a memset
/// was 4–6 % of small-image inference).
///
/// # Panics
/// If an iterator yields fewer values than its chunk holds (nothing unwritten is ever read).
pub(crate) fn chunks_from<I: Iterator<Item = f32>>(
    len: usize,
    chunk: usize,
    min_chunks: usize,
    values: impl Fn(usize) -> I + Sync + Send,
) -> Vec<f32> {
    let mut buf = uninit(len);
    buf.par_chunks_mut(chunk.max(1))
        .with_min_len(min_chunks)
        .enumerate()
        .for_each(|(r, c)| {
            let mut written = 0;
            for (d, v) in c.iter_mut().zip(values(r)) {
                d.write(v);
                written += 1;
            }
            assert_eq!(written, c.len(), "chunk {r}: too few values");
        });
    // SAFETY: every chunk's elements were written (checked above; a panic stops the caller).
    unsafe { assume_init(buf) }
}

/// A row-major matrix of `len / row_len` rows, each row's values from `values(r)` (see
/// [`chunks_from`]).
pub(crate) fn rows_from<I: Iterator<Item = f32>>(
    len: usize,
    row_len: usize,
    values: impl Fn(usize) -> I + Sync + Send,
) -> Vec<f32> {
    chunks_from(len, row_len, min_rows(row_len), values)
}

/// Rows per rayon task when a matrix is filled row by row: enough work to pay for the task.
pub(super) fn min_rows(row_len: usize) -> usize {
    (4096 / row_len.max(1)).max(1)
}
