//! Validated names: an environment variable name that can be emitted into any shell.

use std::fmt;

/// A variable name matching `[A-Za-z_][A-Za-z0-9_]*`: the only names every supported shell can
/// set and unset without quoting tricks. Anything else is refused before it reaches a shell.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct VarName(String);

impl VarName {
    pub fn parse(name: &str) -> Option<VarName> {
        let mut bytes = name.bytes();
        let first_ok = matches!(bytes.next(), Some(b'A'..=b'Z' | b'a'..=b'z' | b'_'));
        let rest_ok = bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_');
        (first_ok && rest_ok).then(|| VarName(name.to_string()))
    }

    /// A name written in this program's source, such as the state variable's.
    pub fn constant(name: &'static str) -> VarName {
        debug_assert!(VarName::parse(name).is_some(), "{name}");
        VarName(name.to_string())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for VarName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Renders untrusted text (a refused name, a server message) for a one-line log: control
/// characters and quotes escaped, length bounded, so it can never spoof or break a terminal line.
pub fn printable(text: &str, max_chars: usize) -> String {
    let mut out = String::new();
    for (count, c) in text.chars().enumerate() {
        if count == max_chars {
            out.push('…');
            break;
        }
        if c.is_control() {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_shell_safe_names_only() {
        for good in ["A", "_", "AWS_REGION", "a1", "_x_9"] {
            assert!(VarName::parse(good).is_some(), "{good}");
        }
        for bad in ["", "1A", "A-B", "A B", "É", "A=B", "A\n", "$A", "a.b"] {
            assert!(VarName::parse(bad).is_none(), "{bad:?}");
        }
    }

    #[test]
    fn printable_escapes_control_characters_and_bounds_length() {
        assert_eq!(printable("a\nb\x1b[31m", 50), "a\\nb\\u{1b}[31m");
        assert_eq!(printable("abcdef", 3), "abc…");
    }
}
