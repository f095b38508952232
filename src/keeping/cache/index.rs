//! A list of what the cache holds, for `esc-hook cache list` and `cache clear`: environment,
//! backend, store and times, never a value. Keyrings cannot be listed portably, so this list is
//! the only way to know what is cached (`cache list` then asks each store whether an entry is
//! still there).

use std::collections::BTreeMap;
use std::fs;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::lock;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct IndexEntry {
    /// The keyring account the entry is stored under.
    pub account: String,
    pub environment: String,
    pub backend: String,
    pub store: String,
    pub blobs: usize,
    pub opened_at: u64,
    pub expires_at: u64,
    /// What tells two entries of one environment apart: the ttl and the AWS role asked for.
    #[serde(default)]
    pub detail: String,
}

pub struct Index {
    dir: PathBuf,
}

impl Index {
    /// The index under the user's cache directory (`$XDG_CACHE_HOME`).
    pub fn open(cache_dir: Option<&std::path::Path>) -> Option<Index> {
        cache_dir.map(|d| Index {
            dir: d.join("esc-hook"),
        })
    }

    fn path(&self) -> PathBuf {
        self.dir.join("index.json")
    }

    pub fn entries(&self) -> BTreeMap<String, IndexEntry> {
        fs::read(self.path())
            .ok()
            .and_then(|bytes| serde_json::from_slice(&bytes).ok())
            .unwrap_or_default()
    }

    /// Entries are listed per store: the same environment may be cached in two.
    fn id(store: &str, account: &str) -> String {
        format!("{store}/{account}")
    }

    pub fn record(&self, entry: IndexEntry) {
        self.update(|entries| {
            entries.insert(Self::id(&entry.store, &entry.account), entry);
        });
    }

    pub fn forget(&self, store: &str, account: &str) {
        self.update(|entries| {
            entries.remove(&Self::id(store, account));
        });
    }

    /// Read, change, write atomically (temp file + rename), under the index lock.
    fn update(&self, change: impl FnOnce(&mut BTreeMap<String, IndexEntry>)) {
        if fs::create_dir_all(&self.dir).is_err() {
            return;
        }
        let _lock = lock::acquire(&self.dir.join("index.lock"), Duration::from_secs(2));
        let mut entries = self.entries();
        change(&mut entries);
        if let Ok(json) = serde_json::to_vec_pretty(&entries) {
            write_atomically(&self.path(), &json);
        }
    }
}

/// Writes `bytes` to `path` (0600) through a temp file and a rename, so a reader sees the old
/// file or the new one, never half of one. Best effort: a list that could not be written is
/// written next time.
pub(super) fn write_atomically(path: &std::path::Path, bytes: &[u8]) {
    let temp = path.with_extension(format!("tmp.{}", std::process::id()));
    let written = fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW)
        .open(&temp)
        .and_then(|mut file| file.write_all(bytes))
        .and_then(|()| fs::rename(&temp, path));
    if written.is_err() {
        let _ = fs::remove_file(&temp);
    }
}
