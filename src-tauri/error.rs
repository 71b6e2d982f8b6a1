//! What a command can fail with. Serialized for the UI as `{code, message}`:
//! `code` is stable for the UI to branch on, `message` is shown as is.

use huddle_engine::audio::AudioError;
use huddle_engine::video::CaptureError;
use serde::ser::SerializeStruct;
use serde::{Serialize, Serializer};
use thiserror::Error;

#[derive(Debug, Error)]
pub enum CommandError {
    #[error("not in a room")]
    NotJoined,
    #[error("not in the call")]
    NotInCall,
    #[error("no server is set: enter a server address or host a room")]
    NoServer,
    #[error("{0:?} is not a server address (try host:port or https://host)")]
    BadServerUrl(String),
    #[error("{0:?} is not a certificate fingerprint (64 hex digits)")]
    BadFingerprint(String),
    #[error("{0}")]
    Camera(#[from] CaptureError),
    #[error("{0}")]
    Audio(#[from] AudioError),
    #[error("could not host a room: {0}")]
    Host(#[source] std::io::Error),
    #[error("could not host a room: {0}")]
    Certificate(#[from] crate::certificate::CertificateError),
    #[error("the settings could not be saved: {0}")]
    Settings(#[from] tauri_plugin_store::Error),
    #[error("{0}")]
    Notify(#[from] crate::notifications::NotifyError),
    #[error("only http and https links open in the browser")]
    BadLink,
    #[error("the browser could not be opened: {0}")]
    Open(#[source] tauri_plugin_opener::Error),
    #[error("the picture-in-picture window could not be opened: {0}")]
    Window(#[from] tauri::Error),
}

impl CommandError {
    /// The stable code the UI branches on.
    pub fn code(&self) -> &'static str {
        match self {
            CommandError::NotJoined => "not_joined",
            CommandError::NotInCall => "not_in_call",
            CommandError::NoServer => "no_server",
            CommandError::BadServerUrl(_) => "bad_server_url",
            CommandError::BadFingerprint(_) => "bad_fingerprint",
            CommandError::Camera(_) => "camera",
            CommandError::Audio(_) => "audio",
            CommandError::Host(_) | CommandError::Certificate(_) => "host",
            CommandError::Settings(_) => "settings",
            CommandError::Notify(_) => "notify",
            CommandError::BadLink => "bad_link",
            CommandError::Open(_) => "open",
            CommandError::Window(_) => "window",
        }
    }
}

impl Serialize for CommandError {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut s = serializer.serialize_struct("CommandError", 2)?;
        s.serialize_field("code", self.code())?;
        s.serialize_field("message", &self.to_string())?;
        s.end()
    }
}
