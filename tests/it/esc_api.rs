//! esc-hook against the ESC stand-in: the requests it sends, what it exports, and one clear
//! line for every way an open can fail. Plus the proof that the stand-in is faithful: the
//! official Python client opens and reads from it.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::process::Command;

use serde_json::json;

use crate::common::*;
use crate::shells::{SHELLS, Session, Sh, available, expect};

const PAYMENTS: &str = "environment: acme/payments/dev\n";

#[test]
fn an_open_is_exactly_two_requests_with_the_cli_headers() {
    let stand_in = StandIn::payments();
    let mut sandbox = Sandbox::new();
    sandbox.with_esc(&stand_in);
    let dir = allowed_project(&sandbox, "payments", PAYMENTS);
    let (vars, log) = load_with_bash(&sandbox, &dir, &["AWS_ACCESS_KEY_ID", "AWS_REGION"]);
    assert_eq!(
        vars,
        [
            "AWS_ACCESS_KEY_ID=ASIAEXAMPLEKEYID0001",
            "AWS_REGION=eu-west-1"
        ]
    );
    assert!(
        log.contains("esc-hook: loading acme/payments/dev\n"),
        "{log}"
    );

    let requests = stand_in.requests();
    assert_eq!(requests.len(), 2, "{requests:#?}");
    assert_eq!(requests[0]["method"], "POST");
    assert_eq!(
        requests[0]["path"],
        "/api/esc/environments/acme/payments/dev/open"
    );
    assert_eq!(requests[0]["query"], "duration=2h0m0s");
    assert_eq!(requests[1]["method"], "GET");
    assert!(
        requests[1]["path"]
            .as_str()
            .unwrap()
            .starts_with("/api/esc/environments/acme/payments/dev/open/")
    );
    for request in &requests {
        let headers = &request["headers"];
        assert_eq!(
            headers["authorization"],
            format!("token {}", stand_in.token)
        );
        assert_eq!(headers["accept"], "application/vnd.pulumi+8");
        assert_eq!(headers["content-type"], "application/json");
        let agent = headers["user-agent"].as_str().unwrap();
        assert!(
            agent.starts_with("esc-hook/") && agent.contains("; "),
            "{agent}"
        );
    }
}

#[test]
fn projection_matches_esc_run_and_files_live_only_while_loaded() {
    let stand_in = StandIn::payments();
    let mut sandbox = Sandbox::new();
    sandbox.with_esc(&stand_in);
    let dir = allowed_project(&sandbox, "payments", PAYMENTS);
    let script = r#"
        eval "$(esc-hook export bash)"
        printf '%s|' "$DEBUG" "$MAX_RETRIES" "$RATIO" "${EMPTY-unset}" "${LIST_IS_SKIPPED-unset}" "$MULTILINE"
        echo
        stat -c '%a' "$KUBECONFIG" "$(dirname "$KUBECONFIG")"
        cat "$GOOGLE_APPLICATION_CREDENTIALS"; echo
        echo "$KUBECONFIG" > files-path
        cd .. && eval "$(esc-hook export bash)"
        printf '%s\n' "${KUBECONFIG-unset}"
    "#;
    let out = sandbox.bash(&dir, script);
    let text = stdout(&out);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(
        lines[0], "true|3|0.25||unset|line one",
        "bool, number, empty and skipped values: {text}"
    );
    assert_eq!(lines[1], "line 'two' with $HOME and `cmd`");
    assert_eq!(&lines[3..5], ["600", "700"], "{text}");
    assert_eq!(lines[5], r#"{"type": "service_account"}"#);
    assert_eq!(lines[6], "unset", "{text}");
    let files_path = std::fs::read_to_string(dir.join("files-path")).unwrap();
    assert!(
        files_path.starts_with(sandbox.path("run").to_str().unwrap()),
        "{files_path}"
    );
    assert!(
        !std::path::Path::new(files_path.trim()).exists(),
        "files removed on unload"
    );
}

#[test]
fn versions_ttl_and_open_duration_shape_the_open_request() {
    let stand_in = StandIn::start(json!({
        "acme/payments/dev@7": {"read": fixture("read-payments-dev.json")}
    }));
    let mut sandbox = Sandbox::new();
    sandbox.with_esc(&stand_in);
    let dir = allowed_project(
        &sandbox,
        "p",
        "environment: acme/payments/dev@7\nttl: 3h\nopen-duration: 1h\n",
    );
    let (vars, _) = load_with_bash(&sandbox, &dir, &["AWS_REGION"]);
    assert_eq!(vars, ["AWS_REGION=eu-west-1"]);
    let requests = stand_in.requests();
    assert_eq!(
        requests[0]["path"],
        "/api/esc/environments/acme/payments/dev/versions/7/open"
    );
    assert_eq!(
        requests[0]["query"], "duration=3h0m0s",
        "the open lives at least the ttl"
    );
}

#[test]
fn untrusted_and_values_only_files_send_nothing_and_need_no_token() {
    let stand_in = StandIn::payments();
    let mut sandbox = Sandbox::new();
    sandbox.with_esc(&stand_in);
    let untrusted = sandbox.project("untrusted", PAYMENTS);
    let (vars, log) = load_with_bash(&sandbox, &untrusted, &["AWS_ACCESS_KEY_ID"]);
    assert_eq!(vars, ["AWS_ACCESS_KEY_ID=<unset>"]);
    assert!(
        log.contains(
            "esc-hook: .escrc is not allowed: run `esc-hook allow` to trust it (acme/payments/dev)"
        ),
        "{log}"
    );
    assert_eq!(stand_in.requests().len(), 0);

    let no_login = Sandbox::new();
    let dir = allowed_project(&no_login, "values", "values:\n  AWS_REGION: eu-west-1\n");
    let (vars, log) = load_with_bash(&no_login, &dir, &["AWS_REGION"]);
    assert_eq!(vars, ["AWS_REGION=eu-west-1"], "{log}");
}

/// Each failure: one line naming the problem, a working shell, nothing exported, and no
/// repeat (neither message nor request) at the next prompt.
fn assert_failure(fault: &str, expected: &str, extra_env: &[(&str, &str)]) {
    let stand_in = StandIn::start(json!({"acme/payments/dev": {
        "fault": fault, "read": fixture("read-payments-dev.json")
    }}));
    let mut sandbox = Sandbox::new();
    sandbox.with_esc(&stand_in);
    for (name, value) in extra_env {
        sandbox
            .extra_env
            .push((name.to_string(), value.to_string()));
    }
    let dir = allowed_project(&sandbox, "payments", PAYMENTS);
    let script = r#"
        eval "$(esc-hook export bash)"; echo "first=$?"
        eval "$(esc-hook export bash)"; echo "second=$?"
        echo "key=${AWS_ACCESS_KEY_ID-unset}"
    "#;
    let out = sandbox.bash(&dir, script);
    let log = stderr(&out);
    assert_eq!(
        stdout(&out),
        "first=0\nsecond=0\nkey=unset\n",
        "{fault}: {log}"
    );
    let lines: Vec<&str> = log.lines().filter(|l| !l.contains("loading")).collect();
    assert_eq!(lines.len(), 1, "{fault}: exactly one line, once: {log}");
    assert!(lines[0].starts_with("esc-hook: "), "{log}");
    assert!(lines[0].contains(expected), "{fault}: {log}");
    assert!(!log.contains(TOKEN), "the token never shows");
}

#[test]
fn evaluation_errors_show_each_diagnostic_like_a_compiler() {
    assert_failure(
        "400",
        "acme/payments/dev failed to evaluate: dev:7:12: unknown property \"lgin\"",
        &[],
    );
}

#[test]
fn a_refused_token_says_how_to_log_in() {
    assert_failure(
        "401",
        "refused the access token from PULUMI_ACCESS_TOKEN for acme/payments/dev (401): set a valid PULUMI_ACCESS_TOKEN",
        &[],
    );
}

#[test]
fn forbidden_not_found_and_rate_limits_say_so() {
    assert_failure("403", "no access to acme/payments/dev (403)", &[]);
    assert_failure(
        "404",
        "environment acme/payments/dev not found at http://127.0.0.1:",
        &[],
    );
    assert_failure("429", "rate limiting requests (429)", &[]);
}

#[test]
fn server_errors_quote_the_request_id() {
    // A self-hosted backend is named by its host, not as "Pulumi Cloud".
    assert_failure("500", "esc-hook: 127.0.0.1:", &[]);
    assert_failure(
        "500",
        "failed with 500 (request id req-0123456789): a prompt a minute from now tries again, or `esc-hook reload`",
        &[],
    );
}

#[test]
fn non_json_cut_off_and_endless_bodies_are_reported_not_parsed() {
    assert_failure(
        "html",
        "answered 502 with something other than JSON: <html><body><h1>502 Bad Gateway",
        &[],
    );
    assert_failure("truncated", "the response from http://127.0.0.1:", &[]);
    assert_failure("truncated", "was cut off: ", &[]);
    // A body without end (or announcing gigabytes) is refused as it arrives, never held.
    assert_failure("endless", "is larger than 16 MiB: refused unread", &[]);
    assert_failure("huge-length", "is larger than 16 MiB: refused unread", &[]);
}

#[test]
fn a_slow_server_times_out_within_the_configured_bound() {
    let started = std::time::Instant::now();
    assert_failure(
        "slow:10",
        "timed out after 1s",
        &[("ESC_HOOK_TIMEOUT", "1s")],
    );
    assert!(
        started.elapsed().as_secs() < 8,
        "the prompt came back well before the server answered"
    );
}

#[test]
fn connection_refused_names_the_backend() {
    let mut sandbox = Sandbox::new();
    // A port nothing listens on: bind one, then free it.
    let port = free_port();
    sandbox.extra_env.push((
        "PULUMI_BACKEND_URL".into(),
        format!("http://127.0.0.1:{port}"),
    ));
    sandbox
        .extra_env
        .push(("PULUMI_ACCESS_TOKEN".into(), TOKEN.into()));
    let dir = allowed_project(&sandbox, "p", PAYMENTS);
    let (vars, log) = load_with_bash(&sandbox, &dir, &["AWS_ACCESS_KEY_ID"]);
    assert_eq!(vars, ["AWS_ACCESS_KEY_ID=<unset>"]);
    assert!(
        log.contains(&format!("could not connect to http://127.0.0.1:{port}: ")),
        "{log}"
    );
}

#[test]
fn a_missing_login_is_explained_before_any_request() {
    let stand_in = StandIn::payments();
    let mut sandbox = Sandbox::new();
    sandbox
        .extra_env
        .push(("PULUMI_BACKEND_URL".into(), stand_in.url()));
    let dir = allowed_project(&sandbox, "p", PAYMENTS);
    let (_, log) = load_with_bash(&sandbox, &dir, &[]);
    assert!(log.contains("not logged in to http://127.0.0.1:"), "{log}");
    assert!(log.contains("pulumi login"), "{log}");
    assert_eq!(stand_in.requests().len(), 0);

    // A login stored by the Pulumi CLI is found, for the right backend only.
    let pulumi_home = sandbox.home().join(".pulumi");
    std::fs::create_dir_all(&pulumi_home).unwrap();
    let credentials = json!({"current": stand_in.url(),
        "accounts": {stand_in.url(): {"accessToken": stand_in.token, "username": "alice"}}});
    std::fs::write(
        pulumi_home.join("credentials.json"),
        credentials.to_string(),
    )
    .unwrap();
    std::fs::set_permissions(
        pulumi_home.join("credentials.json"),
        std::fs::Permissions::from_mode(0o600),
    )
    .unwrap();
    sandbox.extra_env.clear();
    std::fs::write(dir.join("touch"), "").unwrap();
    sandbox.write_escrc(&dir, "environment: acme/payments/dev\nttl: 30m\n");
    sandbox.allow(&dir);
    let (vars, log) = load_with_bash(&sandbox, &dir, &["AWS_REGION"]);
    assert_eq!(vars, ["AWS_REGION=eu-west-1"], "{log}");
}

#[test]
fn the_official_python_client_reads_from_the_stand_in() {
    let python = repo().join(".venv/bin/python");
    if !python.exists() {
        skip(".venv/bin/python with pulumi-esc-sdk is missing (run .ci/run's setup)");
        return;
    }
    let stand_in = StandIn::payments();
    let program = r#"
import json, sys
import pulumi_esc_sdk as esc
client = esc.EscClient(esc.Configuration(host=sys.argv[1] + "/api/esc", access_token=sys.argv[2]))
env, values, _yaml = client.open_and_read_environment("acme", "payments", "dev")
print(json.dumps(values["environmentVariables"], sort_keys=True))
"#;
    let out = Command::new(python)
        .args(["-c", program, &stand_in.url(), &stand_in.token])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "official client failed: {}",
        stderr(&out)
    );
    let vars: serde_json::Value = serde_json::from_str(stdout(&out).trim()).unwrap();
    assert_eq!(vars["AWS_ACCESS_KEY_ID"], "ASIAEXAMPLEKEYID0001");
    assert_eq!(vars["MAX_RETRIES"], 3);
    let requests = stand_in.requests();
    let opens = requests.iter().filter(|r| r["method"] == "POST").count();
    assert_eq!(opens, 1, "{requests:#?}");
}

#[test]
fn ctrl_c_during_an_open_changes_nothing_and_is_not_retried_at_the_next_prompt() {
    let stand_in = StandIn::start(json!({"acme/payments/dev": {"fault": "slow:30"}}));
    let mut sandbox = Sandbox::new();
    sandbox.with_esc(&stand_in);
    let dir = allowed_project(&sandbox, "payments", PAYMENTS);
    let child = sandbox
        .esc(&dir, &["export", "bash"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Wait until the open is on the wire, then press Ctrl-C.
    let started = std::time::Instant::now();
    while stand_in.requests().is_empty() {
        assert!(started.elapsed().as_secs() < 10, "the open never arrived");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    // SAFETY: kill with a valid pid and signal number.
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let script = stdout(&out);
    let settings: Vec<&str> = script
        .lines()
        .filter(|l| !l.starts_with("_esc_hook_"))
        .collect();
    assert_eq!(settings.len(), 1, "only the state is set: {script}");
    assert!(script.starts_with("export ESC_HOOK_STATE="), "{script}");
    assert!(
        stderr(&out).contains("stopped opening acme/payments/dev (Ctrl-C)"),
        "{}",
        stderr(&out)
    );

    // The next prompt, with that state, does not open again.
    let again = sandbox.bash(
        &dir,
        &format!("{script}\nesc-hook export bash | grep -v ^_esc_hook_; echo done"),
    );
    assert_eq!(stdout(&again), "done\n", "{}", stderr(&again));
    assert_eq!(stand_in.requests().len(), 1);
}

#[test]
fn files_left_by_a_shell_that_exited_are_swept_at_the_next_load() {
    let stand_in = StandIn::payments();
    let mut sandbox = Sandbox::new();
    sandbox.with_esc(&stand_in);
    let dir = allowed_project(&sandbox, "payments", PAYMENTS);
    // A shell that loaded the environment and exited without unloading.
    let gone = sandbox.bash(
        &dir,
        "eval \"$(esc-hook export bash)\"; dirname \"$KUBECONFIG\"",
    );
    let left_behind = std::path::PathBuf::from(stdout(&gone).trim());
    assert!(left_behind.join("KUBECONFIG").exists(), "{}", stderr(&gone));
    let still_here = sandbox.bash(
        &dir,
        "eval \"$(esc-hook export bash)\"; cat \"$KUBECONFIG\"",
    );
    assert!(stdout(&still_here).starts_with("apiVersion: v1"));
    assert!(!left_behind.exists(), "the exited shell's files were swept");
}

// After a 401, fixing PULUMI_ACCESS_TOKEN did nothing until `reload`, the message asked to set a
// token that was set, and `status` said only "loaded: nothing".
fn a_fixed_login_is_picked_up_at_the_next_prompt(shell: Sh) {
    if !available(shell) {
        return;
    }
    let stand_in = StandIn::payments();
    let mut sandbox = Sandbox::uncached_esc(&stand_in);
    sandbox.set("PULUMI_ACCESS_TOKEN", "pul-expired");
    let home = sandbox.home();
    let dir = allowed_project(&sandbox, "payments", "environment: acme/payments/dev\n");
    let shown = sandbox.path(&format!("status-{}", shell.name()));
    let mut session = Session::new(shell, &sandbox);
    session
        .cd(&dir)
        .run("true")
        .run(&format!("esc-hook status > '{}'", shown.display()))
        .user_set("PULUMI_ACCESS_TOKEN", &stand_in.token)
        .probe("fixed", &["AWS_ACCESS_KEY_ID"])
        .run("true")
        .probe("later", &["AWS_ACCESS_KEY_ID"]);
    let (probes, log) = session.finish(&home);
    let name = shell.name();
    expect(
        &probes,
        "fixed",
        &[("AWS_ACCESS_KEY_ID", "ASIAEXAMPLEKEYID0001")],
    );
    let refused: Vec<&String> = log.iter().filter(|l| l.contains("(401)")).collect();
    assert_eq!(refused.len(), 1, "{name}: once: {log:#?}");
    assert!(
        refused[0].contains("refused the access token from PULUMI_ACCESS_TOKEN for acme/payments/dev (401): set a valid PULUMI_ACCESS_TOKEN"),
        "{name}: {log:#?}"
    );
    let status = fs::read_to_string(&shown).unwrap();
    assert!(
        status.contains("because:     ") && status.contains("(401)"),
        "{name}: {status}"
    );
    assert_eq!(
        stand_in.opens(),
        2,
        "{name}: the refused open and the one after the fix"
    );
}

#[test]
fn a_fixed_login_is_picked_up_at_the_next_prompt_in_every_shell() {
    for shell in SHELLS {
        a_fixed_login_is_picked_up_at_the_next_prompt(shell);
    }
}
