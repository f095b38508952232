//! esc-hook: a project's Pulumi ESC environment in your shell, exactly while you work in it.

// The binary provides the C `main` itself: std's own start-up probes the main thread's stack
// by parsing /proc/self/maps, about a sixth of what an unchanged prompt costs. Everything
// else std offers works the same; SIGPIPE is ignored below as std would.
// (Unit tests keep libtest's own main.)
#![cfg_attr(not(test), no_main)]
#![cfg_attr(test, allow(dead_code))]

// The floors, from the ground up (ARCHITECTURE.md): a module uses only its own floor and the
// ones below it, never one above, and a test keeps it so. (One group each, so that the list
// keeps this order.)

// 1: names, digests, time, durations, globs, safe file reads, log lines
mod ground;

// 2: the config file, the state variable, and the settings built from them
mod settings;

// 3: the `.escrc` parser
mod inputs;

// 4: where values come from: ESC, STS, the Pulumi login, the HTTP clients
mod provider;

// 5: the cache, trust records, runtime files
mod keeping;

// 6: what a directory resolves to: chains, values, materialized files, the production provider
mod project;

// 7: the shell writers
mod shell;

// 8, the top: the commands, the hook's per-prompt decision, the background refresher.
mod cli;
mod cmd;
mod credential_server;
#[cfg(test)]
mod fuzz;
mod hook;
mod refresh;

use clap::Parser;

use cli::{CacheCommand, Cli, Command};

#[cfg(not(test))]
#[unsafe(no_mangle)]
extern "C" fn main(
    _argc: std::ffi::c_int,
    _argv: *const *const std::ffi::c_char,
) -> std::ffi::c_int {
    // As std's start-up does: a closed pipe is an error to handle, not a signal that kills.
    // SAFETY: setting a signal disposition before any other thread exists.
    unsafe { libc::signal(libc::SIGPIPE, libc::SIG_IGN) };
    std::ffi::c_int::from(run())
}

/// The exit code.
fn run() -> u8 {
    // It is about to hold the Pulumi token and opened credentials: no core dump, no ptrace.
    ground::process::keep_out_of_core_dumps();
    // Before anything else: esc-hook's settings come from the user's environment without
    // what esc-hook set (see settings/mod.rs). Built once, never changed, passed down.
    let settings: &'static settings::Settings = Box::leak(Box::new(settings::Settings::capture()));
    // The few switches the ground floor keeps are set once, here, from the settings (the
    // command line's -v, -q and --no-color add to them once it is parsed).
    ground::log::configure(settings.terminal(), || settings.quiet());
    if settings.var("ESC_HOOK_LOG") == Some("debug") {
        ground::log::set_verbose();
    }
    ground::fs::set_display_home(|| settings.home());
    keeping::files::set_base_dir(
        settings.runtime_base(),
        settings
            .cache_dir()
            .map(|dir| dir.join("esc-hook").join("run")),
    );
    // The user's own secrets a project overrides wait in the keyring (keeping::cache::held):
    // the settings read them back from there when a command needs the user's own value.
    settings.set_held_source(Box::new(|account| {
        let store = keeping::cache::store::open(
            settings.setting(keeping::cache::store::SETTING).as_ref(),
            settings.session_bus(),
        );
        match store {
            Ok(Some(store)) => {
                keeping::cache::held::held_values(store.as_ref(), account).unwrap_or_default()
            }
            _ => Default::default(),
        }
    }));
    // The hook's own call comes first and skips building the whole command line parser:
    // it runs at prompts, where every fraction of a millisecond is the user's.
    if let Some((shell, shell_pid)) = hook_call() {
        return finish(cmd::export::run(settings, shell, shell_pid));
    }
    // A background refresher, started by a hook (see refresh.rs): not a user's command.
    let args: Vec<std::ffi::OsString> = std::env::args_os().skip(1).take(3).collect();
    if let [command, path] = args.as_slice()
        && command == refresh::COMMAND
    {
        return refresh::run(settings, std::path::Path::new(path));
    }
    // A keeper of an ended `exec --server`'s port (see credential_server.rs).
    if let [command] = args.as_slice()
        && command == credential_server::KEEPER_COMMAND
    {
        return credential_server::run_keeper();
    }
    let cli = Cli::parse();
    ground::log::from_command_line(cli.verbose, cli.quiet, cli.no_color);
    let result = match cli.command {
        // exec ends with the command's own exit code.
        Command::Exec {
            env,
            dir,
            server,
            min_ttl,
            redact,
            command,
        } => {
            let options = cmd::exec::Options {
                env,
                dir,
                server,
                min_ttl,
                redact,
            };
            return cmd::exec::run(settings, options, command).unwrap_or_else(|error| {
                ground::log::error(format!("{error:#}"));
                // esc-hook's own failure, before any command ran: 125, as env(1) and
                // timeout(1) do; 126 and 127 stay the command's (cannot run, not found).
                cmd::exec::OWN_FAILURE
            });
        }
        Command::Init { shell } => cmd::init::run(settings, shell),
        Command::Export {
            shell,
            env,
            dir,
            shell_pid,
            hold_messages,
        } => match (shell.shell(), shell) {
            (Some(shell), _) => {
                if hold_messages {
                    ground::log::hold();
                }
                cmd::export::run(settings, shell, shell_pid)
            }
            (None, cli::ExportFormat::Gha) => {
                cmd::export_to::run(settings, cmd::export_to::Target::Gha, env, dir)
            }
            (None, _) => cmd::export_to::run(settings, cmd::export_to::Target::Dotenv, env, dir),
        },
        Command::Login {
            oidc_token,
            oidc_org,
            oidc_team,
            oidc_user,
            oidc_expiration,
            backend,
        } => cmd::login::run(
            settings,
            cmd::login::Options {
                oidc_token,
                org: oidc_org,
                team: oidc_team,
                user: oidc_user,
                expiration: oidc_expiration,
                backend,
            },
        ),
        Command::Console {
            env,
            dir,
            print,
            destination,
        } => cmd::console::run(
            settings,
            cmd::console::Options {
                env,
                dir,
                print,
                destination,
            },
        ),
        Command::Allow { path, chain } => cmd::trust::allow(settings, path, chain),
        Command::Deny { path } => cmd::trust::deny(settings, path),
        Command::Status {
            json,
            verify,
            short,
        } => match short {
            true => cmd::status::short(settings),
            false => cmd::status::run(settings, json, verify),
        },
        Command::Edit => cmd::edit::run(settings),
        Command::Doctor => cmd::doctor::run(settings),
        Command::Completions { shell } => cmd::completions::run(shell),
        Command::Man => cmd::completions::man(),
        Command::CredentialProcess { env, dir } => cmd::credential_process::run(settings, env, dir),
        Command::Reload => cmd::reload::run(settings),
        Command::Prune => cmd::trust::prune(settings),
        Command::Cache(CacheCommand::List { json }) => cmd::cache::list(settings, json),
        Command::Cache(CacheCommand::Clear { environment, all }) => {
            cmd::cache::clear(settings, environment, all)
        }
    };
    finish(result)
}

/// `esc-hook export <shell> [--shell-pid N]` exactly as the hooks write it; anything else goes
/// through clap.
fn hook_call() -> Option<(shell::Shell, Option<i32>)> {
    let mut args: Vec<std::ffi::OsString> = std::env::args_os().skip(1).take(6).collect();
    // zsh's hook asks for this while powerlevel10k's instant prompt holds the terminal.
    if args.last().is_some_and(|last| last == "--hold-messages") {
        args.pop();
        ground::log::hold();
    }
    let shell_pid = match args.as_slice() {
        [command, _] if command == "export" => None,
        [command, _, flag, pid] if command == "export" && flag == "--shell-pid" => {
            Some(pid.to_str()?.parse().ok().filter(|pid| *pid > 0)?)
        }
        _ => return None,
    };
    let shell = match args[1].to_str()? {
        "bash" => shell::Shell::Bash,
        "zsh" => shell::Shell::Zsh,
        "fish" => shell::Shell::Fish,
        "json-hook" | "pwsh-hook" => shell::Shell::JsonHook,
        "json" => shell::Shell::Json,
        _ => return None,
    };
    Some((shell, shell_pid))
}

fn finish(result: anyhow::Result<()>) -> u8 {
    match result {
        Ok(()) => 0,
        Err(error) => {
            ground::log::error(format!("{error:#}"));
            1
        }
    }
}
