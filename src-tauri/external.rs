//! Links out of the app. A chat message's link opens in the system's
//! browser, never in the app's window: the window holds the app's own pages
//! only (a page from anywhere else, in the window that can invoke the app's
//! commands, would be a hostile page with the app's powers).
//!
//! Two parts: [`open_url`], which the UI calls for every `http(s)` link
//! clicked, and [`guard`], a plugin that refuses any navigation of the window
//! away from the app's pages, whatever started it.

use tauri::plugin::TauriPlugin;
use tauri::{Runtime, Url};
use tauri_plugin_opener::OpenerExt;

use crate::error::CommandError;

/// Longest URL handed to the system's browser.
const MAX_URL_CHARS: usize = 2048;

/// Whether the window may show `url`: the app's own pages (embedded, or
/// Vite's dev server when built without the embedded UI).
pub fn is_app_page(url: &Url) -> bool {
    match url.scheme() {
        "tauri" => url.host_str() == Some("localhost"),
        "http" | "https" => {
            url.host_str() == Some("tauri.localhost")
                || (cfg!(not(feature = "embed-ui"))
                    && url.host_str() == Some("localhost")
                    && url.port() == Some(5173))
        }
        _ => false,
    }
}

/// The link, if the system's browser may be given it: `http(s)` with a
/// host, of a sane length.
pub fn browsable(link: &str) -> Option<Url> {
    if link.chars().count() > MAX_URL_CHARS {
        return None;
    }
    let url = Url::parse(link).ok()?;
    (matches!(url.scheme(), "http" | "https") && url.host_str().is_some_and(|h| !h.is_empty()))
        .then_some(url)
}

/// Opens `url` in the system's browser.
#[tauri::command]
pub fn open_url<R: Runtime>(app: tauri::AppHandle<R>, url: String) -> Result<(), CommandError> {
    let url = browsable(&url).ok_or(CommandError::BadLink)?;
    app.opener()
        .open_url(url.as_str(), None::<&str>)
        .map_err(CommandError::Open)
}

/// Keeps the window on the app's pages.
pub fn guard<R: Runtime>() -> TauriPlugin<R> {
    tauri::plugin::Builder::new("navigation-guard")
        .on_navigation(|_, url| {
            let allowed = is_app_page(url);
            if !allowed {
                tracing::warn!(
                    scheme = url.scheme(),
                    "the window was kept from leaving the app"
                );
            }
            allowed
        })
        .build()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn only_the_apps_own_pages_stay_in_the_window() {
        for ok in [
            "tauri://localhost/",
            "tauri://localhost/index.html",
            "http://tauri.localhost/",
        ] {
            assert!(is_app_page(&Url::parse(ok).unwrap()), "{ok}");
        }
        for out in [
            "https://example.org/",
            "http://evil.tauri.localhost.example/",
            "tauri://evil/",
            "file:///etc/passwd",
            "javascript:alert(1)",
            "data:text/html,hi",
        ] {
            assert!(!is_app_page(&Url::parse(out).unwrap()), "{out}");
        }
    }

    #[test]
    fn only_web_links_go_to_the_browser() {
        assert!(browsable("https://example.org/notes?a=1#x").is_some());
        assert!(browsable("http://192.168.1.5:8080/").is_some());
        for bad in [
            "file:///etc/passwd",
            "javascript:alert(1)",
            "huddle://join?server=x&room=y",
            "smb://host/share",
            "https://",
            "not a url",
        ] {
            assert!(browsable(bad).is_none(), "{bad}");
        }
        assert!(browsable(&format!("https://example.org/{}", "a".repeat(3000))).is_none());
    }
}
