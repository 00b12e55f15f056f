//! The integration tests of the crate, gathered into one test binary to save link time.
//! Shared fixtures live in the `zerobus-test-support` crate.

mod hardening_bounds;
mod hardening_client;
mod hardening_names;
mod hardening_wire;
mod local_auth;
mod local_delta;
mod local_faults;
mod local_flight;
mod local_server;
mod roundtrip;
mod telemetry;
mod transport;
mod transport_bisect;
mod transport_flight;
mod uc_check;
mod writer_disabled;
