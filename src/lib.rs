//! Nazorg: longitudinal aftercare after domestic violence.
//!
//! The library that the `nazorg` binary, the integration tests and the benchmarks share.
//! `domain` decides; everything else moves data (functional core, imperative shell).

pub mod crypto;
pub mod mail;
pub mod clock;
pub mod config;
pub mod domain;
pub mod store;
pub mod dispatcher;
pub mod keyring;
pub mod service;
pub mod sweep;
pub mod daemon;
