//! arrow-zerobus-sdk-wrapper (work in progress skeleton).

pub mod config;
pub mod encode;
pub mod error;
pub mod result;
pub mod schema;

pub use config::{OtlpConfig, WrapperConfiguration};
pub use error::{ConversionErrorKind, ConversionFailure, Result, ZerobusError};
pub use result::{ErrorStatistics, TransmissionResult};
