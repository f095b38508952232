//! Replacing secret values in a stream of output with `[secret]`, as it flows: across any
//! chunk boundary, holding back only the bytes that may still turn out to start a secret.

/// What a secret is replaced with.
pub const MARK: &[u8] = b"[secret]";

/// Secrets shorter than this are left alone: a two-letter value would mangle every line that
/// holds those letters, and hides nothing worth hiding.
pub const MIN_LEN: usize = 4;

pub struct Redactor {
    /// Longest first, so that a secret containing another is replaced whole.
    secrets: Vec<Vec<u8>>,
    pending: Vec<u8>,
}

impl Redactor {
    pub fn new<'s>(secrets: impl IntoIterator<Item = &'s str>) -> Redactor {
        let mut secrets: Vec<Vec<u8>> = secrets
            .into_iter()
            .filter(|s| s.len() >= MIN_LEN)
            .map(|s| s.as_bytes().to_vec())
            .collect();
        secrets.sort_by(|a, b| b.len().cmp(&a.len()).then(a.cmp(b)));
        secrets.dedup();
        Redactor {
            secrets,
            pending: Vec::new(),
        }
    }

    /// Takes the next chunk; returns what can be written now.
    pub fn push(&mut self, chunk: &[u8]) -> Vec<u8> {
        self.pending.extend_from_slice(chunk);
        self.drain(false)
    }

    /// At the end of the stream: everything left, redacted.
    pub fn finish(&mut self) -> Vec<u8> {
        self.drain(true)
    }

    fn drain(&mut self, at_end: bool) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.pending.len());
        let mut at = 0;
        'scan: while at < self.pending.len() {
            let rest = &self.pending[at..];
            // The start of a secret whose end has not arrived yet (perhaps a longer one than
            // what already matches): wait for more.
            if !at_end
                && self
                    .secrets
                    .iter()
                    .any(|secret| secret.len() > rest.len() && secret.starts_with(rest))
            {
                break;
            }
            for secret in &self.secrets {
                if rest.starts_with(secret) {
                    out.extend_from_slice(MARK);
                    at += secret.len();
                    continue 'scan;
                }
            }
            out.push(rest[0]);
            at += 1;
        }
        self.pending.drain(..at);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all_at_once(secrets: &[&str], input: &[u8]) -> Vec<u8> {
        let mut redactor = Redactor::new(secrets.iter().copied());
        let mut out = redactor.push(input);
        out.extend(redactor.finish());
        out
    }

    #[test]
    fn secrets_are_replaced_whole_and_nothing_else_changes() {
        let out = all_at_once(
            &["hunter22", "hunter22-long"],
            b"a hunter22-long b hunter22 c hunt",
        );
        assert_eq!(out, b"a [secret] b [secret] c hunt");
        assert_eq!(all_at_once(&["ab"], b"ab"), b"ab", "too short to redact");
    }

    #[test]
    fn any_chunking_gives_the_same_output() {
        let secrets = ["s3cr3t", "s3cr3t-and-more", "t0ken"];
        let input = b"s3cr3 s3cr3t-and-more xs3cr3t t0ke t0ken s3cr3t";
        let whole = all_at_once(&secrets, input);
        assert_eq!(whole, b"s3cr3 [secret] x[secret] t0ke [secret] [secret]");
        for size in 1..input.len() {
            let mut redactor = Redactor::new(secrets);
            let mut out = Vec::new();
            for chunk in input.chunks(size) {
                out.extend(redactor.push(chunk));
            }
            out.extend(redactor.finish());
            assert_eq!(out, whole, "chunks of {size}");
        }
    }

    #[test]
    fn only_a_possible_start_is_held_back() {
        let mut redactor = Redactor::new(["password1"]);
        assert_eq!(redactor.push(b"line one\n"), b"line one\n");
        assert_eq!(redactor.push(b"pass"), b"");
        assert_eq!(redactor.push(b"port\n"), b"passport\n");
    }
}
