//! The command line, as clap types only; each command's work lives in `cmd/`.

use std::path::PathBuf;

use clap::{Parser, Subcommand};

use crate::shell::{HookShell, Shell};

#[derive(Parser, Debug)]
#[command(
    name = "esc-hook",
    version,
    about = "Load a project's Pulumi ESC environment into your shell while you work in it",
    after_help = "Get started:\n  eval \"$(esc-hook init zsh)\"     # in ~/.zshrc (or bash, fish, pwsh)\n  \
                  cd ~/src/payments              # holds .escrc: environment: acme/payments/dev\n  \
                  esc-hook allow                 # trust it once; it loads at the next prompt"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Print the shell hook to evaluate in your shell's startup file
    #[command(
        after_help = "Examples:\n  eval \"$(esc-hook init bash)\"            # ~/.bashrc\n  \
                            eval \"$(esc-hook init zsh)\"             # ~/.zshrc\n  \
                            esc-hook init fish | source             # ~/.config/fish/config.fish\n  \
                            Invoke-Expression (& esc-hook init pwsh | Out-String)   # $PROFILE"
    )]
    Init {
        #[arg(value_enum)]
        shell: HookShell,
    },
    /// Print the changes for the current directory as shell code (what the hook runs)
    #[command(
        after_help = "Examples:\n  eval \"$(esc-hook export bash)\"\n  esc-hook export json    # {\"NAME\": \"value\", \"GONE\": null}"
    )]
    Export {
        #[arg(value_enum)]
        shell: Shell,
    },
    /// Trust an .escrc (the nearest one, or the one at PATH) so the hook loads it
    #[command(after_help = "Examples:\n  esc-hook allow\n  esc-hook allow ~/src/payments")]
    Allow {
        /// An .escrc file or a directory holding one
        path: Option<PathBuf>,
    },
    /// Refuse an .escrc (the nearest one, or the one at PATH) until it is allowed again
    #[command(after_help = "Examples:\n  esc-hook deny\n  esc-hook deny ~/src/payments/.escrc")]
    Deny {
        /// An .escrc file or a directory holding one
        path: Option<PathBuf>,
    },
    /// Open this directory's environment again now, bypassing the cache
    #[command(
        after_help = "The shell picks up the new credentials at its next prompt.\n\nExample:\n  esc-hook reload"
    )]
    Reload,
    /// List or clear cached credentials (names and times only, never values)
    #[command(subcommand)]
    Cache(CacheCommand),
    /// Show what is loaded, from which file, and whether the nearest .escrc is trusted
    #[command(
        after_help = "Examples:\n  esc-hook status\n  esc-hook status --json | jq .loaded.variables"
    )]
    Status {
        /// Print JSON for editors and prompts
        #[arg(long)]
        json: bool,
        /// Ask AWS STS who the loaded credentials belong to (GetCallerIdentity)
        #[arg(long)]
        verify: bool,
    },
    /// Print AWS credentials for the `credential_process` setting of ~/.aws/config
    #[command(
        after_help = "In ~/.aws/config:\n  [profile payments]\n  credential_process = esc-hook credential-process --env acme/payments/dev\n\n\
                            Served from the keyring cache while valid, so every AWS SDK and the AWS CLI\n\
                            can use a project's credentials without a shell hook."
    )]
    CredentialProcess {
        /// An environment (org/project/env[@version]) opened with default settings
        #[arg(long, conflicts_with = "dir", required_unless_present = "dir")]
        env: Option<String>,
        /// A directory whose (allowed) .escrc says what to open
        #[arg(long)]
        dir: Option<PathBuf>,
    },
}

#[derive(Subcommand, Debug)]
pub enum CacheCommand {
    /// List cached environments: store and time left
    #[command(after_help = "Examples:\n  esc-hook cache list\n  esc-hook cache list --json")]
    List {
        /// Print JSON
        #[arg(long)]
        json: bool,
    },
    /// Delete cached credentials of one environment, or of all
    #[command(
        after_help = "Examples:\n  esc-hook cache clear acme/payments/dev\n  esc-hook cache clear --all"
    )]
    Clear {
        /// The environment (org/project/env[@version])
        #[arg(required_unless_present = "all", conflicts_with = "all")]
        environment: Option<String>,
        /// Clear every cached environment
        #[arg(long)]
        all: bool,
    },
}
