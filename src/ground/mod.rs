//! Floor 1, the ground: small pure helpers that every other floor stands on. Nothing here knows
//! what a project, a setting or a shell is.

pub mod digest;
pub mod duration;
pub mod fs;
pub mod glob;
pub mod log;
pub mod names;
pub mod process;
pub mod redact;
pub mod text;
pub mod time;
