//! Desktop notifications through the system's notification service, via
//! `notify-rust`: on Linux the freedesktop one on the session bus, on
//! Windows a toast, on macOS the Notification Center. The web page's own
//! `Notification` is no use in the window: WebKitGTK denies its permission
//! unless the embedder grants it.

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
        .body(&for_service(&bounded(body, MAX_BODY_CHARS)))
        .icon("huddle")
        .show()?;
    Ok(())
}

/// A body as this platform's notification service reads it. The
/// freedesktop services (Linux, the BSDs) read markup, so it is escaped;
/// Windows sets a toast's lines as XML text and macOS takes plain text, so
/// there an escape would show as `&lt;` to the user.
fn for_service(text: &str) -> String {
    if cfg!(all(unix, not(target_os = "macos"))) {
        escaped(text)
    } else {
        text.to_owned()
    }
}

/// `text` with the markup characters escaped: notification services
/// (dunst, GNOME, KDE) read a body as a small HTML subset, and a body holds
/// names and room names other people chose (`<a href=…>` would be a link).
fn escaped(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markup_in_bodies_is_text() {
        assert_eq!(
            escaped("<a href='x'>Grace</a> & co"),
            "&lt;a href=&#39;x&#39;&gt;Grace&lt;/a&gt; &amp; co"
        );
    }

    #[test]
    fn only_freedesktop_services_get_an_escaped_body() {
        let body = "Grace <3 & co";
        let expected = if cfg!(all(unix, not(target_os = "macos"))) {
            "Grace &lt;3 &amp; co"
        } else {
            body
        };
        assert_eq!(for_service(body), expected);
    }

    #[test]
    fn long_texts_are_cut_to_their_bound() {
        assert_eq!(bounded("  Grace is calling ", 120), "Grace is calling");
        let long = "é".repeat(500);
        let cut = bounded(&long, MAX_BODY_CHARS);
        assert_eq!(cut.chars().count(), MAX_BODY_CHARS);
        assert!(cut.ends_with('…'));
    }
}
