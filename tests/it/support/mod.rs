//! Helpers shared by the integration tests.
#![allow(dead_code)]

pub mod daemon;
pub mod env;
pub mod http;
pub mod ical;
pub mod smtp;
