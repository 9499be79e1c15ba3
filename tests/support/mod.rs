//! Helpers shared by integration tests: `mod support;` in a test crate.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

pub mod smtp;
