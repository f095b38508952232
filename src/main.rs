//! esc-hook: a project's Pulumi ESC environment in your shell, exactly while you work in it.

// The binary provides the C `main` itself: std's own start-up probes the main thread's stack
// by parsing /proc/self/maps, about a sixth of what an unchanged prompt costs. Everything
// else std offers works the same; SIGPIPE is ignored below as std would.
// (Unit tests keep libtest's own main.)
#![cfg_attr(not(test), no_main)]
#![cfg_attr(test, allow(dead_code))]

mod cache;
mod cli;
mod cmd;
mod digest;
mod duration;
mod escrc;
mod files;
#[cfg(test)]
mod fuzz;
mod glob;
mod hook;
mod interrupt;
mod log;
mod names;
mod project;
mod provider;
mod shell;
mod state;
mod time;
mod trust;
mod watch;

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
    // The hook's own call comes first and skips building the whole command line parser:
    // it runs at prompts, where every fraction of a millisecond is the user's.
    if let Some(shell) = hook_call() {
        return finish(cmd::export::run(shell));
    }
    let cli = Cli::parse();
    let result = match cli.command {
        // exec ends with the command's own exit code.
        Command::Exec { env, dir, command } => {
            return cmd::exec::run(env, dir, command).unwrap_or_else(|error| {
                log::warn(format!("{error:#}"));
                // Like env(1): 127 when the command cannot be run at all.
                127
            });
        }
        Command::Init { shell } => cmd::init::run(shell),
        Command::Export { shell } => cmd::export::run(shell),
        Command::Allow { path } => cmd::trust::allow(path),
        Command::Deny { path } => cmd::trust::deny(path),
        Command::Status {
            json,
            verify,
            short,
        } => match short {
            true => cmd::status::short(),
            false => cmd::status::run(json, verify),
        },
        Command::Edit => cmd::edit::run(),
        Command::Doctor => cmd::doctor::run(),
        Command::Completions { shell } => cmd::completions::run(shell),
        Command::Man => cmd::completions::man(),
        Command::CredentialProcess { env, dir } => cmd::credential_process::run(env, dir),
        Command::Reload => cmd::reload::run(),
        Command::Cache(CacheCommand::List { json }) => cmd::cache::list(json),
        Command::Cache(CacheCommand::Clear { environment, all }) => {
            cmd::cache::clear(environment, all)
        }
    };
    finish(result)
}

/// `esc-hook export <shell>` exactly as the hooks write it; anything else goes through clap.
fn hook_call() -> Option<shell::Shell> {
    let mut args = std::env::args_os().skip(1);
    let (command, shell, rest) = (args.next()?, args.next()?, args.next());
    if command != "export" || rest.is_some() {
        return None;
    }
    match shell.to_str()? {
        "bash" => Some(shell::Shell::Bash),
        "zsh" => Some(shell::Shell::Zsh),
        "fish" => Some(shell::Shell::Fish),
        "pwsh-hook" => Some(shell::Shell::PwshHook),
        "json" => Some(shell::Shell::Json),
        _ => None,
    }
}

fn finish(result: anyhow::Result<()>) -> u8 {
    match result {
        Ok(()) => 0,
        Err(error) => {
            log::warn(format!("{error:#}"));
            1
        }
    }
}
