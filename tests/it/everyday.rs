//! Day-two commands: exec, edit, doctor, completions, the prompt line, colours and quiet.

use std::process::{Command, Stdio};

use crate::common::*;

const VALUES: &str = "values:\n  AWS_REGION: eu-west-1\n";

#[test]
fn exec_runs_a_command_with_the_environment_and_passes_its_exit_code() {
    let sandbox = Sandbox::new();
    let dir = allowed_project(&sandbox, "app", VALUES);
    let out = sandbox.run(
        &dir,
        &[
            "exec",
            "--",
            "sh",
            "-c",
            "echo \"$AWS_REGION ${ESC_HOOK_STATE:+state-of-exec}\"; exit 7",
        ],
    );
    assert_eq!(out.status.code(), Some(7), "{}", stderr(&out));
    // A state naming what exec set, for a shell started here (tests/it/security.rs).
    assert_eq!(stdout(&out), "eu-west-1 state-of-exec\n");
    let missing = sandbox.run(&dir, &["exec", "--", "no-such-command-here"]);
    assert_eq!(missing.status.code(), Some(127));
    assert!(
        stderr(&missing).contains("could not run no-such-command-here"),
        "{}",
        stderr(&missing)
    );
    let untrusted = sandbox.project("other", VALUES);
    let refused = sandbox.run(&untrusted, &["exec", "--", "true"]);
    assert_eq!(refused.status.code(), Some(125), "esc-hook's own failure");
    assert!(
        stderr(&refused).contains("is not allowed: run `esc-hook allow"),
        "{}",
        stderr(&refused)
    );
}

#[test]
fn exec_codes_tell_esc_hook_failures_from_the_command_and_need_no_double_dash() {
    let stand_in = StandIn::payments();
    let sandbox = Sandbox::uncached_esc(&stand_in);
    let dir = allowed_project(&sandbox, "app", VALUES);
    let out = sandbox.run(&dir, &["exec", "sh", "-c", "echo $AWS_REGION; exit 3"]);
    assert_eq!(
        (out.status.code(), stdout(&out).as_str()),
        (Some(3), "eu-west-1\n")
    );
    let out = sandbox.run(
        &dir,
        &[
            "exec",
            "--env",
            "acme/payments/dev",
            "printenv",
            "AWS_REGION",
        ],
    );
    assert_eq!(stdout(&out), "eu-west-1\n", "{}", stderr(&out));
    let missing = sandbox.run(&dir, &["exec", "--env", "acme/payments/nope", "true"]);
    assert_eq!(missing.status.code(), Some(125), "{}", stderr(&missing));
    let bad = sandbox.run(&dir, &["exec", "--env", "acme/nope", "true"]);
    assert_eq!(bad.status.code(), Some(125), "{}", stderr(&bad));
    let outside = sandbox.run(&sandbox.home(), &["exec", "true"]);
    assert_eq!(outside.status.code(), Some(125), "{}", stderr(&outside));
    std::fs::write(dir.join("not-executable"), "#!/bin/sh\n").unwrap();
    let not_executable = sandbox.run(&dir, &["exec", "./not-executable"]);
    assert_eq!(
        not_executable.status.code(),
        Some(126),
        "{}",
        stderr(&not_executable)
    );
}

#[test]
fn exec_with_files_cleans_up_and_forwards_signals() {
    let stand_in = StandIn::payments();
    let sandbox = Sandbox::uncached_esc(&stand_in);
    let script = "cat \"$KUBECONFIG\"; echo \"$KUBECONFIG\" > files-path; exit 3";
    let out = sandbox.run(
        &sandbox.home(),
        &[
            "exec",
            "--env",
            "acme/payments/dev",
            "--",
            "sh",
            "-c",
            script,
        ],
    );
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    assert!(stdout(&out).starts_with("apiVersion: v1"));
    let path = std::fs::read_to_string(sandbox.home().join("files-path")).unwrap();
    assert!(
        !std::path::Path::new(path.trim()).exists(),
        "files removed after the command"
    );

    // SIGTERM sent to esc-hook reaches the command, which exits on its own terms.
    let mut child = sandbox
        .esc(
            &sandbox.home(),
            &[
                "exec",
                "--env",
                "acme/payments/dev",
                "--",
                "sh",
                "-c",
                "trap 'echo got-term; exit 5' TERM; echo ready; while :; do sleep 0.05; done",
            ],
        )
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout_pipe = child.stdout.take().unwrap();
    let mut first = [0u8; 6];
    std::io::Read::read_exact(&mut stdout_pipe, &mut first).unwrap();
    assert_eq!(&first, b"ready\n");
    // SAFETY: kill with a valid pid and signal.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let status = child.wait().unwrap();
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut stdout_pipe, &mut rest).unwrap();
    assert_eq!(rest, "got-term\n");
    assert_eq!(status.code(), Some(5));
}

#[test]
fn edit_opens_the_escrc_and_allows_it_only_when_saved() {
    let sandbox = Sandbox::new();
    let dir = sandbox.home().join("new-project");
    std::fs::create_dir_all(&dir).unwrap();
    let editor = sandbox.path("editor.sh");
    std::fs::write(&editor, "#!/bin/sh\ngrep -q 'environment:' \"$1\" || exit 9\nprintf 'values:\\n  EDITED: yes\\n' > \"$1\"\n").unwrap();
    std::os::unix::fs::PermissionsExt::set_mode(
        &mut std::fs::metadata(&editor).unwrap().permissions(),
        0o755,
    );
    Command::new("chmod")
        .arg("755")
        .arg(&editor)
        .status()
        .unwrap();
    let out = sandbox
        .esc(&dir, &["edit"])
        .env("EDITOR", &editor)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stderr(&out).contains("allowed"), "{}", stderr(&out));
    let (vars, _) = load_with_bash(&sandbox, &dir, &["EDITED"]);
    assert_eq!(vars, ["EDITED=yes"]);

    // An editor that quits without saving leaves the file untrusted after an outside change.
    std::fs::write(dir.join(".escrc"), "values:\n  EDITED: outside\n").unwrap();
    let out = sandbox
        .esc(&dir, &["edit"])
        .env("VISUAL", "true")
        .env("EDITOR", "false")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stderr(&out).contains("not saved"), "{}", stderr(&out));
    let (vars, _) = load_with_bash(&sandbox, &dir, &["EDITED"]);
    assert_eq!(vars, ["EDITED=<unset>"]);
}

#[test]
fn completions_load_in_real_shells() {
    let sandbox = Sandbox::new();
    for (shell, check) in [
        (
            "bash",
            "source <(esc-hook completions bash) && complete -p esc-hook",
        ),
        (
            "zsh",
            "autoload -Uz compinit && compinit -u && source <(esc-hook completions zsh) && echo ok",
        ),
        (
            "fish",
            "esc-hook completions fish | source; and complete -c esc-hook | head -1",
        ),
    ] {
        if !have(shell) {
            continue;
        }
        let out = Command::new(shell)
            .args(["-c", check])
            .env_clear()
            .envs(sandbox.env())
            .current_dir(sandbox.home())
            .output()
            .unwrap();
        assert!(out.status.success(), "{shell}: {}", stderr(&out));
        assert!(!stdout(&out).is_empty(), "{shell}");
        assert_eq!(stderr(&out), "", "{shell}");
    }
    let pwsh = sandbox.run(&sandbox.home(), &["completions", "pwsh"]);
    crate::hostile_values::assert_parses_as_powershell(&stdout(&pwsh));
    let man = sandbox.run(&sandbox.home(), &["man"]);
    assert!(
        stdout(&man).starts_with(".ie") || stdout(&man).contains(".TH"),
        "a roff page"
    );
}

#[test]
fn every_command_has_help_with_examples() {
    let sandbox = Sandbox::new();
    for command in [
        "init",
        "export",
        "allow",
        "deny",
        "status",
        "reload",
        "exec",
        "edit",
        "doctor",
        "credential-process",
        "completions",
    ] {
        let out = sandbox.run(&sandbox.home(), &[command, "--help"]);
        assert!(out.status.success(), "{command}");
        assert!(
            stdout(&out).contains("Example"),
            "{command} --help has examples"
        );
    }
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
fn nushell_enters_and_leaves_with_its_hook() {
    let Some(nu) = nu() else { return };
    let sandbox = Sandbox::new();
    let dir = allowed_project(&sandbox, "app", VALUES);
    let hook_path = sandbox.nu_hook();
    let script = format!(
        "$env.AWS_REGION = 'mine'; cd '{}'; source '{}'; print $env.AWS_REGION; cd ..; do --env $esc_hook_apply; print $env.AWS_REGION",
        dir.display(),
        hook_path.display()
    );
    let out = sandbox.nu(&nu, &sandbox.home(), &script);
    assert_eq!(stdout(&out), "eu-west-1\nmine\n", "{}", stderr(&out));
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
        text.contains("FAIL hook     not installed in this shell: add `eval"),
        "{text}"
    );
    assert!(text.contains("FAIL keyring"), "{text}");
    assert!(
        text.contains("FAIL backend") && text.contains("refused the token"),
        "{text}"
    );
    assert!(text.contains("ok   .escrc   none here or above"), "{text}");
}
