//! "Host a room": `huddle-server` (the library) run inside the app, on
//! every interface, so that others on the same network can join — desktop
//! apps by a `huddle://` link, browsers by the https link (the server serves
//! the UI too). It speaks TLS with the app's own certificate
//! ([`crate::certificate`]): browsers give camera and microphone only to
//! secure pages.
//!
//! Listening on the LAN means every neighbour and every web page the user
//! opens can reach it, so it is closed by default: a random access token
//! that only the links carry (the token is the passcode, as in a meeting
//! link), WebSocket upgrades only from its own page's origin, no room list,
//! and limits sized for a household rather than a public server. It runs
//! until the user stops hosting or quits.

use std::net::{IpAddr, Ipv4Addr, SocketAddr, UdpSocket};
use std::path::Path;

use huddle_engine::tls::Fingerprint;

use serde::Serialize;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use ts_rs::TS;

use crate::certificate;
use crate::error::CommandError;

/// The port tried first (others' firewalls may have it open); any free one
/// when it is taken.
pub const PREFERRED_PORT: u16 = 8787;

/// A running in-process server.
#[derive(Debug)]
pub struct Hosted {
    pub addr: SocketAddr,
    /// The access token every client must give.
    token: String,
    /// The fingerprint of its certificate.
    fingerprint: Fingerprint,
    stop: Option<oneshot::Sender<()>>,
}

/// Where the hosted server is reached.
#[derive(Debug, Clone, Serialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct HostInfo {
    /// What this app connects to (`wss://<lan address>:<port>/ws`).
    pub server_url: String,
    /// The page browsers open (`https://<lan address>:<port>/`); links to it
    /// carry the token in the fragment (`#token=…`), which browsers send
    /// neither to the server nor in `Referer`.
    pub web_url: String,
    /// The access token: the links' passcode.
    pub token: String,
    /// The SHA-256 fingerprint of the server's certificate (`AB:CD:…`), shown
    /// beside the links and carried by `huddle://` links.
    pub fingerprint: String,
}

/// The hosted server's settings: the token, its own page's origins, no room
/// list, small limits.
pub fn config(token: &str, lan: IpAddr, port: u16) -> huddle_server::Config {
    let origin = |host: String| format!("https://{host}:{port}");
    let mut origins = vec![
        origin(lan.to_string()),
        origin("127.0.0.1".into()),
        origin("localhost".into()),
    ];
    origins.dedup();
    huddle_server::Config {
        tokens: vec![token.to_owned()],
        allowed_origins: origins,
        room_list: false,
        max_connections: 64,
        max_connections_per_ip: 16,
        max_rooms: 8,
        max_rooms_per_ip: 4,
        ..huddle_server::Config::default()
    }
}

impl Hosted {
    /// Starts serving on every interface, with the certificate kept in `dir`.
    pub async fn start(dir: &Path) -> Result<Hosted, CommandError> {
        let any = IpAddr::V4(Ipv4Addr::UNSPECIFIED);
        let listener = match TcpListener::bind((any, PREFERRED_PORT)).await {
            Ok(l) => l,
            Err(_) => TcpListener::bind((any, 0))
                .await
                .map_err(CommandError::Host)?,
        };
        let port = listener.local_addr().map_err(CommandError::Host)?.port();
        let (stop, stopped) = oneshot::channel::<()>();
        let lan = lan_address();
        let certificate = certificate::load_or_make(dir, lan)?;
        let token = huddle_server::ids::access_token();
        let config = huddle_server::Config {
            tls: Some(certificate.server_config()?),
            ..config(&token, lan, port)
        };
        tauri::async_runtime::spawn(async move {
            huddle_server::run(listener, config, stopped).await;
        });
        Ok(Hosted {
            addr: SocketAddr::new(lan, port),
            token,
            fingerprint: certificate.fingerprint,
            stop: Some(stop),
        })
    }

    pub fn info(&self) -> HostInfo {
        HostInfo {
            server_url: format!("wss://{}/ws", self.addr),
            web_url: format!("https://{}/", self.addr),
            token: self.token.clone(),
            fingerprint: self.fingerprint.to_string(),
        }
    }
}

impl Drop for Hosted {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// The address others on the network reach this machine at: the one the
/// system would send from towards the outside (no packet is sent), or
/// loopback when there is no network.
pub fn lan_address() -> IpAddr {
    UdpSocket::bind((Ipv4Addr::UNSPECIFIED, 0))
        .and_then(|s| {
            s.connect((Ipv4Addr::new(192, 0, 2, 1), 9))?;
            s.local_addr()
        })
        .map(|a| a.ip())
        .ok()
        .filter(|ip| !ip.is_unspecified())
        .unwrap_or(IpAddr::V4(Ipv4Addr::LOCALHOST))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use futures_util::{SinkExt, StreamExt};
    use huddle_engine::tls::{self, ServerTrust};
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    use tokio_tungstenite::tungstenite::Message;

    use super::*;

    type Ws = tokio_tungstenite::WebSocketStream<
        tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>,
    >;

    async fn ask(ws: &mut Ws, message: serde_json::Value) -> serde_json::Value {
        ws.send(Message::Text(message.to_string().into()))
            .await
            .unwrap();
        loop {
            match ws.next().await.unwrap().unwrap() {
                Message::Text(text) => return serde_json::from_str(&text).unwrap(),
                Message::Close(frame) => panic!("closed: {frame:?}"),
                _ => continue,
            }
        }
    }

    /// What a LAN neighbour meets: no token, no entry; another page's
    /// origin, no socket; the link's token, the room.
    #[tokio::test]
    async fn a_hosted_server_needs_its_token() {
        let dir = std::env::temp_dir().join(format!("huddle-host-{}", std::process::id()));
        let hosted = Hosted::start(&dir).await.unwrap();
        let info = hosted.info();
        let port = hosted.addr.port();
        assert!(
            info.server_url.starts_with("wss://") && info.web_url.starts_with("https://"),
            "{info:?}"
        );
        let pinned = ServerTrust::Pinned(info.fingerprint.parse().unwrap());
        let url = format!("wss://127.0.0.1:{port}/ws");
        let connect = |request: tokio_tungstenite::tungstenite::handshake::client::Request| {
            tokio_tungstenite::connect_async_tls_with_config(
                request,
                None,
                false,
                Some(tls::connector(&pinned)),
            )
        };
        let plain = || url.clone().into_client_request().unwrap();
        let join = |token: Option<&str>| serde_json::json!({"type":"join","v":1,"room":"family","name":"Eve","token":token});

        // Only TLS is served: a plain WebSocket gets nowhere.
        assert!(
            tokio_tungstenite::connect_async(format!("ws://127.0.0.1:{port}/ws"))
                .await
                .is_err()
        );
        // Another certificate than the one the links name is refused.
        let impostor = ServerTrust::Pinned(Fingerprint::of(b"another certificate"));
        let refused = tokio_tungstenite::connect_async_tls_with_config(
            plain(),
            None,
            false,
            Some(tls::connector(&impostor)),
        )
        .await;
        assert!(refused.is_err(), "a wrong pin connected");

        let (mut ws, _) = connect(plain()).await.unwrap();
        let refused = ask(&mut ws, join(None)).await;
        assert_eq!(refused["code"], "forbidden", "{refused}");
        let (mut ws, _) = connect(plain()).await.unwrap();
        let refused = ask(&mut ws, join(Some("guess"))).await;
        assert_eq!(refused["code"], "forbidden", "{refused}");

        let mut request = plain();
        request
            .headers_mut()
            .insert("Origin", "https://evil.example".parse().unwrap());
        let Err(tokio_tungstenite::tungstenite::Error::Http(response)) = connect(request).await
        else {
            panic!("another page's origin was let in");
        };
        assert_eq!(response.status(), 403);

        // The page's own origin with the link's token joins; no room list.
        let mut request = plain();
        let origin = format!("https://127.0.0.1:{port}");
        request
            .headers_mut()
            .insert("Origin", origin.parse().unwrap());
        let (mut ws, _) = connect(request).await.unwrap();
        let joined = ask(&mut ws, join(Some(&info.token))).await;
        assert_eq!(joined["type"], "joined", "{joined}");
        let list = ask(&mut ws, serde_json::json!({"type":"rooms"})).await;
        assert_eq!(list["code"], "forbidden", "{list}");
        assert!(info.token.len() >= 22);

        // Stopped: nobody gets in any more.
        drop(hosted);
        let mut gone = false;
        for _ in 0..50 {
            if tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .is_err()
            {
                gone = true;
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        assert!(gone, "the server still listens after Stop hosting");
    }
}
