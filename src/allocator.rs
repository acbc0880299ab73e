//! The process's allocator settings: freed memory goes back to the system, so that resident memory
//! follows what pengine's memory pool holds instead of the most it ever held; and large hash tables
//! taken from the system in a way that does not interrupt the other cores.

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

/// Tables at least this large are faulted in at once: fresh memory that calloc did not write.
const FAULT_IN_AT_ONCE_BYTES: usize = 64 * 1024;

/// `len` zeroed words for a large hash table whose slots are read before they are written.
///
/// calloc leaves memory fresh from the system unwritten, and such a page is mapped to the
/// kernel's shared zero page on its first read; the first write to it then replaces that mapping,
/// which makes every other core flush its TLB (an interrupt per page: a quarter of a distinct's
/// CPU in one profile). A large table is instead faulted in for writing in one call (a hint:
/// without it the table is the same, only slower). Huge pages on top gained nothing measurable.
pub fn zeroed_table(len: usize) -> Vec<u64> {
    let table = vec![0u64; len];
    let bytes = len * std::mem::size_of::<u64>();
    if bytes >= FAULT_IN_AT_ONCE_BYTES {
        fault_in_for_writing(table.as_ptr().cast(), bytes);
    }
    table
}

#[cfg(target_os = "linux")]
fn fault_in_for_writing(start: *const u8, bytes: usize) {
    // SAFETY: sysconf only reads a constant.
    let page = usize::try_from(unsafe { libc::sysconf(libc::_SC_PAGESIZE) }).unwrap_or(4096);
    // madvise takes whole pages: those inside the block (its partial first and last pages are
    // the allocator's or another block's, and are left alone).
    let first = (start as usize).next_multiple_of(page);
    let end = (start as usize + bytes) / page * page;
    if end <= first {
        return;
    }
    let (address, length) = (first as *mut libc::c_void, end - first);
    // SAFETY: the range lies inside one live allocation; the advice keeps its contents (zeroes)
    // and fails harmlessly on kernels without it (before Linux 5.14).
    unsafe {
        libc::madvise(address, length, libc::MADV_POPULATE_WRITE);
    }
}

#[cfg(not(target_os = "linux"))]
fn fault_in_for_writing(_start: *const u8, _bytes: usize) {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_zeroed_table_is_zeroes_of_the_length_asked_small_or_large() {
        for len in [0, 1, 1000, FAULT_IN_AT_ONCE_BYTES / 8, 3 * (1 << 20) + 5] {
            let mut table = zeroed_table(len);
            assert_eq!(table.len(), len);
            assert!(table.iter().all(|&w| w == 0));
            if let Some(last) = table.last_mut() {
                *last = 7;
            }
        }
    }

    /// A large table is resident as soon as it is made, before anything reads or writes it.
    /// 40 MiB: above the largest block glibc serves from its heaps, so fresh from the system
    /// (calloc leaves it unwritten, not resident) whatever other tests freed before.
    #[cfg(target_os = "linux")]
    #[test]
    fn a_large_table_is_faulted_in_when_made() {
        let table = zeroed_table(5 << 20);
        // SAFETY: sysconf only reads a constant.
        let page = usize::try_from(unsafe { libc::sysconf(libc::_SC_PAGESIZE) }).unwrap();
        let first = (table.as_ptr() as usize).next_multiple_of(page);
        let end = (table.as_ptr() as usize + table.len() * 8) / page * page;
        let mut resident = vec![0u8; (end - first) / page];
        // SAFETY: the range lies inside the table's allocation; mincore only reports.
        let done = unsafe {
            libc::mincore(
                first as *mut libc::c_void,
                end - first,
                resident.as_mut_ptr(),
            )
        };
        assert_eq!(done, 0, "mincore: {}", std::io::Error::last_os_error());
        let missing = resident.iter().filter(|&&r| r & 1 == 0).count();
        assert_eq!(
            missing,
            0,
            "{missing} of {} pages not resident",
            resident.len()
        );
    }
}
