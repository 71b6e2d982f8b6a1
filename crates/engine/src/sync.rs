//! Locking shared state: one rule for the engine and the app built on it.
//!
//! A mutex is recovered if a thread panicked while holding it: the state
//! behind each is consistent at every unlock point (statistics, queues,
//! settings), and a panic in one media thread must not stop the audio or
//! the window with it.

use std::sync::{Mutex, MutexGuard, PoisonError};

/// Locks `mutex`, recovering it from a panicked holder.
pub fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}
