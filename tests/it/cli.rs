//! The commands as a user meets them: allow, deny, status, export's decisions, bad `.escrc`
//! files, and the shape of what is printed.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::process::Command;

use crate::common::*;

#[test]
fn allow_and_deny_find_the_nearest_escrc_from_a_subdirectory() {
    let sandbox = Sandbox::new();
    let dir = sandbox.project("app", VALUES);
    let sub = dir.join("src/deep");
    fs::create_dir_all(&sub).unwrap();
    let out = sandbox.run(&sub, &["allow"]);
    assert!(out.status.success());
    assert!(
        stderr(&out).contains("allowed ~/app/.escrc (found in a parent directory)"),
        "home-relative, and where: {}",
        stderr(&out)
    );
    let (vars, _) = load_with_bash(&sandbox, &sub, &["AWS_REGION"]);
    assert_eq!(vars, ["AWS_REGION=eu-west-1"]);

    let out = sandbox.run(&sub, &["deny"]);
    assert!(out.status.success());
    let (vars, log) = load_with_bash(&sandbox, &sub, &["AWS_REGION"]);
    assert_eq!(vars, ["AWS_REGION=<unset>"]);
    assert!(
        log.contains(".escrc is denied: run `esc-hook allow`"),
        "{log}"
    );
}

#[test]
fn allow_takes_a_directory_or_a_file_and_refuses_what_is_missing() {
    let sandbox = Sandbox::new();
    let dir = sandbox.project("app", VALUES);
    assert!(
        sandbox
            .run(sandbox.dir.path(), &["allow", dir.to_str().unwrap()])
            .status
            .success()
    );
    let file = dir.join(".escrc");
    assert!(
        sandbox
            .run(sandbox.dir.path(), &["allow", file.to_str().unwrap()])
            .status
            .success()
    );
    let out = sandbox.run(&sandbox.home(), &["allow"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).starts_with("esc-hook: no .escrc in "),
        "{}",
        stderr(&out)
    );
    let out = sandbox.run(&sandbox.home(), &["allow", "nope"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("nope: could not read: no such file"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn files_others_can_write_are_refused() {
    let sandbox = Sandbox::new();
    let dir = sandbox.project("app", VALUES);
    let file = dir.join(".escrc");
    fs::set_permissions(&file, fs::Permissions::from_mode(0o666)).unwrap();
    let out = sandbox.run(&dir, &["allow"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("is writable by other users: run `chmod go-w"),
        "{}",
        stderr(&out)
    );

    fs::set_permissions(&file, fs::Permissions::from_mode(0o644)).unwrap();
    sandbox.allow(&dir);
    fs::set_permissions(&file, fs::Permissions::from_mode(0o620)).unwrap();
    let (vars, log) = load_with_bash(&sandbox, &dir, &["AWS_REGION"]);
    assert_eq!(
        vars,
        ["AWS_REGION=<unset>"],
        "an allowed file made writable is refused"
    );
    assert!(log.contains("writable by other users"), "{log}");
}

#[test]
fn bad_escrc_files_name_file_line_and_key_and_the_shell_goes_on() {
    let cases = [
        (
            "environment: acme/dev\n",
            ":1:",
            "environment: `acme/dev` has two parts",
            "try `acme/default/dev`",
        ),
        (
            "environment: a/b/c\nttll: 1h\n",
            ":2:1: ",
            "unknown field `ttll`",
            "did you mean `ttl`?",
        ),
        (
            "environment: a/b/c\nttl: soon\n",
            ":2:",
            "ttl: `soon` is not a duration",
            "45s",
        ),
        (
            "values:\n  A:\n    - 1\n",
            ":3:",
            "values.A: invalid type: sequence",
            "string, number or boolean",
        ),
        (
            "export: ['AWS_[A-Z]']\nvalues: {A: 1}\n",
            ":1:",
            "export: `AWS_[A-Z]` is not a name pattern",
            "*",
        ),
        (
            "environment: {a: 1}\n",
            ":1:",
            "environment: name one environment (org/project/env)",
            "or a list of them",
        ),
        ("{{{\n", ":1:", "", ""),
        ("", ": is empty", "environment: org/project/env", ""),
        ("- a\n- b\n", ":1:", "must be a mapping of keys", ""),
    ];
    for (text, position, message, hint) in cases {
        let sandbox = Sandbox::new();
        let dir = sandbox.project("work/app", text);
        // A broken file cannot be allowed; under a trusted prefix it counts as allowed, and
        // the hook says what is wrong with it.
        let allow = sandbox.run(&dir, &["allow"]);
        assert_eq!(allow.status.code(), Some(1), "a broken file is not allowed");
        let config = sandbox.path("config/esc-hook/config.toml");
        fs::create_dir_all(config.parent().unwrap()).unwrap();
        fs::write(&config, "trusted-prefixes = [\"~/work\"]\n").unwrap();
        fs::set_permissions(&config, fs::Permissions::from_mode(0o600)).unwrap();
        let script =
            "eval \"$(esc-hook export bash)\"; echo alive=$?; eval \"$(esc-hook export bash)\"";
        let out = sandbox.bash(&dir, script);
        let log = stderr(&out);
        assert_eq!(stdout(&out), "alive=0\n", "{text:?}: {log}");
        let file = format!("{}{position}", dir.join(".escrc").display());
        assert_eq!(
            log.matches("esc-hook: ").count(),
            1,
            "once per state: {text:?}: {log}"
        );
        assert!(log.contains(&file), "{text:?}: {log}");
        assert!(
            log.contains(message) && log.contains(hint),
            "{text:?}: {log}"
        );
    }
}

#[test]
fn oversized_and_non_file_escrc_are_refused_with_a_line() {
    let sandbox = Sandbox::new();
    let big = sandbox.project("big", &format!("values:\n  A: '{}'\n", "x".repeat(70_000)));
    let (_, log) = load_with_bash(&sandbox, &big, &[]);
    assert!(log.contains("is larger than 64 KiB"), "{log}");

    let dir = sandbox.home().join("dir-escrc");
    fs::create_dir_all(dir.join(".escrc")).unwrap();
    let (_, log) = load_with_bash(&sandbox, &dir, &[]);
    assert!(log.contains(".escrc: is not a regular file"), "{log}");
}

#[test]
fn invalid_names_and_nul_values_are_refused_and_the_rest_exported() {
    let sandbox = Sandbox::new();
    let dir = allowed_project(
        &sandbox,
        "app",
        "values:\n  GOOD: yes\n  'BAD-NAME': x\n  '1ST': x\n  NUL: \"a\\0b\"\n  ESC_HOOK_STATE: forged\n",
    );
    let (vars, log) = load_with_bash(&sandbox, &dir, &["GOOD", "NUL"]);
    assert_eq!(vars, ["GOOD=yes", "NUL=<unset>"]);
    assert!(
        log.contains("skipped `BAD-NAME` (~/app/.escrc:3): not a usable variable name"),
        "{log}"
    );
    assert!(log.contains("skipped `1ST`"), "{log}");
    assert!(
        log.contains("refused ESC_HOOK_STATE: reserved by a shell or by esc-hook"),
        "{log}"
    );
    assert!(
        log.contains("skipped NUL: its value contains a NUL byte"),
        "{log}"
    );
    assert!(log.contains("+GOOD"), "{log}");
}

#[test]
fn the_state_variable_holds_names_but_no_value_that_was_set() {
    let sandbox = Sandbox::new();
    let dir = allowed_project(&sandbox, "app", "values:\n  SECRETISH: s3cr3t-value-42\n");
    let out = sandbox.bash(
        &dir,
        "eval \"$(esc-hook export bash)\"; printf %s \"$ESC_HOOK_STATE\"",
    );
    let encoded = stdout(&out);
    use base64::Engine;
    let json = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(encoded.trim())
        .unwrap();
    let json = String::from_utf8(json).unwrap();
    assert!(json.contains("SECRETISH"), "{json}");
    assert!(!json.contains("s3cr3t"), "{json}");
}

#[test]
fn a_forged_state_is_ignored_with_one_line() {
    let sandbox = Sandbox::new();
    let dir = allowed_project(&sandbox, "app", VALUES);
    let out = sandbox.bash(
        &dir,
        "export ESC_HOOK_STATE='garbage!'; eval \"$(esc-hook export bash)\"; echo \"$AWS_REGION\"",
    );
    assert_eq!(stdout(&out), "eu-west-1\n");
    assert!(
        stderr(&out).contains("ignoring ESC_HOOK_STATE is not valid"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn export_prints_nothing_when_nothing_changed() {
    let sandbox = Sandbox::new();
    let dir = allowed_project(&sandbox, "app", VALUES);
    let out = sandbox.bash(
        &dir,
        "eval \"$(esc-hook export bash)\"; esc-hook export bash; echo end; esc-hook export json",
    );
    // Only what the hook watches is said again; no variable is touched.
    let text = stdout(&out);
    assert!(text.ends_with("end\n{}\n"), "{text}");
    assert!(
        text.lines()
            .all(|l| l.starts_with("_esc_hook_") || l == "end" || l == "{}"),
        "{text}"
    );
    let outside = sandbox.run(&sandbox.home(), &["export", "zsh"]);
    assert!(
        stdout(&outside)
            .lines()
            .all(|l| l.starts_with("_esc_hook_")),
        "{}",
        stdout(&outside)
    );
    assert_eq!(stderr(&outside), "");
}

#[test]
fn export_json_lists_set_and_unset_names() {
    let sandbox = Sandbox::new();
    let dir = allowed_project(&sandbox, "app", "values:\n  A: '1'\n  B: \"two\\nlines\"\n");
    let out = sandbox.run(&dir, &["export", "json"]);
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["A"], "1");
    assert_eq!(json["B"], "two\nlines");
    assert!(json["ESC_HOOK_STATE"].is_string());
}

#[test]
fn status_reports_names_trust_and_expiry_but_never_values() {
    let stand_in = StandIn::payments();
    let mut sandbox = Sandbox::new();
    sandbox.with_esc(&stand_in);
    let dir = allowed_project(&sandbox, "app", "environment: acme/payments/dev\n");
    let out = sandbox.bash(
        &dir,
        "eval \"$(esc-hook export bash)\"; esc-hook status; esc-hook status --json",
    );
    let text = stdout(&out);
    assert!(
        text.contains(".escrc:      ~/app/.escrc (allowed)\n"),
        "home-relative: {text}"
    );
    assert!(
        text.contains("loaded:      acme/payments/dev from ~/app/.escrc\n"),
        "{text}"
    );
    assert!(
        text.contains("variables:   AWS_ACCESS_KEY_ID AWS_CREDENTIAL_EXPIRATION AWS_REGION AWS_SECRET_ACCESS_KEY"),
        "{text}"
    );
    assert!(
        text.contains("(59m left)") || text.contains("(1h00m left)"),
        "{text}"
    );
    assert!(!text.contains("wJalrXUtnFEMI"), "no values: {text}");
    let json_start = text.find("\n{").unwrap();
    let json: serde_json::Value = serde_json::from_str(&text[json_start..]).unwrap();
    assert_eq!(json["escrc"]["trust"], "allowed");
    assert_eq!(json["escrc"]["environment"], "acme/payments/dev");
    assert_eq!(json["state"]["outcome"], "loaded");
    assert_eq!(json["state"]["variables"][0], "AWS_ACCESS_KEY_ID");

    let untrusted = sandbox.project("other", "environment: acme/payments/dev\n");
    let out = sandbox.run(&untrusted, &["status"]);
    assert!(stdout(&out).contains("(not-allowed)") && stdout(&out).contains("esc-hook allow"));
}

#[test]
fn quiet_hides_information_but_not_problems() {
    let mut sandbox = Sandbox::new();
    sandbox.set("ESC_HOOK_QUIET", "1");
    let dir = allowed_project(&sandbox, "app", VALUES);
    let (vars, log) = load_with_bash(&sandbox, &dir, &["AWS_REGION"]);
    assert_eq!(vars, ["AWS_REGION=eu-west-1"]);
    assert_eq!(log, "");
    let other = sandbox.project("other", VALUES);
    let (_, log) = load_with_bash(&sandbox, &other, &[]);
    assert!(log.contains("not allowed"), "{log}");
}

#[test]
fn output_into_a_closed_pipe_is_not_a_crash() {
    let sandbox = Sandbox::new();
    let dir = allowed_project(&sandbox, "app", VALUES);
    let out = sandbox.bash(
        &dir,
        "set -o pipefail; esc-hook init bash | head -c 1 >/dev/null; echo rc=$?",
    );
    assert_eq!(stdout(&out), "rc=0\n", "{}", stderr(&out));
    assert!(!stderr(&out).contains("panicked"));
}

#[test]
fn files_owned_by_another_user_are_refused() {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("note: not root, so no file can be given away; ownership refusal not exercised");
        return;
    }
    let sandbox = Sandbox::new();
    let dir = sandbox.project("app", VALUES);
    let file = dir.join(".escrc");
    sandbox.allow(&dir);
    std::os::unix::fs::chown(&file, Some(65534), None).unwrap();
    let (vars, log) = load_with_bash(&sandbox, &dir, &["AWS_REGION"]);
    assert_eq!(vars, ["AWS_REGION=<unset>"]);
    assert!(
        log.contains("is owned by another user (uid 65534)"),
        "{log}"
    );
    let out = sandbox.run(&dir, &["allow"]);
    assert_eq!(out.status.code(), Some(1));
}

#[test]
fn the_hook_calls_a_binary_whose_path_has_spaces_and_quotes() {
    let sandbox = Sandbox::new();
    let odd_dir = sandbox.path("my tools/it's here");
    fs::create_dir_all(&odd_dir).unwrap();
    let odd_bin = odd_dir.join("esc-hook");
    fs::copy(bin(), &odd_bin).unwrap();
    let dir = allowed_project(&sandbox, "app", VALUES);
    let script = format!(
        "eval \"$('{}' init bash)\"; echo \"R=$AWS_REGION\"",
        odd_bin.display().to_string().replace('\'', "'\\''")
    );
    let out = sandbox.bash(&dir, &script);
    assert_eq!(stdout(&out), "R=eu-west-1\n", "{}", stderr(&out));
}

#[test]
fn the_binary_links_only_the_libc_family() {
    // libdbus (and with it libsystemd, libgcrypt, …) would cost every prompt ~0.8 ms; OpenSSL
    // would be a second TLS stack.
    let out = std::process::Command::new("ldd")
        .arg(bin())
        .output()
        .unwrap();
    let text = stdout(&out);
    for unwanted in ["libdbus", "libssl", "libcrypto", "libsystemd"] {
        assert!(!text.contains(unwanted), "{unwanted}: {text}");
    }
    assert!(text.contains("libc.so"), "{text}");
}

#[test]
fn a_stale_pwd_from_another_shell_does_not_pick_the_wrong_project() {
    // PowerShell started from bash inherits bash's $PWD and never updates it.
    let sandbox = Sandbox::new();
    let project = allowed_project(&sandbox, "app", VALUES);
    let elsewhere = sandbox.home().join("elsewhere");
    fs::create_dir_all(&elsewhere).unwrap();
    let out = sandbox
        .esc(&elsewhere, &["export", "json"])
        .env("PWD", &project)
        .output()
        .unwrap();
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(
        json.get("AWS_REGION").is_none(),
        "the working directory wins: {json}"
    );
    // A symlinked path that is the working directory is kept as the user typed it.
    let link = sandbox.home().join("link");
    std::os::unix::fs::symlink(&project, &link).unwrap();
    let out = sandbox
        .esc(&project, &["status", "--json"])
        .env("PWD", &link)
        .output()
        .unwrap();
    let status: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        status["escrc"]["path"],
        link.join(".escrc").display().to_string()
    );
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
    assert!(
        stderr(&out).contains("unchanged: its trust is as it was"),
        "{}",
        stderr(&out)
    );
    let (vars, _) = load_with_bash(&sandbox, &dir, &["EDITED"]);
    assert_eq!(vars, ["EDITED=<unset>"]);
}

// `allow` of a file that did not parse allowed it anyway ("allowed, but it does not load yet"):
// what was trusted was not what the user would write once they fixed it. Now: one line, a
// non-zero exit, nothing allowed. And `allow` in a shell without the hook says so.
#[test]
fn allow_refuses_a_file_that_does_not_parse_and_says_when_no_hook_runs() {
    let sandbox = Sandbox::new();
    let dir = sandbox.project("app", "environment: acme/payments/dev\nexport: AWS_*\n");
    let out = sandbox.run(&dir, &["allow"]);
    assert_eq!(out.status.code(), Some(1));
    let said = stderr(&out);
    assert_eq!(said.lines().count(), 1, "{said}");
    assert!(
        said.contains(".escrc:2:9: `export` must be a list: `export: [\"AWS_*\"]`: not allowed"),
        "{said}"
    );
    let status: serde_json::Value =
        serde_json::from_str(&stdout(&sandbox.run(&dir, &["status", "--json"]))).unwrap();
    assert_ne!(status["escrc"]["trust"], "allowed", "{status}");
    // Fixed: allowed, and the hook's absence from this shell is said.
    sandbox.write_escrc(
        &dir,
        "environment: acme/payments/dev\nexport: [\"AWS_*\"]\n",
    );
    let said = stderr(&sandbox.run(&dir, &["allow"]));
    assert!(
        said.contains("allowed ~/app/.escrc (acme/payments/dev)"),
        "{said}"
    );
    assert!(
        said.contains("the hook does not run in this shell: add it (`esc-hook doctor` shows the line), then open a new terminal"),
        "{said}"
    );
}
