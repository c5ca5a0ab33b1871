//! The allocator settings of a command-line run: memory it frees is kept for its next
//! allocations.

/// Makes glibc's malloc keep what the run frees instead of handing it back to Linux: every
/// allocation comes from the heap (none mapped on its own) and the heap's free top is never
/// trimmed below 2 GB. A training step frees and allocates the same large activations again
/// and again (the stem's output at 224 px, batch 32: 103 MB); mapped afresh, each is zeroed by
/// the kernel page by page on its first writes. Training 1.035× at 224 px and 1.06× at 64 px,
/// inference and the whole demo unchanged (docs/kernels.md, "Buffers"); the resident peak +4 %
/// at 224 px.
/// All threads allocate from one arena: inference runs on the kernels' pool workers
/// (`ops::workers`), and memory freed in the main thread's arena would not serve a worker's
/// own (the 224 px benchmark's peak 1 176 MiB with an arena per thread, 986 with one).
/// With one arena, training steps run on the pool's workers as inference does
/// (`ops::workers::set_steps_on_workers`).
/// Only in a command-line process (`fastvision`, `python -m fastvision`): the Python API leaves
/// its interpreter's allocator alone.
pub fn keep_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: `mallopt` only sets malloc's parameters, under malloc's own lock.
    unsafe {
        libc::mallopt(libc::M_MMAP_MAX, 0);
        libc::mallopt(libc::M_TRIM_THRESHOLD, i32::MAX);
        libc::mallopt(libc::M_ARENA_MAX, 1);
        fastvision::ops::workers::set_steps_on_workers(true);
    }
}
