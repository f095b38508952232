//! The security model, attacked the way an attacker would: a hostile checkout (`.escrc` files,
//! links, directory names), a hostile ESC environment (names, values, sizes), a neighbour
//! sharing `/tmp`, and a forged inherited environment. Each class runs in real bash, zsh and
//! fish where a shell is involved.

use std::fs;

use crate::common::*;
use crate::shells::{Session, Sh, expect};

const SHELLS: [Sh; 3] = [Sh::Bash, Sh::Zsh, Sh::Fish];

fn available(shell: Sh) -> bool {
    have(shell.name()) && (shell != Sh::Fish || have("script"))
}

/// Options a user may set that rewrite unquoted words, turned on before the hook runs.
fn hostile_options(shell: Sh) -> &'static str {
    match shell {
        Sh::Bash => "set -u; shopt -s extglob nocasematch failglob nullglob",
        Sh::Zsh => {
            "setopt extended_glob ksh_arrays rc_quotes nounset glob_subst sh_word_split brace_ccl"
        }
        Sh::Fish => "set -g fish_trace 0",
    }
}

// C2 and E3: quoting holds under every option. A directory merely named `{1..100000000}` once
// made bash and zsh brace-expand the hook's watch list (and die); `^` broke every zsh prompt
// under extended_glob; `p{a,b}ss` became `pbss` and stayed after leaving.
fn options_rewrite_no_value_and_no_path(shell: Sh) {
    if !available(shell) {
        return;
    }
    let sandbox = Sandbox::new();
    let home = sandbox.home();
    let dir = allowed_project(
        &sandbox,
        "{1..100000000}/^x*[ab]~ #",
        "values:\n  BRACE: p{a,b}ss\n  BANG: '!!'\n  CARET: ^foo\n  GLOB: '*'\n  TILDE: '~'\n  QUOTES: \"''a''\"\n",
    );
    let names = ["BRACE", "BANG", "CARET", "GLOB", "TILDE", "QUOTES"];
    let mut session = Session::new(shell, &sandbox);
    session
        .run(hostile_options(shell))
        .cd(&dir)
        .run("true")
        .probe("in", &names)
        .cd(&home)
        .probe("out", &names);
    let (probes, log) = session.finish(&home);
    expect(
        &probes,
        "in",
        &[
            ("BRACE", "p{a,b}ss"),
            ("BANG", "!!"),
            ("CARET", "^foo"),
            ("GLOB", "*"),
            ("TILDE", "~"),
            ("QUOTES", "''a''"),
        ],
    );
    let unset: Vec<(&str, &str)> = names.iter().map(|n| (*n, "<unset>")).collect();
    expect(&probes, "out", &unset);
    assert!(
        !log.iter()
            .any(|l| l.contains("error") || l.contains("not valid")),
        "{}: {log:#?}",
        shell.name()
    );
}

#[test]
fn shell_options_rewrite_no_value_and_no_path() {
    for shell in SHELLS {
        options_rewrite_no_value_and_no_path(shell);
    }
}

/// An ESC read response exporting exactly `vars`.
fn read_exporting(vars: &[(String, String)]) -> serde_json::Value {
    let map: serde_json::Map<String, serde_json::Value> = vars
        .iter()
        .map(|(name, value)| (name.clone(), serde_json::json!({ "value": value })))
        .collect();
    serde_json::json!({"properties": {"environmentVariables": {"value": map}}})
}

fn pairs(items: &[(&str, &str)]) -> Vec<(String, String)> {
    items
        .iter()
        .map(|(n, v)| (n.to_string(), v.to_string()))
        .collect()
}

/// Strict modes, and a variable the user made read-only, before the hook runs.
fn strict_options(shell: Sh) -> &'static str {
    match shell {
        Sh::Bash => "set -euo pipefail; export MINE=user; readonly MINE",
        Sh::Zsh => "setopt err_exit nounset pipe_fail; typeset -rx MINE=user",
        Sh::Fish => "set -gx MINE user",
    }
}

// C1: the environment chooses values, not the shell's behaviour. Its PROMPT_COMMAND once ran
// server code in the shell; read-only names aborted the script, exited strict shells, and made
// plain zsh re-open at every prompt and keep credentials after leaving.
fn hostile_names_are_refused(shell: Sh) {
    if !available(shell) {
        return;
    }
    let marker = "esc-hook-pwned";
    let evil = format!("touch {marker}");
    let mut vars = pairs(&[
        ("GOOD", "fine"),
        ("MINE", "server"),
        ("PROMPT_COMMAND", &evil),
        ("PS1", "$(touch esc-hook-pwned)> "),
        ("BASH_ENV", "/tmp/evil"),
        ("ZDOTDIR", "/tmp/evil"),
        ("LD_PRELOAD", "/tmp/evil.so"),
        ("IFS", "x"),
        ("PATH", "/tmp/evil"),
        ("UID", "0"),
        ("EUID", "0"),
        ("EGID", "0"),
        ("ARGC", "1"),
        ("status", "1"),
        ("fish_pid", "1"),
        ("fish_function_path", "/tmp/evil"),
        ("ESC_HOOK_REFRESH_MARGIN", "0s"),
    ]);
    vars.push(("BIG".into(), "x".repeat(200 * 1024)));
    let stand_in = StandIn::start(serde_json::json!({
        "acme/hostile/dev": {"read": read_exporting(&vars)}
    }));
    let sandbox = Sandbox::uncached_esc(&stand_in);
    let home = sandbox.home();
    let dir = allowed_project(&sandbox, "hostile", "environment: acme/hostile/dev\n");
    let mut session = Session::new(shell, &sandbox);
    session
        .run(strict_options(shell))
        .cd(&dir)
        .run("true")
        .run("true")
        .probe(
            "in",
            &[
                "GOOD",
                "MINE",
                "LD_PRELOAD",
                "BASH_ENV",
                "BIG",
                "ESC_HOOK_REFRESH_MARGIN",
            ],
        )
        .run("/bin/true && echo 'exec ok=yes' >> ../exec-probe")
        .cd(&home)
        .run("true")
        .probe("out", &["GOOD", "MINE"]);
    let (probes, log) = session.finish(&home);
    let name = shell.name();
    // fish has no read-only variables of the user's: there the environment's value applies.
    let mine = if shell == Sh::Fish { "server" } else { "user" };
    expect(
        &probes,
        "in",
        &[
            ("GOOD", "fine"),
            ("MINE", mine),
            ("LD_PRELOAD", "<unset>"),
            ("BASH_ENV", "<unset>"),
            ("BIG", "<unset>"),
            ("ESC_HOOK_REFRESH_MARGIN", "<unset>"),
        ],
    );
    expect(&probes, "out", &[("GOOD", "<unset>"), ("MINE", "user")]);
    assert!(
        fs::read_to_string(home.join("exec-probe"))
            .unwrap_or_default()
            .contains("exec ok=yes"),
        "{name}: programs still start: {log:#?}"
    );
    assert!(
        !dir.join(marker).exists() && !home.join(marker).exists(),
        "{name}: no server code ran"
    );
    assert_eq!(
        stand_in.opens(),
        1,
        "{name}: the state was recorded: {log:#?}"
    );
    let refused = log
        .iter()
        .find(|l| l.contains("they change how the shell"))
        .unwrap_or_else(|| panic!("{name}: {log:#?}"));
    for behaviour in [
        "PROMPT_COMMAND",
        "PS1",
        "BASH_ENV",
        "LD_PRELOAD",
        "IFS",
        "PATH",
    ] {
        assert!(refused.contains(behaviour), "{name}: {refused}");
    }
    let reserved = log
        .iter()
        .find(|l| l.contains("reserved by a shell"))
        .unwrap_or_else(|| panic!("{name}: {log:#?}"));
    for name in [
        "UID",
        "EUID",
        "EGID",
        "ARGC",
        "status",
        "fish_pid",
        "ESC_HOOK_REFRESH_MARGIN",
    ] {
        assert!(reserved.contains(name), "{reserved}");
    }
    assert!(
        log.iter()
            .any(|l| l.contains("skipped BIG: its value is 200 KiB")),
        "{name}: {log:#?}"
    );
    assert!(
        !log.iter().any(|l| l.contains("kept MINE")),
        "{name}: a refused assignment is not a user change: {log:#?}"
    );
}

#[test]
fn hostile_names_and_sizes_are_refused_in_every_shell() {
    for shell in SHELLS {
        hostile_names_are_refused(shell);
    }
}

// C3: thousands of variables once grew the state past what the kernel allows one string.
#[test]
fn a_project_too_large_for_the_environment_is_bounded() {
    let many: Vec<(String, String)> = (0..2200)
        .map(|i| (format!("VAR_{i:04}"), "v".repeat(40)))
        .collect();
    let stand_in = StandIn::start(serde_json::json!({
        "acme/huge/dev": {"read": read_exporting(&many)}
    }));
    let sandbox = Sandbox::uncached_esc(&stand_in);
    let dir = allowed_project(&sandbox, "huge", "environment: acme/huge/dev\n");
    let out = sandbox.bash(
        &dir,
        "set -e; eval \"$(esc-hook export bash)\"; /bin/true; echo \"state=${#ESC_HOOK_STATE} first=$VAR_0000 last=${VAR_2199-unset}\"; cd /; eval \"$(esc-hook export bash)\"; echo \"after=${VAR_0000-unset}\"",
    );
    let text = stdout(&out);
    let log = stderr(&out);
    assert!(out.status.success(), "{text}{log}");
    assert!(text.contains("first=vvvv"), "{text}{log}");
    assert!(text.contains("last=unset"), "{text}");
    assert!(text.contains("after=unset"), "{text}");
    let state_len: usize = text
        .split("state=")
        .nth(1)
        .and_then(|t| t.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap();
    assert!(state_len < 100 * 1024, "{state_len}");
    assert!(
        log.contains("variables (VAR_") && log.contains("would exceed 96 KiB"),
        "{log}"
    );
}

#[test]
fn allow_names_opts_a_listed_name_back_in_and_reserved_names_never() {
    let sandbox = Sandbox::new();
    let dir = allowed_project(
        &sandbox,
        "tools",
        "allow-names: [LD_LIBRARY_PATH]\nvalues:\n  LD_LIBRARY_PATH: /opt/lib\n  LD_PRELOAD: /opt/x.so\n",
    );
    let (vars, log) = load_with_bash(&sandbox, &dir, &["LD_LIBRARY_PATH", "LD_PRELOAD"]);
    assert_eq!(
        vars,
        ["LD_LIBRARY_PATH=/opt/lib", "LD_PRELOAD=<unset>"],
        "{log}"
    );
    let bad = sandbox.project("bad", "allow-names: [UID]\nvalues:\n  A: b\n");
    let log = stderr(&sandbox.run(&bad, &["allow"]));
    assert!(
        log.contains("bad/.escrc:1:14: allow-names: `UID` is reserved"),
        "{log}"
    );
}
