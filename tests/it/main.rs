//! The integration tests of the crate, gathered into one test binary to save link time.

mod dynamic;
mod local_auth;
mod local_delta;
mod local_faults;
mod local_flight;
mod local_server;
mod roundtrip;
mod support;
#[cfg(feature = "local")]
mod telemetry;
#[cfg(feature = "local")]
mod transport;
#[cfg(feature = "local")]
mod transport_bisect;
#[cfg(feature = "local")]
mod transport_flight;
#[cfg(feature = "local")]
mod uc_check;
mod writer_disabled;
