//! "Host a room": `huddle-server` (the library) run inside the app, on
//! every interface, so that others on the same network can join — desktop
//! apps by a `huddle://` link, browsers by the plain http link (the server
//! serves the UI too).

use std::net::{IpAddr, Ipv4Addr, SocketAddr, UdpSocket};

use serde::Serialize;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use ts_rs::TS;

use crate::error::CommandError;

/// The port tried first (others' firewalls may have it open); any free one
/// when it is taken.
pub const PREFERRED_PORT: u16 = 8787;

/// A running in-process server.
#[derive(Debug)]
pub struct Hosted {
    pub addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
}

/// Where the hosted server is reached.
#[derive(Debug, Clone, Serialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct HostInfo {
    /// What this app connects to (`ws://<lan address>:<port>/ws`).
    pub server_url: String,
    /// The page browsers open (`http://<lan address>:<port>/`).
    pub web_url: String,
}

impl Hosted {
    /// Starts serving on every interface.
    pub async fn start() -> Result<Hosted, CommandError> {
        let any = IpAddr::V4(Ipv4Addr::UNSPECIFIED);
        let listener = match TcpListener::bind((any, PREFERRED_PORT)).await {
            Ok(l) => l,
            Err(_) => TcpListener::bind((any, 0))
                .await
                .map_err(CommandError::Host)?,
        };
        let port = listener.local_addr().map_err(CommandError::Host)?.port();
        let (stop, stopped) = oneshot::channel::<()>();
        let config = huddle_server::Config::default();
        tauri::async_runtime::spawn(async move {
            huddle_server::run(listener, config, stopped).await;
        });
        Ok(Hosted {
            addr: SocketAddr::new(lan_address(), port),
            stop: Some(stop),
        })
    }

    pub fn info(&self) -> HostInfo {
        HostInfo {
            server_url: format!("ws://{}/ws", self.addr),
            web_url: format!("http://{}/", self.addr),
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
