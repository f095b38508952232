//! What went wrong in an `.escrc`, and where: the file, line and column a user looks at in an
//! editor, with serde_yaml's wording made to name the key at fault.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use crate::ground::text::edit_distance;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EscrcError {
    pub path: PathBuf,
    /// 1-based line and column, when the problem is at a place in the file.
    pub position: Option<(usize, usize)>,
    pub message: String,
}

impl fmt::Display for EscrcError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.path.display())?;
        if let Some((line, column)) = self.position {
            write!(f, ":{line}:{column}")?;
        }
        write!(f, ": {}", self.message)
    }
}

impl std::error::Error for EscrcError {}

impl EscrcError {
    pub fn whole_file(path: &Path, message: impl Into<String>) -> EscrcError {
        EscrcError {
            path: path.to_path_buf(),
            position: None,
            message: message.into(),
        }
    }
}

/// The 1-based line of each key of a block-style `values:` mapping (quotes removed).
pub(super) fn lines_of_values(text: &str) -> BTreeMap<String, usize> {
    let mut lines = text.lines().enumerate();
    let mut found = BTreeMap::new();
    if !lines.any(|(_, line)| {
        line.strip_prefix("values:")
            .is_some_and(|rest| rest.trim().is_empty() || rest.trim_start().starts_with('#'))
    }) {
        return found;
    }
    let mut indent = None;
    for (index, line) in lines {
        let content = line.trim_start();
        if content.is_empty() || content.starts_with('#') {
            continue;
        }
        let this_indent = line.len() - content.len();
        if this_indent == 0 {
            break;
        }
        if *indent.get_or_insert(this_indent) != this_indent {
            continue;
        }
        let key = match content.chars().next() {
            Some(quote @ ('"' | '\'')) => content[1..].split(quote).next(),
            _ => content.split(':').next(),
        };
        if let Some(key) = key {
            found.entry(key.trim().to_string()).or_insert(index + 1);
        }
    }
    found
}

/// The line and column of the first `key:` at any depth.
pub(super) fn line_of_nested_key(text: &str, key: &str) -> Option<(usize, usize)> {
    text.lines().enumerate().find_map(|(index, line)| {
        let indent = line.len() - line.trim_start().len();
        line.trim_start()
            .strip_prefix(key)
            .filter(|rest| rest.starts_with(':'))
            .map(|_| (index + 1, indent + 1))
    })
}

pub(super) fn yaml_error(path: &Path, text: &str, error: &serde_yaml::Error) -> EscrcError {
    let mut message = error.to_string();
    // serde_yaml appends " at line L column C"; the position goes in front instead.
    if let Some(at) = message.rfind(" at line ") {
        message.truncate(at);
    }
    if message.contains("expected struct RawEscrc") {
        message = "must be a mapping of keys, such as `environment: org/project/env`".into();
    }
    for (ours, key) in [
        ("AssumeRole", "aws.assume-role"),
        ("WebIdentity", "aws.web-identity"),
        ("AwsSettings", "aws"),
    ] {
        message = message.replace(&format!("struct {ours}"), &format!("the `{key}` mapping"));
    }
    let mut position = error.location().map(|l| (l.line(), l.column()));
    // serde_yaml places errors raised by our own field checks at the start of the mapping;
    // they name their key, and the key's own line is where the user must look.
    if let Some((key, _)) = message.split_once(": ")
        && let Some(line) = line_of_top_level_key(text, key)
    {
        position = Some(line);
    }
    // An unknown key (at any depth): its own line, and the known key it was probably meant to be.
    if let Some(unknown) = between(&message, "unknown field `", "`") {
        if let Some(line) = line_of_nested_key(text, unknown) {
            position = Some(line);
        }
        let known: Vec<&str> = message
            .split("expected one of ")
            .nth(1)
            .unwrap_or_default()
            .split(", ")
            .filter_map(|k| k.strip_prefix('`')?.strip_suffix('`'))
            .collect();
        if let Some(nearest) = known
            .iter()
            .map(|k| (edit_distance(unknown, k), *k))
            .filter(|(distance, _)| *distance <= 2)
            .min()
        {
            message = format!("unknown field `{unknown}`: did you mean `{}`?", nearest.1);
        }
    }
    // A key given twice: the second one is the mistake.
    if let Some(key) = between(&message, "duplicate field `", "`") {
        let mut lines = text.lines().enumerate().filter(|(_, l)| {
            l.trim_start()
                .strip_prefix(key)
                .is_some_and(|r| r.starts_with(':'))
        });
        if let Some((index, line)) = lines.nth(1) {
            position = Some((index + 1, line.len() - line.trim_start().len() + 1));
        }
        message = format!("`{key}` is given twice");
    }
    // serde's type words, in the file's own terms: `export: invalid type: string "AWS_*",
    // expected a sequence` says what to write instead.
    if let Some((key, rest)) = message.split_once(": invalid type: ") {
        let key = key.to_string();
        let given = between(rest, "\"", "\"").map(String::from);
        if rest.ends_with("expected a sequence") {
            let example = given.unwrap_or_else(|| "…".into());
            message = format!("`{key}` must be a list: `{key}: [\"{example}\"]`");
        } else if rest.ends_with("expected a boolean") {
            message = format!("`{key}` must be true or false");
        } else if rest.ends_with("expected a map") || rest.contains("expected the `") {
            message = format!("`{key}` must be a mapping of keys (indented below it)");
        }
    }
    let line_text = position.and_then(|(line, _)| text.lines().nth(line.saturating_sub(1)));
    if line_text.is_some_and(|l| l.contains('\t')) {
        message = format!("YAML does not allow tabs here: indent with spaces ({message})");
    } else if message.contains("mapping values are not allowed in this context")
        || message.contains("did not find expected key")
    {
        message =
            format!("bad indentation: a key is not aligned with the ones above it ({message})");
    }
    EscrcError {
        path: path.to_path_buf(),
        position,
        message,
    }
}

/// The text between `start` and the next `end` in `text`.
fn between<'t>(text: &'t str, start: &str, end: &str) -> Option<&'t str> {
    let rest = &text[text.find(start)? + start.len()..];
    Some(&rest[..rest.find(end)?])
}

/// The 1-based line and value column of a top-level `key:` in the text.
pub fn line_of_top_level_key(text: &str, key: &str) -> Option<(usize, usize)> {
    let is_key = !key.is_empty() && key.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-');
    if !is_key {
        return None;
    }
    text.lines().enumerate().find_map(|(index, line)| {
        let rest = line.strip_prefix(key)?.strip_prefix(':')?;
        let column = key.len() + 2 + (rest.len() - rest.trim_start().len());
        Some((index + 1, column))
    })
}
