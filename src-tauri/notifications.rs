//! Desktop notifications through the system's notification service (on
//! Linux the freedesktop one on the session bus, via `notify-rust`). The
//! web page's own `Notification` is no use in the window: WebKitGTK denies
//! its permission unless the embedder grants it.

use thiserror::Error;

/// The longest title and body shown; longer ones are cut (with "…").
pub const MAX_TITLE_CHARS: usize = 120;
pub const MAX_BODY_CHARS: usize = 400;

/// The notification could not be shown.
#[derive(Debug, Error)]
pub enum NotifyError {
    /// The notification service refused it or is not there.
    #[error("no desktop notification could be shown: {0}")]
    Service(#[from] notify_rust::error::Error),
    /// The thread showing it ended first.
    #[error("the notification was not shown: interrupted")]
    Interrupted,
}

/// `text` cut to at most `max` characters.
pub fn bounded(text: &str, max: usize) -> String {
    let text = text.trim();
    if text.chars().count() <= max {
        return text.to_owned();
    }
    let mut cut: String = text.chars().take(max.saturating_sub(1)).collect();
    cut.push('…');
    cut
}

/// Shows a notification (blocks until the service took it).
pub fn show(title: &str, body: &str) -> Result<(), NotifyError> {
    notify_rust::Notification::new()
        .appname("Huddle")
        .summary(&bounded(title, MAX_TITLE_CHARS))
        .body(&bounded(body, MAX_BODY_CHARS))
        .icon("huddle")
        .show()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_texts_are_cut_to_their_bound() {
        assert_eq!(bounded("  Grace is calling ", 120), "Grace is calling");
        let long = "é".repeat(500);
        let cut = bounded(&long, MAX_BODY_CHARS);
        assert_eq!(cut.chars().count(), MAX_BODY_CHARS);
        assert!(cut.ends_with('…'));
    }
}
