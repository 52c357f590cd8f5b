//! Process-wide glibc malloc setting: at most two malloc arenas (unless `MALLOC_ARENA_MAX` is set).
//!
//! glibc gives a thread that finds the heap busy an arena of its own, up to eight per core, and
//! librdkafka runs several threads per client (one per broker, plus its main thread), about ten
//! clients per flow. Memory freed in one arena is not reused by another, so a catch-up over
//! 2,000 partitions left 20 MiB more resident with the default (peak 144 MiB, 124 MiB with two
//! arenas; docs/operations.md, *Memory*). The daemon's threads hand records from one to the other
//! rather than allocating in parallel, so sharing two arenas costs no measurable throughput.
#![allow(unsafe_code)]

/// Applies the limit; call first thing in `main`, before any thread exists.
pub fn limit_malloc_arenas() {
    if std::env::var_os("MALLOC_ARENA_MAX").is_some() {
        return; // glibc read the operator's own choice at start-up
    }
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only changes allocator tuning parameters; it is called before any other
    // thread exists, and an unsupported value is ignored (it returns 0), never undefined behaviour.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 2);
    }
}
