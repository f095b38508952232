//! The credential cache: a decorator around any [`Provider`] (as aws-vault's
//! `CachedSessionProvider` is), answering from the OS keyring while an entry is fresh.
//!
//! An entry serves while `now < expires_at - refresh margin` and was not opened in the future
//! (a clock moved back). On a miss the per-key lock is taken and the cache checked again, so
//! N shells on a cold cache make one open. The keyring failing never fails the open: the
//! environment is fetched without caching and the caller is told once.

pub mod entry;
pub mod held;
pub mod index;
pub mod key;
pub mod lock;
pub mod logins;
pub mod store;

use std::sync::Arc;
use std::time::{Duration, SystemTime};

pub use index::Index;
use index::IndexEntry;
use store::{SecretStore, StoreError};

use crate::ground::time;
use crate::provider::{OpenRequest, Provider, ProviderError, Resolved};

/// Whether a cached environment may still be served at `now`.
pub fn serves(resolved: &Resolved, now: SystemTime, margin: Duration) -> bool {
    resolved.opened_at <= now && crate::ground::time::after(now, margin) < resolved.expires_at
}

pub struct CachedProvider {
    pub inner: Box<dyn Provider>,
    /// `Err` when the keyring could not be opened; `Ok(None)` when caching is off.
    pub store: Result<Option<Arc<dyn SecretStore>>, StoreError>,
    pub backend: String,
    pub identity: String,
    /// Where entries are listed for `cache list`; none without a cache directory.
    pub index: Option<Index>,
    pub margin: Duration,
    /// How long to wait for another process's open of the same environment.
    pub lock_wait: Duration,
}

impl CachedProvider {
    pub fn account(&self, request: &OpenRequest) -> String {
        key::account(&self.backend, &self.identity, request)
    }

    fn read(&self, store: &dyn SecretStore, account: &str) -> Result<Option<Resolved>, StoreError> {
        let Some(first) = store.get(account)? else {
            return Ok(None);
        };
        let mut blobs = vec![first];
        let count = entry::blob_count(&blobs[0]).unwrap_or(0);
        for part in 1..count {
            match store.get(&blob_account(account, part))? {
                Some(blob) => blobs.push(blob),
                None => break,
            }
        }
        match entry::join(&blobs).and_then(|payload| entry::decode(&payload)) {
            Some(resolved) => {
                let keep_for = keep_for(&resolved);
                for (part, blob) in blobs.iter().enumerate() {
                    store.copy_for(&blob_account(account, part), blob, keep_for);
                }
                Ok(Some(resolved))
            }
            None => {
                // Corrupt or torn: drop it, so the next writer starts clean.
                let _ = forget(store, account, self.index.as_ref());
                Ok(None)
            }
        }
    }

    fn write(
        &self,
        store: &dyn SecretStore,
        account: &str,
        request: &OpenRequest,
        resolved: &Resolved,
    ) -> Result<(), StoreError> {
        let Some(blobs) = entry::split(&entry::encode(resolved)) else {
            return Ok(()); // too large to cache; served from the network each time
        };
        // The first blob is written last: it names how many follow, so a reader never
        // trusts a half-written entry (and the hash catches a mix of old and new).
        let keep_for = keep_for(resolved);
        for (part, blob) in blobs.iter().enumerate().skip(1) {
            store.set_for(&blob_account(account, part), blob, keep_for)?;
        }
        store.set_for(account, &blobs[0], keep_for)?;
        if let Some(index) = &self.index {
            index.record(IndexEntry {
                account: account.to_string(),
                environment: request.label(),
                backend: self.backend.clone(),
                store: store.name().to_string(),
                blobs: blobs.len(),
                opened_at: time::unix(resolved.opened_at),
                expires_at: time::unix(resolved.expires_at),
                detail: detail_of(request),
            });
        }
        Ok(())
    }

    fn fresh(
        &self,
        store: &dyn SecretStore,
        account: &str,
    ) -> Result<Option<Resolved>, StoreError> {
        let now = SystemTime::now();
        Ok(self
            .read(store, account)?
            .filter(|r| serves(r, now, self.margin)))
    }
}

/// The account of an entry's `part`th blob (the first is the entry's own account).
fn blob_account(account: &str, part: usize) -> String {
    match part {
        0 => account.to_string(),
        _ => format!("{account}.{part}"),
    }
}

/// How long an entry is worth keeping: until its credentials expire (it stops serving a
/// refresh margin before that), so a store that can drop it by itself does, then.
fn keep_for(resolved: &Resolved) -> Duration {
    resolved
        .expires_at
        .duration_since(SystemTime::now())
        .unwrap_or_default()
}

/// The settings that make two entries of one environment differ, for `cache list`.
fn detail_of(request: &OpenRequest) -> String {
    let mut parts = Vec::new();
    if let Some(ttl) = request.ttl {
        parts.push(format!("ttl {}", crate::ground::duration::human(ttl)));
    }
    if let Some(aws) = request.aws {
        let role = aws
            .assume_role
            .as_ref()
            .map(|r| &r.role_arn)
            .or(aws.web_identity.as_ref().map(|w| &w.role_arn));
        if let Some(role) = role {
            parts.push(format!("role {role}"));
        }
    }
    parts.join(", ")
}

/// Deletes an entry, all its blobs, and its line in the index.
pub fn forget(
    store: &dyn SecretStore,
    account: &str,
    index: Option<&Index>,
) -> Result<(), StoreError> {
    let first = store.get(account)?;
    let blobs = first.as_deref().and_then(entry::blob_count).unwrap_or(1);
    for part in 1..blobs {
        store.delete(&blob_account(account, part))?;
    }
    store.delete(account)?;
    if let Some(index) = index {
        index.forget(store.name(), account);
    }
    Ok(())
}

impl Provider for CachedProvider {
    fn cached(&self, request: &OpenRequest) -> Option<Resolved> {
        let Ok(Some(store)) = &self.store else {
            return None;
        };
        self.fresh(store.as_ref(), &self.account(request))
            .ok()
            .flatten()
    }

    fn cache_account(&self, request: &OpenRequest) -> Option<String> {
        matches!(self.store, Ok(Some(_))).then(|| self.account(request))
    }

    fn resolve(&self, request: &OpenRequest) -> Result<Resolved, ProviderError> {
        let store = match &self.store {
            Ok(Some(store)) => Arc::clone(store),
            Ok(None) => return self.inner.resolve(request),
            Err(problem) => {
                let mut resolved = self.inner.resolve(request)?;
                resolved.warning = Some(not_cached(problem));
                return Ok(resolved);
            }
        };
        let account = self.account(request);
        let mut problem = None;
        match self.fresh(store.as_ref(), &account) {
            Ok(Some(hit)) => return Ok(hit),
            Ok(None) => {}
            Err(e) => problem = Some(e),
        }
        // In the private runtime base only: a base someone else made means no lock at all
        // (a duplicate open), never a file where they choose or a wait on their lock.
        let _lock = crate::keeping::files::private_subdir("locks")
            .ok()
            .and_then(|dir| lock::acquire(&dir.join(&account[..32]), self.lock_wait));
        if problem.is_none() {
            // Another shell may have opened it while this one waited for the lock.
            match self.fresh(store.as_ref(), &account) {
                Ok(Some(hit)) => return Ok(hit),
                Ok(None) => {}
                Err(e) => problem = Some(e),
            }
        }
        let mut resolved = self.inner.resolve(request)?;
        if problem.is_none()
            && let Err(e) = self.write(store.as_ref(), &account, request, &resolved)
        {
            problem = Some(e);
        }
        resolved.warning = problem.as_ref().map(not_cached);
        Ok(resolved)
    }
}

/// One short line (once per shell): what is missing and where to read more.
fn not_cached(problem: &StoreError) -> String {
    let store = problem.to_string();
    let store = store.split(':').next().unwrap_or_default();
    format!(
        "no keyring answers ({store}): credentials are not cached (`esc-hook doctor` says how to fix it)"
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inputs::escrc::EnvRef;
    use crate::settings::DEFAULT_MARGIN;
    use std::cell::Cell;
    use std::rc::Rc;

    struct Counting {
        opens: Rc<Cell<u32>>,
        ttl: Duration,
    }

    impl Provider for Counting {
        fn resolve(&self, _request: &OpenRequest) -> Result<Resolved, ProviderError> {
            self.opens.set(self.opens.get() + 1);
            let mut resolved = entry::tests::sample(100);
            resolved.opened_at = SystemTime::now();
            resolved.expires_at = resolved.opened_at + self.ttl;
            Ok(resolved)
        }
    }

    fn request_for(env: &EnvRef) -> OpenRequest<'_> {
        OpenRequest {
            envs: std::slice::from_ref(env),
            open_duration: Duration::from_secs(7200),
            ttl: None,
            aws: None,
            project_dir: std::path::Path::new("/p"),
            escrc_file: None,
        }
    }

    fn cached(ttl: Duration, store: Arc<dyn SecretStore>) -> (CachedProvider, Rc<Cell<u32>>) {
        let opens = Rc::new(Cell::new(0));
        let provider = CachedProvider {
            inner: Box::new(Counting {
                opens: Rc::clone(&opens),
                ttl,
            }),
            store: Ok(Some(store)),
            backend: "http://x".into(),
            identity: crate::provider::login::identity("http://x", "t"),
            index: None,
            margin: DEFAULT_MARGIN,
            lock_wait: Duration::from_millis(100),
        };
        (provider, opens)
    }

    #[test]
    fn a_fresh_entry_serves_without_an_open() {
        let env = EnvRef::parse("a/b/c").unwrap();
        let request = request_for(&env);
        let store: Arc<dyn SecretStore> = Arc::new(store::MemoryStore::default());
        let (provider, opens) = cached(Duration::from_secs(3600), Arc::clone(&store));
        assert!(!provider.resolve(&request).unwrap().from_cache);
        let second = provider.resolve(&request).unwrap();
        assert!(second.from_cache);
        assert_eq!(second.vars, entry::tests::sample(100).vars);
        assert_eq!(opens.get(), 1);
    }

    #[test]
    fn entries_inside_the_refresh_margin_or_from_the_future_are_misses() {
        let now = SystemTime::now();
        let mut resolved = entry::tests::sample(1);
        resolved.opened_at = now - Duration::from_secs(10);
        resolved.expires_at = now + Duration::from_secs(3600);
        assert!(serves(&resolved, now, DEFAULT_MARGIN));
        resolved.expires_at = now + Duration::from_secs(300);
        assert!(!serves(&resolved, now, DEFAULT_MARGIN), "inside the margin");
        resolved.expires_at = now + Duration::from_secs(3600);
        resolved.opened_at = now + Duration::from_secs(60);
        assert!(
            !serves(&resolved, now, DEFAULT_MARGIN),
            "opened in the future"
        );
    }

    #[test]
    fn a_corrupt_entry_is_deleted_and_refetched() {
        let env = EnvRef::parse("a/b/c").unwrap();
        let request = request_for(&env);
        let store: Arc<dyn SecretStore> = Arc::new(store::MemoryStore::default());
        let (provider, opens) = cached(Duration::from_secs(3600), Arc::clone(&store));
        store.set(&provider.account(&request), b"garbage").unwrap();
        assert!(!provider.resolve(&request).unwrap().from_cache);
        assert_eq!(opens.get(), 1);
        assert!(
            provider.resolve(&request).unwrap().from_cache,
            "rewritten whole"
        );
    }

    #[test]
    fn large_entries_are_split_into_blobs_and_read_back() {
        let env = EnvRef::parse("a/b/c").unwrap();
        let request = request_for(&env);
        let memory = Arc::new(store::MemoryStore::default());
        let store: Arc<dyn SecretStore> = memory.clone();
        let (provider, _) = cached(Duration::from_secs(3600), Arc::clone(&store));
        let mut big = entry::tests::sample(6000);
        big.opened_at = SystemTime::now();
        big.expires_at = big.opened_at + Duration::from_secs(3600);
        let account = provider.account(&request);
        provider
            .write(store.as_ref(), &account, &request, &big)
            .unwrap();
        for part in [
            account.clone(),
            format!("{account}.1"),
            format!("{account}.2"),
        ] {
            let blob = store.get(&part).unwrap().unwrap();
            assert!(blob.len() <= entry::MAX_BLOB);
        }
        let back = provider.fresh(store.as_ref(), &account).unwrap().unwrap();
        assert_eq!(back.vars, big.vars);
        store.delete(&format!("{account}.1")).unwrap();
        assert!(
            provider.fresh(store.as_ref(), &account).unwrap().is_none(),
            "a lost blob is a miss"
        );
    }

    struct Broken;
    impl SecretStore for Broken {
        fn name(&self) -> &'static str {
            "broken"
        }
        fn get(&self, _: &str) -> Result<Option<Vec<u8>>, StoreError> {
            Err(StoreError::Unavailable("locked".into()))
        }
        fn set(&self, _: &str, _: &[u8]) -> Result<(), StoreError> {
            Err(StoreError::Unavailable("locked".into()))
        }
        fn delete(&self, _: &str) -> Result<(), StoreError> {
            Err(StoreError::Unavailable("locked".into()))
        }
    }

    #[test]
    fn a_failing_keyring_still_resolves_and_says_so() {
        let env = EnvRef::parse("a/b/c").unwrap();
        let request = request_for(&env);
        let (provider, _) = cached(Duration::from_secs(3600), Arc::new(Broken));
        let resolved = provider.resolve(&request).unwrap();
        assert!(resolved.warning.unwrap().contains("locked"));
    }
}
