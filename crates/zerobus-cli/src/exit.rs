//! The exit codes of `zerobus`, documented in `docs/cli.md`.

use std::process::ExitCode;

/// Every row landed (or, for the other subcommands, the command succeeded).
pub const SUCCESS: u8 = 0;
/// Nothing landed: the command failed before sending, or every row failed.
pub const FAILED: u8 = 1;
/// The command line is wrong (clap's code for usage errors).
#[allow(dead_code)] // Returned by clap itself; named here for the docs.
pub const USAGE: u8 = 2;
/// Some rows landed and some did not (failed rows, an unreadable file among others).
pub const PARTIAL: u8 = 3;
/// Ctrl-C stopped an ingest (128 + SIGINT, as shells report it); the summary says which
/// rows landed and which were not read.
pub const INTERRUPTED: u8 = 130;

/// [`SUCCESS`] as an [`ExitCode`].
pub fn ok() -> ExitCode {
    ExitCode::from(SUCCESS)
}
