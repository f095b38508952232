//! The fault matrix: every way the ESC backend can fail, met at a real bash and zsh prompt.
//! For each: one clear line, once; the prompt back within the configured timeout; nothing
//! half exported; the user's own values untouched; and, for credentials already loaded, kept
//! while valid and removed once expired. (Ctrl-C during an open: see shells.rs.)

use std::time::{Duration, Instant};

use serde_json::json;

use crate::common::*;
use crate::shells::{Session, Sh, expect};

const PAYMENTS: &str = "environment: acme/payments/dev\n";

/// (fault, what the line must say). "refused" and "unresolvable" need no stand-in fault.
const FAULTS: [(&str, &str); 12] = [
    (
        "400",
        "acme/payments/dev failed to evaluate: dev:7:12: unknown property",
    ),
    (
        "401",
        "refused the access token from PULUMI_ACCESS_TOKEN for acme/payments/dev (401)",
    ),
    ("403", "no access to acme/payments/dev (403)"),
    ("404", "environment acme/payments/dev not found"),
    ("429", "rate limiting requests (429)"),
    ("500", "failed with 500 (request id req-0123456789)"),
    ("hang", "opening acme/payments/dev timed out after 2s"),
    ("slow:5", "opening acme/payments/dev timed out after 2s"),
    ("truncated", "was cut off"),
    ("html", "answered 502 with something other than JSON"),
    ("refused", "could not connect to http://127.0.0.1:"),
    (
        "unresolvable",
        "could not connect to http://esc-hook-test.invalid",
    ),
];

fn sandbox_for(fault: &str, stand_in: &StandIn) -> Sandbox {
    let mut sandbox = Sandbox::new();
    sandbox.with_esc(stand_in);
    sandbox.set("ESC_HOOK_KEYRING", "none");
    sandbox.set("ESC_HOOK_TIMEOUT", "2s");
    match fault {
        "refused" => {
            let port = free_port();
            sandbox.extra_env.push((
                "PULUMI_BACKEND_URL".into(),
                format!("http://127.0.0.1:{port}"),
            ));
        }
        "unresolvable" => {
            sandbox.extra_env.push((
                "PULUMI_BACKEND_URL".into(),
                "http://esc-hook-test.invalid".into(),
            ));
        }
        _ => {}
    }
    sandbox
}

fn entering_a_failing_environment(shell: Sh) {
    if !have(shell.name()) {
        return;
    }
    let results: Vec<_> = std::thread::scope(|scope| {
        let handles: Vec<_> = FAULTS
            .iter()
            .map(|(fault, expected)| {
                scope.spawn(move || {
                    let stand_in = StandIn::start(json!({"acme/payments/dev": {
                        "fault": fault, "read": fixture("read-payments-dev.json")
                    }}));
                    let sandbox = sandbox_for(fault, &stand_in);
                    let dir = allowed_project(&sandbox, "payments", PAYMENTS);
                    let mut session = Session::new(shell, &sandbox);
                    session
                        .user_set("AWS_REGION", "mine")
                        .cd(&dir)
                        .probe(
                            "entered",
                            &["AWS_ACCESS_KEY_ID", "AWS_REGION", "KUBECONFIG"],
                        )
                        .run("true")
                        .run("true")
                        .probe("later", &["AWS_ACCESS_KEY_ID", "AWS_REGION"]);
                    let started = Instant::now();
                    let (probes, log) = session.finish(&sandbox.home());
                    (fault, expected, probes, log, started.elapsed())
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    for (fault, expected, probes, log, elapsed) in results {
        expect(
            &probes,
            "entered",
            &[
                ("AWS_ACCESS_KEY_ID", "<unset>"),
                ("AWS_REGION", "mine"),
                ("KUBECONFIG", "<unset>"),
            ],
        );
        expect(
            &probes,
            "later",
            &[("AWS_ACCESS_KEY_ID", "<unset>"), ("AWS_REGION", "mine")],
        );
        let errors: Vec<&String> = log
            .iter()
            .filter(|l| !l.contains("esc-hook: loading"))
            .collect();
        assert_eq!(
            errors.len(),
            1,
            "{}: {fault}: one line, once: {log:#?}",
            shell.name()
        );
        assert!(
            errors[0].contains(expected),
            "{}: {fault}: {log:#?}",
            shell.name()
        );
        assert!(
            elapsed < Duration::from_secs(12),
            "{}: {fault}: the prompt came back ({elapsed:?})",
            shell.name()
        );
    }
}

#[test]
fn bash_meets_every_backend_fault_with_one_line_and_a_working_prompt() {
    entering_a_failing_environment(Sh::Bash);
}

#[test]
fn zsh_meets_every_backend_fault_with_one_line_and_a_working_prompt() {
    entering_a_failing_environment(Sh::Zsh);
}

/// Credentials loaded, then the backend fails at refresh: kept while valid, removed at expiry.
fn failing_refresh(shell: Sh) {
    if !have(shell.name()) {
        return;
    }
    std::thread::scope(|scope| {
        for fault in ["500", "hang", "html", "401"] {
            scope.spawn(move || {
                let stand_in = StandIn::start(json!({"acme/payments/dev": {
                    "read": numbered_payments(), "fault": fault, "fault_after": 1
                }}));
                let mut sandbox = sandbox_for(fault, &stand_in);
                sandbox.set("ESC_HOOK_REFRESH_MARGIN", "3s");
                sandbox.extra_env.retain(|(k, _)| k != "ESC_HOOK_TIMEOUT");
                sandbox.set("ESC_HOOK_TIMEOUT", "1s");
                let dir = allowed_project(
                    &sandbox,
                    "payments",
                    "environment: acme/payments/dev\nttl: 5s\n",
                );
                let mut session = Session::new(shell, &sandbox);
                session
                    .cd(&dir)
                    .probe("loaded", &["AWS_ACCESS_KEY_ID"])
                    .run("sleep 2.2")
                    .probe("valid", &["AWS_ACCESS_KEY_ID"])
                    .run("sleep 3")
                    .probe("expired", &["AWS_ACCESS_KEY_ID", "AWS_SESSION_TOKEN"]);
                let (probes, log) = session.finish(&sandbox.home());
                expect(&probes, "loaded", &[("AWS_ACCESS_KEY_ID", "AKIA-1")]);
                expect(&probes, "valid", &[("AWS_ACCESS_KEY_ID", "AKIA-1")]);
                expect(
                    &probes,
                    "expired",
                    &[
                        ("AWS_ACCESS_KEY_ID", "<unset>"),
                        ("AWS_SESSION_TOKEN", "<unset>"),
                    ],
                );
                let expired = log
                    .iter()
                    .filter(|l| l.contains("expired and could not be refreshed"))
                    .count();
                assert_eq!(expired, 1, "{}: {fault}: {log:#?}", shell.name());
            });
        }
    });
}

#[test]
fn bash_keeps_valid_credentials_and_removes_expired_ones_when_refresh_fails() {
    failing_refresh(Sh::Bash);
}

#[test]
fn zsh_keeps_valid_credentials_and_removes_expired_ones_when_refresh_fails() {
    failing_refresh(Sh::Zsh);
}

// After a backend failure that passes by itself (500, 429, refused, a timeout), nothing loaded
// until the user left the directory and came back. Now a prompt after a short wait (a quarter
// of the refresh margin, a minute at most) tries again by itself, silently while the failure
// lasts; once the backend recovers, the environment loads. The line said so ("a prompt a
// minute from now tries again, or `esc-hook reload`"), once.
fn a_recovered_backend_loads_at_a_later_prompt(shell: Sh) {
    if !have(shell.name()) {
        return;
    }
    let read = fixture("read-payments-dev.json");
    let stand_in = StandIn::start(json!({"acme/payments/dev": {"fault": "500", "read": read}}));
    let mut sandbox = sandbox_for("500", &stand_in);
    // A 4-second margin: tried again after a second.
    sandbox.set("ESC_HOOK_REFRESH_MARGIN", "4s");
    let dir = allowed_project(&sandbox, "payments", PAYMENTS);
    let recovered = sandbox.path("recovered");
    let mut session = Session::new(shell, &sandbox);
    session
        .cd(&dir)
        .probe("failing", &["AWS_ACCESS_KEY_ID"])
        .run("sleep 1.5")
        .run("true")
        .probe("still-failing", &["AWS_ACCESS_KEY_ID"])
        // The backend recovers (the test waits for this file, then reconfigures).
        .run(&format!("touch '{}'; sleep 3", recovered.display()))
        .run("true")
        .probe("recovered", &["AWS_ACCESS_KEY_ID"]);
    let (probes, log) = std::thread::scope(|scope| {
        let watcher = scope.spawn(|| {
            let deadline = Instant::now() + Duration::from_secs(30);
            while !recovered.exists() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(20));
            }
            stand_in.reconfigure(json!({"acme/payments/dev": {"read": read}}));
        });
        let finished = session.finish(&sandbox.home());
        watcher.join().unwrap();
        finished
    });
    let name = shell.name();
    expect(&probes, "failing", &[("AWS_ACCESS_KEY_ID", "<unset>")]);
    expect(
        &probes,
        "still-failing",
        &[("AWS_ACCESS_KEY_ID", "<unset>")],
    );
    expect(
        &probes,
        "recovered",
        &[("AWS_ACCESS_KEY_ID", "ASIAEXAMPLEKEYID0001")],
    );
    let failures: Vec<&String> = log
        .iter()
        .filter(|l| l.contains("failed with 500"))
        .collect();
    assert_eq!(failures.len(), 1, "{name}: said once: {log:#?}");
    assert!(
        failures[0].ends_with("a prompt a minute from now tries again, or `esc-hook reload`"),
        "{name}: {log:#?}"
    );
    assert!(stand_in.opens() >= 3, "{name}: tried again while it failed");
}

#[test]
fn a_recovered_backend_loads_at_a_later_prompt_in_bash_and_zsh() {
    for shell in [Sh::Bash, Sh::Zsh] {
        a_recovered_backend_loads_at_a_later_prompt(shell);
    }
}
