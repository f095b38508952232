use std::sync::{Arc, OnceLock};

use crate::hook::{self, Holding, Inputs};
use crate::keeping::cache::held::HeldList;
use crate::keeping::cache::store::{self, SecretStore};
use crate::keeping::trust::TrustStore;
use crate::keeping::watch;
use crate::provider::Provider;
use crate::settings::Settings;
use crate::shell::{Change, Shell};

pub fn run(
    settings: &'static Settings,
    shell: Shell,
    shell_pid: Option<i32>,
) -> anyhow::Result<()> {
    if let Some(pid) = shell_pid {
        crate::keeping::files::set_owner(pid);
    }
    // Opened at the first need only: an unchanged prompt never touches the keyring.
    let keyring = OnceLock::new();
    let open_keyring = || -> Result<Arc<dyn SecretStore>, String> {
        keyring
            .get_or_init(|| {
                match store::open(
                    settings.setting(store::SETTING).as_ref(),
                    settings.session_bus(),
                ) {
                    Ok(Some(store)) => Ok(store),
                    Ok(None) => Err(format!("{}=none", store::SETTING)),
                    Err(error) => Err(error.to_string()),
                }
            })
            .clone()
    };
    let inputs = Inputs {
        environ: &settings.current,
        pwd: settings.current_dir(),
        previous: settings.state.clone(),
        trust: TrustStore::open(settings.data_dir(), settings.config()),
        provider: &|request| {
            crate::project::sources::provider_for(settings, request)
                .map(|p| Box::new(p) as Box<dyn Provider>)
        },
        login: &|| {
            let var = |name: &str| settings.var(name).map(String::from);
            crate::provider::login::resolve_with(
                &var,
                settings.home(),
                &crate::project::sources::exchanged_logins(settings),
            )
            .ok()
            .map(|login| login.fingerprint())
        },
        now: crate::ground::time::now(),
        refresh_margin: settings.refresh_margin(),
        refresh_lifetime: crate::refresh::lifetime(settings.open_timeout()),
        config_said: settings.config().problems_fingerprint(),
        holding: Holding {
            store: &open_keyring,
            list: HeldList::open(settings.cache_dir().as_deref()),
            owner: crate::keeping::files::owner(),
        },
    };
    let (changes, state) = hook::export(&inputs);
    // Editors reading JSON expect an object even when nothing changed.
    let mut script = match (changes.is_empty(), shell) {
        (true, Shell::Json | Shell::JsonHook) => "{}\n".to_string(),
        (true, _) => String::new(),
        (false, _) => shell.render(&changes),
    };
    if let (Some(pwd), Ok(store)) = (&inputs.pwd, &inputs.trust) {
        // Exactly what ESC_HOOK_STATE holds once the script has run.
        let state_text = match changes
            .iter()
            .rev()
            .find(|c| c.name().as_str() == crate::settings::state::VAR)
        {
            Some(Change::Set(_, text)) => text.clone(),
            Some(Change::Unset(_)) => String::new(),
            None => settings
                .current_var(crate::settings::state::VAR)
                .and_then(|v| v.to_str())
                .unwrap_or_default()
                .to_string(),
        };
        let watch = watch::after_run(
            pwd,
            state.as_ref(),
            &state_text,
            store.watched(),
            inputs.refresh_margin,
            !changes.is_empty(),
            crate::provider::login::credentials_file(
                &|name| settings.var(name).map(String::from),
                settings.home(),
            ),
        );
        script.push_str(&shell.render_watch(&watch));
    }
    // Lines held back (see log::hold) go to the shell, which prints them when it may.
    let held = crate::ground::log::take_held();
    match shell {
        Shell::Zsh | Shell::Bash if !held.is_empty() => {
            let quoted: Vec<String> = held
                .iter()
                .map(|l| crate::ground::text::posix_quote(l))
                .collect();
            script.push_str(&format!("_esc_hook_held+=({})\n", quoted.join(" ")));
        }
        _ => crate::ground::log::write_held(held),
    }
    super::print(&script)
}
