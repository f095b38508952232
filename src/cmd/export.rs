use crate::cache;
use crate::escrc;
use crate::hook::{self, Environ, Inputs};
use crate::provider::Provider;
use crate::shell::{Change, Shell};
use crate::state::State;
use crate::trust::TrustStore;
use crate::watch;

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
    let (changes, state) = hook::export(&inputs);
    // Editors reading JSON expect an object even when nothing changed.
    let mut script = match (changes.is_empty(), shell) {
        (true, Shell::Json | Shell::PwshHook) => "{}\n".to_string(),
        (true, _) => String::new(),
        (false, _) => shell.render(&changes),
    };
    if let (Some(pwd), Ok(store)) = (&inputs.pwd, &inputs.trust) {
        // Exactly what ESC_HOOK_STATE holds once the script has run.
        let state_text = match changes
            .iter()
            .rev()
            .find(|c| c.name().as_str() == crate::state::VAR)
        {
            Some(Change::Set(_, text)) => text.clone(),
            Some(Change::Unset(_)) => String::new(),
            None => std::env::var(crate::state::VAR).unwrap_or_default(),
        };
        let watch = watch::after_run(
            pwd,
            state.as_ref(),
            &state_text,
            store.record_dirs(),
            inputs.refresh_margin,
        );
        script.push_str(&shell.render_watch(&watch));
    }
    super::print(&script)
}
