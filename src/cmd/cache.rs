//! `esc-hook cache list` and `esc-hook cache clear`: what the keyring holds, by environment,
//! store and time left; never a value.

use anyhow::{anyhow, bail};
use serde_json::json;

use crate::cache::index::{Index, IndexEntry};
use crate::cache::{forget, store};
use crate::escrc::EnvRef;
use crate::log;
use crate::time;

pub fn list(as_json: bool) -> anyhow::Result<()> {
    let entries = index()?.entries();
    let now = time::now();
    if as_json {
        let rows: Vec<_> = entries
            .values()
            .map(|e| {
                json!({
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
    for e in entries.values() {
        let left = match e.expires_at.checked_sub(now).filter(|s| *s > 0) {
            Some(secs) => crate::duration::human(std::time::Duration::from_secs(secs)),
            None => "expired".into(),
        };
        out.push_str(&format!(
            "{:<40} {:<15} {:<10} {:<30} {}\n",
            e.environment, e.store, left, e.backend, e.detail
        ));
    }
    super::print(&out)
}

pub fn clear(reference: Option<String>, all: bool) -> anyhow::Result<()> {
    let wanted = match (&reference, all) {
        (Some(text), false) => Some(EnvRef::parse(text).map_err(|e| anyhow!(e))?.to_string()),
        (None, true) => None,
        _ => bail!("name an environment (org/project/env) or use --all"),
    };
    let entries = index()?.entries();
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
        let stored_in = crate::config::Setting {
            value: entry.store.clone(),
            origin: format!("the store of a cache entry ({})", entry.store),
        };
        let opened = store::open(Some(&stored_in))
            .map_err(|e| anyhow!("could not clear {}: {e}", entry.environment))?;
        if let Some(store) = opened {
            forget(store.as_ref(), &entry.account)
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

fn index() -> anyhow::Result<Index> {
    Index::open()
        .ok_or_else(|| anyhow!("could not find the cache directory: set HOME (or XDG_CACHE_HOME)"))
}
