//! bash and zsh: POSIX single quotes, where every byte but `'` is literal (`'\''` ends the
//! quote, adds an escaped quote, and reopens it).

use crate::names::VarName;

pub fn quote(text: &str) -> String {
    shell_words::quote(text).into_owned()
}

pub fn set(name: &VarName, value: &str) -> String {
    format!("export {name}={};", quote(value))
}

pub fn unset(name: &VarName) -> String {
    format!("unset {name};")
}
