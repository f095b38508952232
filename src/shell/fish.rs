//! fish: inside single quotes fish still honours `\\` and `\'`, so both must be escaped (POSIX
//! quoting breaks on a value ending in `\` — an injection hole other tools have shipped).
//! `set -gx` / `set -e -g`: a bare `set` inside the sourcing function would be local to it.

use crate::ground::names::VarName;

pub fn quote(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('\'');
    for c in text.chars() {
        if c == '\\' || c == '\'' {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('\'');
    out
}

/// Text as one line: each line quoted, joined by fish's own `\n` escape (outside quotes).
pub fn quote_one_line(text: &str) -> String {
    text.split('\n').map(quote).collect::<Vec<_>>().join("\\n")
}

pub fn set(name: &VarName, value: &str) -> String {
    format!("set -gx {name} {};", quote(value))
}

pub fn unset(name: &VarName) -> String {
    format!("set -e -g {name};")
}
