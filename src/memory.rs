//! Process-wide allocator settings, for the binary (and tests that measure it as it runs).

/// glibc serves a large allocation with its own mmap and unmaps it when freed, but after the first such
/// free it raises that threshold to the freed size, and from then on keeps blocks that large in its heaps.
/// Each argon2 verification takes and frees 19 MiB: with the dynamic threshold, a burst of verifications
/// leaves the process tens of MiB larger for good. A fixed threshold turns that off. It sits below
/// argon2's block, so that goes back to the OS, and above the few-MiB buffers of ingest batches and
/// 10000-row pages, which are reused from the heap. Fixing it also fixes the trim threshold at 128 KiB,
/// which would hand such buffers back after every page and fault them in again (15% of a 10000-row
/// page): it is set to twice the mmap threshold, where the dynamic rule would put it.
///
/// glibc also gives threads up to eight heaps ("arenas") per core; each keeps its own free memory, and
/// the blocking threads of a busy server use them all. Two per core keep allocation uncontended
/// (the soak's throughput is the same) with a quarter of the heaps: the soak's resident set with the
/// response cache full is 3 MiB lower and stays flat.
#[allow(unsafe_code)]
pub fn return_large_blocks_to_the_os() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        let cores = std::thread::available_parallelism().map_or(1, |cores| cores.get());
        let arenas = i32::try_from(2 * cores).unwrap_or(i32::MAX);
        // SAFETY: mallopt only sets allocator parameters, under glibc's own lock; it touches no Rust memory.
        unsafe {
            libc::mallopt(libc::M_MMAP_THRESHOLD, 16 << 20);
            libc::mallopt(libc::M_TRIM_THRESHOLD, 32 << 20);
            libc::mallopt(libc::M_ARENA_MAX, arenas);
        }
    }
}

/// How often [`return_free_pages`] runs.
const FREE_PAGE_RETURN_INTERVAL: std::time::Duration = std::time::Duration::from_secs(10);

/// glibc hands memory back to the kernel only from the top of a heap; memory freed below live blocks
/// stays resident. The response cache keeps its bodies outside the heaps (`api::page_cache::keepable`),
/// but requests still free and take blocks of every size, and a long-running server would slowly keep
/// more free memory than it uses. Every 10 s a thread hands back the whole free pages inside the heaps
/// (`malloc_trim`, under each arena's lock in turn). Started once per process.
#[allow(unsafe_code)]
pub fn return_free_pages() {
    static STARTED: std::sync::Once = std::sync::Once::new();
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    STARTED.call_once(|| {
        let spawned = std::thread::Builder::new().name("free-page-return".into()).spawn(|| {
            loop {
                std::thread::sleep(FREE_PAGE_RETURN_INTERVAL);
                // SAFETY: malloc_trim only walks glibc's own free lists, under its locks.
                unsafe {
                    libc::malloc_trim(0);
                }
            }
        });
        if let Err(error) = spawned {
            tracing::warn!(%error, "could not start returning free memory to the OS");
        }
    });
}
