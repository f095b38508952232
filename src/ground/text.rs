//! Text helpers for messages: "did you mean", and a word quoted for a POSIX shell.

/// Levenshtein distance, for "did you mean" (keys are a few characters long).
pub fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut previous = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let substitute = previous + usize::from(ca != *cb);
            previous = row[j + 1];
            row[j + 1] = substitute.min(row[j] + 1).min(row[j + 1] + 1);
        }
    }
    row[b.len()]
}

/// `text` as one word in POSIX single quotes, where every byte but `'` is literal (`'\''` ends
/// the quote, adds an escaped quote, and reopens it). The bash and zsh writer quotes every
/// value with it; messages use it for a command to copy, and `credentials: process` for the
/// command line of its profile.
pub fn posix_quote(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('\'');
    for c in text.chars() {
        match c {
            '\'' => out.push_str("'\\''"),
            c => out.push(c),
        }
    }
    out.push('\'');
    out
}
