//! Integration tests: one binary, so the suite links once.
//!
//! Real components throughout: the built esc-hook binary, real bash, zsh and fish, a local
//! ESC stand-in speaking the Pulumi ESC API, and the official Python client to check it.

mod common;

mod architecture;
mod bad_input;
mod cache;
mod cli;
mod coexist;
mod config;
mod diagnostics;
mod docs;
mod endpoint;
mod esc_api;
mod exec;
mod faults;
mod help;
mod outside_a_shell;
mod projects;
mod prompt;
mod quoting;
mod security;
mod shells;
mod sts;
