//! All integration tests in one binary (link time adds up). Real parts only: a temporary
//! SQLite file (or a PostgreSQL database, with NAZORG_TEST_DATABASE_URL), the real `nazorg`
//! binary, aiosmtpd on loopback, the `age` CLI.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

mod age_interop;
mod api;
mod api_abuse;
mod audit_chain;
mod bad_input;
mod cli;
mod closure;
mod config_check;
mod contact;
mod daemon;
mod erasure;
mod evaluation;
mod export;
mod family_record;
mod handover;
mod import;
mod invites;
mod mail_smtp;
mod mail_texts;
mod metrics;
mod moves;
mod openapi;
mod operations;
mod ownership;
mod packaging;
mod postgres;
mod responsibility;
mod safety;
mod sealing;
mod shipped_configs;
mod signals;
mod simulation_clock;
mod smtp_credentials;
mod smtp_delivery;
mod spine;
mod stopping;
mod sweep_batches;
mod working_days;
mod workspace;
mod workspace_pages;
mod write_commits;
