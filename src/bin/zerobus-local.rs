//! `zerobus-local`: serves the local Zerobus server from the command line.
fn main() {}
