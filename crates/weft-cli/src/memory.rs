//! How the process's allocator gives memory back to the system.

/// Fixes glibc's mmap threshold at 1 MiB. By default glibc raises the threshold each time
/// a large block is freed (up to 32 MiB), so the later large vectors of a big pipeline
/// (its tasks, its plan, the run's state) come from the main heap, which never shrinks
/// below its highest block in use: a 20,000-task `weft run` peaked about 15 MiB higher.
/// With a fixed threshold they are mapped on their own and given back when freed.
pub fn give_large_blocks_back() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    #[allow(unsafe_code)]
    // SAFETY: `mallopt` only sets an allocator parameter; it is called first thing in
    // `main`, before any other thread exists.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 1 << 20);
    }
}

/// Gives free pages back to the system (glibc's `malloc_trim`): those at the end of each
/// heap and whole free pages inside them.
pub fn give_free_pages_back() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    #[allow(unsafe_code)]
    // SAFETY: `malloc_trim` only releases pages no allocation uses; it takes the
    // allocator's own locks.
    unsafe {
        libc::malloc_trim(0);
    }
}
