//! Where cache entries rest: the OS keyring, behind a small trait so tests can use memory.
//!
//! Stores: macOS Keychain, Windows Credential Manager, Linux Secret Service (pure-Rust D-Bus,
//! no libdbus), and Linux kernel keyutils when no Secret Service answers. Every call is bounded
//! in time: a locked or hung keyring must never hold up a prompt. There is no file fallback.

use std::sync::mpsc;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use crate::settings::config::Setting;

/// Each keyring call gets at most this long.
pub const CALL_TIMEOUT: Duration = Duration::from_secs(2);

/// The keyring service name every entry is filed under.
pub const SERVICE: &str = "esc-hook";

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StoreError {
    /// The store cannot be used at all (absent, locked, refusing, too slow).
    Unavailable(String),
}

impl std::fmt::Display for StoreError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StoreError::Unavailable(reason) => f.write_str(reason),
        }
    }
}

pub trait SecretStore: Send + Sync {
    /// A short name for listings: `secret-service`, `keyutils`, `keychain`, `windows`, `memory`.
    fn name(&self) -> &'static str;
    fn get(&self, account: &str) -> Result<Option<Vec<u8>>, StoreError>;
    fn set(&self, account: &str, secret: &[u8]) -> Result<(), StoreError>;
    fn delete(&self, account: &str) -> Result<(), StoreError>;

    /// Stores `secret` for at most `keep_for`: a store that can drop entries by itself (kernel
    /// keyutils: a per-key timeout) does, so an entry never outlives what it holds; the others
    /// keep it until it is replaced or deleted.
    fn set_for(&self, account: &str, secret: &[u8], keep_for: Duration) -> Result<(), StoreError> {
        let _ = keep_for;
        self.set(account, secret)
    }

    /// A store that keeps a fast copy of its entries (see [`SessionCopy`]) copies this one,
    /// read from the store of record, for at most `keep_for`. Others have nothing to do.
    fn copy_for(&self, account: &str, secret: &[u8], keep_for: Duration) {
        let _ = (account, secret, keep_for);
    }

    /// Whether the store of record still holds the entry (for `cache list`).
    fn holds(&self, account: &str) -> Result<bool, StoreError> {
        Ok(self.get(account)?.is_some())
    }
}

/// Which store to use: `ESC_HOOK_KEYRING` = `auto` (default), `secret-service`, `keyutils`,
/// `keychain`, `windows` or `none`.
pub const SETTING: &str = "ESC_HOOK_KEYRING";

/// The stores this platform has, as `ESC_HOOK_KEYRING` names them.
#[cfg(target_os = "linux")]
pub const CHOICES: &[&str] = &["auto", "secret-service", "keyutils", "none"];
#[cfg(target_os = "macos")]
pub const CHOICES: &[&str] = &["auto", "keychain", "none"];
#[cfg(windows)]
pub const CHOICES: &[&str] = &["auto", "windows", "none"];

/// Opens the configured store. `Ok(None)` when caching is switched off. `session_bus`: the
/// user's own environment names a D-Bus session (the Secret Service is reached through it).
pub fn open(
    setting: Option<&Setting>,
    session_bus: bool,
) -> Result<Option<Arc<dyn SecretStore>>, StoreError> {
    let choice = setting
        .map(|s| s.value.as_str())
        .filter(|s| !s.is_empty())
        .unwrap_or("auto");
    if choice == "none" {
        return Ok(None);
    }
    if !CHOICES.contains(&choice) {
        return Err(StoreError::Unavailable(format!(
            "{} is not a keyring store: use one of {}",
            setting.map(|s| s.origin.as_str()).unwrap_or(choice),
            CHOICES.join(", ")
        )));
    }
    let store = bounded_call("opening the keyring", {
        let choice = choice.to_string();
        move || native::open(&choice, session_bus)
    })??;
    crate::ground::log::debug(format!("keyring: {} ({}={choice})", store.name(), SETTING));
    Ok(Some(Arc::new(Bounded {
        inner: store,
        broken: Mutex::new(None),
    })))
}

/// What to do when no store answers, for the line that says so.
pub fn how_to_fix() -> &'static str {
    if cfg!(target_os = "linux") {
        "start one (a desktop session runs gnome-keyring or KWallet; over SSH, run the shell under \
         `keyctl session` and set ESC_HOOK_KEYRING=keyutils), or set ESC_HOOK_KEYRING=none to stop caching"
    } else {
        "unlock it, or set ESC_HOOK_KEYRING=none to stop caching"
    }
}

/// Runs `work` on its own thread and gives up after [`CALL_TIMEOUT`]. A call that hangs
/// (a keyring waiting on a prompt nobody will answer) is left behind; the process does not
/// wait for it.
fn bounded_call<T: Send + 'static>(
    what: &str,
    work: impl FnOnce() -> T + Send + 'static,
) -> Result<T, StoreError> {
    let (send, receive) = mpsc::channel();
    std::thread::Builder::new()
        .name("keyring".into())
        .spawn(move || {
            let _ = send.send(work());
        })
        .map_err(|e| StoreError::Unavailable(format!("could not start a thread: {e}")))?;
    receive.recv_timeout(CALL_TIMEOUT).map_err(|_| {
        StoreError::Unavailable(format!(
            "{what} took longer than {}s",
            CALL_TIMEOUT.as_secs()
        ))
    })
}

/// Bounds every call in time; after the first failure the store is not asked again by this
/// process, so one dead keyring costs one timeout, not one per entry.
struct Bounded {
    inner: Arc<dyn SecretStore>,
    broken: Mutex<Option<StoreError>>,
}

impl Bounded {
    fn call<T: Send + 'static>(
        &self,
        what: &str,
        work: impl FnOnce(&dyn SecretStore) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        if let Some(error) = self.broken.lock().ok().and_then(|b| b.clone()) {
            return Err(error);
        }
        let inner = Arc::clone(&self.inner);
        let result = bounded_call(what, move || work(inner.as_ref())).and_then(|r| r);
        if let Err(error) = &result
            && let Ok(mut broken) = self.broken.lock()
        {
            *broken = Some(error.clone());
        }
        result
    }
}

impl SecretStore for Bounded {
    fn name(&self) -> &'static str {
        self.inner.name()
    }

    fn get(&self, account: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let account = account.to_string();
        self.call("reading the keyring", move |s| s.get(&account))
    }

    fn set(&self, account: &str, secret: &[u8]) -> Result<(), StoreError> {
        let (account, secret) = (account.to_string(), secret.to_vec());
        self.call("writing the keyring", move |s| s.set(&account, &secret))
    }

    fn delete(&self, account: &str) -> Result<(), StoreError> {
        let account = account.to_string();
        self.call("deleting from the keyring", move |s| s.delete(&account))
    }

    fn set_for(&self, account: &str, secret: &[u8], keep_for: Duration) -> Result<(), StoreError> {
        let (account, secret) = (account.to_string(), secret.to_vec());
        self.call("writing the keyring", move |s| {
            s.set_for(&account, &secret, keep_for)
        })
    }

    fn copy_for(&self, account: &str, secret: &[u8], keep_for: Duration) {
        let (account, secret) = (account.to_string(), secret.to_vec());
        let _ = self.call("writing the keyring", move |s| {
            s.copy_for(&account, &secret, keep_for);
            Ok(())
        });
    }

    fn holds(&self, account: &str) -> Result<bool, StoreError> {
        let account = account.to_string();
        self.call("reading the keyring", move |s| s.holds(&account))
    }
}

/// The Secret Service with a copy of each entry in the kernel's session keyring: a hit costs
/// a `keyctl` call instead of a D-Bus connection, an encrypted session with the daemon and
/// three round trips (about 16 ms, against 5 ms for the whole `export`), so the Secret Service
/// is only opened when the copy cannot answer. The copy lives in kernel memory (the session
/// keyring, linked to the user's persistent keyring, which the kernel drops after three days
/// unused or at reboot), never on disk; the Secret Service stays the store of record (what `cache
/// list` asks, what a new session reads). Failures of the copy are never errors: it is only
/// ever a shortcut.
pub struct SessionCopy {
    pub copy: Arc<dyn SecretStore>,
    store: OnceLock<Result<Arc<dyn SecretStore>, StoreError>>,
    open_store: Box<dyn Fn() -> Result<Arc<dyn SecretStore>, StoreError> + Send + Sync>,
    /// `auto`: without a Secret Service after all, the session keyring is the store.
    copy_alone_without_store: bool,
    /// Entries this process read from the store of record, not the copy: `copy_for` copies
    /// these (and only these, so a hit on the copy costs no write).
    uncopied: Mutex<std::collections::HashSet<String>>,
}

impl SessionCopy {
    pub fn new(
        copy: Arc<dyn SecretStore>,
        open_store: impl Fn() -> Result<Arc<dyn SecretStore>, StoreError> + Send + Sync + 'static,
        copy_alone_without_store: bool,
    ) -> SessionCopy {
        SessionCopy {
            copy,
            store: OnceLock::new(),
            open_store: Box::new(open_store),
            copy_alone_without_store,
            uncopied: Mutex::default(),
        }
    }

    /// The store of record, opened at first need; `Ok(None)` when the copy stands alone.
    fn store(&self) -> Result<Option<&Arc<dyn SecretStore>>, StoreError> {
        match self.store.get_or_init(|| (self.open_store)()) {
            Ok(store) => Ok(Some(store)),
            Err(_) if self.copy_alone_without_store => Ok(None),
            Err(error) => Err(error.clone()),
        }
    }
}

impl SecretStore for SessionCopy {
    fn name(&self) -> &'static str {
        match self.store.get() {
            Some(Err(_)) if self.copy_alone_without_store => self.copy.name(),
            _ => "secret-service",
        }
    }

    fn get(&self, account: &str) -> Result<Option<Vec<u8>>, StoreError> {
        if let Ok(Some(secret)) = self.copy.get(account) {
            return Ok(Some(secret));
        }
        let Some(store) = self.store()? else {
            return Ok(None);
        };
        // The caller, who knows how long the entry lasts, asks for the copy (`copy_for`).
        let secret = store.get(account)?;
        if secret.is_some()
            && let Ok(mut uncopied) = self.uncopied.lock()
        {
            uncopied.insert(account.to_string());
        }
        Ok(secret)
    }

    fn set(&self, account: &str, secret: &[u8]) -> Result<(), StoreError> {
        let Some(store) = self.store()? else {
            return self.copy.set(account, secret);
        };
        store.set(account, secret)?;
        if self.copy.set(account, secret).is_err() {
            // A stale copy must not outlive what replaced it.
            let _ = self.copy.delete(account);
        }
        Ok(())
    }

    fn set_for(&self, account: &str, secret: &[u8], keep_for: Duration) -> Result<(), StoreError> {
        let Some(store) = self.store()? else {
            return self.copy.set_for(account, secret, keep_for);
        };
        store.set_for(account, secret, keep_for)?;
        if self.copy.set_for(account, secret, keep_for).is_err() {
            let _ = self.copy.delete(account);
        }
        Ok(())
    }

    fn copy_for(&self, account: &str, secret: &[u8], keep_for: Duration) {
        let read_from_store = self
            .uncopied
            .lock()
            .is_ok_and(|mut uncopied| uncopied.remove(account));
        if read_from_store && self.copy.set_for(account, secret, keep_for).is_err() {
            let _ = self.copy.delete(account);
        }
    }

    fn delete(&self, account: &str) -> Result<(), StoreError> {
        let copy = self.copy.delete(account);
        match self.store()? {
            Some(store) => store.delete(account),
            None => copy,
        }
    }

    fn holds(&self, account: &str) -> Result<bool, StoreError> {
        let Some(store) = self.store()? else {
            return Ok(self.copy.get(account)?.is_some());
        };
        let held = store.get(account)?.is_some();
        if !held {
            let _ = self.copy.delete(account);
        }
        Ok(held)
    }
}

/// A store in memory, for tests.
#[cfg(test)]
#[derive(Default)]
pub struct MemoryStore {
    entries: Mutex<std::collections::HashMap<String, Vec<u8>>>,
}

#[cfg(test)]
impl SecretStore for MemoryStore {
    fn name(&self) -> &'static str {
        "memory"
    }

    fn get(&self, account: &str) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self.entries.lock().map_err(poisoned)?.get(account).cloned())
    }

    fn set(&self, account: &str, secret: &[u8]) -> Result<(), StoreError> {
        self.entries
            .lock()
            .map_err(poisoned)?
            .insert(account.to_string(), secret.to_vec());
        Ok(())
    }

    fn delete(&self, account: &str) -> Result<(), StoreError> {
        self.entries.lock().map_err(poisoned)?.remove(account);
        Ok(())
    }
}

#[cfg(test)]
fn poisoned<T>(_: T) -> StoreError {
    StoreError::Unavailable("the memory store is poisoned".into())
}

/// The OS stores, through keyring-core.
mod native {
    use std::sync::Arc;

    use keyring_core::{CredentialStore, Entry, Error};

    use super::{SERVICE, SecretStore, StoreError};

    pub struct KeyringStore {
        name: &'static str,
        store: Arc<CredentialStore>,
    }

    fn unavailable(name: &str, error: &Error) -> StoreError {
        let reason = match error {
            // What keyutils says in a process without a session keyring of its own.
            Error::NoStorageAccess(_) if name == "keyutils" => {
                "no session keyring in this process (run the shell under `keyctl session`)"
                    .to_string()
            }
            Error::NoStorageAccess(e) => format!("no access: {e}"),
            Error::PlatformFailure(e) => e.to_string(),
            other => other.to_string(),
        };
        StoreError::Unavailable(format!(
            "{name}: {}",
            crate::ground::names::printable(&reason, 160)
        ))
    }

    impl KeyringStore {
        fn entry(&self, account: &str) -> Result<Entry, StoreError> {
            Entry::new_in_store(&self.store, SERVICE, account)
                .map_err(|e| unavailable(self.name, &e))
        }
    }

    impl SecretStore for KeyringStore {
        fn name(&self) -> &'static str {
            self.name
        }

        fn get(&self, account: &str) -> Result<Option<Vec<u8>>, StoreError> {
            match self.entry(account)?.get_secret() {
                Ok(secret) => Ok(Some(secret)),
                Err(Error::NoEntry) => Ok(None),
                Err(e) => Err(unavailable(self.name, &e)),
            }
        }

        fn set(&self, account: &str, secret: &[u8]) -> Result<(), StoreError> {
            self.entry(account)?
                .set_secret(secret)
                .map_err(|e| unavailable(self.name, &e))
        }

        fn delete(&self, account: &str) -> Result<(), StoreError> {
            match self.entry(account)?.delete_credential() {
                Ok(()) | Err(Error::NoEntry) => Ok(()),
                Err(e) => Err(unavailable(self.name, &e)),
            }
        }

        fn set_for(
            &self,
            account: &str,
            secret: &[u8],
            keep_for: std::time::Duration,
        ) -> Result<(), StoreError> {
            self.set(account, secret)?;
            #[cfg(target_os = "linux")]
            if self.name == "keyutils" {
                // The key is linked into the persistent keyring too, which lives for days:
                // its own timeout makes the kernel drop it everywhere once its time is up.
                // Should that fail, the key is not kept at all.
                if let Err(reason) = keyutils_timeout(account, keep_for) {
                    let _ = self.delete(account);
                    return Err(StoreError::Unavailable(format!(
                        "keyutils: could not set the entry's timeout: {reason}"
                    )));
                }
            }
            Ok(())
        }
    }

    /// Gives the keyutils entry of `account` a timeout of `keep_for` (at least one second: a
    /// timeout of zero means none).
    #[cfg(target_os = "linux")]
    fn keyutils_timeout(account: &str, keep_for: std::time::Duration) -> Result<(), String> {
        use linux_keyutils::{KeyRing, KeyRingIdentifier};
        // The description linux-keyutils-keyring-store gives an entry (its default delimiters).
        let description = format!("keyring:{account}@{SERVICE}");
        let seconds = usize::try_from(keep_for.as_secs().max(1)).unwrap_or(usize::MAX);
        KeyRing::from_special_id(KeyRingIdentifier::Session, false)
            .and_then(|session| session.search(&description))
            .and_then(|key| key.set_timeout(seconds))
            .map_err(|e| e.to_string())
    }

    fn named(
        name: &'static str,
        store: Result<Arc<CredentialStore>, Error>,
    ) -> Result<Arc<dyn SecretStore>, StoreError> {
        store
            .map(|store| Arc::new(KeyringStore { name, store }) as Arc<dyn SecretStore>)
            .map_err(|e| unavailable(name, &e))
    }

    /// Opens the store named by `choice`, or on `auto` the platform's own (on Linux, the
    /// Secret Service when one answers, else kernel keyutils).
    pub fn open(choice: &str, session_bus: bool) -> Result<Arc<dyn SecretStore>, StoreError> {
        match choice {
            #[cfg(target_os = "linux")]
            "secret-service" => with_session_copy(false, session_bus),
            #[cfg(target_os = "linux")]
            "keyutils" => keyutils(),
            #[cfg(target_os = "linux")]
            "auto" => with_session_copy(true, session_bus).or_else(|ss_error| {
                keyutils()
                    .map_err(|ku_error| StoreError::Unavailable(format!("{ss_error}; {ku_error}")))
            }),
            #[cfg(target_os = "macos")]
            "keychain" | "auto" => named(
                "keychain",
                apple_native_keyring_store::keychain::Store::new()
                    .map(|s| s as Arc<CredentialStore>),
            ),
            #[cfg(target_os = "windows")]
            "windows" | "auto" => named(
                "windows",
                windows_native_keyring_store::Store::new().map(|s| s as Arc<CredentialStore>),
            ),
            other => Err(StoreError::Unavailable(format!(
                "{}={other} is not a keyring store here",
                super::SETTING
            ))),
        }
    }

    #[cfg(target_os = "linux")]
    fn secret_service() -> Result<Arc<dyn SecretStore>, StoreError> {
        named(
            "secret-service",
            zbus_secret_service_keyring_store::Store::new().map(|s| s as Arc<CredentialStore>),
        )
    }

    /// The Secret Service behind a copy in the session keyring when this process has one (the
    /// Secret Service then opened only when the copy cannot answer), else on its own.
    /// `copy_alone`: should the Secret Service not answer, the session keyring is the store.
    #[cfg(target_os = "linux")]
    fn with_session_copy(
        copy_alone: bool,
        session_bus: bool,
    ) -> Result<Arc<dyn SecretStore>, StoreError> {
        if !session_bus {
            return Err(StoreError::Unavailable(
                "secret-service: no D-Bus session (DBUS_SESSION_BUS_ADDRESS is not set)".into(),
            ));
        }
        match keyutils() {
            Ok(copy) => Ok(Arc::new(super::SessionCopy::new(
                copy,
                secret_service,
                copy_alone,
            ))),
            Err(_) => secret_service(),
        }
    }

    #[cfg(target_os = "linux")]
    fn keyutils() -> Result<Arc<dyn SecretStore>, StoreError> {
        let store = named(
            "keyutils",
            linux_keyutils_keyring_store::Store::new().map(|s| s as Arc<CredentialStore>),
        )?;
        // keyutils opens without a session keyring and only fails on use: probe it now so
        // `auto` can tell whether it really answers.
        store.get("probe")?;
        Ok(store)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;

    struct Hanging;
    impl SecretStore for Hanging {
        fn name(&self) -> &'static str {
            "hanging"
        }
        fn get(&self, _: &str) -> Result<Option<Vec<u8>>, StoreError> {
            std::thread::sleep(Duration::from_secs(30));
            Ok(None)
        }
        fn set(&self, _: &str, _: &[u8]) -> Result<(), StoreError> {
            std::thread::sleep(Duration::from_secs(30));
            Ok(())
        }
        fn delete(&self, _: &str) -> Result<(), StoreError> {
            Ok(())
        }
    }

    /// A store that counts reads, to show which layer answered.
    struct Counted {
        inner: MemoryStore,
        reads: std::sync::atomic::AtomicUsize,
    }
    impl SecretStore for Counted {
        fn name(&self) -> &'static str {
            "secret-service"
        }
        fn get(&self, account: &str) -> Result<Option<Vec<u8>>, StoreError> {
            self.reads.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            self.inner.get(account)
        }
        fn set(&self, account: &str, secret: &[u8]) -> Result<(), StoreError> {
            self.inner.set(account, secret)
        }
        fn delete(&self, account: &str) -> Result<(), StoreError> {
            self.inner.delete(account)
        }
    }

    #[test]
    fn the_session_copy_answers_hits_and_the_store_stays_the_record() {
        let store = Arc::new(Counted {
            inner: MemoryStore::default(),
            reads: Default::default(),
        });
        let copy = Arc::new(MemoryStore::default());
        let record = store.clone();
        let layered = SessionCopy::new(
            copy.clone(),
            move || Ok(record.clone() as Arc<dyn SecretStore>),
            false,
        );
        let reads = || store.reads.load(std::sync::atomic::Ordering::SeqCst);
        layered.set("a", b"one").unwrap();
        assert_eq!(layered.get("a").unwrap().as_deref(), Some(&b"one"[..]));
        assert_eq!(reads(), 0, "a hit costs the store nothing");
        // An entry another session wrote: read from the store once, copied when the caller
        // says for how long, then read from the copy.
        store.inner.set("b", b"two").unwrap();
        assert_eq!(layered.get("b").unwrap().as_deref(), Some(&b"two"[..]));
        layered.copy_for("b", b"two", Duration::from_secs(60));
        assert_eq!(layered.get("b").unwrap().as_deref(), Some(&b"two"[..]));
        assert_eq!(reads(), 1);
        // What was read from the copy is not written again.
        copy.delete("b").unwrap();
        layered.copy_for("b", b"two", Duration::from_secs(60));
        assert_eq!(copy.get("b").unwrap(), None);
        copy.set("b", b"two").unwrap();
        // Wiped from the store of record: not held, and the copy goes too.
        store.inner.delete("b").unwrap();
        assert!(!layered.holds("b").unwrap());
        assert_eq!(copy.get("b").unwrap(), None);
        layered.delete("a").unwrap();
        assert_eq!(copy.get("a").unwrap(), None);
        assert_eq!(store.inner.get("a").unwrap(), None);
    }

    #[test]
    fn the_session_copy_opens_the_store_only_when_it_must() {
        let opened = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let counter = opened.clone();
        let copy = Arc::new(MemoryStore::default());
        copy.set("a", b"one").unwrap();
        let layered = SessionCopy::new(
            copy,
            move || {
                counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                Err(StoreError::Unavailable("no daemon".into()))
            },
            true,
        );
        assert_eq!(layered.get("a").unwrap().as_deref(), Some(&b"one"[..]));
        assert_eq!(
            opened.load(std::sync::atomic::Ordering::SeqCst),
            0,
            "a hit opens nothing"
        );
        assert_eq!(layered.name(), "secret-service");
        // No Secret Service after all (`auto`): the session keyring stands alone.
        layered.set("b", b"two").unwrap();
        assert_eq!(layered.get("b").unwrap().as_deref(), Some(&b"two"[..]));
        assert_eq!(
            layered.name(),
            "memory",
            "recorded under the store that holds it"
        );
        assert_eq!(
            opened.load(std::sync::atomic::Ordering::SeqCst),
            1,
            "tried once"
        );
    }

    #[test]
    fn a_hanging_keyring_costs_one_bounded_wait_then_nothing() {
        let store = Bounded {
            inner: Arc::new(Hanging),
            broken: Mutex::new(None),
        };
        let started = Instant::now();
        assert!(store.get("a").is_err());
        let first = started.elapsed();
        assert!(
            first >= CALL_TIMEOUT && first < CALL_TIMEOUT + Duration::from_secs(1),
            "{first:?}"
        );
        let started = Instant::now();
        assert!(store.set("a", b"x").is_err());
        assert!(
            started.elapsed() < Duration::from_millis(100),
            "a broken store is not asked again"
        );
    }
}
