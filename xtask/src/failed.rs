//! [`Failed`]: why an xtask stopped, said to the person running it.

use std::fmt::Display;
use std::process::ExitStatus;

/// Why a task failed.
#[derive(Debug, thiserror::Error)]
pub enum Failed {
    /// A command ran and exited unsuccessfully.
    #[error("{name} failed ({status})")]
    Step { name: String, status: ExitStatus },
    /// Starting a program, or reading or writing a file, failed.
    #[error("{what}: {source}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
    /// A file the task reads is not what it should be.
    #[error("{what}: {source}")]
    Json {
        what: String,
        #[source]
        source: serde_json::Error,
    },
    /// The command line asks for something that does not exist.
    #[error("{0}")]
    Usage(String),
    /// A network lab scenario file that cannot be read: where, and why.
    #[error("{0}")]
    Scenario(String),
    /// The machine lacks something the task needs (root, a program).
    #[error("{0}")]
    Missing(String),
    /// What a check measured is not what it must be, or a run did not go
    /// as it must: the message says what happened.
    #[error("{0}")]
    Check(String),
}

impl Failed {
    /// An I/O error about `what` (a path, a program).
    pub fn io(what: impl Display) -> impl FnOnce(std::io::Error) -> Failed {
        let what = what.to_string();
        move |source| Failed::Io { what, source }
    }

    /// A failed check, described.
    pub fn check(message: impl Into<String>) -> Failed {
        Failed::Check(message.into())
    }
}
