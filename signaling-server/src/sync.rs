//! Locking shared state: one rule for the whole server.
//!
//! A mutex is recovered if a task panicked while holding it: every module
//! leaves its state consistent at each unlock point, and one bug must not
//! take every room down with it.

use std::sync::{Mutex, MutexGuard, PoisonError};

/// Locks `mutex`, recovering it from a panicked holder.
pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}
