//! [`CliError`]: a message for the user, naming the file, column, row or option at fault.

use std::fmt;

/// A failure of a command, as one line for the user (no backtrace, no `Debug` output).
#[derive(Debug)]
pub struct CliError(String);

impl CliError {
    /// An error with `message`.
    pub fn new(message: impl Into<String>) -> Self {
        Self(message.into())
    }
}

impl fmt::Display for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for CliError {}

/// `Result` with [`CliError`].
pub type CliResult<T> = Result<T, CliError>;

/// Turns any displayable error into a [`CliError`] prefixed with `context`.
pub trait Context<T> {
    /// The error as `context: error`.
    fn context(self, context: impl fmt::Display) -> CliResult<T>;
}

impl<T, E: fmt::Display> Context<T> for Result<T, E> {
    fn context(self, context: impl fmt::Display) -> CliResult<T> {
        self.map_err(|e| CliError(format!("{context}: {e}")))
    }
}
