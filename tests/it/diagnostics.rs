//! `status` and `doctor` say what is going on and what to do next: from a subshell too, with
//! bad settings or no keyring, without the network for what is local, and each check with its fix.

use std::fs;

use crate::common::*;
use crate::shells::{Session, Sh, available};

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
            "WARN keyring  secret-service: no D-Bus session (DBUS_SESSION_BUS_ADDRESS is not set)"
        ),
        "{text}"
    );
    assert!(
        text.contains("over SSH, run the shell under `keyctl session`"),
        "{text}"
    );
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

#[test]
fn doctor_reports_each_part_with_its_fix() {
    let stand_in = StandIn::payments();
    let sandbox = Sandbox::uncached_esc(&stand_in);
    let dir = sandbox.project("app", "environment: acme/payments/dev\n");
    // Through the hook in this very shell: everything but trust is fine.
    let out = sandbox.bash(
        &dir,
        "eval \"$(esc-hook init bash)\" 2>/dev/null; esc-hook doctor; echo \"exit=$?\"",
    );
    let text = stdout(&out);
    assert!(
        text.contains("ok   hook     installed in this bash"),
        "{text}"
    );
    assert!(
        text.contains("ok   keyring  caching is off (ESC_HOOK_KEYRING=none)"),
        "{text}"
    );
    assert!(
        text.contains(&format!(
            "ok   login    token for {} from PULUMI_ACCESS_TOKEN",
            stand_in.url()
        )),
        "{text}"
    );
    assert!(text.contains("you are stand-in-user"), "{text}");
    assert!(
        text.contains("FAIL .escrc") && text.contains("is not allowed: run `esc-hook allow`"),
        "{text}"
    );
    assert!(text.ends_with("exit=1\n"), "{text}");
    assert!(stderr(&out).contains("1 check failed"), "{}", stderr(&out));
    assert!(!text.contains(TOKEN), "never the token");

    // Without the hook, with a wrong token and an unreachable keyring.
    sandbox.allow(&dir);
    let mut broken = Sandbox::new();
    broken
        .extra_env
        .push(("PULUMI_BACKEND_URL".into(), stand_in.url()));
    broken
        .extra_env
        .push(("PULUMI_ACCESS_TOKEN".into(), "pul-wrong".into()));
    broken
        .extra_env
        .push(("ESC_HOOK_KEYRING".into(), "secret-service".into()));
    broken.extra_env.push((
        "DBUS_SESSION_BUS_ADDRESS".into(),
        "unix:path=/nonexistent".into(),
    ));
    let out = broken.run(&broken.home(), &["doctor"]);
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text.contains("FAIL hook     not installed in this bash: in ~/.bashrc: eval"),
        "{text}"
    );
    // Everything works without a keyring: a warning, not a failure.
    assert!(text.contains("WARN keyring"), "{text}");
    assert!(
        text.contains("FAIL backend") && text.contains("refused the token"),
        "{text}"
    );
    assert!(text.contains("ok   .escrc   none here or above"), "{text}");
}

// -v (or ESC_HOOK_LOG=debug) says which file, store and requests were used and what the hook
// decided, never a value or a token; -q keeps only warnings and errors; --no-color is taken
// anywhere on the line.
#[test]
fn verbose_says_what_was_used_and_quiet_keeps_only_warnings() {
    let stand_in = StandIn::payments();
    let sandbox = Sandbox::uncached_esc(&stand_in);
    let dir = allowed_project(&sandbox, "payments", "environment: acme/payments/dev\n");
    let out = sandbox.run(&dir, &["exec", "-v", "--", "true"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let log = stderr(&out);
    assert!(
        log.contains("esc-hook: debug: ~/payments/.escrc: allowed; acme/payments/dev"),
        "{log}"
    );
    assert!(
        log.contains(&format!(
            "esc-hook: debug: POST {}/api/esc/environments/acme/payments/dev/open",
            stand_in.url()
        )),
        "{log}"
    );
    assert!(!log.contains(&stand_in.token), "never the token: {log}");
    assert!(!log.contains("EXAMPLEKEY"), "never a value: {log}");
    let quiet = sandbox.run(&dir, &["exec", "--", "true"]);
    assert!(!stderr(&quiet).contains("debug:"), "{}", stderr(&quiet));
    // The hook's own run takes ESC_HOOK_LOG.
    let hook = sandbox
        .esc(&dir, &["export", "bash"])
        .env("ESC_HOOK_LOG", "debug")
        .output()
        .unwrap();
    assert!(
        stderr(&hook).contains("esc-hook: debug: decision: ~/payments/.escrc"),
        "{}",
        stderr(&hook)
    );
    // -q: the informational lines go.
    let allow = sandbox.run(&dir, &["allow", "-q"]);
    assert!(allow.status.success());
    assert_eq!(stderr(&allow), "", "quiet");
    assert!(
        sandbox
            .run(&dir, &["--no-color", "status"])
            .status
            .success()
    );
}

// doctor told a forgotten restart and a missing line apart by neither: both said "not
// installed". With the line in the startup file, it says to open a new terminal only.
#[test]
fn doctor_tells_a_forgotten_restart_from_a_missing_line() {
    let sandbox = Sandbox::new();
    let home = sandbox.home();
    let hook_line = |shell: &str| {
        let out = sandbox.shell(shell, &home, "esc-hook doctor; true");
        stdout(&out)
    };
    let missing = hook_line("bash");
    assert!(
        missing.contains("FAIL hook     not installed in this bash: in ~/.bashrc: eval"),
        "{missing}"
    );
    std::fs::write(home.join(".bashrc"), "eval \"$(esc-hook init bash)\"\n").unwrap();
    let restart = hook_line("bash");
    assert!(
        restart.contains("FAIL hook     the hook line is in ~/.bashrc, but this bash started before it: open a new terminal"),
        "{restart}"
    );
}
