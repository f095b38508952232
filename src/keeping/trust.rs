//! Which `.escrc` files the user has allowed, direnv-style.
//!
//! Trust means "this exact file, here, as it is now". An allow record is a file named
//! sha256(`esc-hook trust v2\0allow\0` + path + `\0` + content) under
//! `<data dir>/esc-hook/allow/`; a deny record sha256(`esc-hook trust v2\0deny\0` + path) under
//! `deny/`. A path never holds a NUL, so each record names exactly one (path, content) pair.
//! The path is the `.escrc` as found, in its directory's canonical form: a symbolic link named
//! `.escrc` is trusted, denied, ownership-checked and resolves relative paths as itself, never
//! as the file it points to (which another checkout could point at too). Deny wins. Editing or
//! moving the file changes the allow key, so it revokes itself. The hook only reads records
//! (and migrates older ones); it never asks the user anything.

use std::fs;
use std::io;
use std::os::unix::ffi::OsStringExt;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use crate::ground::digest::sha256_hex;
use crate::ground::fs::SmallFile;
use crate::settings::config::{Config, TrustedPrefix};
use crate::settings::state::TrustKeys;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    Allowed,
    NotAllowed,
    Denied,
    /// Allowed or not, the file is unsafe to act on (writable by others, someone else's).
    Unsafe(String),
}

pub struct TrustStore {
    root: PathBuf,
    /// The config file's `trusted-prefixes`.
    prefixes: Vec<TrustedPrefix>,
    /// Where the config file is: a change there can change a verdict.
    config_path: Option<PathBuf>,
}

const FRAME: &[u8] = b"esc-hook trust v2\0";

impl TrustStore {
    /// The store in the user's data dir (`$XDG_DATA_HOME/esc-hook` on Linux), with the
    /// trusted prefixes of the user's config file.
    /// The store under the user's data directory (`$XDG_DATA_HOME`), with the config file's
    /// trusted prefixes.
    pub fn open(data_dir: Option<PathBuf>, config: &Config) -> Result<TrustStore, String> {
        let data =
            data_dir.ok_or("could not find the data directory: set HOME (or XDG_DATA_HOME)")?;
        Ok(TrustStore {
            root: data.join("esc-hook"),
            prefixes: config.trusted_prefixes.clone(),
            config_path: config.path.clone(),
        })
    }

    #[cfg(test)]
    pub fn at(root: PathBuf) -> TrustStore {
        TrustStore {
            root,
            prefixes: Vec::new(),
            config_path: None,
        }
    }

    /// What changes when anything is allowed or denied: the record directories, and the
    /// config file (with its directory, which changes when the file is made or replaced).
    pub fn watched(&self) -> Vec<PathBuf> {
        let mut watched = vec![self.root.join("allow"), self.root.join("deny")];
        if let Some(config) = &self.config_path {
            watched.extend(config.parent().map(Path::to_path_buf));
            watched.push(config.clone());
        }
        watched
    }

    pub fn keys(path: &Path, content: &[u8]) -> TrustKeys {
        let path = trust_path(path);
        let path = path.as_os_str().as_encoded_bytes();
        TrustKeys {
            allow: sha256_hex(&[FRAME, b"allow\0", path, b"\0", content]),
            deny: sha256_hex(&[FRAME, b"deny\0", path]),
        }
    }

    /// The config file's trusted prefix that `path` (an `.escrc`) lies under, whole
    /// components compared on the canonical form. Free when the config names none.
    pub fn trusted_prefix_of(&self, path: &Path) -> Option<&TrustedPrefix> {
        if self.prefixes.is_empty() {
            return None;
        }
        let path = trust_path(path);
        self.prefixes.iter().find(|p| path.starts_with(&p.dir))
    }

    pub fn verdict(&self, path: &Path, file: &SmallFile) -> Verdict {
        let keys = Self::keys(path, file);
        self.migrate_legacy(path, file, &keys);
        let allowed = self.still_allowed(path, &keys);
        if let Some(problem) = unsafe_ownership(path, file, !allowed) {
            return Verdict::Unsafe(problem);
        }
        if self.record(&keys, Record::Deny).exists() {
            Verdict::Denied
        } else if allowed {
            Verdict::Allowed
        } else {
            Verdict::NotAllowed
        }
    }

    /// Whether the file at `path` is allowed by the records `keys` name (two `stat` calls), or
    /// lies under a trusted prefix of the config file; deny wins over both.
    pub fn still_allowed(&self, path: &Path, keys: &TrustKeys) -> bool {
        // Keys read back from a state variable (which a parent process could have forged) must
        // name records, not paths: `../../etc/hostname` would be "allowed" by any file.
        keys.well_formed()
            && (self.trusted_prefix_of(path).is_some() || self.record(keys, Record::Allow).exists())
            && !self.record(keys, Record::Deny).exists()
    }

    pub fn allow(&self, path: &Path, content: &[u8]) -> io::Result<()> {
        let keys = Self::keys(path, content);
        remove_if_present(&self.record(&keys, Record::Deny))?;
        if let Some(legacy) = legacy_keys(path, content) {
            remove_if_present(&self.record(&legacy, Record::Deny))?;
        }
        self.write_record(&keys, Record::Allow, path)
    }

    /// Denies the file at `path` whatever it holds; `content`, when it could be read, also
    /// drops the allow record it had.
    pub fn deny(&self, path: &Path, content: Option<&[u8]>) -> io::Result<()> {
        let keys = Self::keys(path, content.unwrap_or_default());
        if content.is_some() {
            remove_if_present(&self.record(&keys, Record::Allow))?;
        }
        self.write_record(&keys, Record::Deny, path)
    }

    /// Removes the records that can no longer apply: those of files that are gone, and allow
    /// records of files edited since (an edit revokes the allow for good). Returns how many
    /// allow and deny records went.
    pub fn prune(&self) -> io::Result<(usize, usize)> {
        let mut removed = (0, 0);
        for (kind, dir) in [(Record::Allow, "allow"), (Record::Deny, "deny")] {
            let entries = match fs::read_dir(self.root.join(dir)) {
                Ok(entries) => entries,
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(e) => return Err(e),
            };
            for entry in entries.flatten() {
                let record = entry.path();
                let name = entry.file_name();
                let Ok(text) = fs::read(&record) else {
                    continue;
                };
                let path = PathBuf::from(std::ffi::OsString::from_vec(
                    text.strip_suffix(b"\n").unwrap_or(&text).to_vec(),
                ));
                let keep = match kind {
                    Record::Deny => fs::symlink_metadata(&path).is_ok(),
                    Record::Allow => crate::inputs::escrc::read(&path).is_ok_and(|file| {
                        let current = Self::keys(&path, &file).allow;
                        let legacy = legacy_keys(&path, &file).map(|k| k.allow);
                        name.to_str()
                            .is_some_and(|n| n == current || Some(n) == legacy.as_deref())
                    }),
                };
                if !keep {
                    remove_if_present(&record)?;
                    match kind {
                        Record::Allow => removed.0 += 1,
                        Record::Deny => removed.1 += 1,
                    }
                }
            }
        }
        Ok(removed)
    }

    /// Records made before the v2 framing (sha256(path + "\n" + content), with the link
    /// followed) still count, for a path whose old key was unambiguous: no newline in it, and
    /// not a link (whose old key named its target). Each is rewritten once in the new form.
    fn migrate_legacy(&self, path: &Path, file: &SmallFile, keys: &TrustKeys) {
        let Some(legacy) = legacy_keys(path, file).filter(|_| file.link_uid.is_none()) else {
            return;
        };
        for kind in [Record::Deny, Record::Allow] {
            let old = self.record(&legacy, kind);
            if old.exists()
                && !self.record(keys, kind).exists()
                && self.write_record(keys, kind, path).is_ok()
            {
                let _ = fs::remove_file(old);
            }
        }
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
        let mut line = trust_path(path).into_os_string().into_encoded_bytes();
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

/// The path trust is keyed by: the file as found, in its directory's canonical form (the same
/// project reached through a symlinked directory is the same file), and never the target of a
/// link named `.escrc`: a link is not the file it points to.
pub fn trust_path(path: &Path) -> PathBuf {
    match (path.parent(), path.file_name()) {
        (Some(dir), Some(name)) => fs::canonicalize(dir)
            .unwrap_or_else(|_| dir.to_path_buf())
            .join(name),
        _ => path.to_path_buf(),
    }
}

/// The keys of records written before the v2 framing, when the path makes them unambiguous.
fn legacy_keys(path: &Path, content: &[u8]) -> Option<TrustKeys> {
    let path = trust_path(path);
    let path = path.as_os_str().as_encoded_bytes();
    (!path.contains(&b'\n')).then(|| TrustKeys {
        allow: sha256_hex(&[path, b"\n", content]),
        deny: sha256_hex(&[path, b"\n"]),
    })
}

/// Refuses files others could have written: another user's file (or link), or one writable by
/// group or others, may have been changed behind the user's back after they allowed it. Checked
/// on the file that was opened and read. `then_allow`: the fix must be followed by an allow.
pub fn unsafe_ownership(path: &Path, file: &SmallFile, then_allow: bool) -> Option<String> {
    // SAFETY: geteuid has no preconditions and cannot fail.
    let me = unsafe { libc::geteuid() };
    let shown = crate::ground::names::printable(&path.to_string_lossy(), 200);
    if let Some(uid) = file.link_uid.filter(|uid| *uid != me) {
        return Some(format!(
            "{shown} is a link made by another user (uid {uid}): esc-hook only loads your own files"
        ));
    }
    if file.uid != me {
        return Some(format!(
            "{shown} is owned by another user (uid {}): esc-hook only loads your own files",
            file.uid
        ));
    }
    if file.mode & 0o022 != 0 {
        return Some(format!(
            "{shown} is writable by other users: run `chmod go-w {}`{}",
            crate::ground::names::printable(
                &crate::ground::text::posix_quote(&path.to_string_lossy()),
                200
            ),
            match then_allow {
                true => ", then `esc-hook allow`",
                false => " (it stays allowed)",
            }
        ));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(path: &Path) -> SmallFile {
        crate::inputs::escrc::read(path).unwrap()
    }

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
        let content = read(&file);
        assert_eq!(store.verdict(&file, &content), Verdict::NotAllowed);
        store.allow(&file, &content).unwrap();
        assert_eq!(store.verdict(&file, &content), Verdict::Allowed);
        assert!(store.still_allowed(&file, &TrustStore::keys(&file, &content)));
        let edited = SmallFile {
            content: b"values: {A: 2}\n".to_vec(),
            ..content
        };
        assert_eq!(store.verdict(&file, &edited), Verdict::NotAllowed);
    }

    #[test]
    fn a_trusted_prefix_allows_until_denied_or_removed() {
        let (dir, file, mut store) = project();
        let content = read(&file);
        let beside = dir.path().with_file_name(format!(
            "{}-other",
            dir.path().file_name().unwrap().to_string_lossy()
        ));
        store.prefixes = vec![TrustedPrefix {
            written: "~/work".into(),
            dir: fs::canonicalize(dir.path()).unwrap(),
        }];
        assert_eq!(store.verdict(&file, &content), Verdict::Allowed);
        let keys = TrustStore::keys(&file, &content);
        assert!(store.still_allowed(&file, &keys));
        assert_eq!(
            store.trusted_prefix_of(&beside.join(".escrc")),
            None,
            "whole path components only"
        );
        store.deny(&file, Some(&content)).unwrap();
        assert_eq!(store.verdict(&file, &content), Verdict::Denied, "deny wins");
        assert!(!store.still_allowed(&file, &keys));
        store.allow(&file, &content).unwrap();
        fs::remove_dir_all(dir.path().join("data/allow")).unwrap();
        assert!(
            store.still_allowed(&file, &keys),
            "the prefix alone allows it"
        );
        store.prefixes.clear();
        assert!(
            !store.still_allowed(&file, &keys),
            "prefix gone from the config"
        );
        assert_eq!(store.verdict(&file, &content), Verdict::NotAllowed);
    }

    #[test]
    fn deny_wins_until_allowed_again() {
        let (_dir, file, store) = project();
        let content = read(&file);
        store.allow(&file, &content).unwrap();
        store.deny(&file, Some(&content)).unwrap();
        assert_eq!(store.verdict(&file, &content), Verdict::Denied);
        let other = SmallFile {
            content: b"other".to_vec(),
            ..content.clone()
        };
        assert_eq!(store.verdict(&file, &other), Verdict::Denied);
        store.allow(&file, &content).unwrap();
        assert_eq!(store.verdict(&file, &content), Verdict::Allowed);
    }

    #[test]
    fn moving_the_file_revokes() {
        let (dir, file, store) = project();
        let content = read(&file);
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
        store.allow(&file, &read(&file)).unwrap();
        fs::set_permissions(&file, fs::Permissions::from_mode(0o664)).unwrap();
        assert!(
            matches!(store.verdict(&file, &read(&file)), Verdict::Unsafe(m) if m.contains("chmod go-w"))
        );
    }

    #[test]
    fn a_link_is_trusted_as_itself_never_as_its_target() {
        let (dir, file, store) = project();
        store.allow(&file, &read(&file)).unwrap();
        let other = dir.path().join("checkout");
        fs::create_dir(&other).unwrap();
        let link = other.join(".escrc");
        std::os::unix::fs::symlink(&file, &link).unwrap();
        assert_eq!(store.verdict(&link, &read(&link)), Verdict::NotAllowed);
        store.deny(&link, Some(&read(&link))).unwrap();
        assert_eq!(
            store.verdict(&file, &read(&file)),
            Verdict::Allowed,
            "deny names the link"
        );
        store.allow(&link, &read(&link)).unwrap();
        assert_eq!(store.verdict(&link, &read(&link)), Verdict::Allowed);
    }

    #[test]
    fn a_newline_in_a_path_cannot_borrow_another_record() {
        let (dir, _, store) = project();
        // sha256(path + "\n" + content) made these two the same record.
        let plain = dir.path().join("x/.escrc");
        let tricky_dir = dir.path().join("x/.escrc\nb");
        fs::create_dir_all(&tricky_dir).unwrap();
        let tricky = tricky_dir.join(".escrc");
        fs::write(&plain, "b/.escrc\nvalues: {A: 1}\n").unwrap();
        fs::write(&tricky, "values: {A: 1}\n").unwrap();
        for file in [&plain, &tricky] {
            fs::set_permissions(file, fs::Permissions::from_mode(0o644)).unwrap();
        }
        store.allow(&plain, &read(&plain)).unwrap();
        assert_eq!(store.verdict(&tricky, &read(&tricky)), Verdict::NotAllowed);
    }

    /// A state forged by a parent process cannot point the allow check at any file it likes.
    #[test]
    fn keys_that_are_paths_allow_nothing() {
        let (_dir, file, store) = project();
        let content = read(&file);
        store.allow(&file, &content).unwrap();
        let real = TrustStore::keys(&file, &content);
        assert!(store.still_allowed(&file, &real));
        let escaping = TrustKeys {
            allow: format!("../allow/{}", real.allow),
            deny: real.deny.clone(),
        };
        assert!(store.root.join("allow").join(&escaping.allow).exists());
        assert!(!store.still_allowed(&file, &escaping));
    }

    #[test]
    fn records_from_before_the_new_framing_still_count_and_are_migrated() {
        let (_dir, file, store) = project();
        let content = read(&file);
        let legacy = legacy_keys(&file, &content).unwrap();
        fs::create_dir_all(store.root.join("allow")).unwrap();
        fs::write(store.root.join("allow").join(&legacy.allow), "x\n").unwrap();
        assert_eq!(store.verdict(&file, &content), Verdict::Allowed);
        assert!(!store.root.join("allow").join(&legacy.allow).exists());
        assert!(store.still_allowed(&file, &TrustStore::keys(&file, &content)));
    }
}
