//! The process's allocator settings: freed memory goes back to the system, so that resident memory
//! follows what pengine's memory pool holds instead of the most it ever held.

/// Makes freed memory go back to the system, so that the process's resident memory follows what
/// the pool holds.
///
/// glibc's allocator raises its threshold for serving large blocks from their own mappings each
/// time such a block is freed, and blocks then come from heaps that are not returned on free: the
/// process would keep the most it ever held. Fixed thresholds keep it near the pool: the mapping
/// threshold above the 1 MiB blocks files are read in (no page faults per read), the trim threshold
/// well above that (the heap is not given back and faulted in batch after batch). The choice is
/// measured in benches/README.md, "Defaults, measured". A no-op with other C libraries.
pub fn return_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        const MMAP_THRESHOLD_BYTES: libc::c_int = 2 * 1024 * 1024;
        const TRIM_THRESHOLD_BYTES: libc::c_int = 8 * 1024 * 1024;
        // SAFETY: mallopt only sets allocator parameters; called before any thread starts.
        unsafe {
            libc::mallopt(libc::M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES);
            libc::mallopt(libc::M_TRIM_THRESHOLD, TRIM_THRESHOLD_BYTES);
        }
    }
}
