//! The credential cache seam. A cache decorates any [`Provider`] (as aws-vault's
//! `CachedSessionProvider` does): it answers from a store while an entry is fresh and asks the
//! inner provider otherwise. The keyring-backed store plugs in behind [`CredentialCache`];
//! until then [`NoCache`] makes every open go to the provider.

use crate::provider::{OpenRequest, Provider, ProviderError, Resolved};

pub trait CredentialCache {
    /// A fresh entry for this request, if the store has one.
    fn get(&self, request: &OpenRequest) -> Option<Resolved>;
    /// Remembers a resolved environment until shortly before it expires.
    fn put(&self, request: &OpenRequest, resolved: &Resolved);
}

/// Remembers nothing.
pub struct NoCache;

impl CredentialCache for NoCache {
    fn get(&self, _request: &OpenRequest) -> Option<Resolved> {
        None
    }

    fn put(&self, _request: &OpenRequest, _resolved: &Resolved) {}
}

/// Any provider, served through a cache.
pub struct Cached<'a> {
    pub inner: &'a dyn Provider,
    pub cache: &'a dyn CredentialCache,
}

impl Provider for Cached<'_> {
    fn resolve(&self, request: &OpenRequest) -> Result<Resolved, ProviderError> {
        if let Some(hit) = self.cache.get(request) {
            return Ok(hit);
        }
        let resolved = self.inner.resolve(request)?;
        self.cache.put(request, &resolved);
        Ok(resolved)
    }
}
