//! What a first week with esc-hook runs into: the prompt right after every line, and messages
//! that say what to do next. Real bash, zsh and fish wherever a shell is involved.

use std::fs;

use crate::common::*;
use crate::shells::{SHELLS, Session, Sh, available, expect};

// zsh skipped its prompt check after a chpwd run: `cd repo && esc-hook allow` loaded nothing at
// the next prompt, and `cd repo && esc-hook deny` left the variables for a whole command.
fn the_prompt_after_a_line_with_cd_is_right(shell: Sh) {
    if !available(shell) {
        return;
    }
    let sandbox = Sandbox::new();
    let home = sandbox.home();
    let new = sandbox.project("new", "values:\n  NEW: yes\n");
    let old = allowed_project(&sandbox, "old", "values:\n  OLD: yes\n");
    let mut session = Session::new(shell, &sandbox);
    session
        .run(
            &format!("cd '{}'; and esc-hook allow", new.display())
                .replace("; and", if shell == Sh::Fish { "; and" } else { " &&" }),
        )
        .probe("allowed", &["NEW"])
        .cd(&home)
        .run(
            &format!("cd '{}'; and esc-hook deny", old.display())
                .replace("; and", if shell == Sh::Fish { "; and" } else { " &&" }),
        )
        .probe("denied", &["OLD"]);
    let (probes, log) = session.finish(&home);
    expect(&probes, "allowed", &[("NEW", "yes")]);
    expect(&probes, "denied", &[("OLD", "<unset>")]);
    assert!(
        log.iter().any(|l| l.contains("denied")),
        "{}: {log:#?}",
        shell.name()
    );
}

#[test]
fn the_prompt_after_a_line_with_cd_is_right_in_every_shell() {
    for shell in SHELLS {
        the_prompt_after_a_line_with_cd_is_right(shell);
    }
}

// `status` in a hooked shell outside a project asked whether the hook was installed; `doctor`
// said "not installed" in a subshell of a hooked shell.
#[test]
fn status_and_doctor_know_the_hook_from_a_subshell_too() {
    if !available(Sh::Bash) {
        return;
    }
    let sandbox = Sandbox::new();
    let home = sandbox.home();
    let out_file = sandbox.path("shown");
    let mut session = Session::new(Sh::Bash, &sandbox);
    session
        .run(&format!("esc-hook status > '{}'", out_file.display()))
        .run(&format!(
            "bash -c 'esc-hook doctor; :' >> '{}'",
            out_file.display()
        ))
        .run(&format!("(esc-hook doctor) >> '{}'", out_file.display()));
    session.finish(&home);
    let shown = fs::read_to_string(&out_file).unwrap();
    assert!(shown.contains("loaded:      nothing\n"), "{shown}");
    assert!(!shown.contains("is the hook installed"), "{shown}");
    assert!(!shown.contains("not installed"), "{shown}");
    assert!(shown.contains("installed in the bash (pid"), "{shown}");
    // A shell that merely inherited the variable is not hooked.
    let out = sandbox.run(&home, &["doctor"]);
    assert!(stdout(&out).contains("FAIL hook"), "{}", stdout(&out));
    let mut forged = sandbox.esc(&home, &["doctor"]);
    forged.env("ESC_HOOK_SHELL", "bash 999999");
    let out = forged.output().unwrap();
    assert!(stdout(&out).contains("FAIL hook"), "{}", stdout(&out));
}

// `allow` accepted README.md and .escrc.example, which the hook never loads.
#[test]
fn allow_refuses_files_the_hook_never_loads() {
    let sandbox = Sandbox::new();
    let dir = sandbox.project("app", "values:\n  A: b\n");
    fs::write(dir.join("README.md"), "# app\n").unwrap();
    fs::write(dir.join(".escrc.example"), "values:\n  A: b\n").unwrap();
    let out = sandbox.run(&dir, &["allow", "README.md"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("README.md is not an .escrc: the hook only loads files named .escrc"),
        "{}",
        stderr(&out)
    );
    let out = sandbox.run(&dir, &["allow", ".escrc.example"]);
    assert!(
        stderr(&out).contains("(to start from the example: cp .escrc.example .escrc)"),
        "{}",
        stderr(&out)
    );
    assert!(sandbox.run(&dir, &["allow", ".escrc"]).status.success());
}

// Re-sourcing ~/.bashrc installed the hook twice once bash-preexec or starship had moved it.
#[test]
fn re_sourcing_finds_the_hook_wherever_a_framework_moved_it() {
    let sandbox = Sandbox::new();
    let script = r#"
        set -u
        eval "$(esc-hook init bash)"
        # starship's takeover: the old PROMPT_COMMAND moves into STARSHIP_PROMPT_COMMAND.
        STARSHIP_PROMPT_COMMAND="$PROMPT_COMMAND"; PROMPT_COMMAND=starship_precmd
        eval "$(esc-hook init bash)"
        echo "starship: $PROMPT_COMMAND"
        # bash-preexec keeps each entry on a line of its own.
        unset STARSHIP_PROMPT_COMMAND
        PROMPT_COMMAND=$'__bp_precmd_invoke_cmd\n_esc_hook\n__bp_interactive_mode'
        eval "$(esc-hook init bash)"
        echo "preexec: ${PROMPT_COMMAND//$'\n'/ }"
        # bash-preexec's own list.
        __bp_imported=1 PROMPT_COMMAND=; precmd_functions=(other _esc_hook)
        eval "$(esc-hook init bash)"
        echo "precmd_functions: ${precmd_functions[*]}"
    "#;
    let out = sandbox.bash(&sandbox.home(), script);
    assert_eq!(
        stdout(&out),
        "starship: starship_precmd\npreexec: __bp_precmd_invoke_cmd _esc_hook __bp_interactive_mode\nprecmd_functions: other _esc_hook\n",
        "{}",
        stderr(&out)
    );
}

// `esc-hook init` without a shell takes the one $SHELL names.
#[test]
fn init_without_a_shell_uses_the_login_shell() {
    let mut sandbox = Sandbox::new();
    sandbox.set("SHELL", "/usr/bin/zsh");
    let out = sandbox.run(&sandbox.home(), &["init"]);
    assert!(
        stdout(&out).contains("add-zsh-hook precmd"),
        "{}",
        stderr(&out)
    );
    sandbox.set("SHELL", "/bin/tcsh");
    let out = sandbox.run(&sandbox.home(), &["init"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("SHELL=/bin/tcsh is not a shell esc-hook has a hook for"),
        "{}",
        stderr(&out)
    );
}

// direnv has `prune`; esc-hook's records piled up.
#[test]
fn prune_forgets_records_of_files_gone_or_edited() {
    let sandbox = Sandbox::new();
    let gone = allowed_project(&sandbox, "gone", "values:\n  A: b\n");
    let edited = allowed_project(&sandbox, "edited", "values:\n  A: b\n");
    let kept = allowed_project(&sandbox, "kept", "values:\n  A: b\n");
    let denied = sandbox.project("denied", "values:\n  A: b\n");
    assert!(sandbox.run(&denied, &["deny"]).status.success());
    fs::remove_dir_all(&gone).unwrap();
    sandbox.write_escrc(&edited, "values:\n  A: c\n");
    fs::remove_dir_all(&denied).unwrap();
    let out = sandbox.run(&sandbox.home(), &["prune"]);
    assert!(
        stderr(&out).contains("pruned 2 allow and 1 deny records"),
        "{}",
        stderr(&out)
    );
    let (vars, log) = load_with_bash(&sandbox, &kept, &["A"]);
    assert_eq!(vars, ["A=b"], "{log}");
    let records = fs::read_dir(sandbox.path("data/esc-hook/allow"))
        .unwrap()
        .count();
    assert_eq!(records, 1);
}

// Bad ESC_HOOK_* values were ignored silently; the keyring line did not say why or what to do.
#[test]
fn bad_settings_and_a_missing_keyring_say_what_to_do() {
    let mut sandbox = Sandbox::new();
    let dir = allowed_project(&sandbox, "app", "values:\n  A: b\n");
    sandbox.set("ESC_HOOK_REFRESH_MARGIN", "5x");
    let (vars, log) = load_with_bash(&sandbox, &dir, &["A"]);
    assert_eq!(vars, ["A=b"]);
    assert!(
        log.contains("ignoring ESC_HOOK_REFRESH_MARGIN=5x: `5x` is not a duration")
            && log.contains("using 10m"),
        "{log}"
    );
    sandbox.set("ESC_HOOK_KEYRING", "vault");
    let out = sandbox.run(&dir, &["doctor"]);
    assert!(
        stdout(&out).contains("ESC_HOOK_KEYRING=vault is not a keyring store: use one of auto, secret-service, keyutils, none"),
        "{}",
        stdout(&out)
    );
    // No D-Bus session (as over SSH): why, and how to fix it.
    sandbox.set("ESC_HOOK_KEYRING", "secret-service");
    let mut doctor = sandbox.esc(&dir, &["doctor"]);
    doctor.env_remove("DBUS_SESSION_BUS_ADDRESS");
    let text = stdout(&doctor.output().unwrap());
    assert!(
        text.contains(
            "FAIL keyring  secret-service: no D-Bus session (DBUS_SESSION_BUS_ADDRESS is not set)"
        ),
        "{text}"
    );
    assert!(
        text.contains("over SSH, run the shell under `keyctl session`"),
        "{text}"
    );
}

// After a 401, fixing PULUMI_ACCESS_TOKEN did nothing until `reload`, the message asked to set a
// token that was set, and `status` said only "loaded: nothing".
fn a_fixed_login_is_picked_up_at_the_next_prompt(shell: Sh) {
    if !available(shell) {
        return;
    }
    let stand_in = StandIn::payments();
    let mut sandbox = Sandbox::uncached_esc(&stand_in);
    sandbox.set("PULUMI_ACCESS_TOKEN", "pul-expired");
    let home = sandbox.home();
    let dir = allowed_project(&sandbox, "payments", "environment: acme/payments/dev\n");
    let shown = sandbox.path(&format!("status-{}", shell.name()));
    let mut session = Session::new(shell, &sandbox);
    session
        .cd(&dir)
        .run("true")
        .run(&format!("esc-hook status > '{}'", shown.display()))
        .user_set("PULUMI_ACCESS_TOKEN", &stand_in.token)
        .probe("fixed", &["AWS_ACCESS_KEY_ID"])
        .run("true")
        .probe("later", &["AWS_ACCESS_KEY_ID"]);
    let (probes, log) = session.finish(&home);
    let name = shell.name();
    expect(
        &probes,
        "fixed",
        &[("AWS_ACCESS_KEY_ID", "ASIAEXAMPLEKEYID0001")],
    );
    let refused: Vec<&String> = log.iter().filter(|l| l.contains("(401)")).collect();
    assert_eq!(refused.len(), 1, "{name}: once: {log:#?}");
    assert!(
        refused[0].contains("refused the access token from PULUMI_ACCESS_TOKEN for acme/payments/dev (401): set a valid PULUMI_ACCESS_TOKEN"),
        "{name}: {log:#?}"
    );
    let status = fs::read_to_string(&shown).unwrap();
    assert!(
        status.contains("because:     ") && status.contains("(401)"),
        "{name}: {status}"
    );
    assert_eq!(
        stand_in.opens(),
        2,
        "{name}: the refused open and the one after the fix"
    );
}

#[test]
fn a_fixed_login_is_picked_up_at_the_next_prompt_in_every_shell() {
    for shell in SHELLS {
        a_fixed_login_is_picked_up_at_the_next_prompt(shell);
    }
}

// `doctor` said all was well while the environment named by the nearest .escrc did not exist.
#[test]
fn doctor_checks_that_the_environment_opens() {
    let stand_in = StandIn::payments();
    let sandbox = Sandbox::uncached_esc(&stand_in);
    let good = allowed_project(&sandbox, "good", "environment: acme/payments/dev\n");
    let out = sandbox.run(&good, &["doctor"]);
    assert!(
        stdout(&out).contains("is allowed; acme/payments/dev opens (opened now, 1h00m left)"),
        "{}",
        stdout(&out)
    );
    let missing = allowed_project(&sandbox, "missing", "environment: acme/payments/gone\n");
    let out = sandbox.run(&missing, &["doctor"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stdout(&out).contains("FAIL .escrc")
            && stdout(&out).contains("acme/payments/gone not found"),
        "{}",
        stdout(&out)
    );
}

// `status` showed nothing of the AWS role behind the credentials without a network call.
#[test]
fn status_shows_the_aws_role_without_the_network() {
    let mut sandbox = Sandbox::new();
    // Nothing answers here: status must not need it.
    sandbox.set(
        "AWS_ENDPOINT_URL",
        &format!("http://127.0.0.1:{}", free_port()),
    );
    let dir = allowed_project(
        &sandbox,
        "deploy",
        "aws:\n  web-identity:\n    role-arn: arn:aws:iam::123456789012:role/ci\n    token-file: t\n  assume-role:\n    role-arn: arn:aws:iam::123456789012:role/deploy\n",
    );
    let out = sandbox.run(&dir, &["status"]);
    assert!(
        stdout(&out).contains("aws role:    arn:aws:iam::123456789012:role/deploy (assume-role)"),
        "{}",
        stdout(&out)
    );
    let json: serde_json::Value =
        serde_json::from_slice(&sandbox.run(&dir, &["status", "--json"]).stdout).unwrap();
    assert_eq!(json["escrc"]["aws_role"]["via"], "assume-role");
}

/// Every example line of every `--help`, with the program it is for.
fn help_examples() -> Vec<String> {
    let commands: [&[&str]; 16] = [
        &[],
        &["init"],
        &["export"],
        &["allow"],
        &["deny"],
        &["status"],
        &["reload"],
        &["exec"],
        &["edit"],
        &["doctor"],
        &["credential-process"],
        &["completions"],
        &["man"],
        &["prune"],
        &["cache", "list"],
        &["cache", "clear"],
    ];
    let mut examples = Vec::new();
    for command in commands {
        let out = std::process::Command::new(bin())
            .args(command)
            .arg("--help")
            .output()
            .unwrap();
        let text = stdout(&out);
        let mut in_examples = false;
        for line in text.lines() {
            if line.starts_with("Example") || line.starts_with("Get started") {
                in_examples = true;
                continue;
            }
            if line.trim().is_empty() {
                in_examples = false;
                continue;
            }
            if in_examples && line.starts_with("  ") {
                let line = line.trim();
                // ~/.aws/config shows the command as a setting's value.
                let line = line.strip_prefix("credential_process = ").unwrap_or(line);
                if line.starts_with('[') || line.starts_with('#') {
                    continue;
                }
                examples.push(line.to_string());
            }
        }
    }
    examples
}

// `status --help` gave a jq example that printed `null`: every example must run as written.
#[test]
fn every_help_example_runs_as_written() {
    if !available(Sh::Zsh) || !available(Sh::Fish) || !have("jq") {
        return;
    }
    let stand_in = StandIn::payments();
    let examples = help_examples();
    assert!(examples.len() > 25, "{examples:#?}");
    let mut ran = 0;
    for example in &examples {
        // PowerShell cannot be installed here (its init and completions are parsed elsewhere);
        // nushell's line needs nushell's own config directory.
        if example.contains("pwsh")
            || example.contains("Invoke-Expression")
            || example.contains("init nu")
        {
            continue;
        }
        let mut sandbox = Sandbox::uncached_esc(&stand_in);
        let project = allowed_project(&sandbox, "src/payments", "environment: acme/payments/dev\n");
        // Programs the examples run after esc-hook, which are not esc-hook's to test.
        let stubs = sandbox.path("stubs");
        fs::create_dir_all(&stubs).unwrap();
        for program in ["terraform", "aws", "make", "code"] {
            let path = stubs.join(program);
            fs::write(&path, "#!/bin/sh\nexit 0\n").unwrap();
            fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o755))
                .unwrap();
        }
        let path = sandbox
            .env()
            .into_iter()
            .find(|(k, _)| k == "PATH")
            .map(|(_, v)| v)
            .unwrap();
        sandbox.set("PATH", &format!("{}:{path}", stubs.display()));
        sandbox.set("VISUAL", "true");
        let line = example.split("  #").next().unwrap().trim();
        let shell = if line.contains("init zsh") {
            "zsh"
        } else if line.contains("| source") {
            "fish"
        } else {
            "bash"
        };
        // As typed in a hooked shell inside the project.
        let script =
            format!("set -o pipefail; eval \"$(esc-hook export bash 2>/dev/null)\"; {line}");
        let script = if shell == "fish" {
            line.to_string()
        } else {
            script
        };
        let out = sandbox.shell(shell, &project, &script);
        let doctor = line == "esc-hook doctor";
        assert!(
            out.status.success() || doctor,
            "`{line}` ({shell}) failed: {}{}",
            stdout(&out),
            stderr(&out)
        );
        if line.contains("| jq") {
            assert!(
                !stdout(&out).trim().is_empty() && stdout(&out).trim() != "null",
                "`{line}`: {}",
                stdout(&out)
            );
        }
        ran += 1;
    }
    assert!(ran > 20, "{ran}");
}

// The prompt's builtin check saw only mtimes: content replaced with an older mtime kept the old
// values, and `chmod go-w` (the fix the message prints) loaded nothing until leaving.
fn every_change_to_the_file_is_seen_at_the_next_prompt(shell: Sh) {
    if !available(shell) {
        return;
    }
    let sandbox = Sandbox::new();
    let home = sandbox.home();
    let dir = allowed_project(&sandbox, "app", "values:\n  X: one\n");
    let unsafe_dir = allowed_project(&sandbox, "unsafe", "values:\n  U: yes\n");
    fs::set_permissions(
        unsafe_dir.join(".escrc"),
        std::os::unix::fs::PermissionsExt::from_mode(0o666),
    )
    .unwrap();
    let mut session = Session::new(shell, &sandbox);
    session
        .count_calls()
        .cd(&dir)
        .probe("loaded", &["X"])
        // Files written in the last second count as changed (whole-second clocks).
        .run("sleep 1.1")
        .probe_calls("before")
        .run("true")
        .run("true")
        .probe_calls("steady")
        // As `cp -p`, `rsync -t` or `tar x` leave it: new content, an old mtime.
        .run("printf 'values:\\n  X: two\\n' > .escrc; touch -d 2020-01-01 .escrc")
        .probe("edited", &["X"])
        .cd(&unsafe_dir)
        .probe("unsafe", &["U"])
        .run("chmod go-w .escrc")
        .probe("fixed", &["U"]);
    if shell == Sh::Zsh {
        // zsh sees the change time, so a mode change on a loaded file too.
        session.run("chmod g+w .escrc").probe("opened-up", &["U"]);
    }
    let (probes, log) = session.finish(&home);
    let name = shell.name();
    expect(&probes, "loaded", &[("X", "one")]);
    expect(&probes, "edited", &[("X", "<unset>")]);
    expect(&probes, "unsafe", &[("U", "<unset>")]);
    expect(&probes, "fixed", &[("U", "yes")]);
    if shell == Sh::Zsh {
        expect(&probes, "opened-up", &[("U", "<unset>")]);
    }
    let calls = |label: &str| probes[label]["calls"].trim().parse::<usize>().unwrap();
    assert_eq!(
        calls("steady"),
        calls("before"),
        "{name}: unchanged prompts spawn nothing"
    );
    assert!(
        log.iter()
            .any(|l| l.contains("writable by other users") && l.contains("(it stays allowed)")),
        "{name}: {log:#?}"
    );
}

#[test]
fn every_change_to_the_file_is_seen_at_the_next_prompt_in_every_shell() {
    for shell in SHELLS {
        every_change_to_the_file_is_seen_at_the_next_prompt(shell);
    }
}

// bash completed only the first word (clap_complete names the hyphenated binary's functions two
// ways), and fish offered files for `init <TAB>`. Asked of the real shells.
#[test]
fn completions_complete_subcommands_options_and_shell_names() {
    if !available(Sh::Bash) || !available(Sh::Fish) {
        return;
    }
    let sandbox = Sandbox::new();
    let bash_script = sandbox.path("esc-hook.bash-completion");
    fs::write(
        &bash_script,
        sandbox
            .run(&sandbox.home(), &["completions", "bash"])
            .stdout,
    )
    .unwrap();
    let ask_bash = |line: &str| {
        let script = format!(
            "source '{}'; line='{line}'; read -ra COMP_WORDS <<< \"$line\"; [[ $line == *' ' ]] && COMP_WORDS+=(''); \
             COMP_CWORD=$(( ${{#COMP_WORDS[@]}} - 1 )); COMP_LINE=$line; COMP_POINT=${{#line}}; \
             _esc__hook esc-hook \"${{COMP_WORDS[COMP_CWORD]}}\" \"${{COMP_WORDS[COMP_CWORD-1]}}\"; echo \"${{COMPREPLY[*]}}\"",
            bash_script.display()
        );
        stdout(&sandbox.bash(&sandbox.home(), &script))
    };
    assert!(ask_bash("esc-hook ").contains("allow"), "subcommands");
    assert!(
        ask_bash("esc-hook init ").contains("bash zsh fish pwsh nu"),
        "{}",
        ask_bash("esc-hook init ")
    );
    assert!(
        ask_bash("esc-hook status --").contains("--verify"),
        "{}",
        ask_bash("esc-hook status --")
    );
    assert!(
        ask_bash("esc-hook cache ").contains("clear"),
        "{}",
        ask_bash("esc-hook cache ")
    );
    let fish_script = sandbox.path("esc-hook.fish");
    fs::write(
        &fish_script,
        sandbox
            .run(&sandbox.home(), &["completions", "fish"])
            .stdout,
    )
    .unwrap();
    let ask_fish = |line: &str| {
        let out = std::process::Command::new("fish")
            .args([
                "-c",
                &format!("source '{}'; complete -C '{line}'", fish_script.display()),
            ])
            .env_clear()
            .envs(sandbox.env())
            .output()
            .unwrap();
        stdout(&out)
    };
    assert!(
        ask_fish("esc-hook ").contains("credential-process\t"),
        "{}",
        ask_fish("esc-hook ")
    );
    assert_eq!(
        ask_fish("esc-hook init ").lines().collect::<Vec<_>>(),
        ["bash", "fish", "nu", "pwsh", "zsh"]
    );
    assert!(
        ask_fish("esc-hook exec --").contains("--env\t"),
        "{}",
        ask_fish("esc-hook exec --")
    );
}

/// Asks a real interactive zsh (on a pseudo-terminal, through zsh/zpty) what it completes for
/// a line, with the completion function in `$1` on fpath: every match, one per line. compadd is
/// wrapped to print each match as it is added; the markers are assembled at run time so the
/// terminal's echo of these very lines never matches them.
const ASK_ZSH: &str = r#"
zmodload zsh/zpty || exit 3
zpty z zsh -f -i
zpty -w z "PS1='' PROMPT_EOL_MARK=''; fpath=(${(q)1} \$fpath); autoload -Uz compinit; compinit -u -D"
zpty -w z 'compadd() {
  if [[ ${@[1,(i)(-|--)]} == *-(O|A|D)\ * ]]; then builtin compadd "$@"; return; fi
  local -a __hits; builtin compadd -A __hits "$@"
  local h; for h in $__hits; do print -r -- "<ma""tch>$h"; done
  builtin compadd "$@"
}'
zpty -w z '_ask_done() { print -r -- "<do""ne>"; }; comppostfuncs=(_ask_done)'
zpty -w z "bindkey '^I' complete-word"
zpty -w -n z "$2"$'\t'
local out line
while zpty -r z line; do
  out+=$line
  [[ $line == *'<done>'* ]] && break
done
zpty -d z
local -a matches=(${(M)${(f)out//$'\r'/}:#*<match>*})
print -rl -- ${matches##*<match>}
"#;

// zsh completions were only loaded in tests, never asked: a real zsh completes subcommands,
// shell names and options.
#[test]
fn zsh_completes_subcommands_options_and_shell_names() {
    if !available(Sh::Zsh) {
        return;
    }
    let sandbox = Sandbox::new();
    let functions = sandbox.path("zfunc");
    fs::create_dir_all(&functions).unwrap();
    fs::write(
        functions.join("_esc-hook"),
        sandbox.run(&sandbox.home(), &["completions", "zsh"]).stdout,
    )
    .unwrap();
    let ask = sandbox.path("ask.zsh");
    fs::write(&ask, ASK_ZSH).unwrap();
    let ask_zsh = |line: &str| -> Vec<String> {
        let out = std::process::Command::new("timeout")
            .args(["20", "zsh", "-f"])
            .arg(&ask)
            .arg(&functions)
            .arg(line)
            .env_clear()
            .envs(sandbox.env())
            .current_dir(sandbox.home())
            .output()
            .unwrap();
        assert!(out.status.success(), "zsh: {}", stderr(&out));
        let mut matches: Vec<String> = stdout(&out).lines().map(String::from).collect();
        matches.sort();
        matches
    };
    let top = ask_zsh("esc-hook ");
    for command in [
        "init",
        "allow",
        "status",
        "cache",
        "exec",
        "credential-process",
    ] {
        assert!(top.contains(&command.to_string()), "{command}: {top:?}");
    }
    assert_eq!(
        ask_zsh("esc-hook init "),
        ["bash", "fish", "nu", "pwsh", "zsh"]
    );
    assert!(
        ask_zsh("esc-hook status --").contains(&"--verify".to_string()),
        "{:?}",
        ask_zsh("esc-hook status --")
    );
    assert!(ask_zsh("esc-hook cache ").contains(&"list".to_string()));
}

// Messages: unloading says what it removed; exec --dir names a missing directory; reload in a
// values-only project says what it did; allow shows a path once, home-relative.
#[test]
fn messages_say_what_happened_once() {
    let sandbox = Sandbox::new();
    let dir = allowed_project(&sandbox, "app", "values:\n  ONLY: here\n");
    let out = sandbox.bash(
        &dir,
        "eval \"$(esc-hook export bash)\"; cd ..; eval \"$(esc-hook export bash)\"",
    );
    assert!(stderr(&out).contains("esc-hook: -ONLY"), "{}", stderr(&out));
    let allow = stderr(&sandbox.run(&dir, &["allow"]));
    assert_eq!(allow, "esc-hook: allowed ~/app/.escrc\n");
    let missing = sandbox.run(&dir, &["exec", "--dir", "/nonexistent", "true"]);
    assert!(
        stderr(&missing).contains("no such directory: /nonexistent"),
        "{}",
        stderr(&missing)
    );
    let reload = stderr(&sandbox.run(&dir, &["reload"]));
    assert!(
        reload.contains("reloaded ~/app/.escrc (values only: nothing to open)"),
        "{reload}"
    );
}

// `cache list` showed two entries of one environment (another ttl, another role) alike.
#[test]
fn cache_list_tells_entries_of_one_environment_apart() {
    if !have_keyrings() {
        return;
    }
    let stand_in = StandIn::payments();
    let mut sandbox = Sandbox::new();
    sandbox.with_esc(&stand_in);
    sandbox.set("ESC_HOOK_KEYRING", "keyutils");
    let short = allowed_project(
        &sandbox,
        "short",
        "environment: acme/payments/dev\nttl: 30m\n",
    );
    let plain = allowed_project(&sandbox, "plain", "environment: acme/payments/dev\n");
    load_with_bash(&sandbox, &short, &[]);
    load_with_bash(&sandbox, &plain, &[]);
    let list = stdout(&sandbox.run(&plain, &["cache", "list"]));
    assert!(list.contains("DETAIL"), "{list}");
    assert!(list.contains("ttl 30m"), "{list}");
    let _ = sandbox.run(&plain, &["cache", "clear", "--all"]);
}

// The man page was a stub pointing at pages that do not exist.
#[test]
fn the_man_page_is_complete_and_renders_cleanly() {
    if !have("groff") {
        return;
    }
    let sandbox = Sandbox::new();
    let page = stdout(&sandbox.run(&sandbox.home(), &["man"]));
    for section in [
        ".SH COMMANDS",
        ".SH .ESCRC",
        ".SH ENVIRONMENT",
        ".SH FILES",
        ".SH EXIT STATUS",
    ] {
        assert!(page.contains(section), "{section}");
    }
    for command in [
        "init",
        "export",
        "allow",
        "deny",
        "prune",
        "reload",
        "status",
        "edit",
        "doctor",
        "exec",
        "credential\\-process",
        "cache list",
        "cache clear",
        "completions",
        "man",
    ] {
        assert!(
            page.contains(&format!(".SS \"esc\\-hook {command}\"")),
            "{command}"
        );
    }
    for name in [
        "ESC_HOOK_KEYRING",
        "ESC_HOOK_REFRESH_MARGIN",
        "ESC_HOOK_TIMEOUT",
        "ESC_HOOK_CONNECT_TIMEOUT",
        "ESC_HOOK_QUIET",
        "PULUMI_ACCESS_TOKEN",
        "PULUMI_BACKEND_URL",
        "NO_COLOR",
    ] {
        assert!(page.contains(name), "{name}");
    }
    assert!(
        !page.contains("esc\\-hook\\-init(1)") && !page.contains("esc-hook-init(1)"),
        "no pages that do not exist"
    );
    let path = sandbox.path("esc-hook.1");
    fs::write(&path, &page).unwrap();
    let out = std::process::Command::new("groff")
        .args(["-man", "-Tutf8", "-ww", "-z"])
        .arg(&path)
        .output()
        .unwrap();
    assert!(
        out.status.success() && stderr(&out).is_empty(),
        "{}",
        stderr(&out)
    );
}

/// The README's `sh` blocks, in order, except those marked `<!-- example: … -->` just above
/// (placeholders for the reader's own backend, projects and tools).
fn readme_walkthrough() -> (Vec<String>, usize) {
    let readme = fs::read_to_string(repo().join("README.md")).unwrap();
    let mut blocks = Vec::new();
    let mut examples = 0;
    let mut previous = "";
    let mut lines = readme.lines();
    while let Some(line) = lines.next() {
        if line == "```sh" {
            let body: Vec<&str> = lines.by_ref().take_while(|l| *l != "```").collect();
            if previous.starts_with("<!-- example:") {
                examples += 1;
            } else {
                blocks.push(body.join("\n"));
            }
        }
        if !line.trim().is_empty() {
            previous = line;
        }
    }
    (blocks, examples)
}

// The README's local-API recipe ran `tests/support/…` right after the demo's `cd ..`: every
// block must run as written, in order, in a shell with the hook, as a reader would type it.
#[test]
fn the_readme_walkthrough_runs_as_written_in_order() {
    if !have("python3") {
        return skip("python3 is needed for the README's local ESC API");
    }
    let mut sandbox = Sandbox::new();
    sandbox.set("ESC_HOOK_KEYRING", "none");
    let (blocks, examples) = readme_walkthrough();
    assert!(blocks.len() >= 2 && examples >= 1, "{blocks:#?}");
    // Run where the reader is (the top of the clone); only /tmp is the sandbox's own, so
    // nothing lands outside it.
    let tmp = sandbox.path("tmp");
    let script = blocks
        .join("\n")
        .replace("/tmp/", &format!("{}/", tmp.display()));
    let rc = sandbox.path("walkthrough.bashrc");
    fs::write(&rc, "eval \"$(esc-hook init bash)\"\n").unwrap();
    let mut child = std::process::Command::new("timeout")
        .arg("60")
        .args(["bash", "--rcfile"])
        .arg(&rc)
        .arg("-i")
        .env_clear()
        .envs(sandbox.env())
        .env("PWD", repo())
        .current_dir(repo())
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(format!("{script}\nkill %1 2>/dev/null\nexit\n").as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let (shown, log) = (stdout(&out), stderr(&out));
    // Every `echo "$NAME"   # value` line printed its value, in order.
    let mut rest = shown.as_str();
    for line in script.lines() {
        let Some((command, expected)) = line.split_once("# ") else {
            continue;
        };
        if !command.trim_start().starts_with("echo \"$") {
            continue;
        }
        let at = rest
            .find(&format!("{}\n", expected.trim()))
            .unwrap_or_else(|| panic!("`{line}` did not print its value:\n{shown}\n{log}"));
        rest = &rest[at..];
    }
    for needed in [
        "esc-hook: loading",
        "esc-hook: unloading",
        "acme/payments/dev",
    ] {
        assert!(log.contains(needed), "{needed}: {log}");
    }
    for bad in ["No such file", "command not found", "could not", "failed"] {
        assert!(!log.contains(bad), "{bad}: {log}");
    }
}

// An unusable name under `values` was reported without saying where it is written.
#[test]
fn an_unusable_name_under_values_is_named_with_its_line() {
    let sandbox = Sandbox::new();
    let dir = allowed_project(
        &sandbox,
        "app",
        "values:\n  GOOD: yes\n  \"BAD NAME\": 1\n  1X: 2\n",
    );
    let (vars, log) = load_with_bash(&sandbox, &dir, &["GOOD"]);
    assert_eq!(vars, ["GOOD=yes"], "the rest still loads: {log}");
    assert!(
        log.contains("skipped `BAD NAME` (~/app/.escrc:3): not a usable variable name"),
        "{log}"
    );
    assert!(log.contains("skipped `1X` (~/app/.escrc:4)"), "{log}");
}
