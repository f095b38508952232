//! Everything that writes shell code. Quoting lives here and nowhere else: one writer per
//! shell, each proven by the hostile-values tests in real shells.

pub mod files;
mod fish;
mod json;
mod posix;
mod pwsh;

use std::collections::BTreeMap;
use std::path::Path;

use crate::ground::names::VarName;
use crate::keeping::watch::Watch;

/// One change to the shell's environment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Change {
    Set(VarName, String),
    Unset(VarName),
}

/// The shells (and the JSON format for editors) that `esc-hook export` can speak.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Shell {
    Bash,
    Zsh,
    Fish,
    Pwsh,
    Json,
    /// The PowerShell and nushell hooks' own format: the changes, then what to watch, as two
    /// lines of JSON.
    #[value(hide = true, alias = "pwsh-hook")]
    JsonHook,
}

/// The shells that have a hook for `esc-hook init`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum HookShell {
    Bash,
    Zsh,
    Fish,
    Pwsh,
    /// nushell: the hook applies `export json` with load-env / hide-env.
    Nu,
}

impl Change {
    pub fn name(&self) -> &VarName {
        match self {
            Change::Set(name, _) | Change::Unset(name) => name,
        }
    }
}

impl Shell {
    /// The whole script for a set of changes, as one string: the caller prints it once, so a
    /// failure can never leave half a script for the shell to evaluate. Changes to the same
    /// name collapse to the last one; output is sorted by name.
    pub fn render(self, changes: &[Change]) -> String {
        let mut last: BTreeMap<&VarName, Option<&str>> = BTreeMap::new();
        for change in changes {
            match change {
                Change::Set(name, value) => last.insert(name, Some(value.as_str())),
                Change::Unset(name) => last.insert(name, None),
            };
        }
        if matches!(self, Shell::Json | Shell::JsonHook) {
            return json::render(&last);
        }
        // The state goes first: should the shell refuse a later assignment, the state is
        // still recorded, so the next prompt neither opens again nor forgets what to unload.
        let (state, rest): (Vec<_>, Vec<_>) = last
            .into_iter()
            .partition(|(name, _)| name.as_str() == crate::settings::state::VAR);
        let mut script = String::new();
        for (name, value) in state.into_iter().chain(rest) {
            let line = match (self, value) {
                (Shell::Bash | Shell::Zsh, Some(value)) => {
                    posix::set(self == Shell::Zsh, name, value)
                }
                (Shell::Bash | Shell::Zsh, None) => posix::unset(self == Shell::Zsh, name),
                (Shell::Fish, Some(value)) => fish::set(name, value),
                (Shell::Fish, None) => fish::unset(name),
                (Shell::Pwsh, Some(value)) => pwsh::set(name, value),
                (Shell::Pwsh, None) => pwsh::unset(name),
                (Shell::Json | Shell::JsonHook, _) => String::new(),
            };
            script.push_str(&line);
            script.push('\n');
        }
        script
    }
}

impl Shell {
    /// The script that tells the shell's hook what to watch (see [`crate::keeping::watch`]). Editors'
    /// JSON gets nothing.
    pub fn render_watch(self, watch: &Watch) -> String {
        let lossy = |p: &std::path::Path| p.to_string_lossy().into_owned();
        let absent: Vec<String> = watch.absent.iter().map(|p| lossy(p)).collect();
        let newer: Vec<String> = watch.newer.iter().map(|p| lossy(p)).collect();
        let present: Vec<String> = watch.present.iter().map(|p| lossy(p)).collect();
        match self {
            Shell::Bash | Shell::Zsh => {
                let list = |items: &[String]| {
                    items
                        .iter()
                        .map(|i| posix::quote(i))
                        .collect::<Vec<_>>()
                        .join(" ")
                };
                let text = match &watch.present_text {
                    Some(texts) => format!(
                        "_esc_hook_present_text=({})\n",
                        texts
                            .iter()
                            .map(|text| posix::quote_one_line(text))
                            .collect::<Vec<_>>()
                            .join(" ")
                    ),
                    None => String::new(),
                };
                // Device and inode: zsh's zstat sees them (a link re-pointed to another file of
                // the same times is a change).
                let ids = match self {
                    Shell::Zsh => {
                        format!("_esc_hook_present_id=({})\n", watch.present_id.join(" "))
                    }
                    _ => String::new(),
                };
                let login = if watch.login { "1" } else { "" };
                format!(
                    "_esc_hook_seen_pwd={}\n_esc_hook_seen_state={}\n_esc_hook_watch={}\n_esc_hook_absent=({})\n_esc_hook_present=({})\n{ids}{text}_esc_hook_newer=({})\n_esc_hook_watch_login={login}\n_esc_hook_due={}\n",
                    posix::quote(&watch.pwd),
                    posix::quote(&watch.state),
                    posix::quote(&lossy(&watch.file)),
                    list(&absent),
                    list(&present),
                    list(&newer),
                    watch.due
                )
            }
            Shell::Fish => {
                let list = |items: &[String]| {
                    items
                        .iter()
                        .map(|i| format!(" {}", fish::quote(i)))
                        .collect::<String>()
                };
                let text = match &watch.present_text {
                    Some(texts) => format!(
                        "set -g _esc_hook_present_text{};\n",
                        texts
                            .iter()
                            .map(|text| format!(" {}", fish::quote_one_line(text)))
                            .collect::<String>()
                    ),
                    None => String::new(),
                };
                format!(
                    "set -g _esc_hook_seen_pwd {};\nset -g _esc_hook_seen_state {};\nset -g _esc_hook_watch {};\nset -g _esc_hook_absent{};\nset -g _esc_hook_present{};\n{text}set -g _esc_hook_newer{};\nset -g _esc_hook_watch_login {};\nset -g _esc_hook_due {};\n",
                    fish::quote(&watch.pwd),
                    fish::quote(&watch.state),
                    fish::quote(&lossy(&watch.file)),
                    list(&absent),
                    list(&present),
                    list(&newer),
                    u8::from(watch.login),
                    watch.due
                )
            }
            Shell::Pwsh | Shell::Json => String::new(),
            Shell::JsonHook => {
                let json = serde_json::json!({
                    "pwd": watch.pwd, "state": watch.state, "file": lossy(&watch.file),
                    "absent": absent, "present": present, "present_text": watch.present_text,
                    "newer": newer, "due": watch.due, "login": watch.login,
                });
                format!("{json}\n")
            }
        }
    }
}

impl HookShell {
    /// The hook script for this shell, calling the binary at `exe`.
    pub fn init_script(self, exe: &Path) -> String {
        let exe = exe.to_string_lossy();
        let (template, quoted) = match self {
            HookShell::Bash => (
                include_str!("../../shells/esc-hook.bash"),
                posix::quote(&exe),
            ),
            HookShell::Zsh => (
                include_str!("../../shells/esc-hook.zsh"),
                posix::quote(&exe),
            ),
            HookShell::Fish => (
                include_str!("../../shells/esc-hook.fish"),
                fish::quote(&exe),
            ),
            HookShell::Pwsh => (include_str!("../../shells/esc-hook.ps1"), pwsh::quote(&exe)),
            // nushell's single-quoted strings have no escapes at all; a path holding `'` gets
            // a raw string instead.
            HookShell::Nu if !exe.contains('\'') => {
                (include_str!("../../shells/esc-hook.nu"), format!("'{exe}'"))
            }
            HookShell::Nu => (
                include_str!("../../shells/esc-hook.nu"),
                format!("r#'{exe}'#"),
            ),
        };
        let script = template.replace("@ESC_HOOK@", &quoted);
        // bash and zsh can both read either script: each checks that it runs in its own shell
        // first, and otherwise says which line to use (the script the other shell would half
        // run is skipped whole).
        match self {
            HookShell::Bash => format!(
                "if [ -n \"${{ZSH_VERSION-}}\" ]; then\n  echo {}\nelif [ -z \"${{BASH_VERSION-}}\" ]; then\n  echo 'esc-hook: this is the hook for bash: see esc-hook init --help for your shell'\nelse\n{script}fi\n",
                posix::quote(&HookShell::Zsh.wrong_hook_line("bash")),
            ),
            HookShell::Zsh => format!(
                "if [ -n \"${{BASH_VERSION-}}\" ]; then\n  echo {}\nelif [ -z \"${{ZSH_VERSION-}}\" ]; then\n  echo 'esc-hook: this is the hook for zsh: see esc-hook init --help for your shell'\nelse\n{script}fi\n",
                posix::quote(&HookShell::Bash.wrong_hook_line("zsh")),
            ),
            _ => script,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            HookShell::Bash => "bash",
            HookShell::Zsh => "zsh",
            HookShell::Fish => "fish",
            HookShell::Pwsh => "pwsh",
            HookShell::Nu => "nu",
        }
    }

    /// The shell a program name is (`zsh`, `-bash`, `pwsh-preview`, `bash-5.2`).
    pub fn from_program(name: &str) -> Option<HookShell> {
        let name = name.trim_start_matches('-');
        match name.split(['-', '.']).next().unwrap_or(name) {
            "bash" => Some(HookShell::Bash),
            "zsh" => Some(HookShell::Zsh),
            "fish" => Some(HookShell::Fish),
            "pwsh" => Some(HookShell::Pwsh),
            "nu" => Some(HookShell::Nu),
            _ => None,
        }
    }

    /// Where this shell's hook is installed, and the line that installs it.
    pub fn install_line(self) -> &'static str {
        match self {
            HookShell::Bash => "in ~/.bashrc: eval \"$(esc-hook init bash)\"",
            HookShell::Zsh => "in ~/.zshrc: eval \"$(esc-hook init zsh)\"",
            HookShell::Fish => "in ~/.config/fish/config.fish: esc-hook init fish | source",
            HookShell::Pwsh => "in $PROFILE: Invoke-Expression (& esc-hook init pwsh | Out-String)",
            HookShell::Nu => {
                "save `esc-hook init nu` to a file and source it from config.nu (see esc-hook init --help)"
            }
        }
    }

    /// What the hook for `asked` says when it finds itself in this shell instead.
    pub fn wrong_hook_line(self, asked: &str) -> String {
        format!(
            "esc-hook: this is the hook for {asked}, and this shell is {}: use the {} one, {}",
            self.name(),
            self.name(),
            self.install_line()
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn name(n: &str) -> VarName {
        VarName::parse(n).unwrap()
    }

    #[test]
    fn later_changes_to_a_name_win_and_output_is_sorted() {
        let changes = [
            Change::Set(name("B"), "1".into()),
            Change::Set(name("A"), "x".into()),
            Change::Unset(name("B")),
        ];
        assert_eq!(Shell::Bash.render(&changes), "export A='x';\nunset B;\n");
        assert_eq!(Shell::Json.render(&changes), "{\"A\":\"x\",\"B\":null}\n");
    }

    #[test]
    fn the_state_is_written_first_and_every_value_is_quoted() {
        let changes = [
            Change::Set(name("A"), "p{a,b}ss".into()),
            Change::Set(name(crate::settings::state::VAR), "s".into()),
        ];
        assert_eq!(
            Shell::Bash.render(&changes),
            "export ESC_HOOK_STATE='s';\nexport A='p{a,b}ss';\n"
        );
    }

    #[test]
    fn each_shell_quotes_its_own_way() {
        let changes = [Change::Set(name("V"), "it's \\".into())];
        assert_eq!(
            Shell::Zsh.render(&changes),
            "{ export V='it'\\''s \\' } always { TRY_BLOCK_ERROR=0 };\n"
        );
        assert_eq!(Shell::Fish.render(&changes), "set -gx V 'it\\'s \\\\';\n");
        assert_eq!(Shell::Pwsh.render(&changes), "${env:V} = 'it''s \\'\n");
    }

    #[test]
    fn init_scripts_embed_the_quoted_binary_path() {
        let exe = Path::new("/opt/my tools/esc-hook");
        assert!(
            HookShell::Bash
                .init_script(exe)
                .contains("'/opt/my tools/esc-hook'")
        );
        assert!(
            HookShell::Fish
                .init_script(exe)
                .contains("'/opt/my tools/esc-hook'")
        );
        assert!(
            HookShell::Pwsh
                .init_script(exe)
                .contains("'/opt/my tools/esc-hook'")
        );
        assert!(!HookShell::Zsh.init_script(exe).contains("@ESC_HOOK@"));
    }
}
