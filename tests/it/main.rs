//! Integration tests, gathered into one binary to save link time.

mod writer_disabled;
