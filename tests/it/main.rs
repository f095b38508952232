//! Integration tests: one binary, so the suite links once.
//!
//! Real components throughout: the built esc-hook binary, real bash, zsh and fish, a local
//! ESC stand-in speaking the Pulumi ESC API, and the official Python client to check it.

mod common;

mod architecture;
mod cache;
mod cli;
mod coexist;
mod config;
mod esc_api;
mod everyday;
mod faults;
mod first_week;
mod hostile_env;
mod hostile_values;
mod long_running;
mod projects;
mod security;
mod shells;
mod sts;
