//! The poison-tolerant lock every module takes its mutexes with.

use std::sync::{Mutex, MutexGuard};

/// Locks `mutex` even when poisoned: a poisoned mutex only means a panic elsewhere in the middle
/// of an update (the supervisor reports and restarts that task), and the data it guards —
/// positions, offset syncs, counters — stays usable; one panic must not take down every thread
/// that shares it.
pub fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}
