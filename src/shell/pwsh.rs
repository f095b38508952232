//! PowerShell: single-quoted strings end on `'` and on the typographic quotes U+2018–U+201B;
//! each is escaped by doubling it. Environment variables are set through the `env:` drive.

use crate::ground::names::VarName;

pub fn quote(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('\'');
    for c in text.chars() {
        if matches!(c, '\'' | '\u{2018}' | '\u{2019}' | '\u{201A}' | '\u{201B}') {
            out.push(c);
        }
        out.push(c);
    }
    out.push('\'');
    out
}

pub fn set(name: &VarName, value: &str) -> String {
    format!("${{env:{name}}} = {}", quote(value))
}

pub fn unset(name: &VarName) -> String {
    format!("Remove-Item -LiteralPath 'env:/{name}' -ErrorAction SilentlyContinue")
}
