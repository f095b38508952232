//! Log lines on stderr, always prefixed `esc-hook:`. stdout belongs to the shell.
//! Lines name variables, never their values. `ESC_HOOK_QUIET=1` hides the informational ones;
//! warnings and errors always show, since they say why something did not load.

use std::fmt::Display;
use std::io::Write;

pub const QUIET_VAR: &str = "ESC_HOOK_QUIET";

pub fn quiet() -> bool {
    std::env::var_os(QUIET_VAR).is_some_and(|v| !v.is_empty() && v != "0")
}

pub fn info(message: impl Display) {
    if !quiet() {
        line(message);
    }
}

pub fn warn(message: impl Display) {
    line(message);
}

fn line(message: impl Display) {
    // A closed stderr must not turn into a panic in the middle of a prompt.
    let _ = writeln!(std::io::stderr().lock(), "esc-hook: {message}");
}
