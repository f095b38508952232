//! `esc-hook doctor`: the whole setup on one screen, each problem with its fix. Never shows a
//! token or a value.

use std::time::Duration;

use crate::inputs::escrc;
use crate::keeping::cache::store;
use crate::keeping::trust::{TrustStore, Verdict};
use crate::project::chain::Chain;
use crate::provider::esc::{EscClient, Timeouts};
use crate::provider::{ProviderError, login};
use crate::settings::Settings;
use crate::shell::HookShell;

struct Check {
    name: &'static str,
    ok: bool,
    /// Works, but not as well as it could (no keyring: everything loads, uncached).
    warn: bool,
    text: String,
}

pub fn run(settings: &'static Settings) -> anyhow::Result<()> {
    let var = |name: &str| settings.var(name).map(String::from);
    let mut checks = vec![config(settings), hook(settings, &var), keyring(settings)];
    checks.extend(pulumi(&var, settings));
    checks.push(nearest_escrc(settings));
    let mut out = String::new();
    for check in &checks {
        let mark = match (check.ok, check.warn) {
            (true, true) => crate::ground::log::warning_mark_for_stdout("WARN"),
            (ok, _) => crate::ground::log::mark_for_stdout(if ok { "ok  " } else { "FAIL" }, ok),
        };
        let text = crate::ground::names::escape_controls(&check.text);
        out.push_str(&format!("{mark} {:<8} {text}\n", check.name));
    }
    super::print(&out)?;
    let failed = checks.iter().filter(|c| !c.ok).count();
    match failed {
        0 => Ok(()),
        n => Err(anyhow::anyhow!(
            "{n} check{} failed",
            if n == 1 { "" } else { "s" }
        )),
    }
}

fn hook(settings: &Settings, var: &dyn Fn(&str) -> Option<String>) -> Check {
    // SAFETY: getppid has no preconditions and cannot fail.
    let parent = unsafe { libc::getppid() };
    // The shell this runs in, as it really is (not as `$SHELL` or an inherited variable says).
    let here = crate::ground::process::parent_name()
        .and_then(|name| HookShell::from_program(&name))
        .or_else(|| {
            var("SHELL").and_then(|s| s.rsplit('/').next().and_then(HookShell::from_program))
        })
        .unwrap_or(HookShell::Bash);
    let not_here = |text: String| Check {
        name: "hook",
        ok: false,
        warn: false,
        text,
    };
    match settings.hooked_shell() {
        Some((name, pid)) if pid == parent && name == here.name() => Check {
            name: "hook",
            ok: true,
            warn: false,
            text: format!("installed in this {name}"),
        },
        // The hook of another shell was loaded here (it refuses to run, and says so).
        Some((name, pid)) if pid == parent => not_here(format!(
            "the {name} hook was loaded into this {}: use the {} one, {}, then open a new terminal",
            here.name(),
            here.name(),
            here.install_line()
        )),
        // A shell started from a hooked one: the hook runs in that one, not here.
        Some((name, pid)) if name != here.name() => not_here(format!(
            "not installed in this {} (the {name} it was started from, pid {pid}, has it): {}, then open a new terminal",
            here.name(),
            here.install_line()
        )),
        Some((name, pid)) => Check {
            name: "hook",
            ok: true,
            warn: false,
            text: format!("installed in the {name} (pid {pid}) this runs under"),
        },
        // The line is there, but this shell did not run it: a forgotten restart, not a
        // missing line.
        None => match startup_file_with_hook(settings, var, here) {
            Some(file) => not_here(format!(
                "the hook line is in {file}, but this {} started before it: open a new terminal",
                here.name()
            )),
            None => not_here(format!(
                "not installed in this {}: {}, then open a new terminal",
                here.name(),
                here.install_line()
            )),
        },
    }
}

/// The startup file of `shell` (as the user's settings place it), when it holds a line that
/// starts esc-hook's hook; shown home-relative.
fn startup_file_with_hook(
    settings: &Settings,
    var: &dyn Fn(&str) -> Option<String>,
    shell: HookShell,
) -> Option<String> {
    let home = settings.home()?;
    let file = match shell {
        HookShell::Bash => home.join(".bashrc"),
        HookShell::Zsh => var("ZDOTDIR")
            .map(std::path::PathBuf::from)
            .unwrap_or(home)
            .join(".zshrc"),
        HookShell::Fish => var("XDG_CONFIG_HOME")
            .map(std::path::PathBuf::from)
            .unwrap_or_else(|| home.join(".config"))
            .join("fish/config.fish"),
        HookShell::Pwsh | HookShell::Nu => return None,
    };
    let text = crate::ground::fs::read_small(&file, 1024 * 1024).ok()?;
    String::from_utf8_lossy(&text)
        .contains("esc-hook init")
        .then(|| crate::ground::fs::home_relative(&file))
}

/// The config file: where it is, what it sets, and every mistake in it (shown here, not also
/// as warnings).
fn config(settings: &Settings) -> Check {
    let config = settings.config_for_report();
    let shown = config
        .path
        .as_deref()
        .map(crate::ground::fs::home_relative)
        .unwrap_or_else(|| "no config directory (set HOME)".into());
    if !config.problems.is_empty() {
        return Check {
            name: "config",
            ok: false,
            warn: false,
            text: config.problems.join("; "),
        };
    }
    if !config.read {
        return Check {
            name: "config",
            ok: true,
            warn: false,
            text: format!("no {shown} (optional; settings come from ESC_HOOK_* variables)"),
        };
    }
    let prefixes: Vec<&str> = config
        .trusted_prefixes
        .iter()
        .map(|p| p.written.as_str())
        .collect();
    let count = config.setting_count();
    Check {
        name: "config",
        ok: true,
        warn: false,
        text: format!(
            "{shown}: {count} setting{}{}",
            if count == 1 { "" } else { "s" },
            match prefixes.len() {
                0 => String::new(),
                _ => format!(", trusted prefixes {}", prefixes.join(", ")),
            }
        ),
    }
}

fn keyring(settings: &Settings) -> Check {
    let setting = settings.setting(store::SETTING);
    let opened = store::open(setting.as_ref(), settings.session_bus());
    let result = opened.and_then(|store| match store {
        None => Ok(None),
        Some(store) => {
            let probe = "doctor-probe";
            store.set(probe, b"probe")?;
            let read = store.get(probe)?;
            store.delete(probe)?;
            match read.as_deref() {
                Some(b"probe") => Ok(Some(store.name())),
                _ => Err(store::StoreError::Unavailable(
                    "wrote a probe but read back something else".into(),
                )),
            }
        }
    });
    match result {
        Ok(Some(name)) => Check {
            name: "keyring",
            ok: true,
            warn: false,
            text: format!("{name} answers"),
        },
        Ok(None) => Check {
            name: "keyring",
            ok: true,
            warn: false,
            text: format!(
                "caching is off ({})",
                setting.map_or_else(|| format!("{}=none", store::SETTING), |s| s.origin)
            ),
        },
        // Everything works without one, uncached: a warning, not a failure.
        Err(e) => Check {
            name: "keyring",
            ok: true,
            warn: true,
            text: format!("{e}: credentials are not cached; {}", store::how_to_fix()),
        },
    }
}

fn pulumi(var: &dyn Fn(&str) -> Option<String>, settings: &'static Settings) -> Vec<Check> {
    let exchanged = crate::project::sources::exchanged_logins(settings);
    let login = match login::resolve_with(var, settings.home(), &exchanged) {
        Ok(login) => login,
        Err(e) => {
            return vec![Check {
                name: "login",
                ok: false,
                warn: false,
                text: e.to_string(),
            }];
        }
    };
    let source = if var("PULUMI_ACCESS_TOKEN").is_some() {
        "PULUMI_ACCESS_TOKEN"
    } else {
        "pulumi login"
    };
    let backend = login.backend.clone();
    let login_check = Check {
        name: "login",
        ok: true,
        warn: false,
        text: format!("token for {backend} from {source}"),
    };
    let whoami = settings
        .network()
        .map_err(ProviderError::Config)
        .and_then(|network| {
            let timeouts = Timeouts {
                connect: Duration::from_secs(5),
                total: Duration::from_secs(10),
            };
            EscClient::new(login, timeouts, network).whoami()
        });
    let backend_check = match whoami {
        Ok(user) => Check {
            name: "backend",
            ok: true,
            warn: false,
            text: format!("{backend} answers; you are {user}"),
        },
        Err(ProviderError::Unauthorized { .. }) => Check {
            name: "backend",
            ok: false,
            warn: false,
            text: format!(
                "{backend} refused the token: run `pulumi login {backend}` or set PULUMI_ACCESS_TOKEN"
            ),
        },
        Err(
            e @ (ProviderError::Connect { .. }
            | ProviderError::Timeout { .. }
            | ProviderError::CutOff { .. }),
        ) => Check {
            name: "backend",
            ok: false,
            warn: false,
            text: format!("{e}: check the network, or PULUMI_BACKEND_URL"),
        },
        Err(other) => Check {
            name: "backend",
            ok: true,
            warn: false,
            text: format!("{backend} answers ({other})"),
        },
    };
    vec![login_check, backend_check]
}

fn nearest_escrc(settings: &'static Settings) -> Check {
    let Some(stamp) = settings
        .current_dir()
        .and_then(|dir| escrc::find_nearest(&dir))
    else {
        return Check {
            name: ".escrc",
            ok: true,
            warn: false,
            text: "none here or above (nothing to load in this directory)".into(),
        };
    };
    let path = stamp.path.clone();
    let shown = crate::ground::fs::home_relative(&path);
    let fail = |text: String| Check {
        name: ".escrc",
        ok: false,
        warn: false,
        text,
    };
    let content = match escrc::read(&path) {
        Ok(content) => content,
        Err(e) => return fail(e.to_string()),
    };
    if let Err(e) = escrc::parse(&path, &content) {
        return fail(format!("{e}: fix it with `esc-hook edit`"));
    }
    // A layered project: every file it builds on, and what they make together.
    let chain = Chain::discover(stamp);
    let store = match TrustStore::open(settings.data_dir(), settings.config()) {
        Ok(store) => store,
        Err(e) => return fail(e),
    };
    let verdict = store.verdict(&path, &content);
    // A parent that is not allowed blocks the chain as surely as the file itself.
    if verdict == Verdict::Allowed
        && let Some(message) = chain
            .blocked(&store)
            .and_then(|blocked| chain.blocked_message(&blocked, &chain.label(), &store))
    {
        return fail(message);
    }
    match verdict {
        Verdict::Allowed => match chain
            .project()
            .map_err(|e| format!("{e}: fix it with `esc-hook edit`"))
            .and_then(|project| opens(settings, &project))
        {
            Ok(how) => Check {
                name: ".escrc",
                ok: true,
                warn: false,
                text: format!(
                    "{shown} is allowed{}; {how}",
                    store
                        .trusted_prefix_of(&path)
                        .map(|p| format!(" (under trusted prefix {})", p.written))
                        .unwrap_or_default(),
                ),
            },
            Err(error) => fail(format!("{shown} is allowed, but {error}")),
        },
        Verdict::NotAllowed => fail(format!("{shown} is not allowed: run `esc-hook allow`")),
        Verdict::Denied => fail(format!(
            "{shown} is denied: run `esc-hook allow` to trust it again"
        )),
        Verdict::Unsafe(problem) => fail(problem),
    }
}

/// Whether what the `.escrc` names can really be opened (from the cache when it holds it).
fn opens(
    settings: &'static Settings,
    escrc: &crate::inputs::escrc::Escrc,
) -> Result<String, String> {
    use crate::provider::{OpenRequest, Provider};
    let Some(request) = OpenRequest::for_escrc(escrc) else {
        return Ok("values only: nothing to open".into());
    };
    let resolved = crate::project::sources::provider_for(settings, &request)
        .and_then(|provider| provider.resolve(&request))
        .map_err(|e| e.to_string())?;
    let left = resolved
        .expires_at
        .duration_since(std::time::SystemTime::now())
        .unwrap_or_default();
    Ok(format!(
        "{} opens ({}, {} left)",
        escrc.label(),
        if resolved.from_cache {
            "cached"
        } else {
            "opened now"
        },
        crate::ground::duration::human(left)
    ))
}
