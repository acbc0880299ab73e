//! The process's allocator settings: freed memory goes back to the system, so that resident memory
//! follows what pengine's memory pool holds instead of the most it ever held.

/// Makes freed memory go back to the system, so that the process's resident memory follows what
/// the pool holds.
///
/// glibc's allocator raises its threshold for serving large blocks from their own mappings each
/// time such a block is freed; blocks then come from heaps that are not returned on free. An
/// operator that frees what it spilled (and DataFusion's batches) then leaves the process holding
/// that memory: at 20M events the interactions job peaked at 657 MB with a 512 MiB pool, 424 MB
/// with the threshold fixed at 1 MiB (4 MiB: 457 MB, 16 MiB: 709 MB; the time is the same within
/// the noise). A no-op with other C libraries.
pub fn return_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        const MMAP_THRESHOLD_BYTES: libc::c_int = 1024 * 1024;
        const TRIM_THRESHOLD_BYTES: libc::c_int = 4 * 1024 * 1024;
        // SAFETY: mallopt only sets allocator parameters; called before any thread starts.
        unsafe {
            libc::mallopt(libc::M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES);
            libc::mallopt(libc::M_TRIM_THRESHOLD, TRIM_THRESHOLD_BYTES);
        }
    }
}
