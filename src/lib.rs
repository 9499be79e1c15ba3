//! Nazorg: longitudinal aftercare after domestic violence.
//!
//! The library that the `nazorg` binary, the integration tests and the benchmarks share.
//! `domain` decides; everything else moves data (functional core, imperative shell).

pub mod api;
pub mod audit;
pub mod backup;
pub mod cli;
pub mod clock;
pub mod config;
pub mod copy;
pub mod crypto;
pub mod daemon;
pub mod dispatcher;
pub mod domain;
pub mod export;
pub mod health;
pub mod keyring;
pub mod logging;
pub mod mail;
pub mod manual;
pub mod metrics;
pub mod service;
pub mod status;
pub mod store;
pub mod sweep;
pub mod tokens;
pub mod types;
pub mod web;
