//! bash and zsh: every value in POSIX single quotes, where every byte but `'` is literal (`'\''`
//! ends the quote, adds an escaped quote, and reopens it). Always quoted, never bare: a bare
//! word is open to brace expansion (`p{a,b}ss`), `extended_glob` (`^`), and whatever option a
//! user sets next.
//!
//! A shell refusing an assignment (a read-only name) must report it and go on. zsh aborts the
//! rest of an `eval` on such an error, so each zsh assignment sits in an `always` block that
//! clears it. bash goes on by itself, but under `set -e` exits even through `|| :`; the bash hook
//! therefore evaluates the whole script with `command eval` in an `||` list.

use crate::ground::names::VarName;

pub use crate::ground::text::posix_quote as quote;

/// Text as one line of ANSI-C quoting (`$'…'`, as direnv writes values): printable ASCII as it
/// is, `'` and `\` escaped, every other byte as `\xNN`. For the watch lines, which must stay
/// one line each; bash and zsh read it the same under any option.
pub fn quote_one_line(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 3);
    out.push_str("$'");
    for byte in text.bytes() {
        match byte {
            b'\'' => out.push_str("\\'"),
            b'\\' => out.push_str("\\\\"),
            0x20..=0x7e => out.push(char::from(byte)),
            _ => out.push_str(&format!("\\x{byte:02x}")),
        }
    }
    out.push('\'');
    out
}

/// One command that can never abort the script around it.
fn guarded(zsh: bool, command: String) -> String {
    match zsh {
        true => format!("{{ {command} }} always {{ TRY_BLOCK_ERROR=0 }};"),
        false => format!("{command};"),
    }
}

pub fn set(zsh: bool, name: &VarName, value: &str) -> String {
    guarded(zsh, format!("export {name}={}", quote(value)))
}

pub fn unset(zsh: bool, name: &VarName) -> String {
    guarded(zsh, format!("unset {name}"))
}
