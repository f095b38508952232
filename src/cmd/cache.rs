//! `esc-hook cache list` and `esc-hook cache clear`: what the keyring holds, by environment,
//! store and time left; never a value.

use std::collections::BTreeMap;
use std::sync::Arc;

use anyhow::{anyhow, bail};
use serde_json::json;

use crate::ground::log;
use crate::ground::time;
use crate::inputs::escrc::EnvRef;
use crate::keeping::cache::index::{Index, IndexEntry};
use crate::keeping::cache::{forget, store};
use crate::settings::Settings;

/// Whether an entry's secret is still in its store.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Presence {
    Present,
    /// The store could not be asked (no D-Bus session, a locked keyring): shown as such.
    Unknown(String),
}

/// Asks each store whether its entries are still there, dropping from the index those that are
/// not: a kernel session keyring ends with the login session, a keyring can be wiped, and the
/// index alone would list credentials nobody has any more. The secret read is dropped unseen.
fn check_presence(
    settings: &Settings,
    index: &Index,
    entries: &mut BTreeMap<String, IndexEntry>,
) -> BTreeMap<String, Presence> {
    let mut stores: BTreeMap<String, Result<Option<Arc<dyn store::SecretStore>>, String>> =
        BTreeMap::new();
    let mut presence = BTreeMap::new();
    let mut gone = Vec::new();
    for (id, entry) in entries.iter() {
        let opened = stores
            .entry(entry.store.clone())
            .or_insert_with(|| open_store_of(settings, entry).map_err(|e| e.to_string()));
        let found = match opened {
            Ok(Some(store)) => store.holds(&entry.account).map_err(|e| e.to_string()),
            Ok(None) => Err("caching is off".into()),
            Err(problem) => Err(problem.clone()),
        };
        match found {
            Ok(true) => {
                presence.insert(id.clone(), Presence::Present);
            }
            Ok(false) => gone.push(id.clone()),
            Err(problem) => {
                presence.insert(id.clone(), Presence::Unknown(problem));
            }
        }
    }
    for id in &gone {
        if let Some(entry) = entries.remove(id) {
            index.forget(&entry.store, &entry.account);
        }
    }
    if !gone.is_empty() {
        log::info(format!(
            "dropped {} entr{} whose credentials are no longer in their store",
            gone.len(),
            if gone.len() == 1 { "y" } else { "ies" }
        ));
    }
    presence
}

pub fn list(settings: &Settings, as_json: bool) -> anyhow::Result<()> {
    let index = index(settings)?;
    let mut entries = index.entries();
    let presence = check_presence(settings, &index, &mut entries);
    let unknown = |id: &str| match presence.get(id) {
        Some(Presence::Unknown(problem)) => Some(problem.clone()),
        _ => None,
    };
    let now = time::now();
    if as_json {
        let rows: Vec<_> = entries
            .iter()
            .map(|(id, e)| {
                json!({
                    "store_unavailable": unknown(id),
                    "environment": e.environment,
                    "backend": e.backend,
                    "store": e.store,
                    "opened_at": time::rfc3339(e.opened_at),
                    "expires_at": time::rfc3339(e.expires_at),
                    "seconds_left": e.expires_at.saturating_sub(now),
                    "detail": e.detail,
                    "account": e.account,
                })
            })
            .collect();
        return super::print(&format!("{:#}\n", serde_json::Value::from(rows)));
    }
    if entries.is_empty() {
        return super::print("nothing cached\n");
    }
    let mut out = format!(
        "{:<40} {:<15} {:<10} {:<30} {}\n",
        "ENVIRONMENT", "STORE", "LEFT", "BACKEND", "DETAIL"
    );
    for (id, e) in &entries {
        let left = match e.expires_at.checked_sub(now).filter(|s| *s > 0) {
            Some(secs) => crate::ground::duration::human(std::time::Duration::from_secs(secs)),
            None => "expired".into(),
        };
        let store = match unknown(id) {
            Some(_) => format!("{}?", e.store),
            None => e.store.clone(),
        };
        out.push_str(&format!(
            "{:<40} {:<15} {:<10} {:<30} {}\n",
            e.environment, store, left, e.backend, e.detail
        ));
    }
    if let Some(problem) = entries.keys().find_map(|id| unknown(id)) {
        out.push_str(&format!(
            "(? the store could not be asked whether it still holds the entry: {problem})\n"
        ));
    }
    super::print(&out)
}

pub fn clear(settings: &Settings, reference: Option<String>, all: bool) -> anyhow::Result<()> {
    let wanted = match (&reference, all) {
        (Some(text), false) => Some(EnvRef::parse(text).map_err(|e| anyhow!(e))?.to_string()),
        (None, true) => None,
        _ => bail!("name an environment (org/project/env) or use --all"),
    };
    let index = index(settings)?;
    let entries = index.entries();
    let chosen: Vec<&IndexEntry> = entries
        .values()
        .filter(|e| wanted.as_ref().is_none_or(|w| &e.environment == w))
        .collect();
    if chosen.is_empty() {
        log::info(match &wanted {
            Some(name) => format!("nothing cached for {name}"),
            None => "nothing cached".into(),
        });
        return Ok(());
    }
    for entry in &chosen {
        let opened = open_store_of(settings, entry)
            .map_err(|e| anyhow!("could not clear {}: {e}", entry.environment))?;
        if let Some(store) = opened {
            forget(store.as_ref(), &entry.account, Some(&index))
                .map_err(|e| anyhow!("could not clear {}: {e}", entry.environment))?;
        }
    }
    log::info(format!(
        "cleared {} cached environment{}",
        chosen.len(),
        if chosen.len() == 1 { "" } else { "s" }
    ));
    Ok(())
}

/// The store an index entry names.
fn open_store_of(
    settings: &Settings,
    entry: &IndexEntry,
) -> Result<Option<Arc<dyn store::SecretStore>>, store::StoreError> {
    store::open(
        Some(&crate::settings::config::Setting {
            value: entry.store.clone(),
            origin: format!("the store of a cache entry ({})", entry.store),
        }),
        settings.session_bus(),
    )
}

fn index(settings: &Settings) -> anyhow::Result<Index> {
    Index::open(settings.cache_dir().as_deref())
        .ok_or_else(|| anyhow!("could not find the cache directory: set HOME (or XDG_CACHE_HOME)"))
}
