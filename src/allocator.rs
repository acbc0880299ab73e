//! The process's allocator settings: freed memory goes back to the system, so that resident memory
//! follows what pengine's memory pool holds instead of the most it ever held.

/// Makes freed memory go back to the system, so that the process's resident memory follows what
/// the pool holds.
///
/// glibc's allocator raises its threshold for serving large blocks from their own mappings each
/// time such a block is freed; blocks then come from heaps that are not returned on free. An
/// operator that frees what it spilled (and DataFusion's batches) then leaves the process holding
/// that memory: at 20M events the interactions job peaked at 657 MB with a 512 MiB pool. Fixed
/// thresholds keep it near the pool. They are set above the 1 MiB blocks files are read in, so
/// that those come from the heap instead of a fresh mapping each (a page fault per 4 KiB and a
/// TLB flush per unmap), and the trim threshold well above that, so the heap is not given back
/// and faulted in again batch after batch. Measured on the 20M-event interactions job (mmap /
/// trim threshold: wall, system CPU, peak RSS): 1 MiB / 4 MiB: 15.5 s, 424-438 MB; 4 MiB / 4 MiB:
/// 17.2 s, 9.2 s system, 485 MB; 2 MiB / 8 MiB: 12.9-13.6 s, 4.1 s system, 470-472 MB (chosen);
/// 2 MiB / 16 MiB: 12.3 s, 485 MB; 4 MiB / 16 MiB: 13.9 s, 496 MB. A no-op with other C
/// libraries.
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
