//! Writers for the places a prompt never reaches: a `.env` file and the files a GitHub Actions
//! step hands to the runner (`$GITHUB_ENV` and `::add-mask::` commands).

use crate::ground::names::VarName;

/// A `.env` file: every value double-quoted, with `\\`, `"`, line feed and carriage return
/// escaped (so no line break is raw: a reader that translates line endings changes nothing).
/// python-dotenv reads every value back byte for byte (with `interpolate=False`: by default it
/// expands `${NAME}` in any value, quoted or not); Docker Compose's `env_file` reads values
/// without `$` the same way (it expands `$NAME` in double quotes).
pub fn dotenv(vars: &[(VarName, String)]) -> String {
    let mut out = String::new();
    for (name, value) in vars {
        let mut escaped = String::with_capacity(value.len());
        for c in value.chars() {
            match c {
                '\\' => escaped.push_str("\\\\"),
                '"' => escaped.push_str("\\\""),
                '\n' => escaped.push_str("\\n"),
                '\r' => escaped.push_str("\\r"),
                c => escaped.push(c),
            }
        }
        out.push_str(&format!("{name}=\"{escaped}\"\n"));
    }
    out
}

/// What a step appends to the file `$GITHUB_ENV` names: each variable as `NAME<<DELIMITER`,
/// its value, then the delimiter alone, as the runner reads multi-line values. `delimiter`
/// gives fresh random text; one that occurs in a value is never used.
pub fn github_env(vars: &[(VarName, String)], delimiter: &mut dyn FnMut() -> String) -> String {
    let mut out = String::new();
    for (name, value) in vars {
        let mark = loop {
            let mark = format!("ESC_HOOK_{}", delimiter());
            if !value.contains(&mark) {
                break mark;
            }
        };
        out.push_str(&format!("{name}<<{mark}\n{value}\n{mark}\n"));
    }
    out
}

/// `::add-mask::` commands that hide each secret value in the job's log: one per line of a
/// multi-line value (the runner masks a command's value as one line), in the escaping workflow
/// commands use.
pub fn github_masks<'v>(secrets: impl IntoIterator<Item = &'v str>) -> String {
    let mut out = String::new();
    for secret in secrets {
        for line in secret.split('\n').filter(|line| !line.trim().is_empty()) {
            let escaped = line
                .replace('%', "%25")
                .replace('\r', "%0D")
                .replace('\n', "%0A");
            out.push_str(&format!("::add-mask::{escaped}\n"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(pairs: &[(&str, &str)]) -> Vec<(VarName, String)> {
        pairs
            .iter()
            .map(|(n, v)| (VarName::parse(n).unwrap(), v.to_string()))
            .collect()
    }

    #[test]
    fn a_delimiter_found_in_a_value_is_never_used() {
        let mut tries = ["EOF", "EOF", "X1"].into_iter();
        let text = github_env(&vars(&[("A", "a\nESC_HOOK_EOF\nb")]), &mut || {
            tries.next().unwrap().to_string()
        });
        assert_eq!(text, "A<<ESC_HOOK_X1\na\nESC_HOOK_EOF\nb\nESC_HOOK_X1\n");
    }

    #[test]
    fn masks_cover_every_line_and_escape_percent() {
        assert_eq!(
            github_masks(["a%b\nsecond line\n\n"]),
            "::add-mask::a%25b\n::add-mask::second line\n"
        );
    }

    #[test]
    fn dotenv_escapes_backslash_quote_and_line_breaks() {
        assert_eq!(
            dotenv(&vars(&[("A", "it's \"\\n\"\r\n$")])),
            "A=\"it's \\\"\\\\n\\\"\\r\\n$\"\n"
        );
    }
}
