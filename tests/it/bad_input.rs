//! A hostile environment: forged and truncated state, huge and strange `.escrc` files,
//! non-UTF-8 paths, no HOME, an unwritable data directory. Never a panic, never a broken
//! shell, always one line naming what is wrong.

use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::json;

use crate::common::*;

#[test]
fn truncated_and_forged_states_are_ignored_or_harmless() {
    let sandbox = Sandbox::new();
    let dir = allowed_project(&sandbox, "app", VALUES);
    let out = sandbox.bash(
        &dir,
        "eval \"$(esc-hook export bash)\"; printf %s \"$ESC_HOOK_STATE\"",
    );
    let state = stdout(&out);
    let truncated = &state[..state.len() / 2];
    let out = sandbox.bash(
        &dir,
        &format!("export ESC_HOOK_STATE='{truncated}'; eval \"$(esc-hook export bash)\"; echo \"ok $AWS_REGION\""),
    );
    assert_eq!(stdout(&out), "ok eu-west-1\n", "{}", stderr(&out));
    assert_eq!(
        stderr(&out)
            .matches("ignoring ESC_HOOK_STATE is not valid")
            .count(),
        1
    );

    // A forged state naming a files directory outside esc-hook's own: never deleted.
    let victim = sandbox.path("victim");
    fs::create_dir_all(&victim).unwrap();
    fs::write(victim.join("keep"), "x").unwrap();
    let mut forged = state_after_export(&sandbox, &dir);
    forged["loaded"]["files_dir"] = json!(victim.to_str().unwrap());
    forged["loaded"]["vars"] = json!([{"name": "bad name; rm -rf /", "hash": "00"}, {"name": "PATH", "prev": "/evil", "hash": "00"}]);
    let forged = URL_SAFE_NO_PAD.encode(forged.to_string());
    let out = sandbox.bash(
        &sandbox.home(),
        &format!("export ESC_HOOK_STATE='{forged}'; eval \"$(esc-hook export bash)\"; echo \"path-kept=$([ \"$PATH\" != /evil ] && echo yes)\""),
    );
    assert_eq!(
        stdout(&out),
        "path-kept=yes\n",
        "a hash that does not match keeps the value: {}",
        stderr(&out)
    );
    assert!(
        victim.join("keep").exists(),
        "a forged files_dir is never deleted"
    );
}

#[test]
fn a_ten_megabyte_escrc_is_refused_fast() {
    let sandbox = Sandbox::new();
    let dir = sandbox.home().join("big");
    fs::create_dir_all(&dir).unwrap();
    sandbox.write_escrc(&dir, &"# padding\n".repeat(1024 * 1024));
    let started = Instant::now();
    let (_, log) = load_with_bash(&sandbox, &dir, &[]);
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    assert!(log.contains("is larger than 64 KiB"), "{log}");
    let allow = sandbox.run(&dir, &["allow"]);
    assert_eq!(allow.status.code(), Some(1));
}

#[test]
fn dangling_links_and_link_loops_are_named_and_the_shell_goes_on() {
    let sandbox = Sandbox::new();
    let dangling = sandbox.home().join("dangling");
    fs::create_dir_all(&dangling).unwrap();
    std::os::unix::fs::symlink(dangling.join("nowhere"), dangling.join(".escrc")).unwrap();
    let (_, log) = load_with_bash(&sandbox, &dangling, &[]);
    assert!(
        log.contains(".escrc: could not read: no such file or directory"),
        "{log}"
    );

    let looped = sandbox.home().join("loop");
    fs::create_dir_all(&looped).unwrap();
    std::os::unix::fs::symlink(looped.join(".escrc"), looped.join(".escrc")).unwrap();
    let (_, log) = load_with_bash(&sandbox, &looped, &[]);
    assert!(
        log.contains(".escrc: could not read: too many levels of symbolic links"),
        "{log}"
    );
}

#[test]
fn non_utf8_project_paths_load_and_unload() {
    let sandbox = Sandbox::new();
    let name = std::ffi::OsStr::from_bytes(b"caf\xe9");
    let dir = sandbox.home().join(name);
    fs::create_dir_all(&dir).unwrap();
    sandbox.write_escrc(&dir, VALUES);
    sandbox.allow(&dir);
    let out = std::process::Command::new("bash")
        .args(["-c", "eval \"$(esc-hook export bash)\"; echo \"in=$AWS_REGION\"; cd .. && eval \"$(esc-hook export bash)\"; echo \"out=${AWS_REGION-unset}\""])
        .env_clear()
        .envs(sandbox.env())
        .env("PWD", &dir)
        .current_dir(&dir)
        .output()
        .unwrap();
    assert_eq!(
        stdout(&out),
        "in=eu-west-1\nout=unset\n",
        "{}",
        stderr(&out)
    );
}

#[test]
fn no_home_and_an_unwritable_data_directory_give_one_line() {
    let sandbox = Sandbox::new();
    let dir = sandbox.project("app", VALUES);
    let env: Vec<(String, String)> = sandbox
        .env()
        .into_iter()
        .filter(|(k, _)| k != "HOME" && !k.starts_with("XDG_"))
        .collect();
    let out = std::process::Command::new(bin())
        .args(["export", "bash"])
        .env_clear()
        .envs(env)
        .env("PWD", &dir)
        .current_dir(&dir)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(!stderr(&out).contains("panicked"), "{}", stderr(&out));
    assert!(stderr(&out).lines().count() <= 1, "{}", stderr(&out));

    // The data directory is a file: allow says why, export says once that it cannot check.
    let mut blocked = Sandbox::new();
    let data = blocked.path("blocked-data");
    fs::write(&data, "not a directory").unwrap();
    blocked
        .extra_env
        .push(("XDG_DATA_HOME".into(), data.display().to_string()));
    let project = blocked.project("app", VALUES);
    let allow = blocked.run(&project, &["allow"]);
    assert_eq!(allow.status.code(), Some(1));
    assert!(
        stderr(&allow).contains("could not record the allow"),
        "{}",
        stderr(&allow)
    );
    let (vars, log) = load_with_bash(&blocked, &project, &["AWS_REGION"]);
    assert_eq!(vars, ["AWS_REGION=<unset>"]);
    assert_eq!(log.lines().count(), 1, "{log}");
}

#[test]
fn edited_moved_or_foreign_backend_files_send_nothing() {
    let stand_in = StandIn::payments();
    let sandbox = Sandbox::uncached_esc(&stand_in);
    let dir = allowed_project(&sandbox, "payments", "environment: acme/payments/dev\n");
    // Edited after the allow.
    fs::write(
        dir.join(".escrc"),
        "environment: acme/payments/dev\nttl: 30m\n",
    )
    .unwrap();
    load_with_bash(&sandbox, &dir, &[]);
    // Moved after the allow.
    let other = allowed_project(&sandbox, "other", "environment: acme/payments/dev\n");
    let moved = sandbox.home().join("moved");
    fs::rename(&other, &moved).unwrap();
    load_with_bash(&sandbox, &moved, &[]);
    assert_eq!(
        stand_in.requests().len(),
        0,
        "no request for an edited or moved file"
    );

    // A token stored for another backend is never sent to this one.
    let foreign = StandIn::payments();
    let mut elsewhere = Sandbox::new();
    let pulumi_home = elsewhere.home().join(".pulumi");
    fs::create_dir_all(&pulumi_home).unwrap();
    let credentials = json!({"current": "https://api.pulumi.com",
        "accounts": {"https://api.pulumi.com": {"accessToken": TOKEN}}});
    fs::write(
        pulumi_home.join("credentials.json"),
        credentials.to_string(),
    )
    .unwrap();
    elsewhere
        .extra_env
        .push(("PULUMI_BACKEND_URL".into(), foreign.url()));
    let project = allowed_project(&elsewhere, "p", "environment: acme/payments/dev\n");
    let (_, log) = load_with_bash(&elsewhere, &project, &[]);
    assert!(log.contains("not logged in to"), "{log}");
    assert_eq!(
        foreign.requests().len(),
        0,
        "the other backend's token stayed home"
    );
}
