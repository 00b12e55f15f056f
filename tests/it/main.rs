//! The integration tests of the crate, gathered into one test binary to save link time.

mod dynamic;
mod local_auth;
mod local_server;
mod roundtrip;
#[cfg(feature = "local")]
mod transport;
mod writer_disabled;
