//! What a person sees at each prompt: the prompt right after a line, every change to the file
//! noticed, each message said once, the prompt segment, and colour and the spinner only on a
//! terminal. Real bash, zsh and fish wherever a shell is involved.

use std::fs;
use std::process::Command;

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

// The fix a message names takes effect: with no login, entering a project said `not logged in
// … set PULUMI_ACCESS_TOKEN`, and after the user set it nothing happened at the next prompts
// (not even `cd .`). Now a change to the login is seen at the next prompt, and the prompts in
// between spawn nothing. The same for `pulumi login` writing the credentials file.
fn setting_the_login_a_message_names_loads_at_the_next_prompt(shell: Sh) {
    if !available(shell) {
        return;
    }
    let stand_in = StandIn::payments();
    let mut sandbox = Sandbox::uncached_esc(&stand_in);
    sandbox
        .extra_env
        .retain(|(name, _)| name != "PULUMI_ACCESS_TOKEN");
    let home = sandbox.home();
    let dir = allowed_project(&sandbox, "payments", "environment: acme/payments/dev\n");
    let by_file = allowed_project(&sandbox, "by-file", "environment: acme/payments/dev\n");
    let credentials = serde_json::json!({
        "current": stand_in.url(),
        "accounts": {stand_in.url(): {"accessToken": stand_in.token}},
    });
    let pulumi_home = home.join(".pulumi");
    let mut session = Session::new(shell, &sandbox);
    session
        .count_calls()
        .cd(&dir)
        .probe("no-login", &["AWS_ACCESS_KEY_ID"])
        .run("sleep 1.1")
        .probe_calls("before")
        .run("true")
        .run("true")
        .probe_calls("steady")
        .user_set("PULUMI_ACCESS_TOKEN", &stand_in.token)
        .probe("token-set", &["AWS_ACCESS_KEY_ID"])
        .run(match shell {
            Sh::Fish => "set -e PULUMI_ACCESS_TOKEN",
            _ => "unset PULUMI_ACCESS_TOKEN",
        })
        .cd(&by_file)
        .probe("token-unset", &["AWS_ACCESS_KEY_ID"])
        .run(&format!(
            "mkdir -p '{dir}' && printf '%s' '{json}' > '{dir}/credentials.json'",
            dir = pulumi_home.display(),
            json = credentials
        ))
        .probe("logged-in", &["AWS_ACCESS_KEY_ID"]);
    let (probes, log) = session.finish(&home);
    let name = shell.name();
    expect(&probes, "no-login", &[("AWS_ACCESS_KEY_ID", "<unset>")]);
    expect(
        &probes,
        "token-set",
        &[("AWS_ACCESS_KEY_ID", "ASIAEXAMPLEKEYID0001")],
    );
    expect(&probes, "token-unset", &[("AWS_ACCESS_KEY_ID", "<unset>")]);
    expect(
        &probes,
        "logged-in",
        &[("AWS_ACCESS_KEY_ID", "ASIAEXAMPLEKEYID0001")],
    );
    let calls = |label: &str| probes[label]["calls"].trim().parse::<usize>().unwrap();
    assert_eq!(
        calls("steady"),
        calls("before"),
        "{name}: prompts with nothing changed spawn nothing"
    );
    assert!(
        log.iter().any(|l| l.contains("not logged in")),
        "{name}: {log:#?}"
    );
}

#[test]
fn setting_the_login_a_message_names_loads_at_the_next_prompt_in_every_shell() {
    for shell in SHELLS {
        setting_the_login_a_message_names_loads_at_the_next_prompt(shell);
    }
}

// zsh's builtin check compared change times only: a `.escrc` link re-pointed to another file
// whose times are old (a file written earlier) kept the old values. zsh now compares the
// device and inode too (bash and fish compare the text itself).
#[test]
fn zsh_sees_a_link_re_pointed_to_an_older_file() {
    if !available(Sh::Zsh) {
        return;
    }
    let sandbox = Sandbox::new();
    let home = sandbox.home();
    let dir = home.join("app");
    fs::create_dir_all(&dir).unwrap();
    fs::write(dir.join("a.yml"), "values:\n  WHICH: a\n").unwrap();
    fs::write(dir.join("b.yml"), "values:\n  WHICH: b\n").unwrap();
    std::os::unix::fs::symlink("a.yml", dir.join(".escrc")).unwrap();
    sandbox.allow(&dir);
    let mut session = Session::new(Sh::Zsh, &sandbox);
    session
        .count_calls()
        // Files written in the last second count as changed (whole-second clocks).
        .run("sleep 1.1")
        .cd(&dir)
        .probe("loaded", &["WHICH"])
        .probe_calls("before")
        .run("true")
        .probe_calls("steady")
        .run("ln -sfn b.yml .escrc")
        .probe("re-pointed", &["WHICH"]);
    let (probes, log) = session.finish(&home);
    expect(&probes, "loaded", &[("WHICH", "a")]);
    let calls = |label: &str| probes[label]["calls"].trim().parse::<usize>().unwrap();
    assert_eq!(
        calls("steady"),
        calls("before"),
        "unchanged prompts spawn nothing"
    );
    // Another file behind the same name: not allowed as it is, so nothing of it loads.
    expect(&probes, "re-pointed", &[("WHICH", "<unset>")]);
    assert!(log.iter().any(|l| l.contains("not allowed")), "{log:#?}");
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
    assert_eq!(
        allow.lines().next(),
        Some("esc-hook: allowed ~/app/.escrc"),
        "{allow}"
    );
    assert_eq!(allow.matches(".escrc").count(), 1, "the path once: {allow}");
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

#[test]
fn the_prompt_line_shows_environment_and_time_left() {
    let stand_in = StandIn::payments();
    let sandbox = Sandbox::uncached_esc(&stand_in);
    let dir = allowed_project(
        &sandbox,
        "app",
        "environment: acme/payments/dev\nttl: 50m\n",
    );
    let out = sandbox.bash(&dir, "eval \"$(esc-hook export bash)\"; esc-hook status --short; cd .. && eval \"$(esc-hook export bash)\"; esc-hook status --short; echo end");
    let text = stdout(&out);
    assert!(
        text == "acme/payments/dev 49m\nend\n" || text == "acme/payments/dev 50m\nend\n",
        "{text}"
    );
}

#[test]
fn colour_only_on_a_terminal_and_never_with_no_color() {
    if !have("script") {
        return;
    }
    let sandbox = Sandbox::new();
    let dir = sandbox.project("app", VALUES);
    // What a command prints on a terminal (script gives it one).
    let on_tty = |command: &str| {
        let out = Command::new("script")
            .args(["-qfec", command, "/dev/null"])
            .env_clear()
            .envs(sandbox.env())
            .current_dir(&dir)
            .env("PWD", &dir)
            .output()
            .unwrap();
        stdout(&out)
    };
    let run_on_tty = |extra: &str| on_tty(&format!("{extra} esc-hook export bash >/dev/null"));
    assert!(run_on_tty("").contains("\u{1b}["), "colour on a terminal");
    assert!(
        !run_on_tty("NO_COLOR=1").contains("\u{1b}["),
        "NO_COLOR honoured"
    );
    let (_, piped) = load_with_bash(&sandbox, &dir, &[]);
    assert!(
        !piped.contains('\u{1b}'),
        "no colour into a pipe: {piped:?}"
    );
    // Errors red, warnings yellow, doctor's marks green and red; never with NO_COLOR.
    assert!(
        on_tty("esc-hook allow nope").contains("\u{1b}[31m"),
        "an error is red"
    );
    assert!(
        on_tty("esc-hook export bash >/dev/null").contains("\u{1b}[33m"),
        "a warning is yellow"
    );
    let doctor = on_tty("ESC_HOOK_KEYRING=none esc-hook doctor");
    assert!(doctor.contains("\u{1b}[32mok"), "{doctor}");
    assert!(doctor.contains("\u{1b}[31mFAIL"), "{doctor}");
    assert!(!on_tty("NO_COLOR=1 esc-hook doctor").contains('\u{1b}'));
    assert!(!stdout(&sandbox.run(&dir, &["doctor"])).contains('\u{1b}'));
}

#[test]
fn a_slow_open_shows_a_spinner_on_a_terminal_only() {
    if !have("tmux") {
        return;
    }
    let stand_in = StandIn::start(serde_json::json!({"acme/payments/dev": {
        "read": fixture("read-payments-dev.json"), "fault": "slow:2"
    }}));
    let sandbox = Sandbox::uncached_esc(&stand_in);
    let dir = allowed_project(&sandbox, "payments", "environment: acme/payments/dev\n");
    let rc = sandbox.path("bashrc");
    std::fs::write(&rc, "eval \"$(esc-hook init bash)\"\n").unwrap();
    let tmux = Tmux::start(
        &sandbox,
        &[],
        &format!("bash --rcfile '{}' -i", rc.display()),
    );
    std::thread::sleep(std::time::Duration::from_millis(300));
    tmux.send(&[&format!("cd '{}'", dir.display()), "Enter"]);
    std::thread::sleep(std::time::Duration::from_millis(1200));
    let during = tmux.screen();
    std::thread::sleep(std::time::Duration::from_millis(1800));
    let after = tmux.screen();
    drop(tmux);
    assert!(during.contains("opening acme/payments/dev…"), "{during}");
    assert!(
        !after.contains("opening acme/payments/dev…"),
        "the spinner line is erased: {after}"
    );
    assert!(
        after.contains("esc-hook: loading acme/payments/dev"),
        "{after}"
    );

    // Into a pipe: no spinner, no escape sequences.
    let (_, piped) = load_with_bash(&sandbox, &dir, &[]);
    assert!(
        !piped.contains("opening") && !piped.contains('\u{1b}'),
        "{piped:?}"
    );
}
