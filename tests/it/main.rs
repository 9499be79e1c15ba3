//! All integration tests in one binary (link time adds up). Real parts only: a temporary
//! SQLite file, the real `nazorg` binary, aiosmtpd on loopback, the `age` CLI.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

mod age_interop;
mod api;
mod bad_input;
mod config_check;
mod daemon;
mod export;
mod handover;
mod mail_smtp;
mod operations;
mod sealing;
mod signals;
mod smtp_delivery;
mod spine;
mod workspace;
