//! Fixtures and helpers shared by the tests and benches of `arrow-zerobus-sdk-wrapper` and
//! `zerobus-local` (not published).
//!
//! - [`data`]: the encoder bench's `mixed` and `nested` batches, and the deepest struct;
//! - [`descriptor`]: protobuf descriptors made by hand;
//! - [`events`]: the end-to-end bench's rows;
//! - [`oracle`]: the reference encoder (prost-reflect `DynamicMessage`s) the round-trip
//!   tests check the encoder against, and the encoder bench's baseline;
//! - [`local`]: the official SDK pointed at a [`LocalZerobus`](zerobus_local::LocalZerobus),
//!   servers and columns the tests share;
//! - [`concurrent`]: many tasks sending through one wrapper;
//! - [`bench_server`], [`latency`]: where a bench's server runs, and a delaying proxy.

pub mod bench_server;
pub mod concurrent;
pub mod data;
pub mod descriptor;
pub mod events;
pub mod latency;
pub mod local;
pub mod oracle;
