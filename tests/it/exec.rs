//! `esc-hook exec`: a command run with the project's environment, its exit code and signals its
//! own, and esc-hook's failures told apart from the command's.

use std::process::Stdio;

use crate::common::*;

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

// `exec --redact`, as `esc run` does: every secret value the command is handed is replaced by
// `[secret]` in what it prints, on both streams, even when the command writes it in pieces;
// the exit code stays the command's.
#[test]
fn exec_redact_hides_every_secret_in_the_commands_output() {
    let stand_in = StandIn::payments();
    let sandbox = Sandbox::uncached_esc(&stand_in);
    let dir = allowed_project(
        &sandbox,
        "payments",
        "environment: acme/payments/dev\nvalues:\n  GITHUB_TOKEN: ghp_inline_token_value\n",
    );
    let secret = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";
    let script = r#"
        k=$AWS_SECRET_ACCESS_KEY
        printf 'key: %s' "$(printf %s "$k" | cut -c1-10)"; sleep 0.2
        printf '%s done\n' "$(printf %s "$k" | cut -c11-)"
        echo "token $AWS_SESSION_TOKEN and $GITHUB_TOKEN on stderr" >&2
        echo "region $AWS_REGION stays"
        exit 7
    "#;
    let out = sandbox
        .esc(&dir, &["exec", "--redact", "--", "sh", "-c", script])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(7), "{}", stderr(&out));
    let (shown, log) = (stdout(&out), stderr(&out));
    assert!(shown.contains("key: [secret] done\n"), "{shown}");
    assert!(shown.contains("region eu-west-1 stays"), "{shown}");
    assert!(
        log.contains("token [secret] and [secret] on stderr"),
        "{log}"
    );
    for value in [
        secret,
        "IQoJb3JpZ2luX2VjEXAMPLETOKEN",
        "ghp_inline_token_value",
    ] {
        assert!(!shown.contains(value) && !log.contains(value), "{value}");
    }
    // Without --redact the command's output is its own.
    let plain = sandbox
        .esc(
            &dir,
            &["exec", "--", "sh", "-c", "echo $AWS_SECRET_ACCESS_KEY"],
        )
        .output()
        .unwrap();
    assert_eq!(stdout(&plain), format!("{secret}\n"));
}

// `exec --min-ttl`: a command that must not die half-way starts only with credentials that last
// long enough; when even freshly opened ones fall short, exec says so and fails with 125 before
// the command runs.
#[test]
fn exec_min_ttl_starts_only_with_credentials_that_last() {
    let stand_in = StandIn::payments();
    let sandbox = Sandbox::uncached_esc(&stand_in);
    let dir = allowed_project(&sandbox, "payments", "environment: acme/payments/dev\n");
    let marker = sandbox.path("ran");
    let touch = format!("touch '{}'", marker.display());
    let enough = sandbox
        .esc(
            &dir,
            &["exec", "--min-ttl", "30m", "--", "sh", "-c", &touch],
        )
        .output()
        .unwrap();
    assert!(enough.status.success(), "{}", stderr(&enough));
    assert!(marker.exists());
    assert_eq!(stand_in.opens(), 1, "long enough: no second open");
    fs_remove(&marker);
    let short = sandbox
        .esc(&dir, &["exec", "--min-ttl", "2h", "--", "sh", "-c", &touch])
        .output()
        .unwrap();
    assert_eq!(short.status.code(), Some(125));
    assert!(!marker.exists(), "the command did not start");
    let log = stderr(&short);
    assert!(
        log.contains("even freshly opened, less than --min-ttl 2h00m"),
        "{log}"
    );
    assert_eq!(stand_in.opens(), 3, "opened anew once before giving up");
    let bad = sandbox.run(&dir, &["exec", "--min-ttl", "soon", "--", "true"]);
    assert_eq!(bad.status.code(), Some(125));
    assert!(stderr(&bad).contains("--min-ttl: "), "{}", stderr(&bad));
}

fn fs_remove(path: &std::path::Path) {
    std::fs::remove_file(path).unwrap();
}
