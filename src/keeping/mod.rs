//! Floor 5, what esc-hook keeps between runs: the credential cache around a provider, the trust
//! records, and the private runtime files (an environment's `files`, per-shell markers).

pub mod cache;
pub mod files;
pub mod interrupt;
pub mod trust;
pub mod watch;
