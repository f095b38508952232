//! The hooks next to what people already run at their prompt: starship taking over
//! PROMPT_COMMAND, bash-preexec, an oh-my-zsh-style precmd list, strict modes, other fish
//! prompt handlers, and PowerShell under StrictMode.

use std::fs;
use std::io::Write;
use std::process::{Command, Stdio};

use crate::common::*;

const VALUES: &str = "values:\n  X: loaded\n";

/// Runs an interactive bash or zsh with `rc` as its startup file, typing `lines`.
fn interactive(
    sandbox: &Sandbox,
    shell: &str,
    rc: &str,
    start: &std::path::Path,
    lines: &str,
) -> (String, String) {
    let rc_dir = sandbox.path(&format!("coexist-{shell}"));
    fs::create_dir_all(&rc_dir).unwrap();
    let mut command = Command::new("timeout");
    match shell {
        "bash" => {
            fs::write(rc_dir.join("bashrc"), rc).unwrap();
            command
                .args(["-s", "KILL", "30", "bash", "--rcfile"])
                .arg(rc_dir.join("bashrc"))
                .arg("-i");
        }
        _ => {
            fs::write(rc_dir.join(".zshrc"), rc).unwrap();
            command.args(["-s", "KILL", "30", "zsh", "-i"]);
        }
    }
    let mut child = command
        .env_clear()
        .envs(sandbox.env())
        .env("ZDOTDIR", &rc_dir)
        .env("PWD", start)
        .current_dir(start)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(format!("{lines}\nexit\n").as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    (stdout(&out), stderr(&out))
}

#[test]
fn bash_works_under_a_starship_style_prompt_command_takeover() {
    let sandbox = Sandbox::new();
    let project = allowed_project(&sandbox, "p", VALUES);
    let rc = r#"
eval "$(esc-hook init bash)"
# What starship's bash init does when bash-preexec is absent.
starship_precmd() { local s=$?; eval "$STARSHIP_PROMPT_COMMAND"; echo "starship saw $s" >&2; }
STARSHIP_PROMPT_COMMAND="$PROMPT_COMMAND"
PROMPT_COMMAND=starship_precmd
"#;
    let lines = format!(
        "cd '{}'\necho \"X=$X\"\n(exit 4)\ncd ..\necho \"X=${{X-unset}}\"",
        project.display()
    );
    let (out, err) = interactive(&sandbox, "bash", rc, &sandbox.home(), &lines);
    assert!(out.contains("X=loaded\nX=unset\n"), "{out}{err}");
    assert!(
        err.contains("starship saw 4"),
        "the user's $? reaches the prompt: {err}"
    );
}

#[test]
fn bash_works_with_bash_preexec_and_with_strict_mode() {
    let sandbox = Sandbox::new();
    let project = allowed_project(&sandbox, "p", VALUES);
    // The parts of bash-preexec the hook relies on: __bp_imported, and precmd_functions run
    // from a PROMPT_COMMAND it rewrites at its first prompt.
    let rc = r#"
__bp_imported=defined
precmd_functions=(user_precmd)
user_precmd() { echo "user precmd" >&2; }
__bp_precmd_invoke_cmd() { local f; for f in "${precmd_functions[@]}"; do "$f"; done; }
eval "$(esc-hook init bash)"
eval "$(esc-hook init bash)"
PROMPT_COMMAND=__bp_precmd_invoke_cmd
set -euo pipefail
"#;
    let lines = format!(
        "echo \"fns=${{precmd_functions[*]}}\"\ncd '{}'\necho \"X=$X\"\ncd ..\necho \"X=${{X-unset}}\"",
        project.display()
    );
    let (out, err) = interactive(&sandbox, "bash", rc, &sandbox.home(), &lines);
    assert!(
        out.contains("fns=_esc_hook user_precmd\n"),
        "installed once, first: {out}{err}"
    );
    assert!(out.contains("X=loaded\nX=unset\n"), "{out}{err}");
    assert!(!err.contains("unbound variable"), "{err}");
}

#[test]
fn zsh_works_with_an_oh_my_zsh_style_precmd_list_and_nounset() {
    if !have("zsh") {
        return;
    }
    let sandbox = Sandbox::new();
    let project = allowed_project(&sandbox, "p", VALUES);
    let rc = r#"
omz_termtitle() { print -n "" }
precmd_functions+=(omz_termtitle)
eval "$(esc-hook init zsh)"
precmd_functions+=(omz_after)
omz_after() { print -u2 "omz after" }
setopt nounset
"#;
    let lines = format!(
        "cd '{}'\necho \"X=$X\"\ncd ..\necho \"X=${{X-unset}}\"\necho \"fns=$precmd_functions\"",
        project.display()
    );
    let (out, err) = interactive(&sandbox, "zsh", rc, &sandbox.home(), &lines);
    assert!(out.contains("X=loaded\nX=unset\n"), "{out}{err}");
    assert!(
        out.contains("fns=omz_termtitle _esc_hook_precmd omz_after"),
        "{out}"
    );
    assert!(err.contains("omz after"), "{err}");
    assert!(!err.contains("parameter not set"), "{err}");
}

#[test]
fn fish_works_next_to_other_prompt_handlers() {
    if !have("fish") || !have("script") {
        return;
    }
    let sandbox = Sandbox::new();
    let project = allowed_project(&sandbox, "p", VALUES);
    let conf = sandbox.path("fishconf/fish");
    fs::create_dir_all(&conf).unwrap();
    let probe = sandbox.path("fish-probe");
    fs::write(
        conf.join("config.fish"),
        "function other_handler --on-event fish_prompt\n    set -g other_ran yes\nend\nfunction fish_prompt\n    echo -n '> '\nend\nesc-hook init fish | source\n",
    )
    .unwrap();
    let lines = format!(
        "cd '{}'\necho \"X=$X other=$other_ran\" > '{}'\nexit\n",
        project.display(),
        probe.display()
    );
    let mut child = Command::new("timeout")
        .args([
            "-s",
            "KILL",
            "30",
            "script",
            "-qfec",
            "fish -i",
            "/dev/null",
        ])
        .env_clear()
        .envs(sandbox.env())
        .env("XDG_CONFIG_HOME", sandbox.path("fishconf"))
        .current_dir(sandbox.home())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(lines.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap();
    assert_eq!(fs::read_to_string(&probe).unwrap(), "X=loaded other=yes\n");
}

#[test]
fn the_powershell_hook_keeps_lastexitcode_and_parses_under_strict_mode() {
    let script = stdout(&Command::new(bin()).args(["init", "pwsh"]).output().unwrap());
    let strict = format!("Set-StrictMode -Version Latest\n{script}");
    crate::quoting::assert_parses_as_powershell(&strict);
    // $LASTEXITCODE is saved before the native call and restored in a finally block.
    let save = script
        .find("$previousExitCode = $global:LASTEXITCODE")
        .expect("saved");
    let call = script
        .find("& $global:__EscHookBinary")
        .expect("native call");
    let restore = script
        .find("$global:LASTEXITCODE = $previousExitCode")
        .expect("restored");
    let finally = script.find("} finally {").expect("finally");
    assert!(
        save < call && call < finally && finally < restore,
        "{script}"
    );
    // Under StrictMode every variable is assigned before use: the only globals read are set here.
    for global in [
        "__EscHookBinary",
        "__EscHookWatch",
        "__EscHookPreviousPrompt",
        "__EscHookPreviousLocationAction",
    ] {
        assert!(
            script.contains(&format!("$global:{global} =")),
            "{global} is assigned"
        );
    }
}

/// A faithful stand-in for powerlevel10k's instant prompt (internal/p10k.zsh): the preamble
/// sends fds 1 and 2 to a file, sets `__p9k_instant_prompt_active` and unsets `prompt_cr` and
/// `prompt_sp`; the theme lets go while its real prompt is first expanded (`_p9k_on_expand`,
/// a math function called from `PROMPT`), printing its "Console output during zsh
/// initialization detected" warning when the file is not empty.
const P10K_INSTANT_PROMPT: &str = r#"
typeset -g __p9k_instant_prompt_output=${TMPDIR:-/tmp}/p10k-instant-prompt-output-$$
: > $__p9k_instant_prompt_output
exec {__p9k_fd_1}>&1 {__p9k_fd_2}>&2 1>$__p9k_instant_prompt_output
exec 2>&1
typeset -gi __p9k_instant_prompt_active=1
unsetopt prompt_cr prompt_sp
"#;
const P10K_THEME: &str = r#"
_p9k_on_expand() {
  if (( $+__p9k_instant_prompt_active )); then
    exec 1>&$__p9k_fd_1 2>&$__p9k_fd_2 {__p9k_fd_1}>&- {__p9k_fd_2}>&-
    unset __p9k_fd_1 __p9k_fd_2 __p9k_instant_prompt_active
    if [[ -s $__p9k_instant_prompt_output ]]; then
      print -r -- "[WARNING]: Console output during zsh initialization detected."
      cat -- $__p9k_instant_prompt_output
    fi
    rm -f -- $__p9k_instant_prompt_output
  fi
  return 0
}
functions -M _p9k_on_expand
setopt prompt_subst
PROMPT='${$((_p9k_on_expand()))+}p10k> '
"#;

// The plain `eval "$(esc-hook init zsh)"` line after p10k's instant prompt preamble, with the
// theme loaded before or after it, in a zsh on a terminal: no warning, and the loading line
// shows once, before the first command runs.
#[test]
fn zsh_under_powerlevel10k_instant_prompt_warns_nothing_and_loses_no_message() {
    let sandbox = Sandbox::new();
    let project = allowed_project(&sandbox, "p", VALUES);
    let other = allowed_project(&sandbox, "q", "values:\n  Y: other\n");
    let init = "eval \"$(esc-hook init zsh)\"\n";
    for (order, rc) in [
        (
            "theme after",
            format!("{P10K_INSTANT_PROMPT}{init}{P10K_THEME}"),
        ),
        (
            "theme before",
            format!("{P10K_INSTANT_PROMPT}{P10K_THEME}{init}"),
        ),
    ] {
        let rc_dir = sandbox.path("p10k");
        fs::create_dir_all(&rc_dir).unwrap();
        fs::write(rc_dir.join(".zshrc"), rc).unwrap();
        let lines = format!(
            "echo \"first command X=$X\"\ncd '{}'\necho \"Y=$Y\"\nexit\n",
            other.display()
        );
        let mut child = Command::new("timeout")
            .args(["-s", "KILL", "30", "script", "-qfec", "zsh -i", "/dev/null"])
            .env_clear()
            .envs(sandbox.env())
            .env("ZDOTDIR", &rc_dir)
            .env("PWD", &project)
            .current_dir(&project)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(lines.as_bytes())
            .unwrap();
        let out = child.wait_with_output().unwrap();
        let all = format!("{}{}", stdout(&out), stderr(&out)).replace('\r', "");
        assert!(
            !all.contains("Console output during zsh initialization"),
            "{order}: {all}"
        );
        assert_eq!(
            all.matches("esc-hook: loading ~/p").count(),
            1,
            "{order}: {all}"
        );
        let loading = all.find("esc-hook: loading ~/p").unwrap();
        let first = all.find("first command X=loaded").expect(&all);
        assert!(
            loading < first,
            "{order}: shown before the first command: {all}"
        );
        // Once p10k has let go, messages are written as they happen.
        assert!(
            all.contains("esc-hook: leaving ~/p/.escrc for ~/q/.escrc"),
            "{order}: {all}"
        );
        assert!(all.contains("Y=other"), "{order}: {all}");
    }
}
