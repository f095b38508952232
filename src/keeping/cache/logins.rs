//! Pulumi access tokens from `esc-hook login --oidc-token`, kept in the keyring with their
//! expiry, one per backend, and used for that backend only. A token past its expiry is never
//! handed out.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::store::{SecretStore, StoreError};

#[derive(Serialize, Deserialize)]
struct Entry {
    backend: String,
    token: String,
    /// Unix seconds.
    expires_at: u64,
}

/// What the keyring holds for a backend.
#[derive(Debug, PartialEq, Eq)]
pub enum Stored {
    None,
    /// A token and when it expires (unix seconds).
    Valid(String, u64),
    /// One that expired at this time (unix seconds): the user must log in again.
    Expired(u64),
}

fn account(backend: &str) -> String {
    let hash = crate::ground::digest::sha256_hex(&[b"esc-hook-login\0", backend.as_bytes()]);
    format!("login-{}", &hash[..32])
}

/// Keeps `token` for `backend` until `expires_at` (unix seconds; `now` is the time now).
pub fn keep(
    store: &dyn SecretStore,
    backend: &str,
    token: &str,
    now: u64,
    expires_at: u64,
) -> Result<(), StoreError> {
    let entry = Entry {
        backend: backend.to_string(),
        token: token.to_string(),
        expires_at,
    };
    let json = serde_json::to_vec(&entry)
        .map_err(|e| StoreError::Unavailable(format!("could not encode the login: {e}")))?;
    // An hour past its expiry (a dead token is harmless), so that a later run can say it
    // expired rather than that nobody logged in.
    store.set_for(
        &account(backend),
        &json,
        Duration::from_secs(expires_at.saturating_sub(now).saturating_add(3600)),
    )
}

/// The token kept for `backend`, as of `now` (unix seconds).
pub fn stored(store: &dyn SecretStore, backend: &str, now: u64) -> Stored {
    let entry: Option<Entry> = store
        .get(&account(backend))
        .ok()
        .flatten()
        .filter(|bytes| bytes.len() <= 16 * 1024)
        .and_then(|bytes| serde_json::from_slice(&bytes).ok());
    match entry {
        // Only ever for the backend it was exchanged with.
        Some(entry) if entry.backend != backend => Stored::None,
        Some(entry) if now < entry.expires_at => Stored::Valid(entry.token, entry.expires_at),
        Some(entry) => Stored::Expired(entry.expires_at),
        None => Stored::None,
    }
}

#[cfg(test)]
mod tests {
    use super::super::store::MemoryStore;
    use super::*;

    #[test]
    fn a_token_serves_its_backend_until_it_expires() {
        let store = MemoryStore::default();
        keep(&store, "https://api.example", "pul-x", 100, 200).unwrap();
        assert_eq!(
            stored(&store, "https://api.example", 150),
            Stored::Valid("pul-x".into(), 200)
        );
        assert_eq!(
            stored(&store, "https://api.example", 200),
            Stored::Expired(200)
        );
        assert_eq!(stored(&store, "https://other.example", 150), Stored::None);
    }
}
