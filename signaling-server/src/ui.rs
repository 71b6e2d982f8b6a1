//! The browser UI (`src-ui`, built by Vite), embedded in the binary and
//! served at `/`: files by path, and `index.html` for every app route
//! (`/`, `/r/<room>`), so a room link opens the join screen for that room.
//!
//! Every build carries the files (`debug-embed`: a debug binary reading
//! them from a compile-time path could, with a shared build cache, read
//! another checkout's UI). Without a built UI the server still runs and `/`
//! says how to build it.

use std::borrow::Cow;

use rust_embed::RustEmbed;

#[derive(RustEmbed)]
#[folder = "../src-ui/dist/"]
#[allow_missing = true]
struct Dist;

/// A file to send.
#[derive(Debug)]
pub struct Asset {
    pub body: Cow<'static, [u8]>,
    pub content_type: &'static str,
    pub cache_control: &'static str,
}

/// What a GET of `path` (query string included) serves from the UI.
pub fn lookup(path: &str) -> Option<Asset> {
    let path = path.split(['?', '#']).next().unwrap_or("");
    let relative = path.trim_start_matches('/');
    if !is_safe(relative) {
        return None;
    }
    let last = relative.rsplit('/').next().unwrap_or("");
    if relative.is_empty() || relative.starts_with("r/") || !last.contains('.') {
        // An app route: the app decides what to show.
        let file = Dist::get("index.html")?;
        return Some(Asset {
            body: file.data,
            content_type: "text/html; charset=utf-8",
            cache_control: "no-cache",
        });
    }
    let file = Dist::get(relative)?;
    Some(Asset {
        body: file.data,
        content_type: content_type(relative),
        // Vite puts a content hash in every asset name under `assets/`.
        cache_control: if relative.starts_with("assets/") {
            "public, max-age=31536000, immutable"
        } else {
            "no-cache"
        },
    })
}

/// Whether the UI is built into this binary.
pub fn is_built() -> bool {
    Dist::get("index.html").is_some()
}

/// Plain relative paths only: no `..`, no empty or hidden segments, no
/// backslashes, nothing outside a conservative character set.
fn is_safe(relative: &str) -> bool {
    relative.len() <= 256
        && relative.split('/').all(|segment| {
            !segment.starts_with('.')
                && segment
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | '~' | '%'))
        })
        && !relative.contains("//")
}

fn content_type(path: &str) -> &'static str {
    match path.rsplit('.').next().unwrap_or("") {
        "html" => "text/html; charset=utf-8",
        "js" | "mjs" => "text/javascript; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "json" | "map" => "application/json",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "webp" => "image/webp",
        "ico" => "image/x-icon",
        "woff2" => "font/woff2",
        "txt" => "text/plain; charset=utf-8",
        "wasm" => "application/wasm",
        _ => "application/octet-stream",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_plain_relative_paths_are_looked_up() {
        assert!(is_safe("assets/index-abc123.js"));
        assert!(is_safe("r/standup"));
        assert!(is_safe(""));
        for bad in [
            "../Cargo.toml",
            "assets/../../etc/passwd",
            ".env",
            "a//b",
            "a\\b",
            "assets/.hidden",
        ] {
            assert!(!is_safe(bad), "{bad}");
        }
    }

    #[test]
    fn content_types_by_extension() {
        assert_eq!(
            content_type("assets/x.js"),
            "text/javascript; charset=utf-8"
        );
        assert_eq!(content_type("favicon.ico"), "image/x-icon");
        assert_eq!(content_type("blob"), "application/octet-stream");
    }
}
