//! TURN REST credentials, as coturn's `use-auth-secret` checks them:
//! `username = "<expiry unix seconds>:<peer id>"`,
//! `credential = base64(HMAC-SHA1(secret, username))`.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use hmac::{Hmac, KeyInit, Mac};
use huddle_protocol::IceServer;
use sha1::Sha1;

use crate::config::Config;

/// The credential for `username` under `secret`.
pub fn credential(secret: &str, username: &str) -> String {
    // HMAC accepts keys of any length, so this cannot fail.
    let mut mac = <Hmac<Sha1> as KeyInit>::new_from_slice(secret.as_bytes())
        .unwrap_or_else(|_| unreachable!("HMAC takes any key length"));
    mac.update(username.as_bytes());
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

/// Whether a member may have TURN credentials in `joined`: only where every
/// member holds an access token, or when it is already in a call (a resume).
/// Otherwise TURN comes with `call_joined`: a relay is for calls, and handing
/// it to whoever connects makes the server an open relay's ticket office.
pub fn turn_on_join(config: &Config, in_call: bool) -> bool {
    !config.tokens.is_empty() || in_call
}

/// The ICE servers to hand to `peer_id`: the STUN URLs, and (`with_turn`)
/// TURN with fresh credentials valid for the configured lifetime.
pub fn ice_servers(
    config: &Config,
    peer_id: &str,
    now: SystemTime,
    with_turn: bool,
) -> Vec<IceServer> {
    let mut servers = Vec::new();
    if !config.stun_urls.is_empty() {
        servers.push(IceServer {
            urls: config.stun_urls.clone(),
            username: None,
            credential: None,
        });
    }
    if let Some(turn) = config.turn.as_ref().filter(|_| with_turn) {
        let expiry = now
            .checked_add(turn.ttl)
            .unwrap_or(now)
            .duration_since(UNIX_EPOCH)
            .unwrap_or(Duration::ZERO);
        let username = format!("{}:{peer_id}", expiry.as_secs());
        let credential = credential(&turn.secret, &username);
        servers.push(IceServer {
            urls: turn.urls.clone(),
            username: Some(username),
            credential: Some(credential),
        });
    }
    servers
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc2202_vector() {
        // RFC 2202 test case 2: key "Jefe", data "what do ya want for nothing?".
        assert_eq!(
            credential("Jefe", "what do ya want for nothing?"),
            "7/zfauXrL6LSdBbV8YTfnCWafHk="
        );
    }
}
