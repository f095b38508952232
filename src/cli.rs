//! The command line, as clap types only; each command's work lives in `cmd/`.

use std::path::PathBuf;

use clap::{Parser, Subcommand};

use crate::shell::{HookShell, Shell};

/// What `esc-hook export` writes: shell code for a hook, or a project's variables for the
/// places a prompt never reaches.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum ExportFormat {
    Bash,
    Zsh,
    Fish,
    Pwsh,
    Json,
    /// The PowerShell and nushell hooks' own format.
    #[value(hide = true, alias = "pwsh-hook")]
    JsonHook,
    /// A GitHub Actions step: appended to $GITHUB_ENV, secrets masked in the log.
    Gha,
    /// A .env file on standard output.
    Dotenv,
}

impl ExportFormat {
    /// The shell a hook's format is for; none for the formats without a hook.
    pub fn shell(self) -> Option<Shell> {
        match self {
            ExportFormat::Bash => Some(Shell::Bash),
            ExportFormat::Zsh => Some(Shell::Zsh),
            ExportFormat::Fish => Some(Shell::Fish),
            ExportFormat::Pwsh => Some(Shell::Pwsh),
            ExportFormat::Json => Some(Shell::Json),
            ExportFormat::JsonHook => Some(Shell::JsonHook),
            ExportFormat::Gha | ExportFormat::Dotenv => None,
        }
    }
}

#[derive(Parser, Debug)]
#[command(
    name = "esc-hook",
    version,
    about = "Load a project's Pulumi ESC environment into your shell while you work in it",
    after_help = "Get started: add the hook to your shell's startup file\n  \
                  eval \"$(esc-hook init bash)\"                          # ~/.bashrc\n  \
                  eval \"$(esc-hook init zsh)\"                           # ~/.zshrc\n  \
                  esc-hook init fish | source                           # ~/.config/fish/config.fish\n  \
                  Invoke-Expression (& esc-hook init pwsh | Out-String) # $PROFILE\n  \
                  esc-hook init nu | save -f ($nu.default-config-dir | path join esc-hook.nu)\n  \
                                                                        # then `source esc-hook.nu` in config.nu\n\n\
                  then, in a project:\n  \
                  cd ~/src/payments     # holds .escrc: environment: acme/payments/dev\n  \
                  esc-hook allow        # trust it once; it loads at the next prompt"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
    /// Say which files, stores and requests are used, and what was decided (as ESC_HOOK_LOG=debug)
    #[arg(short, long, global = true)]
    pub verbose: bool,
    /// Only warnings and errors (as ESC_HOOK_QUIET=1)
    #[arg(short, long, global = true)]
    pub quiet: bool,
    /// No colour (as NO_COLOR)
    #[arg(long, global = true)]
    pub no_color: bool,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Print the shell hook to evaluate in your shell's startup file
    #[command(
        after_help = "Examples:\n  eval \"$(esc-hook init bash)\"            # ~/.bashrc\n  \
                            eval \"$(esc-hook init zsh)\"             # ~/.zshrc\n  \
                            esc-hook init fish | source             # ~/.config/fish/config.fish\n  \
                            Invoke-Expression (& esc-hook init pwsh | Out-String)   # $PROFILE\n  \
                            esc-hook init nu | save -f ($nu.default-config-dir | path join esc-hook.nu)   # then `source esc-hook.nu` in config.nu"
    )]
    #[command(display_order = 20)]
    Init {
        /// The shell; default: the one named by $SHELL
        #[arg(value_enum)]
        shell: Option<HookShell>,
    },
    /// Print the changes for the current directory as shell code (what the hook runs), or the
    /// project's variables for a GitHub Actions job (gha) or a .env file (dotenv)
    #[command(
        after_help = "Examples:\n  eval \"$(esc-hook export bash)\"\n  esc-hook export json    # {\"NAME\": \"value\", \"GONE\": null}\n  esc-hook export gha     # in a GitHub Actions step: to $GITHUB_ENV, secrets masked\n  esc-hook export dotenv > .env"
    )]
    #[command(display_order = 31)]
    Export {
        #[arg(value_enum)]
        shell: ExportFormat,
        /// gha, dotenv: an environment (org/project/env[@version]) opened with default settings
        #[arg(long, conflicts_with = "dir")]
        env: Option<String>,
        /// gha, dotenv: a directory whose (allowed) .escrc says what to export; default: here
        #[arg(long)]
        dir: Option<PathBuf>,
        /// The hook's shell: only it may remove the files it loaded (default: the parent)
        #[arg(long, hide = true)]
        shell_pid: Option<i32>,
        /// Hand the messages to the shell to print later, in the script (zsh only)
        #[arg(long, hide = true)]
        hold_messages: bool,
    },
    /// Trust an .escrc (the nearest one, or the one at PATH) so the hook loads it
    #[command(after_help = "Examples:\n  esc-hook allow\n  esc-hook allow ~/src/payments")]
    #[command(display_order = 2)]
    Allow {
        /// An .escrc file or a directory holding one
        path: Option<PathBuf>,
        /// Also every file above it that it builds on (`inherit: true`) and that waits
        #[arg(long)]
        chain: bool,
    },
    /// Refuse an .escrc (the nearest one, or the one at PATH) until it is allowed again
    #[command(after_help = "Examples:\n  esc-hook deny\n  esc-hook deny ~/src/payments/.escrc")]
    #[command(display_order = 3)]
    Deny {
        /// An .escrc file or a directory holding one
        path: Option<PathBuf>,
    },
    /// Remove trust records of .escrc files that are gone, or edited since they were allowed
    #[command(after_help = "Example:\n  esc-hook prune")]
    #[command(display_order = 30)]
    Prune,
    /// Open this directory's environment again now, bypassing the cache
    #[command(
        after_help = "The shell picks up the new credentials at its next prompt.\n\nExample:\n  esc-hook reload"
    )]
    #[command(display_order = 5)]
    Reload,
    /// List or clear cached credentials (names and times only, never values)
    #[command(subcommand)]
    #[command(display_order = 7)]
    Cache(CacheCommand),
    /// Show what is loaded, from which file, and whether the nearest .escrc is trusted
    #[command(
        after_help = "Examples:\n  esc-hook status\n  esc-hook status --json | jq .state.variables"
    )]
    #[command(display_order = 1)]
    Status {
        /// Print JSON for editors and prompts
        #[arg(long)]
        json: bool,
        /// Ask AWS STS who the loaded credentials belong to (GetCallerIdentity)
        #[arg(long)]
        verify: bool,
        /// One line for a prompt: the loaded environment and its time left (or nothing)
        #[arg(long, conflicts_with_all = ["json", "verify"])]
        short: bool,
    },
    /// Edit the nearest .escrc (or start one here) in $VISUAL or $EDITOR; allow it if saved
    #[command(after_help = "Examples:\n  esc-hook edit\n  EDITOR='code --wait' esc-hook edit")]
    #[command(display_order = 4)]
    Edit,
    /// Check the setup: hook, keyring, Pulumi login, backend, and the nearest .escrc
    #[command(after_help = "Example:\n  esc-hook doctor      # each problem comes with its fix")]
    #[command(display_order = 8)]
    Doctor,
    /// Print shell completions
    #[command(after_help = "Examples:\n  \
                            mkdir -p ~/.local/share/bash-completion/completions && esc-hook completions bash > ~/.local/share/bash-completion/completions/esc-hook\n  \
                            mkdir -p ~/.zfunc && esc-hook completions zsh > ~/.zfunc/_esc-hook   # with fpath+=(~/.zfunc) before compinit\n  \
                            mkdir -p ~/.config/fish/completions && esc-hook completions fish > ~/.config/fish/completions/esc-hook.fish\n  \
                            esc-hook completions pwsh >> $PROFILE")]
    #[command(display_order = 21)]
    Completions {
        #[arg(value_enum)]
        shell: CompletionShell,
    },
    /// Print the manual page (roff)
    #[command(
        after_help = "Example:\n  mkdir -p ~/.local/share/man/man1 && esc-hook man > ~/.local/share/man/man1/esc-hook.1"
    )]
    #[command(display_order = 22)]
    Man,
    /// Run a command with a project's environment (exit code and signals pass through)
    #[command(after_help = "Examples:\n  esc-hook exec -- terraform plan\n  \
                            esc-hook exec --env acme/payments/dev -- aws s3 ls\n  \
                            esc-hook exec --dir ~/src/payments -- make deploy\n  \
                            esc-hook exec --server -- terraform apply   # credentials that refresh for hours\n\n\
                            With --server (or `aws: { credentials: server }` in the .escrc) the command gets\n\
                            no static AWS keys but a loopback endpoint (AWS_CONTAINER_CREDENTIALS_FULL_URI and\n\
                            AWS_CONTAINER_AUTHORIZATION_TOKEN) that every AWS SDK asks again before expiry.")]
    #[command(display_order = 6)]
    Exec {
        /// An environment (org/project/env[@version]) opened with default settings
        #[arg(long, conflicts_with = "dir")]
        env: Option<String>,
        /// A directory whose (allowed) .escrc says what to load; default: the current one
        #[arg(long)]
        dir: Option<PathBuf>,
        /// Serve AWS credentials on a loopback endpoint that refreshes them, instead of static keys
        #[arg(long)]
        server: bool,
        /// Start the command only with credentials that last at least this long (opening them
        /// anew if needed), such as 1h or 90m
        #[arg(long, value_name = "DURATION")]
        min_ttl: Option<String>,
        /// Replace every secret value in the command's output with [secret]
        #[arg(long)]
        redact: bool,
        /// The command and its arguments (`--` before it is optional)
        #[arg(required = true, trailing_var_arg = true, allow_hyphen_values = true)]
        command: Vec<std::ffi::OsString>,
    },
    /// Open the AWS console, signed in with this project's session
    #[command(
        after_help = "Examples:\n  esc-hook console\n  esc-hook console --print                    # the sign-in URL, for another browser\n  esc-hook console --env acme/payments/dev"
    )]
    #[command(display_order = 7)]
    Console {
        /// An environment (org/project/env[@version]) opened with default settings
        #[arg(long, conflicts_with = "dir")]
        env: Option<String>,
        /// A directory whose (allowed) .escrc says what to open; default: the current one
        #[arg(long)]
        dir: Option<PathBuf>,
        /// Print the sign-in URL instead of opening a browser
        #[arg(long)]
        print: bool,
        /// Where the console opens (default: the home page of the project's region)
        #[arg(long, value_name = "URL")]
        destination: Option<String>,
    },
    /// Log in from a CI job by exchanging its OIDC ID token for a short-lived Pulumi token
    #[command(
        after_help = "Examples:\n  esc-hook login --oidc-token @\"$ID_TOKEN_FILE\" --oidc-org acme\n  \
                      esc-hook login --oidc-token @token.jwt --oidc-org acme --oidc-team deployers --oidc-expiration 1h\n\n\
                      The token is kept in the keyring until it expires and used for that backend only."
    )]
    #[command(display_order = 9)]
    Login {
        /// The CI job's OIDC ID token, or @FILE naming a file that holds it
        #[arg(long, value_name = "TOKEN|@FILE")]
        oidc_token: String,
        /// The Pulumi organization to log in to
        #[arg(long, value_name = "ORG")]
        oidc_org: String,
        /// Ask for a team token
        #[arg(long, value_name = "TEAM", conflicts_with = "oidc_user")]
        oidc_team: Option<String>,
        /// Ask for a personal token of this user
        #[arg(long, value_name = "USER")]
        oidc_user: Option<String>,
        /// How long the token should last (such as 2h)
        #[arg(long, value_name = "DURATION")]
        oidc_expiration: Option<String>,
        /// The backend (default: as for every other command)
        backend: Option<String>,
    },
    /// Print AWS credentials for the `credential_process` setting of ~/.aws/config
    #[command(
        after_help = "Example, in ~/.aws/config:\n  [profile payments]\n  credential_process = esc-hook credential-process --env acme/payments/dev\n\n\
                            Served from the keyring cache while valid, so every AWS SDK and the AWS CLI\n\
                            can use a project's credentials without a shell hook."
    )]
    #[command(
        override_usage = "esc-hook credential-process --env <ENV>\n       esc-hook credential-process --dir <DIR>"
    )]
    #[command(display_order = 32)]
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
    #[command(
        override_usage = "esc-hook cache clear <ENVIRONMENT>\n       esc-hook cache clear --all"
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

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum CompletionShell {
    Bash,
    Zsh,
    Fish,
    Pwsh,
}
