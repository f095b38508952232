use std::time::Duration;

use crate::escrc;
use crate::hook::{self, Environ, Inputs};
use crate::provider::esc::{EscClient, Timeouts};
use crate::provider::{Provider, ProviderError, login};
use crate::shell::Shell;
use crate::state::State;
use crate::trust::TrustStore;

pub fn run(shell: Shell) -> anyhow::Result<()> {
    let environ = Environ::capture();
    let inputs = Inputs {
        environ: &environ,
        pwd: escrc::current_dir(),
        previous: State::from_env(),
        trust: TrustStore::open(),
        provider: &esc_provider,
    };
    let changes = hook::export(&inputs);
    if changes.is_empty() {
        // Editors reading JSON expect an object even when nothing changed.
        return match shell {
            Shell::Json => super::print("{}\n"),
            _ => Ok(()),
        };
    }
    super::print(&shell.render(&changes))
}

/// The Pulumi ESC API client for the user's login, with timeouts from the environment.
fn esc_provider() -> Result<Box<dyn Provider>, ProviderError> {
    let var = |name: &str| std::env::var(name).ok();
    let login = login::resolve(&var)?;
    let timeouts = Timeouts {
        connect: timeout_from(&var, "ESC_HOOK_CONNECT_TIMEOUT", Timeouts::DEFAULT.connect)?,
        total: timeout_from(&var, "ESC_HOOK_TIMEOUT", Timeouts::DEFAULT.total)?,
    };
    Ok(Box::new(EscClient::new(login, timeouts)))
}

fn timeout_from(
    var: &dyn Fn(&str) -> Option<String>,
    name: &str,
    default: Duration,
) -> Result<Duration, ProviderError> {
    match var(name).filter(|v| !v.is_empty()) {
        None => Ok(default),
        Some(text) => crate::duration::parse(&text)
            .ok()
            .filter(|d| !d.is_zero())
            .ok_or_else(|| {
                ProviderError::Config(format!(
                    "{name}={} is not a duration (examples: 5s, 1m)",
                    crate::names::printable(&text, 40)
                ))
            }),
    }
}
