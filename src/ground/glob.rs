//! The `.escrc` `export` filter: glob patterns over variable names (`*`, `?`), with `!` to
//! exclude. No patterns means everything; otherwise a name must match one plain pattern (if
//! any is given) and no `!` pattern.

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ExportFilter {
    include: Vec<String>,
    exclude: Vec<String>,
}

/// Patterns may only use name characters and the wildcards, so a typo such as `AWS_[A-Z]*`
/// is reported instead of silently matching nothing.
pub fn check_pattern(pattern: &str) -> Result<(), String> {
    let body = pattern.strip_prefix('!').unwrap_or(pattern);
    let valid = !body.is_empty()
        && body
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'*' | b'?'));
    if valid {
        Ok(())
    } else {
        Err(format!(
            "`{pattern}` is not a name pattern (use letters, digits, _, * and ?, with ! in front to exclude)"
        ))
    }
}

impl ExportFilter {
    pub fn new(patterns: Vec<String>) -> ExportFilter {
        let (exclude, include): (Vec<_>, Vec<_>) =
            patterns.into_iter().partition(|p| p.starts_with('!'));
        ExportFilter {
            include,
            exclude: exclude.into_iter().map(|p| p[1..].to_string()).collect(),
        }
    }

    pub fn allows(&self, name: &str) -> bool {
        let included = self.include.is_empty() || self.include.iter().any(|p| matches(p, name));
        included && !self.exclude.iter().any(|p| matches(p, name))
    }
}

/// Glob match with `*` (any run) and `?` (one character), iterative with backtracking.
fn matches(pattern: &str, name: &str) -> bool {
    let (p, n): (Vec<char>, Vec<char>) = (pattern.chars().collect(), name.chars().collect());
    let (mut pi, mut ni) = (0, 0);
    let mut backtrack: Option<(usize, usize)> = None;
    while ni < n.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == n[ni]) {
            pi += 1;
            ni += 1;
        } else if pi < p.len() && p[pi] == '*' {
            backtrack = Some((pi, ni));
            pi += 1;
        } else if let Some((star, matched)) = backtrack {
            pi = star + 1;
            ni = matched + 1;
            backtrack = Some((star, matched + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&c| c == '*')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs_match_names() {
        assert!(matches("AWS_*", "AWS_REGION"));
        assert!(matches("*_KEY*", "AWS_SECRET_ACCESS_KEY"));
        assert!(matches("A?C", "ABC"));
        assert!(!matches("A?C", "AC"));
        assert!(!matches("AWS_*", "XAWS_A"));
        assert!(matches("*", ""));
    }

    #[test]
    fn filter_includes_then_excludes() {
        let filter = ExportFilter::new(vec!["AWS_*".into(), "!AWS_PROFILE".into()]);
        assert!(filter.allows("AWS_REGION"));
        assert!(!filter.allows("AWS_PROFILE"));
        assert!(!filter.allows("HOME"));
        let only_exclude = ExportFilter::new(vec!["!DEBUG".into()]);
        assert!(only_exclude.allows("ANY"));
        assert!(!only_exclude.allows("DEBUG"));
        assert!(ExportFilter::default().allows("ANY"));
    }

    #[test]
    fn patterns_are_checked() {
        assert!(check_pattern("AWS_*").is_ok());
        assert!(check_pattern("!A?").is_ok());
        for bad in ["", "!", "AWS_[A-Z]", "a b"] {
            assert!(check_pattern(bad).is_err(), "{bad}");
        }
    }
}
