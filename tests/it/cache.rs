//! The keyring cache, for real: gnome-keyring (Secret Service) and kernel keyutils inside the
//! private session of tests/run.sh, with the ESC stand-in counting opens.

use std::path::Path;
use std::process::{Command, Stdio};

use serde_json::json;

use crate::common::*;
use crate::shells::{Session, Sh, expect};

const PAYMENTS: &str = "environment: acme/payments/dev\n";
const STORES: [&str; 2] = ["secret-service", "keyutils"];
const SECRETS: [&str; 2] = [
    "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
    "IQoJb3JpZ2luX2VjEXAMPLETOKEN",
];

fn sandbox_for(stand_in: &StandIn, store: &str) -> Sandbox {
    let mut sandbox = Sandbox::new();
    sandbox.with_esc(stand_in);
    sandbox
        .extra_env
        .push(("ESC_HOOK_KEYRING".into(), store.into()));
    sandbox
}

/// Every file under `dir`, searched for the fixture's secret values.
fn assert_no_secret_in_files(dir: &Path) {
    let mut pending = vec![dir.to_path_buf()];
    while let Some(path) = pending.pop() {
        let Ok(meta) = std::fs::symlink_metadata(&path) else {
            continue;
        };
        if meta.is_dir() {
            pending.extend(
                std::fs::read_dir(&path)
                    .unwrap()
                    .flatten()
                    .map(|e| e.path()),
            );
        } else if meta.is_file() {
            let bytes = std::fs::read(&path).unwrap_or_default();
            let text = String::from_utf8_lossy(&bytes);
            for secret in SECRETS {
                assert!(
                    !text.contains(secret),
                    "a secret value rests in {}",
                    path.display()
                );
            }
        }
    }
}

#[test]
fn a_second_shell_and_re_entering_cost_no_request_in_either_store() {
    if !have_keyrings() {
        return;
    }
    for store in STORES {
        let stand_in = StandIn::payments();
        let sandbox = sandbox_for(&stand_in, store);
        let dir = allowed_project(&sandbox, "payments", PAYMENTS);
        let first = sandbox.bash(
            &dir,
            r#"
            eval "$(esc-hook export bash)"; echo "$AWS_ACCESS_KEY_ID"
            cd .. && eval "$(esc-hook export bash)"; echo "${AWS_ACCESS_KEY_ID-unset}"
            cd payments && eval "$(esc-hook export bash)"; echo "$AWS_ACCESS_KEY_ID"
        "#,
        );
        assert_eq!(
            stdout(&first),
            "ASIAEXAMPLEKEYID0001\nunset\nASIAEXAMPLEKEYID0001\n",
            "{store}: {}",
            stderr(&first)
        );
        assert_eq!(
            stand_in.opens(),
            1,
            "{store}: re-entering is served by the cache"
        );
        let second = sandbox.bash(
            &dir,
            r#"eval "$(esc-hook export bash)"; echo "$AWS_SECRET_ACCESS_KEY""#,
        );
        assert_eq!(stdout(&second), format!("{}\n", SECRETS[0]));
        assert!(
            stderr(&second).contains("loading acme/payments/dev (cached, "),
            "{store}: {}",
            stderr(&second)
        );
        assert_eq!(
            stand_in.requests().len(),
            2,
            "{store}: a second shell costs no request"
        );

        let list = sandbox.run(&dir, &["cache", "list"]);
        let text = stdout(&list);
        assert!(
            text.contains("acme/payments/dev") && text.contains(store),
            "{text}"
        );
        assert!(!text.contains("EXAMPLE"), "no values: {text}");
        assert!(
            sandbox
                .run(&dir, &["cache", "clear", "acme/payments/dev"])
                .status
                .success()
        );
        assert_eq!(
            stdout(&sandbox.run(&dir, &["cache", "list"])),
            "nothing cached\n"
        );
        let third = sandbox.bash(&dir, r#"eval "$(esc-hook export bash)""#);
        assert!(!stderr(&third).contains("cached"), "{}", stderr(&third));
        assert_eq!(stand_in.opens(), 2, "{store}: cleared means opened again");
        assert_no_secret_in_files(sandbox.dir.path());
    }
}

#[test]
fn twenty_shells_entering_at_once_on_a_cold_cache_make_one_open() {
    if !have_keyrings() {
        return;
    }
    let stand_in = StandIn::start(json!({"acme/payments/dev": {
        "read": fixture("read-payments-dev.json"), "fault": "slow:0.5"
    }}));
    let sandbox = sandbox_for(&stand_in, "secret-service");
    let dir = allowed_project(&sandbox, "payments", PAYMENTS);
    let children: Vec<_> = (0..20)
        .map(|_| {
            sandbox
                .esc(&dir, &["export", "bash"])
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for child in children {
        let out = child.wait_with_output().unwrap();
        assert!(
            stdout(&out).contains("export AWS_ACCESS_KEY_ID='ASIAEXAMPLEKEYID0001';"),
            "{}",
            stderr(&out)
        );
    }
    assert_eq!(stand_in.opens(), 1);
}

#[test]
fn without_a_keyring_credentials_still_load_with_one_warning_per_shell() {
    let stand_in = StandIn::payments();
    let mut sandbox = sandbox_for(&stand_in, "secret-service");
    sandbox.extra_env.push((
        "DBUS_SESSION_BUS_ADDRESS".into(),
        "unix:path=/nonexistent/bus".into(),
    ));
    let dir = allowed_project(&sandbox, "payments", PAYMENTS);
    let out = sandbox.bash(
        &dir,
        r#"
        eval "$(esc-hook export bash)"; echo "$AWS_ACCESS_KEY_ID"
        cd .. && eval "$(esc-hook export bash)"
        cd payments && eval "$(esc-hook export bash)"; echo "$AWS_ACCESS_KEY_ID"
    "#,
    );
    assert_eq!(
        stdout(&out),
        "ASIAEXAMPLEKEYID0001\nASIAEXAMPLEKEYID0001\n",
        "{}",
        stderr(&out)
    );
    let log = stderr(&out);
    assert_eq!(
        log.matches("no keyring answers (secret-service)").count(),
        1,
        "{log}"
    );
    assert!(log.contains("credentials are not cached"), "{log}");
    assert_eq!(stand_in.opens(), 2, "no cache, so each entry opens");
    // Said once per shell, never at every command a script runs.
    let exec = sandbox.run(&dir, &["exec", "--", "true"]);
    assert!(exec.status.success(), "{}", stderr(&exec));
    assert!(!stderr(&exec).contains("keyring"), "{}", stderr(&exec));
}

#[test]
fn a_corrupt_entry_is_deleted_and_fetched_again() {
    if !have_keyrings() || !have("keyctl") {
        return;
    }
    let stand_in = StandIn::payments();
    let sandbox = sandbox_for(&stand_in, "keyutils");
    let dir = allowed_project(&sandbox, "payments", PAYMENTS);
    sandbox.bash(&dir, r#"eval "$(esc-hook export bash)""#);
    let list: serde_json::Value =
        serde_json::from_slice(&sandbox.run(&dir, &["cache", "list", "--json"]).stdout).unwrap();
    let account = list[0]["account"].as_str().unwrap().to_string();
    // Overwrite the entry in the session keyring with something that is not an entry.
    let corrupt = Command::new("keyctl")
        .args([
            "add",
            "user",
            &format!("keyring:{account}@esc-hook"),
            "not an entry",
            "@s",
        ])
        .envs(sandbox.env())
        .output()
        .unwrap();
    assert!(corrupt.status.success(), "{}", stderr(&corrupt));

    let out = sandbox.bash(
        &dir,
        r#"eval "$(esc-hook export bash)"; echo "$AWS_ACCESS_KEY_ID""#,
    );
    assert_eq!(stdout(&out), "ASIAEXAMPLEKEYID0001\n", "{}", stderr(&out));
    assert!(!stderr(&out).contains("cached"), "{}", stderr(&out));
    assert_eq!(stand_in.opens(), 2, "refetched");
    let again = sandbox.bash(&dir, r#"eval "$(esc-hook export bash)""#);
    assert!(
        stderr(&again).contains("(cached, "),
        "rewritten whole: {}",
        stderr(&again)
    );
    assert_eq!(stand_in.opens(), 2);
}

/// Credentials that reach their refresh point are renewed in the background against a backend
/// that takes 2 seconds per open: the prompt at the refresh point does not wait (it still has
/// the old key: had it waited, the new one would be there), and a later prompt swaps the new
/// key in from the cache, with one open.
fn refreshes_in_the_background(shell: Sh) {
    if !have_keyrings() || !have(shell.name()) {
        return;
    }
    let stand_in = StandIn::start(
        json!({"acme/payments/dev": {"read": numbered_payments(), "fault": "slow:2"}}),
    );
    let mut sandbox = sandbox_for(&stand_in, "keyutils");
    // ttl 30s, refreshed 20s before: the refresh point comes 10 seconds after the open, and
    // fresh credentials stay before theirs for 10 seconds, the 2-second open included.
    sandbox.set("ESC_HOOK_REFRESH_MARGIN", "20s");
    let dir = allowed_project(
        &sandbox,
        "payments",
        "environment: acme/payments/dev\nttl: 30s\n",
    );
    let mut session = Session::new(shell, &sandbox);
    session
        .cd(&dir)
        .probe("first", &["AWS_ACCESS_KEY_ID"])
        .run("sleep 10.5")
        .probe("at-refresh-point", &["AWS_ACCESS_KEY_ID"])
        .run("true")
        .run("sleep 3")
        .probe("later", &["AWS_ACCESS_KEY_ID"])
        .run("true")
        .probe("after", &["AWS_ACCESS_KEY_ID"]);
    let (probes, log) = session.finish(&sandbox.home());
    expect(&probes, "first", &[("AWS_ACCESS_KEY_ID", "AKIA-1")]);
    expect(
        &probes,
        "at-refresh-point",
        &[("AWS_ACCESS_KEY_ID", "AKIA-1")],
    );
    expect(&probes, "later", &[("AWS_ACCESS_KEY_ID", "AKIA-2")]);
    expect(&probes, "after", &[("AWS_ACCESS_KEY_ID", "AKIA-2")]);
    assert_eq!(stand_in.opens(), 2, "exactly one new open");
    assert_eq!(
        log.iter()
            .filter(|l| l.contains("refreshed acme/payments/dev ("))
            .count(),
        1,
        "{log:#?}"
    );
    let _ = sandbox.run(&dir, &["cache", "clear", "--all"]);
}

#[test]
fn bash_refreshes_credentials_in_the_background() {
    refreshes_in_the_background(Sh::Bash);
}

#[test]
fn zsh_refreshes_credentials_in_the_background() {
    refreshes_in_the_background(Sh::Zsh);
}

#[test]
fn fish_refreshes_credentials_in_the_background() {
    refreshes_in_the_background(Sh::Fish);
}

/// Five shells reaching the refresh point at once start one refresher: one open in all.
#[test]
fn five_shells_at_the_refresh_point_make_one_open() {
    if !have_keyrings() {
        return;
    }
    let stand_in = StandIn::start(
        json!({"acme/payments/dev": {"read": numbered_payments(), "fault": "slow:2"}}),
    );
    let mut sandbox = sandbox_for(&stand_in, "keyutils");
    sandbox.set("ESC_HOOK_REFRESH_MARGIN", "20s");
    let dir = allowed_project(
        &sandbox,
        "payments",
        "environment: acme/payments/dev\nttl: 30s\n",
    );
    // Loaded once, so all five start from the cache.
    load_with_bash(&sandbox, &dir, &[]);
    let script = r#"
        eval "$(esc-hook export bash)"; first=$AWS_ACCESS_KEY_ID
        sleep 9; eval "$(esc-hook export bash)"; at_point=$AWS_ACCESS_KEY_ID
        sleep 3.5; eval "$(esc-hook export bash)"
        echo "$first $at_point $AWS_ACCESS_KEY_ID"
    "#;
    let shells: Vec<_> = (0..5)
        .map(|_| {
            let mut command = std::process::Command::new("bash");
            command
                .args(["-c", script])
                .env_clear()
                .envs(sandbox.env())
                .env("PWD", &dir)
                .current_dir(&dir)
                .stdout(Stdio::piped())
                .stderr(Stdio::piped());
            command.spawn().unwrap()
        })
        .collect();
    for shell in shells {
        let out = shell.wait_with_output().unwrap();
        assert_eq!(stdout(&out), "AKIA-1 AKIA-1 AKIA-2\n", "{}", stderr(&out));
    }
    assert_eq!(stand_in.opens(), 2, "one load, one refresh for all five");
    let _ = sandbox.run(&dir, &["cache", "clear", "--all"]);
}

/// A background refresh that fails while the credentials are valid is said once, and tried
/// again later (a quarter of the margin on, here 2 seconds), not at every prompt.
#[test]
fn a_failed_background_refresh_is_said_once_and_retried_later() {
    if !have_keyrings() {
        return;
    }
    let stand_in = StandIn::start(json!({"acme/payments/dev": {
        "read": numbered_payments(), "fault": "500", "fault_after": 1
    }}));
    let mut sandbox = sandbox_for(&stand_in, "keyutils");
    sandbox.set("ESC_HOOK_REFRESH_MARGIN", "8s");
    let dir = allowed_project(
        &sandbox,
        "payments",
        "environment: acme/payments/dev\nttl: 12s\n",
    );
    let mut session = Session::new(Sh::Bash, &sandbox);
    session.cd(&dir).run("sleep 4.5");
    // The refresher fails within a moment; the prompts after it say so once.
    for _ in 0..6 {
        session.run("sleep 0.2");
    }
    session
        .probe("still-valid", &["AWS_ACCESS_KEY_ID"])
        .run("sleep 2.5")
        .run("true")
        .run("sleep 0.5")
        .run("true");
    let (probes, log) = session.finish(&sandbox.home());
    expect(&probes, "still-valid", &[("AWS_ACCESS_KEY_ID", "AKIA-1")]);
    let said: Vec<&String> = log
        .iter()
        .filter(|l| l.contains("could not refresh acme/payments/dev ("))
        .collect();
    assert!(
        said.first()
            .is_some_and(|l| l.contains("failed with 500 (request id req-0123456789)")),
        "{log:#?}"
    );
    let attempts = stand_in.opens() - 1;
    assert!(
        attempts >= 2,
        "retried later: {attempts} attempts\n{log:#?}"
    );
    // Each failure said once (the last attempt may end after the last prompt).
    assert!(
        said.len() == attempts || said.len() + 1 == attempts,
        "{attempts} attempts: {log:#?}"
    );
    assert!(said.len() >= 2, "{log:#?}");
    let _ = sandbox.run(&dir, &["cache", "clear", "--all"]);
}

#[test]
fn expired_credentials_that_cannot_be_refreshed_are_unset_loudly() {
    if !have("bash") {
        return;
    }
    let stand_in = StandIn::start(json!({"acme/payments/dev": {
        "read": numbered_payments(), "fault": "500", "fault_after": 1
    }}));
    let mut sandbox = sandbox_for(&stand_in, "none");
    // ttl 4s, refresh from 2s before expiry.
    sandbox.set("ESC_HOOK_REFRESH_MARGIN", "2s");
    let dir = allowed_project(
        &sandbox,
        "payments",
        "environment: acme/payments/dev\nttl: 4s\n",
    );
    let mut session = Session::new(Sh::Bash, &sandbox);
    session
        .cd(&dir)
        .probe(
            "loaded",
            &["AWS_ACCESS_KEY_ID", "AWS_CREDENTIAL_EXPIRATION"],
        )
        .run("sleep 2.5")
        .probe("refresh-failed", &["AWS_ACCESS_KEY_ID"])
        .run("sleep 2")
        .probe(
            "expired",
            &[
                "AWS_ACCESS_KEY_ID",
                "AWS_SECRET_ACCESS_KEY",
                "AWS_CREDENTIAL_EXPIRATION",
            ],
        )
        .run("true")
        .probe("later", &["AWS_ACCESS_KEY_ID"]);
    let (probes, log) = session.finish(&sandbox.home());
    expect(&probes, "loaded", &[("AWS_ACCESS_KEY_ID", "AKIA-1")]);
    assert!(
        probes["loaded"]["AWS_CREDENTIAL_EXPIRATION"].ends_with('Z'),
        "{probes:#?}"
    );
    expect(
        &probes,
        "refresh-failed",
        &[("AWS_ACCESS_KEY_ID", "AKIA-1")],
    );
    expect(
        &probes,
        "expired",
        &[
            ("AWS_ACCESS_KEY_ID", "<unset>"),
            ("AWS_SECRET_ACCESS_KEY", "<unset>"),
            ("AWS_CREDENTIAL_EXPIRATION", "<unset>"),
        ],
    );
    expect(&probes, "later", &[("AWS_ACCESS_KEY_ID", "<unset>")]);
    let has = |text: &str| log.iter().filter(|l| l.contains(text)).count();
    assert_eq!(
        log.iter()
            .filter(|l| l.contains("could not refresh acme/payments/dev (")
                && l.contains("failed with 500 (request id req-0123456789)"))
            .count(),
        1,
        "{log:#?}"
    );
    assert_eq!(
        has("the credentials of acme/payments/dev expired and could not be refreshed"),
        1,
        "{log:#?}"
    );
    // The load, one failed refresh, one failed refresh at expiry; nothing after.
    assert_eq!(stand_in.opens(), 3, "no retry at every prompt");
}

#[test]
fn credential_expiration_is_exported_for_prompts_in_rfc3339() {
    let stand_in = StandIn::payments();
    let sandbox = sandbox_for(&stand_in, "none");
    let dir = allowed_project(
        &sandbox,
        "payments",
        "environment: acme/payments/dev\nttl: 45m\n",
    );
    let out = sandbox.bash(
        &dir,
        r#"eval "$(esc-hook export bash)"; echo "$AWS_CREDENTIAL_EXPIRATION""#,
    );
    let text = stdout(&out);
    let expected_min = std::time::SystemTime::now() + std::time::Duration::from_secs(45 * 60 - 5);
    let shown = text.trim();
    assert_eq!(shown.len(), 20, "{shown}");
    let (date, time) = shown.split_once('T').unwrap();
    assert_eq!(date.len(), 10);
    assert!(time.ends_with('Z'));
    // The value is 45 minutes ahead, to the second (compared through date(1)).
    let epoch = Command::new("date")
        .args(["-u", "-d", shown, "+%s"])
        .output()
        .unwrap();
    let epoch: u64 = stdout(&epoch).trim().parse().unwrap();
    let min = expected_min
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    assert!((min..min + 15).contains(&epoch), "{shown}");
}

#[test]
fn reload_opens_again_and_every_shell_picks_it_up() {
    if !have_keyrings() {
        return;
    }
    let stand_in = StandIn::start(json!({"acme/payments/dev": {"read": numbered_payments()}}));
    let sandbox = sandbox_for(&stand_in, "secret-service");
    let dir = allowed_project(&sandbox, "payments", PAYMENTS);
    let out = sandbox.bash(
        &dir,
        r#"
        eval "$(esc-hook export bash)"; echo "$AWS_ACCESS_KEY_ID"
        esc-hook reload
        eval "$(esc-hook export bash)"; echo "$AWS_ACCESS_KEY_ID"
    "#,
    );
    assert_eq!(stdout(&out), "AKIA-1\nAKIA-2\n", "{}", stderr(&out));
    assert!(
        stderr(&out).contains("esc-hook: reloaded acme/payments/dev ("),
        "{}",
        stderr(&out)
    );
    assert_eq!(
        stand_in.opens(),
        2,
        "reload opened once; the shell was served from the cache"
    );
    let other = sandbox.bash(
        &dir,
        r#"eval "$(esc-hook export bash)"; echo "$AWS_ACCESS_KEY_ID""#,
    );
    assert_eq!(stdout(&other), "AKIA-2\n");
    assert_eq!(stand_in.opens(), 2);

    let untrusted = sandbox.project("other", PAYMENTS);
    let refused = sandbox.run(&untrusted, &["reload"]);
    assert_eq!(refused.status.code(), Some(1));
    assert!(stderr(&refused).contains("is not allowed: run `esc-hook allow` first"));
}

#[test]
fn no_secret_reaches_stderr_or_a_file_through_a_whole_day() {
    if !have_keyrings() {
        return;
    }
    let stand_in = StandIn::payments();
    let mut sandbox = sandbox_for(&stand_in, "secret-service");
    sandbox.set("ESC_HOOK_REFRESH_MARGIN", "8s");
    let dir = allowed_project(
        &sandbox,
        "payments",
        "environment: acme/payments/dev\nttl: 12s\n",
    );
    let out = sandbox.bash(
        &dir,
        r#"
        eval "$(esc-hook export bash)"
        esc-hook status; esc-hook status --json; esc-hook cache list; esc-hook cache list --json
        sleep 4.2; eval "$(esc-hook export bash)"
        sleep 1.5; eval "$(esc-hook export bash)"
        esc-hook reload; cd .. && eval "$(esc-hook export bash)"; esc-hook export json
        printf '%s' "$ESC_HOOK_STATE" | base64 -d 2>/dev/null
    "#,
    );
    let everything = format!("{}{}", stdout(&out), stderr(&out));
    assert!(stderr(&out).contains("refreshed"), "{everything}");
    for secret in SECRETS {
        assert!(!stderr(&out).contains(secret), "stderr: {everything}");
        assert!(
            !stdout(&out).contains(secret),
            "status, lists, state: {everything}"
        );
    }
    assert_no_secret_in_files(sandbox.dir.path());
}

#[test]
fn entries_larger_than_a_windows_blob_round_trip_through_both_real_stores() {
    if !have_keyrings() {
        return;
    }
    let token = "Tk".repeat(3000);
    let mut read = fixture("read-payments-dev.json");
    read["properties"]["environmentVariables"]["value"]["AWS_SESSION_TOKEN"]["value"] =
        json!(token);
    for store in STORES {
        let stand_in = StandIn::start(json!({"acme/payments/dev": {"read": read.clone()}}));
        let sandbox = sandbox_for(&stand_in, store);
        let dir = allowed_project(&sandbox, "payments", PAYMENTS);
        for _ in 0..2 {
            let out = sandbox.bash(
                &dir,
                r#"eval "$(esc-hook export bash)"; printf %s "$AWS_SESSION_TOKEN""#,
            );
            assert_eq!(stdout(&out), token, "{store}: {}", stderr(&out));
        }
        assert_eq!(
            stand_in.opens(),
            1,
            "{store}: the split entry was read back whole"
        );
    }
}

// `cache list` listed entries whose credentials were gone from their store (a wiped keyring,
// an ended session keyring): they are dropped from the list, with a line saying so.
#[test]
fn cache_list_drops_entries_whose_store_no_longer_holds_them() {
    if !have_keyrings() || !have("secret-tool") {
        return;
    }
    let stand_in = StandIn::payments();
    let sandbox = sandbox_for(&stand_in, "secret-service");
    let dir = allowed_project(&sandbox, "payments", PAYMENTS);
    sandbox.bash(&dir, r#"eval "$(esc-hook export bash)""#);
    let list: serde_json::Value =
        serde_json::from_slice(&sandbox.run(&dir, &["cache", "list", "--json"]).stdout).unwrap();
    assert_eq!(list.as_array().unwrap().len(), 1, "{list}");
    let account = list[0]["account"].as_str().unwrap().to_string();
    let wiped = Command::new("secret-tool")
        .args(["clear", "service", "esc-hook", "username", &account])
        .envs(sandbox.env())
        .status()
        .unwrap();
    assert!(wiped.success());
    let out = sandbox.run(&dir, &["cache", "list"]);
    assert_eq!(stdout(&out), "nothing cached\n", "{}", stderr(&out));
    assert!(
        stderr(&out).contains("dropped 1 entry whose credentials are no longer in their store"),
        "{}",
        stderr(&out)
    );
    let again = sandbox.run(&dir, &["cache", "list"]);
    assert!(
        stderr(&again).is_empty(),
        "dropped for good: {}",
        stderr(&again)
    );
}

/// With the default store (the Secret Service, here gnome-keyring), a second shell entering the
/// project is served from the entry's copy in the session keyring: no D-Bus connection at all
/// (a connection, an encrypted session and three round trips cost ~16 ms).
#[test]
fn a_default_store_hit_needs_no_dbus_connection() {
    if !have_keyrings() || !have("strace") {
        return;
    }
    let stand_in = StandIn::payments();
    let sandbox = sandbox_for(&stand_in, "auto");
    let dir = allowed_project(&sandbox, "payments", PAYMENTS);
    load_with_bash(&sandbox, &dir, &[]);
    let trace = sandbox.path("hit.trace");
    let out = Command::new("strace")
        .args(["-f", "-e", "trace=connect", "-o"])
        .arg(&trace)
        .arg(bin())
        .args(["export", "bash"])
        .env_clear()
        .envs(sandbox.env())
        .env("PWD", &dir)
        .current_dir(&dir)
        .output()
        .unwrap();
    assert!(
        stdout(&out).contains("AWS_SECRET_ACCESS_KEY"),
        "{}",
        stderr(&out)
    );
    assert!(stderr(&out).contains("(cached, "), "{}", stderr(&out));
    let connects = std::fs::read_to_string(&trace).unwrap();
    assert!(
        !connects.contains("connect("),
        "no D-Bus, no network: {connects}"
    );
    let list = stdout(&sandbox.run(&dir, &["cache", "list"]));
    assert!(
        list.contains("secret-service"),
        "the store of record: {list}"
    );
    let _ = sandbox.run(&dir, &["cache", "clear", "--all"]);
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

/// The kernel's timeout of each key of `account` in /proc/keys, in seconds (`None`: no timeout,
/// `perm`). Keys this process may view: the test's own session keyring.
fn keyutils_timeouts(account: &str) -> Vec<Option<u64>> {
    let keys = std::fs::read_to_string("/proc/keys").unwrap_or_default();
    keys.lines()
        .filter(|line| line.contains(&format!("keyring:{account}@esc-hook")))
        // Live keys only: the kernel collects invalidated (i), revoked (R) and dead (D) ones
        // in its own time.
        .filter(|line| {
            let flags = line.split_whitespace().nth(1).unwrap_or_default();
            !flags.contains(['i', 'R', 'D'])
        })
        .map(|line| {
            let timeout = line.split_whitespace().nth(3).unwrap_or("perm");
            let (number, unit) = timeout.split_at(timeout.len().saturating_sub(1));
            let scale = match unit {
                "s" => 1,
                "m" => 60,
                "h" => 3600,
                "d" => 86400,
                "w" => 604800,
                _ => return None,
            };
            number.parse::<u64>().ok().map(|n| n * scale)
        })
        .collect()
}

// keyutils entries were linked into the persistent keyring, where they lived up to three days
// after their credentials expired. Each key now carries a kernel timeout that ends no later
// than its credentials: in the keyutils store and in the Secret Service's session copy alike.
#[test]
fn keyutils_entries_end_with_their_credentials() {
    if !have_keyrings() {
        return;
    }
    for store in ["keyutils", "auto"] {
        let stand_in = StandIn::payments();
        let sandbox = sandbox_for(&stand_in, store);
        let dir = allowed_project(&sandbox, "payments", PAYMENTS);
        // A second shell reads the entry back: for `auto`, the copy is written from the
        // Secret Service's answer when it is missing.
        load_with_bash(&sandbox, &dir, &[]);
        let list = sandbox.run(&dir, &["cache", "list", "--json"]);
        let rows: serde_json::Value = serde_json::from_str(&stdout(&list)).unwrap();
        let account = rows[0]["account"].as_str().unwrap().to_string();
        let left = rows[0]["seconds_left"].as_u64().unwrap();
        let timeouts = keyutils_timeouts(&account);
        assert!(
            !timeouts.is_empty(),
            "{store}: a key in the session keyring"
        );
        for timeout in &timeouts {
            let timeout = timeout.unwrap_or_else(|| panic!("{store}: a key without a timeout"));
            // /proc/keys rounds down to the unit it shows.
            assert!(timeout <= left, "{store}: {timeout}s > {left}s left");
            assert!(timeout > 0, "{store}");
        }
        // The copy, gone, comes back with a timeout when the Secret Service answers.
        if store == "auto" {
            let dropped = Command::new("sh")
                .args([
                    "-c",
                    "keyctl invalidate \"$(keyctl search @s user \"$1\")\"",
                    "sh",
                    &format!("keyring:{account}@esc-hook"),
                ])
                .output()
                .unwrap();
            assert!(dropped.status.success(), "{}", stderr(&dropped));
            assert!(keyutils_timeouts(&account).is_empty());
            let (_, log) = load_with_bash(&sandbox, &dir, &[]);
            assert!(log.contains("(cached, "), "{log}");
            let copied = keyutils_timeouts(&account);
            assert!(
                !copied.is_empty() && copied.iter().all(|t| t.is_some_and(|t| t <= left)),
                "{copied:?}"
            );
        }
        let _ = sandbox.run(&dir, &["cache", "clear", "--all"]);
    }
}

// `reload` failed without a keyring (over SSH, in a container: a D-Bus address but no Secret
// Service behind it): it exited 1 with `could not drop the cached entry` and nothing reloaded.
// With no usable store it opens uncached, as the hook does, and says so once.
#[test]
fn reload_works_without_a_keyring() {
    let stand_in = StandIn::payments();
    let mut sandbox = Sandbox::new();
    sandbox.with_esc(&stand_in);
    sandbox.set("ESC_HOOK_KEYRING", "auto");
    sandbox.set(
        "DBUS_SESSION_BUS_ADDRESS",
        &format!("unix:path={}", sandbox.path("no-such-bus").display()),
    );
    let dir = allowed_project(&sandbox, "payments", PAYMENTS);
    let out = sandbox.run(&dir, &["reload"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let log = stderr(&out);
    assert!(log.contains("reloaded acme/payments/dev"), "{log}");
    assert_eq!(stand_in.opens(), 1, "{log}");
}
