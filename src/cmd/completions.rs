//! `esc-hook completions` and `esc-hook man`, generated from the command line definition.

use clap::CommandFactory;
use clap_complete::Shell;

use crate::cli::{Cli, CompletionShell};

pub fn run(shell: CompletionShell) -> anyhow::Result<()> {
    let shell = match shell {
        CompletionShell::Bash => Shell::Bash,
        CompletionShell::Zsh => Shell::Zsh,
        CompletionShell::Fish => Shell::Fish,
        CompletionShell::Pwsh => Shell::PowerShell,
    };
    let mut out = Vec::new();
    clap_complete::generate(shell, &mut Cli::command(), "esc-hook", &mut out);
    let mut script = String::from_utf8_lossy(&out).into_owned();
    if shell == Shell::Bash {
        // clap_complete escapes the hyphen of `esc-hook` one way where it records the command
        // (`esc__hook__subcmd__init`) and another in the case labels that complete it
        // (`esc__subcmd__hook__subcmd__init`): nothing after the first word completed.
        script = script.replace("esc__subcmd__hook", "esc__hook");
    }
    if shell == Shell::Fish {
        script.push_str(&fish_positional_values());
    }
    if shell == Shell::PowerShell {
        // `.Where{…}` (the method call without parentheses) is the same as `.Where({…})`, which
        // every PowerShell parser accepts, the tree-sitter grammar our tests use included.
        script = script.replace(
            "$completions.Where{ $_.CompletionText -like \"$wordToComplete*\" }",
            "$completions.Where({ $_.CompletionText -like \"$wordToComplete*\" })",
        );
    }
    super::print(&script)
}

/// clap_complete's fish script completes options but not a positional argument's values
/// (`esc-hook init <TAB>` offered files): one line per subcommand whose positional takes a
/// fixed set of values, from the same definition.
fn fish_positional_values() -> String {
    let mut lines = String::new();
    for sub in Cli::command().get_subcommands() {
        for arg in sub.get_positionals() {
            // A switch takes no value: its true/false is not a choice to list.
            let values = match arg.get_action().takes_values() {
                true => shown_values(arg),
                false => Vec::new(),
            };
            if !values.is_empty() {
                lines.push_str(&format!(
                    "complete -c esc-hook -n \"__fish_esc_hook_using_subcommand {}\" -f -a \"{}\"\n",
                    sub.get_name(),
                    values.join(" ")
                ));
            }
        }
    }
    lines
}

/// One complete page: the commands (each with its arguments), the `.escrc` keys, the
/// environment, the files and the exit codes. clap_mangen alone renders only the top page, whose
/// SUBCOMMANDS point at `esc-hook-<command>(1)` pages that do not exist.
/// The values an argument takes, hidden ones left out (`json-hook` is the hooks' own).
fn shown_values(arg: &clap::Arg) -> Vec<String> {
    arg.get_possible_values()
        .iter()
        .filter(|v| !v.is_hide_set())
        .map(|v| v.get_name().to_string())
        .collect()
}

pub fn man() -> anyhow::Result<()> {
    let mut cli = Cli::command();
    // Built, so that each argument's action (a switch, or one taking values) is known.
    cli.build();
    let page = clap_mangen::Man::new(cli.clone());
    let mut out = Vec::new();
    page.render_title(&mut out)?;
    page.render_name_section(&mut out)?;
    page.render_synopsis_section(&mut out)?;
    // The description says what the NAME line cannot: how it is used.
    out.extend_from_slice(DESCRIPTION.as_bytes());
    page.render_options_section(&mut out)?;
    let mut text = String::from_utf8_lossy(&out).into_owned();
    text.push_str(".SH COMMANDS\n");
    for command in cli.get_subcommands().filter(|c| c.get_name() != "help") {
        render_command(
            &mut text,
            &format!("esc-hook {}", command.get_name()),
            command,
        );
        for sub in command.get_subcommands().filter(|c| c.get_name() != "help") {
            let name = format!("esc-hook {} {}", command.get_name(), sub.get_name());
            render_command(&mut text, &name, sub);
        }
    }
    text.push_str(MAN_SECTIONS);
    super::print(&text)
}

/// Roff-escapes text: backslashes, and a leading dot or quote that would start a request.
fn roff(text: &str) -> String {
    let text = text.replace('\\', "\\e").replace('-', "\\-");
    match text.starts_with(['.', '\'']) {
        true => format!("\\&{text}"),
        false => text,
    }
}

fn render_command(out: &mut String, name: &str, command: &clap::Command) {
    out.push_str(&format!(".SS \"{}\"\n", roff(name)));
    if let Some(about) = command.get_about() {
        out.push_str(&format!("{}\n", roff(&about.to_string())));
    }
    for arg in command.get_arguments().filter(|a| !a.is_hide_set()) {
        let id = arg.get_id().as_str();
        if id == "help" || id == "version" {
            continue;
        }
        let label = match (arg.get_long(), arg.get_short()) {
            (Some(long), _) => format!("\\fB\\-\\-{}\\fR", roff(long)),
            (None, Some(short)) => format!("\\fB\\-{short}\\fR"),
            (None, None) => format!("\\fI{}\\fR", roff(&id.to_uppercase())),
        };
        let values = shown_values(arg);
        let mut help = arg.get_help().map(|h| h.to_string()).unwrap_or_default();
        if !values.is_empty() {
            help.push_str(&format!(" (one of: {})", values.join(", ")));
        }
        out.push_str(&format!(".TP\n{label}\n{}\n", roff(&help)));
    }
    if let Some(after) = command.get_after_help() {
        out.push_str(".PP\n.nf\n");
        for line in after.to_string().lines() {
            out.push_str(&format!("{}\n", roff(line)));
        }
        out.push_str(".fi\n");
    }
}

const DESCRIPTION: &str = r#".SH DESCRIPTION
A hook in bash, zsh, fish, PowerShell or nushell runs \fBesc\-hook\fR at every prompt. In a
directory with an allowed \fI.escrc\fR (or below one), the Pulumi ESC environment it names is
opened with your own Pulumi login and its variables are exported; leaving the directory unsets
them and puts back what you had. Credentials are cached in the OS keyring until shortly before
they expire and refreshed in the background. \fBesc\-hook exec\fR, \fBexport gha\fR,
\fBexport dotenv\fR and \fBcredential\-process\fR serve the places a prompt never reaches.
"#;

const MAN_SECTIONS: &str = r#".SH .ESCRC
A YAML file at the top of a project; the nearest one walking up from the current directory is
used. Nothing loads until it is allowed (\fBesc\-hook allow\fR); any edit or move revokes that.
.TP
\fBenvironment\fR
org/project/env[@version]: the Pulumi ESC environment to open; or a list of them, in one
organization, opened together (later ones win, objects merge), at most 16.
.TP
\fBttl\fR
how long the credentials count as valid (else the fn::open::aws\-login duration, else 1h).
.TP
\fBopen\-duration\fR
the ESC open session's lifetime (default 2h, at least the ttl).
.TP
\fBexport\fR
glob patterns (*, ?, ! to exclude) choosing which of the environment's variables to export.
.TP
\fBvalues\fR
plain variables written in the file; they win over the environment's.
.TP
\fBallow\-names\fR
names that change how a shell or the loader behaves (PATH, LD_LIBRARY_PATH, ...) to export
anyway; names a shell reserves and ESC_HOOK_* never are.
.TP
\fBaws\fR
region, assume\-role (role\-arn, session\-name, duration, external\-id, policy\-arns, policy),
web\-identity (role\-arn and one of token\-file, token\-command, token\-property), and
credentials: static (keys in the shell, the default), server (\fBexec\fR serves them on a
loopback endpoint that refreshes them) or process (the shell gets an AWS config whose default
profile runs \fBesc\-hook credential\-process\fR, so every SDK refreshes by itself).
.TP
\fBinherit\fR
true: build on the nearest .escrc above (its environments, values and aws section) instead of
replacing it; each file of the chain is allowed on its own.
.SH EXAMPLES
.nf
eval "$(esc\-hook init zsh)"          # in ~/.zshrc
esc\-hook allow                        # trust this project's .escrc
esc\-hook status                       # what is loaded, and why not
esc\-hook exec \-\-min\-ttl 1h \-\- terraform apply
esc\-hook export gha                   # in a GitHub Actions step
.fi
.SH ENVIRONMENT
esc\-hook reads these from your own environment, never from what a project loaded. Each
ESC_HOOK_* setting below can also be given in the config file (see FILES); a variable that is
set wins over the file.
.TP
\fBESC_HOOK_KEYRING\fR
auto (default), secret\-service, keyutils, keychain, windows, or none (no caching).
.TP
\fBESC_HOOK_REFRESH_MARGIN\fR
refresh this long before expiry (default 10m).
.TP
\fBESC_HOOK_TIMEOUT\fR, \fBESC_HOOK_CONNECT_TIMEOUT\fR
bounds on a whole open (default 20s) and on connecting (default 5s).
.TP
\fBESC_HOOK_QUIET\fR
1 hides informational lines; warnings and errors still show.
.TP
\fBESC_HOOK_STATE\fR, \fBESC_HOOK_SHELL\fR
set by the hook (what it loaded, names and salted hashes only; which shell runs it).
.TP
\fBPULUMI_ACCESS_TOKEN\fR, \fBPULUMI_BACKEND_URL\fR, \fBPULUMI_API\fR, \fBPULUMI_HOME\fR, \fBPULUMI_CREDENTIALS_PATH\fR
the Pulumi login, found as the Pulumi CLI finds it.
.TP
\fBAWS_ENDPOINT_URL_STS\fR, \fBAWS_ENDPOINT_URL\fR, \fBAWS_REGION\fR
where STS is, for the aws: section.
.TP
\fBNO_COLOR\fR, \fBTERM\fR
no colour with NO_COLOR set or TERM=dumb; colour only on a terminal.
.TP
\fBXDG_CONFIG_HOME\fR, \fBXDG_DATA_HOME\fR, \fBXDG_CACHE_HOME\fR, \fBXDG_RUNTIME_DIR\fR, \fBTMPDIR\fR, \fBHOME\fR
where the files below live.
.SH FILES
.TP
\fI$XDG_CONFIG_HOME/esc\-hook/config.toml\fR (else \fI~/.config/esc\-hook/config.toml\fR)
optional; read only when it is yours and nobody else can write it. Keys: \fBtimeout\fR,
\fBconnect\-timeout\fR, \fBrefresh\-margin\fR (durations such as "20s"), \fBkeyring\fR (a store
name), \fBquiet\fR (true or false), and \fBtrusted\-prefixes\fR, a list of directories
(absolute or ~/...) under which every .escrc counts as allowed without \fBesc\-hook allow\fR
(deny still wins; ownership and permission checks still apply). A mistake costs only its
entry, with a line naming the file, line and key; \fBesc\-hook doctor\fR lists them.
.TP
\fI$XDG_DATA_HOME/esc\-hook/allow/\fR, \fI$XDG_DATA_HOME/esc\-hook/deny/\fR
trust records, one file per allowed or denied .escrc (\fBesc\-hook prune\fR removes stale ones).
.TP
\fI$XDG_CACHE_HOME/esc\-hook/index.json\fR
what the keyring cache holds: names and times, never a value.
.TP
\fI$XDG_RUNTIME_DIR/esc\-hook/\fR (else \fI$TMPDIR/esc\-hook\-<uid>/\fR)
private runtime files: an environment's files while loaded, locks, per\-shell markers, and the
markers of background refreshes (\fIrefresh/\fR: which entry is being refreshed, why the last
refresh failed; never a secret).
.TP
\fI~/.pulumi/credentials.json\fR
the Pulumi CLI's login, read for the token when PULUMI_ACCESS_TOKEN is unset.
.SH EXIT STATUS
0 on success, 1 on failure, 2 on a usage mistake (an unknown command or option, a missing
argument). \fBesc\-hook exec\fR exits with its command's code, 126 when the command cannot be
run, 127 when it is not found, and 125 when esc\-hook itself failed.
.SH SEE ALSO
README.md and docs/reference.md in the source, and \fBesc\-hook <command> \-\-help\fR.
"#;
