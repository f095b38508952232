//! The user's own values of secret names (`ground::names::is_secret_name`), held in the keyring
//! while a project overrides them or sets them aside: never in the state variable, which every
//! program started in the project inherits.
//!
//! One entry per shell, `held-<shell pid>`, holds every value that shell put aside, each under
//! the salted hash its state records. Values are only added (the oldest dropped past
//! [`MAX_VALUES`]): should the shell not run a hook's script (Ctrl-C), the state it keeps still
//! finds its values. The entries of shells that are gone are deleted at the next write; the
//! list of entries (process ids and store names, never a value) is a small file beside the
//! cache index.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::index::write_atomically;
use super::lock;
use super::store::{SecretStore, StoreError};

/// The most values one shell's entry keeps (the oldest go first).
pub const MAX_VALUES: usize = 64;

/// The most bytes an entry read back may have: 64 values of the largest a variable may be.
const MAX_ENTRY_LEN: usize = 4 * 1024 * 1024;

#[derive(Default, Serialize, Deserialize)]
struct Entry {
    /// (salted hash, value), oldest first.
    values: Vec<(String, String)>,
}

/// The account of the entry of the shell with process id `owner`.
pub fn account_for(owner: libc::pid_t) -> String {
    format!("held-{owner}")
}

/// Where the list of entries is kept: beside the cache index.
pub struct HeldList {
    dir: PathBuf,
}

impl HeldList {
    pub fn open(cache_dir: Option<&Path>) -> Option<HeldList> {
        cache_dir.map(|d| HeldList {
            dir: d.join("esc-hook"),
        })
    }

    fn path(&self) -> PathBuf {
        self.dir.join("held.json")
    }

    /// Process id → the store its entry is in.
    fn read(&self) -> BTreeMap<libc::pid_t, String> {
        crate::ground::fs::read_small(&self.path(), 64 * 1024)
            .ok()
            .and_then(|bytes| serde_json::from_slice(&bytes).ok())
            .unwrap_or_default()
    }

    /// Records `owner`'s entry and deletes the entries of shells that are gone from `store`
    /// (those in another store stay listed until that store is in use again).
    fn record_and_sweep(&self, store: &dyn SecretStore, owner: libc::pid_t) {
        if fs::create_dir_all(&self.dir).is_err() {
            return;
        }
        let _lock = lock::acquire(&self.dir.join("held.lock"), Duration::from_secs(2));
        let mut listed = self.read();
        listed.insert(owner, store.name().to_string());
        listed.retain(|pid, in_store| {
            if *pid == owner || in_store != store.name() || alive(*pid) {
                return true;
            }
            store.delete(&account_for(*pid)).is_err()
        });
        if let Ok(json) = serde_json::to_vec(&listed) {
            write_atomically(&self.path(), &json);
        }
    }
}

/// Whether a process with this id exists (a shell that is gone cannot come back for its
/// values; a reused id only keeps an entry a little longer).
fn alive(pid: libc::pid_t) -> bool {
    // SAFETY: signal 0 only checks that the process exists.
    pid > 0
        && (unsafe { libc::kill(pid, 0) } == 0
            || std::io::Error::last_os_error().raw_os_error() != Some(libc::ESRCH))
}

/// Adds `values` (salted hash, value) to `owner`'s entry; returns its account.
pub fn hold(
    store: &dyn SecretStore,
    list: Option<&HeldList>,
    owner: libc::pid_t,
    values: Vec<(String, String)>,
) -> Result<String, StoreError> {
    let account = account_for(owner);
    let mut entry = read_entry(store, &account)?;
    for (hash, value) in values {
        entry.values.retain(|(held, _)| *held != hash);
        entry.values.push((hash, value));
    }
    let over = entry.values.len().saturating_sub(MAX_VALUES);
    entry.values.drain(..over);
    let json = serde_json::to_vec(&entry)
        .map_err(|e| StoreError::Unavailable(format!("could not encode held values: {e}")))?;
    store.set(&account, &json)?;
    if let Some(list) = list {
        list.record_and_sweep(store, owner);
    }
    Ok(account)
}

/// The values held under `account`, by salted hash. An entry that is missing or unreadable
/// holds nothing.
pub fn held_values(
    store: &dyn SecretStore,
    account: &str,
) -> Result<BTreeMap<String, String>, StoreError> {
    Ok(read_entry(store, account)?.values.into_iter().collect())
}

fn read_entry(store: &dyn SecretStore, account: &str) -> Result<Entry, StoreError> {
    Ok(store
        .get(account)?
        .filter(|bytes| bytes.len() <= MAX_ENTRY_LEN)
        .and_then(|bytes| serde_json::from_slice(&bytes).ok())
        .unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::super::store::MemoryStore;
    use super::*;

    #[test]
    fn values_are_added_bounded_and_found_by_hash() {
        let store = MemoryStore::default();
        let account = hold(&store, None, 7, vec![("h1".into(), "one".into())]).unwrap();
        assert_eq!(account, "held-7");
        hold(&store, None, 7, vec![("h2".into(), "two".into())]).unwrap();
        let values = held_values(&store, &account).unwrap();
        assert_eq!(values.get("h1").map(String::as_str), Some("one"));
        assert_eq!(values.get("h2").map(String::as_str), Some("two"));
        for n in 0..MAX_VALUES {
            hold(&store, None, 7, vec![(format!("n{n}"), "x".into())]).unwrap();
        }
        let values = held_values(&store, &account).unwrap();
        assert_eq!(values.len(), MAX_VALUES);
        assert!(!values.contains_key("h1"), "the oldest went first");
    }

    #[test]
    fn entries_of_shells_that_are_gone_are_deleted_at_the_next_write() {
        let dir = tempfile::tempdir().unwrap();
        let list = HeldList::open(Some(dir.path())).unwrap();
        let store = MemoryStore::default();
        // A child that has exited and been waited for: its id names no process.
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let gone = child.id() as libc::pid_t;
        child.wait().unwrap();
        hold(&store, Some(&list), gone, vec![("h".into(), "old".into())]).unwrap();
        let me = std::process::id() as libc::pid_t;
        hold(&store, Some(&list), me, vec![("h".into(), "new".into())]).unwrap();
        assert!(held_values(&store, &account_for(gone)).unwrap().is_empty());
        assert_eq!(held_values(&store, &account_for(me)).unwrap().len(), 1);
        assert_eq!(list.read().keys().copied().collect::<Vec<_>>(), [me]);
    }
}
