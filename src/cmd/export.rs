use crate::cache;
use crate::escrc;
use crate::hook::{self, Environ, Inputs};
use crate::provider::Provider;
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
        provider: &|request| super::provider_for(request).map(|p| Box::new(p) as Box<dyn Provider>),
        now: crate::time::now(),
        refresh_margin: cache::refresh_margin(),
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
