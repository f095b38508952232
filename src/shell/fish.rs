//! fish: inside single quotes fish still honours `\\` and `\'`, so both must be escaped (POSIX
//! quoting breaks on a value ending in `\` — an injection hole other tools have shipped).
//! `set -gx` / `set -e -g`: a bare `set` inside the sourcing function would be local to it.
//!
//! What esc-hook writes for fish is ASCII only: every other character is written as its UTF-8
//! bytes (`\XE4\XB8\XAD`, fish's raw-byte escape, outside the quotes). In a multibyte locale
//! (GBK, Big5) a non-ASCII byte before `\` or `'` could otherwise pair with it into one
//! character, ending the quote where fish reads it: the value, or a directory name, would run
//! as code. ASCII bytes mean the same in every locale fish can run in.

use std::fmt::Write;

use crate::ground::names::VarName;

pub fn quote(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    let mut quoted = false;
    for c in text.chars() {
        if c.is_ascii() {
            if !quoted {
                out.push('\'');
                quoted = true;
            }
            if c == '\\' || c == '\'' {
                out.push('\\');
            }
            out.push(c);
        } else {
            if quoted {
                out.push('\'');
                quoted = false;
            }
            let mut bytes = [0u8; 4];
            for byte in c.encode_utf8(&mut bytes).bytes() {
                let _ = write!(out, "\\X{byte:02X}");
            }
        }
    }
    if quoted || out.is_empty() {
        if !quoted {
            out.push('\'');
        }
        out.push('\'');
    }
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
