//! Nazorg: longitudinal aftercare after domestic violence.
//!
//! The library that the `nazorg` binary, the integration tests and the benchmarks share.
//! `domain` decides; everything else moves data (functional core, imperative shell).

pub mod api;
pub mod audit;
pub mod clock;
pub mod config;
pub mod crypto;
pub mod daemon;
pub mod dispatcher;
pub mod domain;
pub mod export;
pub mod keyring;
pub mod mail;
pub mod service;
pub mod store;
pub mod sweep;
pub mod tokens;
pub mod web;
