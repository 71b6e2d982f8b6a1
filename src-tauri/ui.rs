//! The one ordered event channel to the window. The UI hands it over at
//! start (`attach`); a reloaded page hands over a new one.
//!
//! Events of a session are sent through a [`Ui`] stamped with that
//! session's generation: once another session started (or the window
//! reattached), a finished session's late events are dropped instead of
//! being mistaken for the new one's.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use tauri::ipc::Channel;

use crate::events::UiEvent;
use huddle_engine::sync::lock;

#[derive(Default)]
struct Shared {
    channel: Mutex<Option<Channel<UiEvent>>>,
    generation: AtomicU64,
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shared")
            .field("generation", &self.generation)
            .finish_non_exhaustive()
    }
}

/// A sender of UI events, for the app or for one session.
#[derive(Debug, Clone, Default)]
pub struct Ui {
    shared: Arc<Shared>,
    /// `None`: the app's own events, always sent.
    generation: Option<u64>,
}

impl Ui {
    /// Sends to `channel` from now on.
    pub fn attach(&self, channel: Channel<UiEvent>) {
        *lock(&self.shared.channel) = Some(channel);
    }

    /// A sender for a new session; earlier sessions' senders fall silent.
    pub fn new_session(&self) -> Ui {
        let generation = self.shared.generation.fetch_add(1, Ordering::SeqCst) + 1;
        Ui {
            shared: self.shared.clone(),
            generation: Some(generation),
        }
    }

    /// Silences every session's sender (the membership was left).
    pub fn end_sessions(&self) {
        self.shared.generation.fetch_add(1, Ordering::SeqCst);
    }

    pub fn emit(&self, event: UiEvent) {
        if let Some(generation) = self.generation {
            if generation != self.shared.generation.load(Ordering::SeqCst) {
                return;
            }
        }
        let channel = lock(&self.shared.channel).clone();
        if let Some(channel) = channel {
            if let Err(e) = channel.send(event) {
                tracing::debug!(error = %e, "the window did not take an event");
            }
        }
    }
}
