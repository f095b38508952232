//! esc-hook: a project's Pulumi ESC environment in your shell, exactly while you work in it.

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

use std::process::ExitCode;

use clap::Parser;

use cli::{CacheCommand, Cli, Command};

fn main() -> ExitCode {
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
                ExitCode::from(127)
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

fn finish(result: anyhow::Result<()>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            log::warn(format!("{error:#}"));
            ExitCode::FAILURE
        }
    }
}
