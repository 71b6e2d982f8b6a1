//! Operator settings: the command line (every flag also an environment
//! variable) and the validated [`Config`] the server runs with.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use clap::Parser;
use huddle_protocol::limits::{MAX_ATTACHMENT_BYTES, MAX_CHAT_CHARS, MIN_FRAME_BYTES};
use huddle_protocol::model::ServerLimits;
use thiserror::Error;

/// `huddle-server`: Huddle's self-hostable signaling server.
///
/// Holds rooms in memory and relays chat, presence, call state and WebRTC
/// negotiation between their members over WebSocket (`/ws`). Also serves
/// `/healthz` and `/metrics` (Prometheus).
#[derive(Debug, Clone, Parser)]
#[command(name = "huddle-server", version, about, long_about)]
pub struct Args {
    /// Address to listen on.
    #[arg(long, env = "HUDDLE_LISTEN", default_value = "0.0.0.0:8443")]
    pub listen: SocketAddr,
    /// Most members in one room.
    #[arg(long, env = "HUDDLE_MAX_ROOM_PEERS", default_value_t = 8, value_parser = clap::value_parser!(u32).range(1..=64))]
    pub max_room_peers: u32,
    /// Seconds a dropped member is kept (and its messages queued) for a resume.
    #[arg(long, env = "HUDDLE_RESUME_GRACE_SECS", default_value_t = 15)]
    pub resume_grace_secs: u64,
    /// Access token; repeat for several. When given, `join` and `rooms` need one.
    #[arg(
        long = "token",
        env = "HUDDLE_TOKENS",
        value_delimiter = ',',
        hide_env_values = true
    )]
    pub tokens: Vec<String>,
    /// Answer `rooms` with `forbidden`: room names stay private.
    #[arg(long, env = "HUDDLE_NO_ROOM_LIST")]
    pub no_room_list: bool,
    /// Refuse chat attachments (`forbidden`).
    #[arg(long, env = "HUDDLE_NO_ATTACHMENTS")]
    pub no_attachments: bool,
    /// STUN server URL handed to clients (`stun:host:port`); repeatable.
    #[arg(long = "stun", env = "HUDDLE_STUN", value_delimiter = ',')]
    pub stun: Vec<String>,
    /// TURN server URL handed to clients (`turn:host:3478?transport=udp`); repeatable.
    #[arg(long = "turn-url", env = "HUDDLE_TURN_URLS", value_delimiter = ',')]
    pub turn_urls: Vec<String>,
    /// Shared secret of the TURN server (coturn `static-auth-secret`).
    #[arg(long, env = "HUDDLE_TURN_SECRET", hide_env_values = true)]
    pub turn_secret: Option<String>,
    /// Lifetime of issued TURN credentials, in seconds (at most a day); a
    /// member gets fresh ones whenever it joins or resumes.
    #[arg(long, env = "HUDDLE_TURN_TTL_SECS", default_value_t = 3_600, value_parser = clap::value_parser!(u64).range(60..=86_400))]
    pub turn_ttl_secs: u64,
    /// PEM certificate chain: serve wss:// and https:// on the same port.
    #[arg(long, env = "HUDDLE_TLS_CERT", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// PEM private key for `--tls-cert`.
    #[arg(long, env = "HUDDLE_TLS_KEY", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// Most simultaneous connections; beyond it clients get `server_full`.
    #[arg(long, env = "HUDDLE_MAX_CONNECTIONS", default_value_t = 10_000)]
    pub max_connections: usize,
    /// Most simultaneous connections from one IP address (HTTP 429 beyond).
    #[arg(long, env = "HUDDLE_MAX_CONNECTIONS_PER_IP", default_value_t = 256)]
    pub max_connections_per_ip: usize,
    /// Most rooms at once; a `join` that would create one more gets `server_full`.
    #[arg(long, env = "HUDDLE_MAX_ROOMS", default_value_t = 5_000)]
    pub max_rooms: usize,
    /// Most rooms created from one IP address (IPv6: one /64) that exist at
    /// once. Members (connected or in their grace period) per address are
    /// capped at `--max-connections-per-ip`.
    #[arg(long, env = "HUDDLE_MAX_ROOMS_PER_IP", default_value_t = 16)]
    pub max_rooms_per_ip: usize,
    /// Sustained messages a second allowed per connection; bursts of
    /// max(256, this) always pass. Raise it for bots or load tests.
    #[arg(long, env = "HUDDLE_MSG_RATE", default_value_t = 50)]
    pub msg_rate: u32,
    /// Browser origin allowed to connect (e.g. `https://huddle.example.org`);
    /// repeatable. When given, an upgrade with any other `Origin` header is refused.
    #[arg(
        long = "allowed-origin",
        env = "HUDDLE_ALLOWED_ORIGINS",
        value_delimiter = ','
    )]
    pub allowed_origins: Vec<String>,
    /// Bearer token `/metrics` requires (`Authorization: Bearer T`); without
    /// it `/metrics` is open to whoever reaches the server.
    #[arg(long, env = "HUDDLE_METRICS_TOKEN", hide_env_values = true)]
    pub metrics_token: Option<String>,
    /// Redis URL (`redis://host:6379/0`): share rooms with every instance
    /// using the same Redis. Without it rooms live in this process only.
    #[arg(long, env = "HUDDLE_REDIS_URL", hide_env_values = true)]
    pub redis: Option<String>,
    /// PEM CA certificate that a `rediss://` Redis's certificate must chain
    /// to (default: the system's roots).
    #[arg(long, env = "HUDDLE_REDIS_CA", requires = "redis")]
    pub redis_ca: Option<PathBuf>,
    /// Log filter: error, warn, info, debug, trace, or a tracing directive.
    #[arg(long, env = "HUDDLE_LOG_LEVEL", default_value = "info")]
    pub log_level: String,
}

/// A setting that cannot work.
#[derive(Debug, Error)]
pub enum ConfigError {
    /// TURN URLs without a secret (or the reverse).
    #[error("--turn-url and --turn-secret must be given together")]
    TurnHalfConfigured,
    /// A STUN/TURN URL with the wrong scheme.
    #[error("{0:?} is not a {1} URL")]
    BadIceUrl(String, &'static str),
    /// A limit of zero.
    #[error("{0} must be at least 1")]
    Zero(&'static str),
    /// The TLS files could not be read.
    #[error("TLS: {0}")]
    Tls(String),
    /// The Redis CA certificate could not be read.
    #[error("--redis-ca {0}: {1}")]
    RedisCa(PathBuf, std::io::Error),
}

/// TURN REST settings.
#[derive(Debug, Clone)]
pub struct TurnConfig {
    /// `turn:`/`turns:` URLs.
    pub urls: Vec<String>,
    /// coturn's `static-auth-secret`.
    pub secret: String,
    /// Credential lifetime.
    pub ttl: Duration,
}

/// Everything the server needs to run, validated.
#[derive(Debug, Clone)]
pub struct Config {
    /// Most members per room.
    pub max_room_peers: u32,
    /// How long a dropped member is kept for a resume.
    pub resume_grace: Duration,
    /// Access tokens; empty means none are needed.
    pub tokens: Vec<String>,
    /// Whether `rooms` is answered.
    pub room_list: bool,
    /// Whether chat attachments are relayed.
    pub attachments: bool,
    /// STUN URLs.
    pub stun_urls: Vec<String>,
    /// TURN, when configured.
    pub turn: Option<TurnConfig>,
    /// Most simultaneous connections.
    pub max_connections: usize,
    /// Most simultaneous connections per IP address.
    pub max_connections_per_ip: usize,
    /// Most rooms.
    pub max_rooms: usize,
    /// Most existing rooms created per source.
    pub max_rooms_per_ip: usize,
    /// Allowed `Origin` headers; empty allows all.
    pub allowed_origins: Vec<String>,
    /// The bearer token `/metrics` requires, if any.
    pub metrics_token: Option<String>,
    /// The PEM CA a `rediss://` backplane must be signed by, if not the system's.
    pub redis_ca: Option<Vec<u8>>,
    /// TLS, when configured.
    pub tls: Option<Arc<rustls::ServerConfig>>,
    /// Largest accepted frame in bytes.
    pub max_frame_bytes: usize,
    /// Time allowed from TCP accept to a finished WebSocket handshake.
    pub handshake_timeout: Duration,
    /// Time a new connection has to join a room or list rooms (pings do
    /// not count) before it is closed (1008).
    pub join_timeout: Duration,
    /// Interval of WebSocket pings.
    pub ping_interval: Duration,
    /// A connection silent this long is closed.
    pub idle_timeout: Duration,
    /// A message begun (its first fragment sent) and not finished this long
    /// closes the connection (1008), pings between fragments or not;
    /// checked at each ping.
    pub message_timeout: Duration,
    /// Sustained messages per second per connection.
    pub msg_rate: f64,
    /// Message burst per connection (at least 256, per the protocol).
    pub msg_burst: f64,
    /// Sustained bytes per second per connection.
    pub byte_rate: f64,
    /// Byte burst per connection.
    pub byte_burst: f64,
    /// A connection over its rate this long is closed.
    pub abuse_after: Duration,
    /// Outbox (and resume queue) capacity per member, in messages.
    pub outbox_messages: usize,
    /// Outbox (and resume queue) capacity per member, in bytes.
    pub outbox_bytes: usize,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            max_room_peers: 8,
            resume_grace: Duration::from_secs(15),
            tokens: Vec::new(),
            room_list: true,
            attachments: true,
            stun_urls: Vec::new(),
            turn: None,
            max_connections: 10_000,
            max_connections_per_ip: 256,
            max_rooms: 5_000,
            max_rooms_per_ip: 16,
            allowed_origins: Vec::new(),
            metrics_token: None,
            redis_ca: None,
            tls: None,
            max_frame_bytes: MIN_FRAME_BYTES,
            handshake_timeout: Duration::from_secs(10),
            join_timeout: Duration::from_secs(10),
            ping_interval: Duration::from_secs(20),
            idle_timeout: Duration::from_secs(60),
            message_timeout: Duration::from_secs(10),
            msg_rate: 50.0,
            msg_burst: 256.0,
            byte_rate: 512.0 * 1024.0,
            byte_burst: 4.0 * 1024.0 * 1024.0,
            abuse_after: Duration::from_secs(10),
            outbox_messages: 1024,
            outbox_bytes: 4 * 1024 * 1024,
        }
    }
}

impl Config {
    /// Validates the command line into a config.
    pub fn from_args(args: &Args) -> Result<Config, ConfigError> {
        for url in &args.stun {
            if !url.starts_with("stun:") && !url.starts_with("stuns:") {
                return Err(ConfigError::BadIceUrl(url.clone(), "stun:"));
            }
        }
        for url in &args.turn_urls {
            if !url.starts_with("turn:") && !url.starts_with("turns:") {
                return Err(ConfigError::BadIceUrl(url.clone(), "turn:"));
            }
        }
        let turn = match (&args.turn_urls[..], &args.turn_secret) {
            ([], None) => None,
            ([], Some(_)) | (_, None) => return Err(ConfigError::TurnHalfConfigured),
            (urls, Some(secret)) => Some(TurnConfig {
                urls: urls.to_vec(),
                secret: secret.clone(),
                ttl: Duration::from_secs(args.turn_ttl_secs.max(60)),
            }),
        };
        for (name, value) in [
            ("--max-connections", args.max_connections),
            ("--max-connections-per-ip", args.max_connections_per_ip),
            ("--max-rooms", args.max_rooms),
            ("--max-rooms-per-ip", args.max_rooms_per_ip),
            ("--msg-rate", args.msg_rate as usize),
        ] {
            if value == 0 {
                return Err(ConfigError::Zero(name));
            }
        }
        let redis_ca = match &args.redis_ca {
            Some(path) => {
                Some(std::fs::read(path).map_err(|e| ConfigError::RedisCa(path.clone(), e))?)
            }
            None => None,
        };
        let tls = match (&args.tls_cert, &args.tls_key) {
            (Some(cert), Some(key)) => Some(crate::tls::server_config(cert, key)?),
            _ => None,
        };
        Ok(Config {
            max_room_peers: args.max_room_peers,
            resume_grace: Duration::from_secs(args.resume_grace_secs),
            tokens: args
                .tokens
                .iter()
                .filter(|t| !t.is_empty())
                .cloned()
                .collect(),
            room_list: !args.no_room_list,
            attachments: !args.no_attachments,
            stun_urls: args.stun.clone(),
            turn,
            max_connections: args.max_connections,
            max_connections_per_ip: args.max_connections_per_ip,
            max_rooms: args.max_rooms,
            max_rooms_per_ip: args.max_rooms_per_ip,
            allowed_origins: args.allowed_origins.clone(),
            metrics_token: args.metrics_token.clone().filter(|t| !t.is_empty()),
            redis_ca,
            tls,
            msg_rate: f64::from(args.msg_rate),
            msg_burst: f64::from(args.msg_rate.max(256)),
            ..Config::default()
        })
    }

    /// The limits announced in `joined`.
    pub fn limits(&self) -> ServerLimits {
        let max_attachment_bytes = if self.attachments {
            MAX_ATTACHMENT_BYTES as u32
        } else {
            0
        };
        ServerLimits {
            max_frame_bytes: u32::try_from(self.max_frame_bytes).unwrap_or(u32::MAX),
            max_chat_chars: MAX_CHAT_CHARS as u32,
            max_peers: self.max_room_peers,
            max_attachment_bytes,
        }
    }
}
