//! The live world's error: what could not be done, and where. An
//! unreachable server or a port taken is a set-up error (exit code 2).

use std::fmt;

#[derive(Debug)]
pub enum Error {
    /// A server could not be reached (or a port could not be bound): what,
    /// where, and why.
    Unreachable { what: String, at: String, why: String },
    /// A port a process needs is taken (or cannot be bound).
    PortTaken { process: String, at: String, why: String },
    /// A process could not set itself up (its own error is in the text).
    Setup(String),
    /// The run was interrupted (Ctrl-C).
    Interrupted,
    /// Anything else that stopped the run, said in a sentence.
    Failed(String),
}

pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    pub fn unreachable(what: &str, at: &str, why: impl fmt::Display) -> Error {
        Error::Unreachable { what: what.to_string(), at: at.to_string(), why: why.to_string() }
    }

    pub fn failed(what: impl fmt::Display) -> Error {
        Error::Failed(what.to_string())
    }

    /// A set-up problem (exit code 2) rather than a run that went wrong.
    pub fn is_setup(&self) -> bool {
        matches!(self, Error::Unreachable { .. } | Error::PortTaken { .. } | Error::Setup(_))
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Unreachable { what, at, why } => write!(f, "cannot reach {what} at {at}: {why}"),
            Error::PortTaken { process, at, why } => {
                write!(f, "port {at} for {process} is taken: {why}")
            }
            Error::Setup(s) | Error::Failed(s) => f.write_str(s),
            Error::Interrupted => f.write_str("interrupted"),
        }
    }
}

impl std::error::Error for Error {}

/// Attach what was being done to any error.
pub trait Context<T> {
    fn context(self, what: impl FnOnce() -> String) -> Result<T>;
}

impl<T, E: fmt::Display> Context<T> for std::result::Result<T, E> {
    fn context(self, what: impl FnOnce() -> String) -> Result<T> {
        self.map_err(|e| Error::Failed(format!("{}: {e}", what())))
    }
}
