//! Process-wide allocator settings, for the binary (and tests that measure it as it runs).

/// glibc serves a large allocation with its own mmap and unmaps it when freed, but after the first such
/// free it raises that threshold to the freed size, and from then on keeps blocks that large in its heaps.
/// Each argon2 verification takes and frees 19 MiB: with the dynamic threshold, a burst of verifications
/// leaves the process tens of MiB larger for good. A fixed threshold turns that off. It sits below
/// argon2's block, so that goes back to the OS, and above the few-MiB buffers of ingest batches and
/// 10000-row pages, which are reused from the heap. Fixing it also fixes the trim threshold at 128 KiB,
/// which would hand such buffers back after every page and fault them in again (15% of a 10000-row
/// page): it is set to twice the mmap threshold, where the dynamic rule would put it.
#[allow(unsafe_code)]
pub fn return_large_blocks_to_the_os() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only sets allocator parameters, under glibc's own lock; it touches no Rust memory.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 16 << 20);
        libc::mallopt(libc::M_TRIM_THRESHOLD, 32 << 20);
    }
}
