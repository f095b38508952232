//! The config file, `$XDG_CONFIG_HOME/esc-hook/config.toml`: settings the environment
//! overrides, and trusted prefixes that need no `allow`, in real shells.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;

use crate::common::*;
use crate::shells::{SHELLS, Session, Sh, available, expect};

/// Writes the config file where `shell` will look for it (fish sessions keep their own
/// `XDG_CONFIG_HOME`, for `config.fish`), private to the user. Returns its path.
fn write_config(sandbox: &Sandbox, shell: Option<Sh>, text: &str) -> PathBuf {
    let config_home = match shell {
        Some(Sh::Fish) => sandbox.path("rc-fish"),
        _ => sandbox.path("config"),
    };
    let dir = config_home.join("esc-hook");
    fs::create_dir_all(&dir).unwrap();
    let file = dir.join("config.toml");
    fs::write(&file, text).unwrap();
    fs::set_permissions(&file, fs::Permissions::from_mode(0o600)).unwrap();
    file
}

fn trusted_prefixes_need_no_allow(shell: Sh) {
    if !available(shell) {
        return;
    }
    let sandbox = Sandbox::new();
    let home = sandbox.home();
    let config = write_config(&sandbox, Some(shell), "trusted-prefixes = [\"~/work\"]\n");
    let inside = sandbox.project("work/app", "values:\n  INSIDE: yes\n");
    let beside = sandbox.project("workshop/app", "values:\n  BESIDE: yes\n");
    let quoted = format!("'{}'", config.display());
    let mut session = Session::new(shell, &sandbox);
    session
        .cd(&inside)
        .probe("inside", &["INSIDE"])
        .cd(&beside)
        .probe("beside", &["BESIDE"])
        .cd(&inside)
        // The prefix leaves the config file: the next prompt unloads.
        .run(&format!("echo 'quiet = false' > {quoted}"))
        .probe("prefix-removed", &["INSIDE"])
        .run(&format!(
            "echo 'trusted-prefixes = [\"~/work\"]' > {quoted}"
        ))
        .probe("prefix-back", &["INSIDE"])
        // Deny wins over the prefix.
        .run("esc-hook deny")
        .probe("denied", &["INSIDE"])
        .run("esc-hook allow")
        .probe("allowed", &["INSIDE"]);
    let (probes, log) = session.finish(&home);
    let name = shell.name();
    expect(&probes, "inside", &[("INSIDE", "yes")]);
    expect(&probes, "beside", &[("BESIDE", "<unset>")]);
    expect(&probes, "prefix-removed", &[("INSIDE", "<unset>")]);
    expect(&probes, "prefix-back", &[("INSIDE", "yes")]);
    expect(&probes, "denied", &[("INSIDE", "<unset>")]);
    expect(&probes, "allowed", &[("INSIDE", "yes")]);
    assert!(
        log.iter()
            .any(|l| l.contains("workshop/app/.escrc") && l.contains("not allowed")),
        "{name}: {log:#?}"
    );
}

#[test]
fn trusted_prefixes_need_no_allow_in_every_shell() {
    for shell in SHELLS {
        trusted_prefixes_need_no_allow(shell);
    }
}

#[test]
fn status_and_doctor_name_the_trusted_prefix() {
    let sandbox = Sandbox::new();
    write_config(
        &sandbox,
        None,
        "# work checkouts\ntrusted-prefixes = [\"~/work\"]\ntimeout = \"20s\"\n",
    );
    let dir = sandbox.project("work/app", "values:\n  A: b\n");
    let status = sandbox.run(&dir, &["status"]);
    assert!(
        stdout(&status).contains("(allowed: under trusted prefix ~/work)"),
        "{}",
        stdout(&status)
    );
    let doctor = sandbox.run(&dir, &["doctor"]);
    let shown = stdout(&doctor);
    assert!(
        shown.contains("config.toml: 1 setting, trusted prefixes ~/work"),
        "{shown}"
    );
    assert!(
        shown.contains("is allowed (under trusted prefix ~/work)"),
        "{shown}"
    );
}

// A value in the environment wins over the file; the file wins over the default.
#[test]
fn the_environment_wins_over_the_config_file() {
    let mut sandbox = Sandbox::new();
    write_config(&sandbox, None, "quiet = true\nrefresh-margin = \"soon\"\n");
    let dir = allowed_project(&sandbox, "app", "values:\n  A: b\n");
    let (_, quiet) = load_with_bash(&sandbox, &dir, &["A"]);
    assert!(!quiet.contains("loading"), "quiet from the file: {quiet}");
    assert!(
        quiet.contains("ignoring refresh-margin = \"soon\" (")
            && quiet.contains("config.toml line 2)"),
        "a bad value names its file and line: {quiet}"
    );
    assert_eq!(
        quiet.matches("refresh-margin").count(),
        1,
        "said once: {quiet}"
    );
    sandbox.set("ESC_HOOK_QUIET", "0");
    sandbox.set("ESC_HOOK_REFRESH_MARGIN", "5m");
    let (_, loud) = load_with_bash(&sandbox, &dir, &["A"]);
    assert!(loud.contains("loading"), "the environment wins: {loud}");
    assert!(!loud.contains("refresh-margin"), "{loud}");
}

#[test]
fn mistakes_in_the_config_file_are_named_and_cost_only_themselves() {
    let sandbox = Sandbox::new();
    write_config(
        &sandbox,
        None,
        "trusted-prefixes = [\"~/work\"]\nkeyring = \"gnome\"\ntimout = 5\n",
    );
    let dir = sandbox.project("work/app", "values:\n  A: b\n");
    let (vars, log) = load_with_bash(&sandbox, &dir, &["A"]);
    assert_eq!(vars, ["A=b"], "the good entry still applies: {log}");
    assert!(
        log.contains("unknown key `timout` in ")
            && log.contains("/esc-hook/config.toml line 3: did you mean `timeout`?"),
        "{log}"
    );
    let doctor = sandbox.run(&dir, &["doctor"]);
    assert!(!doctor.status.success());
    assert!(
        stdout(&doctor).contains("FAIL config"),
        "{}",
        stdout(&doctor)
    );
    assert!(
        stdout(&doctor).contains("keyring = \"gnome\"") && stdout(&doctor).contains("line 2"),
        "the bad store is named with its place: {}",
        stdout(&doctor)
    );
    assert!(
        !stderr(&doctor).contains("timout"),
        "doctor shows it once, in its table: {}",
        stderr(&doctor)
    );
}

// Another local user able to write the file could trust any checkout: it is not read at all.
#[test]
fn a_config_file_others_can_write_is_ignored() {
    let sandbox = Sandbox::new();
    let file = write_config(&sandbox, None, "trusted-prefixes = [\"~/work\"]\n");
    fs::set_permissions(&file, fs::Permissions::from_mode(0o666)).unwrap();
    let dir = sandbox.project("work/app", "values:\n  A: b\n");
    let (vars, log) = load_with_bash(&sandbox, &dir, &["A"]);
    assert_eq!(vars, ["A=<unset>"], "{log}");
    assert!(
        log.contains("/esc-hook/config.toml: it is writable by other users: run `chmod go-w"),
        "{log}"
    );
}

// A loaded project must not choose the config of esc-hook for the next one: a project that
// sets XDG_CONFIG_HOME (even allowed to, with `allow-names`) to a config trusting everything
// does not make another project's never-allowed .escrc load.
fn a_project_cannot_choose_the_config(shell: Sh) {
    if !available(shell) {
        return;
    }
    let sandbox = Sandbox::new();
    let home = sandbox.home();
    let victim = sandbox.project("victim", "values:\n  STOLEN: yes\n");
    let evil_config = sandbox.path("evil-config");
    fs::create_dir_all(evil_config.join("esc-hook")).unwrap();
    let evil_file = evil_config.join("esc-hook/config.toml");
    fs::write(
        &evil_file,
        format!("trusted-prefixes = [\"{}\"]\n", victim.display()),
    )
    .unwrap();
    fs::set_permissions(&evil_file, fs::Permissions::from_mode(0o600)).unwrap();
    let attacker = allowed_project(
        &sandbox,
        "attacker",
        &format!(
            "allow-names: [XDG_CONFIG_HOME]\nvalues:\n  XDG_CONFIG_HOME: {}\n",
            evil_config.display()
        ),
    );
    let mut session = Session::new(shell, &sandbox);
    session
        .cd(&attacker)
        .probe("attacker", &["XDG_CONFIG_HOME"])
        .cd(&victim)
        .probe("victim", &["STOLEN"]);
    let (probes, _) = session.finish(&home);
    let attacker_value = evil_config.display().to_string();
    expect(&probes, "attacker", &[("XDG_CONFIG_HOME", &attacker_value)]);
    expect(&probes, "victim", &[("STOLEN", "<unset>")]);
}

#[test]
fn a_project_cannot_choose_the_config_in_any_shell() {
    for shell in SHELLS {
        a_project_cannot_choose_the_config(shell);
    }
}

// A mistake in the config file was said at every `cd` (each run of the binary reads the file).
// Now once per state of the file in each shell: said again only when the file changes.
#[test]
fn config_mistakes_are_said_once_per_file_state() {
    if !available(Sh::Bash) {
        return;
    }
    let sandbox = Sandbox::new();
    let config = write_config(&sandbox, Some(Sh::Bash), "bogus = 1\nquiet = false\n");
    let a = allowed_project(&sandbox, "a", "values:\n  A: yes\n");
    let b = allowed_project(&sandbox, "b", "values:\n  B: yes\n");
    let home = sandbox.home();
    let mut session = Session::new(Sh::Bash, &sandbox);
    session
        .cd(&a)
        .cd(&b)
        .cd(&home)
        .cd(&a)
        .probe("a", &["A"])
        .run(&format!(
            "printf 'bogus = 1\\nother = 2\\n' > '{}'",
            config.display()
        ))
        .cd(&b)
        .cd(&home);
    let (probes, log) = session.finish(&home);
    expect(&probes, "a", &[("A", "yes")]);
    let said = |key: &str| {
        log.iter()
            .filter(|l| l.contains(&format!("ignoring unknown key `{key}`")))
            .count()
    };
    assert_eq!(
        said("bogus"),
        2,
        "once, and once more after the edit: {log:#?}"
    );
    assert_eq!(said("other"), 1, "{log:#?}");
}
