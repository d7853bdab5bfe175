fn main() -> std::process::ExitCode {
    return_large_blocks_to_the_os();
    footfall::cli::main()
}

/// glibc serves a large allocation with its own mmap and unmaps it when freed, but after the first such
/// free it raises that threshold to the freed size, and from then on keeps blocks that large in its heaps.
/// Each argon2 verification takes and frees 19 MiB: with the dynamic threshold, a burst of verifications
/// leaves the process tens of MiB larger for good. A fixed threshold turns that off, so large blocks
/// (argon2's, big ingest bodies, 10000-row pages) always go back to the OS.
#[allow(unsafe_code)]
fn return_large_blocks_to_the_os() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only sets an allocator parameter; it is called before any other thread exists.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 1 << 20);
    }
}
