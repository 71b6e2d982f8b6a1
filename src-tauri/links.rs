//! Server addresses as people type them, and `huddle://` links.
//!
//! A server is entered as `host:port`, an `http(s)://` page address (the
//! one a browser opens) or a `ws(s)://…/ws` address; all become the
//! WebSocket address the engine connects to. A link
//! `huddle://join?server=<address>&room=<name>[&token=<access token>][&fp=<sha-256>]`
//! opens the join screen; `fp` pins the server's certificate (a room hosted
//! from a Huddle app, whose certificate no authority signed).

use huddle_engine::tls::{Fingerprint, ServerTrust};
use serde::Serialize;
use ts_rs::TS;

use crate::error::CommandError;

/// The WebSocket address for a server as typed.
pub fn server_ws_url(input: &str) -> Result<String, CommandError> {
    let input = input.trim();
    let bad = || CommandError::BadServerUrl(input.to_string());
    let (scheme, rest) = match input.split_once("://") {
        Some(("ws" | "http", rest)) => ("ws", rest),
        Some(("wss" | "https", rest)) => ("wss", rest),
        Some(_) => return Err(bad()),
        None => ("ws", input),
    };
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, ""),
    };
    let valid_authority = !authority.is_empty()
        && authority
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || ".-:[]_".contains(c));
    if !valid_authority || path.contains(char::is_whitespace) {
        return Err(bad());
    }
    let path = match path.trim_end_matches('/') {
        "" => "/ws",
        p if p.ends_with("/ws") => p,
        p => return Ok(format!("{scheme}://{authority}{p}/ws")),
    };
    Ok(format!("{scheme}://{authority}{path}"))
}

/// A `huddle://join` link's server (as a WebSocket address) and room: a
/// join screen to open.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, TS)]
pub struct JoinLink {
    pub server: String,
    pub room: String,
    /// The server's access token, when the link carries one.
    pub token: Option<String>,
    /// The SHA-256 fingerprint of the server's certificate, when the link
    /// pins one (`AB:CD:…`).
    pub fingerprint: Option<String>,
}

/// Reads a `huddle://join?server=…&room=…` link; `None` when it is not one.
pub fn parse_join_link(link: &str) -> Option<JoinLink> {
    let rest = link.strip_prefix("huddle://join")?;
    let query = rest.trim_start_matches('/').strip_prefix('?')?;
    let mut server = None;
    let mut room = None;
    let mut token = None;
    let mut fingerprint = None;
    for pair in query.split('&') {
        let (key, value) = pair.split_once('=')?;
        let value = percent_decode(value)?;
        match key {
            "server" => server = Some(server_ws_url(&value).ok()?),
            "room" => room = Some(value),
            "token" if !value.is_empty() && value.len() <= 128 => token = Some(value),
            "fp" => fingerprint = Some(value.parse::<Fingerprint>().ok()?.to_string()),
            _ => {}
        }
    }
    let room = room.filter(|r| !r.trim().is_empty() && r.len() <= 64)?;
    Some(JoinLink {
        server: server?,
        room,
        token,
        fingerprint,
    })
}

/// The link that opens this app on `room` of `server` (with its access token
/// and its certificate's fingerprint).
pub fn join_link(
    server_ws: &str,
    room: &str,
    token: Option<&str>,
    fingerprint: Option<&Fingerprint>,
) -> String {
    let mut link = format!(
        "huddle://join?server={}&room={}",
        percent_encode(server_ws),
        percent_encode(room)
    );
    if let Some(token) = token {
        link.push_str("&token=");
        link.push_str(&percent_encode(token));
    }
    if let Some(fingerprint) = fingerprint {
        link.push_str("&fp=");
        link.push_str(&fingerprint.to_string().replace(':', ""));
    }
    link
}

/// Whom to trust on `wss://` for a fingerprint as the window gives it.
pub fn server_trust(fingerprint: Option<&str>) -> Result<ServerTrust, CommandError> {
    match fingerprint {
        None => Ok(ServerTrust::System),
        Some(text) => text
            .parse()
            .map(ServerTrust::Pinned)
            .map_err(|_| CommandError::BadFingerprint(text.to_owned())),
    }
}

fn percent_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

fn percent_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' => {
                let hex = s.get(i + 1..i + 3)?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn servers_as_typed() {
        let ok = |input: &str| server_ws_url(input).expect(input);
        assert_eq!(ok("192.168.1.5:8787"), "ws://192.168.1.5:8787/ws");
        assert_eq!(ok(" http://host:80/ "), "ws://host:80/ws");
        assert_eq!(ok("https://chat.example.org"), "wss://chat.example.org/ws");
        assert_eq!(ok("wss://x.org/huddle/ws"), "wss://x.org/huddle/ws");
        assert_eq!(ok("https://x.org/huddle"), "wss://x.org/huddle/ws");
        assert_eq!(ok("[::1]:9"), "ws://[::1]:9/ws");
        for bad in ["", "ftp://x", "exa mple:80", "http://", "a b/ws", "://x"] {
            assert!(server_ws_url(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn links_round_trip() {
        let link = join_link(
            "ws://10.0.0.2:8787/ws",
            "design review",
            Some("s3cr/t"),
            None,
        );
        assert_eq!(
            link,
            "huddle://join?server=ws%3A%2F%2F10.0.0.2%3A8787%2Fws&room=design%20review&token=s3cr%2Ft"
        );
        assert_eq!(
            parse_join_link(&link),
            Some(JoinLink {
                server: "ws://10.0.0.2:8787/ws".into(),
                room: "design review".into(),
                token: Some("s3cr/t".into()),
                fingerprint: None,
            })
        );
        // A hosted room's link pins its certificate.
        let fingerprint = Fingerprint::of(b"certificate");
        let link = join_link("wss://10.0.0.2:8787/ws", "r", Some("t"), Some(&fingerprint));
        assert!(
            link.ends_with(&format!("&fp={}", fingerprint.to_string().replace(':', ""))),
            "{link}"
        );
        let parsed = parse_join_link(&link).unwrap();
        assert_eq!(parsed.fingerprint, Some(fingerprint.to_string()));
        assert_eq!(
            server_trust(parsed.fingerprint.as_deref()).unwrap(),
            ServerTrust::Pinned(fingerprint)
        );
        assert!(server_trust(Some("12:34")).is_err());
        // A malformed pin spoils the link (it must not fall back to trusting the system).
        assert_eq!(
            parse_join_link("huddle://join?server=h:1&room=a&fp=zz"),
            None
        );
        assert_eq!(
            parse_join_link("huddle://join/?room=a&server=host:1"),
            Some(JoinLink {
                server: "ws://host:1/ws".into(),
                room: "a".into(),
                token: None,
                fingerprint: None,
            })
        );
        for bad in [
            "huddle://join?room=a",
            "huddle://join?server=h:1",
            "huddle://join?server=h:1&room=%ZZ",
            "huddle://join?server=h:1&room=",
            "https://join?server=h:1&room=a",
        ] {
            assert_eq!(parse_join_link(bad), None, "{bad}");
        }
    }
}
