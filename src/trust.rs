//! Which `.escrc` files the user has allowed, direnv-style.
//!
//! An allow record is a file named sha256(absolute path + "\n" + content) under
//! `<data dir>/esc-hook/allow/`; a deny record is named sha256(absolute path + "\n") under
//! `deny/`. Deny wins. Editing or moving the file changes the allow key, so it revokes itself.
//! The hook only ever reads these records; it never asks the user anything.

use std::fs;
use std::io;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use crate::digest::sha256_hex;
use crate::settings::Settings;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    Allowed,
    NotAllowed,
    Denied,
    /// Allowed or not, the file is unsafe to act on (writable by others, someone else's).
    Unsafe(String),
}

/// The names of the two records that decide a file's verdict; the state keeps them so that an
/// unchanged prompt can re-check trust with two `stat` calls and no hashing.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct TrustKeys {
    pub allow: String,
    pub deny: String,
}

pub struct TrustStore {
    root: PathBuf,
}

impl TrustStore {
    /// The store in the user's data dir (`$XDG_DATA_HOME/esc-hook` on Linux).
    pub fn open(settings: &Settings) -> Result<TrustStore, String> {
        let data = settings
            .data_dir()
            .ok_or("could not find the data directory: set HOME (or XDG_DATA_HOME)")?;
        Ok(TrustStore::at(data.join("esc-hook")))
    }

    pub fn at(root: PathBuf) -> TrustStore {
        TrustStore { root }
    }

    /// The directories whose contents change when anything is allowed or denied.
    pub fn record_dirs(&self) -> Vec<PathBuf> {
        vec![self.root.join("allow"), self.root.join("deny")]
    }

    pub fn keys(path: &Path, content: &[u8]) -> TrustKeys {
        let path = canonical(path);
        let path = path.as_os_str().as_encoded_bytes();
        TrustKeys {
            allow: sha256_hex(&[path, b"\n", content]),
            deny: sha256_hex(&[path, b"\n"]),
        }
    }

    pub fn verdict(&self, path: &Path, content: &[u8]) -> Verdict {
        if let Some(problem) = unsafe_ownership(path) {
            return Verdict::Unsafe(problem);
        }
        let keys = Self::keys(path, content);
        if self.record(&keys, Record::Deny).exists() {
            Verdict::Denied
        } else if self.record(&keys, Record::Allow).exists() {
            Verdict::Allowed
        } else {
            Verdict::NotAllowed
        }
    }

    /// Whether records that were read for a decision still say "allowed" (two `stat` calls).
    pub fn still_allowed(&self, keys: &TrustKeys) -> bool {
        self.record(keys, Record::Allow).exists() && !self.record(keys, Record::Deny).exists()
    }

    pub fn allow(&self, path: &Path, content: &[u8]) -> io::Result<()> {
        let keys = Self::keys(path, content);
        remove_if_present(&self.record(&keys, Record::Deny))?;
        self.write_record(&keys, Record::Allow, path)
    }

    pub fn deny(&self, path: &Path, content: &[u8]) -> io::Result<()> {
        let keys = Self::keys(path, content);
        remove_if_present(&self.record(&keys, Record::Allow))?;
        self.write_record(&keys, Record::Deny, path)
    }

    fn record(&self, keys: &TrustKeys, kind: Record) -> PathBuf {
        match kind {
            Record::Allow => self.root.join("allow").join(&keys.allow),
            Record::Deny => self.root.join("deny").join(&keys.deny),
        }
    }

    fn write_record(&self, keys: &TrustKeys, kind: Record, path: &Path) -> io::Result<()> {
        let record = self.record(keys, kind);
        if let Some(dir) = record.parent() {
            fs::create_dir_all(dir)?;
            // The records only say which paths are trusted; still, nobody else needs to read them.
            fs::set_permissions(&self.root, fs::Permissions::from_mode(0o700))?;
        }
        // The record holds the path, for people looking at the directory.
        let mut line = canonical(path).into_os_string().into_encoded_bytes();
        line.push(b'\n');
        fs::write(record, line)
    }
}

#[derive(Clone, Copy)]
enum Record {
    Allow,
    Deny,
}

fn remove_if_present(path: &Path) -> io::Result<()> {
    match fs::remove_file(path) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

/// The absolute, symlink-free path: a link to an allowed file is not the allowed file.
pub fn canonical(path: &Path) -> PathBuf {
    fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf())
}

/// Refuses files others could have written: another user's file, or one writable by group or
/// others, may have been changed behind the user's back after they allowed it.
pub fn unsafe_ownership(path: &Path) -> Option<String> {
    let meta = fs::metadata(path).ok()?;
    // SAFETY: geteuid has no preconditions and cannot fail.
    let me = unsafe { libc::geteuid() };
    if meta.uid() != me {
        return Some(format!(
            "{} is owned by another user (uid {}): esc-hook only loads your own files",
            path.display(),
            meta.uid()
        ));
    }
    if meta.mode() & 0o022 != 0 {
        return Some(format!(
            "{} is writable by other users: run `chmod go-w {}`",
            path.display(),
            shell_words::quote(&path.display().to_string())
        ));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn project() -> (tempfile::TempDir, PathBuf, TrustStore) {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join(".escrc");
        fs::write(&file, "values: {A: 1}\n").unwrap();
        fs::set_permissions(&file, fs::Permissions::from_mode(0o644)).unwrap();
        let store = TrustStore::at(dir.path().join("data"));
        (dir, file, store)
    }

    #[test]
    fn allow_then_edit_revokes() {
        let (_dir, file, store) = project();
        let content = fs::read(&file).unwrap();
        assert_eq!(store.verdict(&file, &content), Verdict::NotAllowed);
        store.allow(&file, &content).unwrap();
        assert_eq!(store.verdict(&file, &content), Verdict::Allowed);
        assert!(store.still_allowed(&TrustStore::keys(&file, &content)));
        assert_eq!(
            store.verdict(&file, b"values: {A: 2}\n"),
            Verdict::NotAllowed
        );
    }

    #[test]
    fn deny_wins_until_allowed_again() {
        let (_dir, file, store) = project();
        let content = fs::read(&file).unwrap();
        store.allow(&file, &content).unwrap();
        store.deny(&file, &content).unwrap();
        assert_eq!(store.verdict(&file, &content), Verdict::Denied);
        assert_eq!(store.verdict(&file, b"other"), Verdict::Denied);
        store.allow(&file, &content).unwrap();
        assert_eq!(store.verdict(&file, &content), Verdict::Allowed);
    }

    #[test]
    fn moving_the_file_revokes() {
        let (dir, file, store) = project();
        let content = fs::read(&file).unwrap();
        store.allow(&file, &content).unwrap();
        let moved = dir.path().join("elsewhere");
        fs::create_dir(&moved).unwrap();
        fs::rename(&file, moved.join(".escrc")).unwrap();
        assert_eq!(
            store.verdict(&moved.join(".escrc"), &content),
            Verdict::NotAllowed
        );
    }

    #[test]
    fn group_writable_files_are_unsafe() {
        let (_dir, file, store) = project();
        let content = fs::read(&file).unwrap();
        store.allow(&file, &content).unwrap();
        fs::set_permissions(&file, fs::Permissions::from_mode(0o664)).unwrap();
        assert!(
            matches!(store.verdict(&file, &content), Verdict::Unsafe(m) if m.contains("chmod go-w"))
        );
    }
}
