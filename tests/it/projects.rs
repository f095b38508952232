//! Projects as they really are: several environments opened together in one anonymous open
//! (ESC's import semantics: later wins), in real shells.

use serde_json::json;

use crate::common::*;
use crate::shells::{SHELLS, Session, Sh, available, expect};

/// `environmentVariables` for a read response.
fn read_with(vars: &[(&str, &str)]) -> serde_json::Value {
    let values: serde_json::Map<String, serde_json::Value> = vars
        .iter()
        .map(|(k, v)| (k.to_string(), json!({"value": v})))
        .collect();
    json!({"properties": {"environmentVariables": {"value": values}}})
}

fn two_environments() -> StandIn {
    StandIn::start(json!({
        "acme/aws/dev": {"read": read_with(&[
            ("AWS_ACCESS_KEY_ID", "AKIATEAM"), ("AWS_SECRET_ACCESS_KEY", "team-secret"),
            ("AWS_REGION", "us-east-1"), ("TEAM", "platform"),
        ])},
        "acme/payments/dev": {"read": read_with(&[("AWS_REGION", "eu-west-1"), ("APP", "payments")])},
    }))
}

const TWO: &str = "environment:\n  - acme/aws/dev\n  - acme/payments/dev@stable\n";

fn two_environments_in_one_open(shell: Sh) {
    if !available(shell) {
        return;
    }
    let stand_in = two_environments();
    let sandbox = Sandbox::uncached_esc(&stand_in);
    let dir = allowed_project(&sandbox, "payments", TWO);
    let mut session = Session::new(shell, &sandbox);
    session
        .cd(&dir)
        .probe(
            "loaded",
            &["AWS_ACCESS_KEY_ID", "AWS_REGION", "TEAM", "APP"],
        )
        .cd(&sandbox.home())
        .probe("left", &["AWS_ACCESS_KEY_ID", "APP"]);
    let (probes, log) = session.finish(&sandbox.home());
    let name = shell.name();
    expect(
        &probes,
        "loaded",
        &[
            ("AWS_ACCESS_KEY_ID", "AKIATEAM"),
            ("AWS_REGION", "eu-west-1"),
            ("TEAM", "platform"),
            ("APP", "payments"),
        ],
    );
    expect(
        &probes,
        "left",
        &[("AWS_ACCESS_KEY_ID", "<unset>"), ("APP", "<unset>")],
    );
    let requests = stand_in.requests();
    assert_eq!(
        requests.len(),
        2,
        "{name}: exactly two requests: {requests:#?}"
    );
    assert_eq!(requests[0]["path"], "/api/esc/environments/acme/yaml/open");
    assert_eq!(
        requests[0]["body"], "imports:\n  - aws/dev\n  - payments/dev@stable\n",
        "in order"
    );
    assert!(
        requests[1]["path"]
            .as_str()
            .unwrap()
            .starts_with("/api/esc/environments/acme/yaml/open/")
    );
    assert!(
        log.iter()
            .any(|l| l.contains("loading acme/aws/dev + acme/payments/dev@stable")),
        "{name}: {log:#?}"
    );
}

#[test]
fn two_environments_load_in_one_open_in_every_shell() {
    for shell in SHELLS {
        two_environments_in_one_open(shell);
    }
}

#[test]
fn the_cache_serves_the_list_to_a_second_shell_and_status_shows_it() {
    if !have_keyrings() {
        return;
    }
    let stand_in = two_environments();
    let mut sandbox = Sandbox::new();
    sandbox.with_esc(&stand_in);
    sandbox.set("ESC_HOOK_KEYRING", "keyutils");
    let dir = allowed_project(&sandbox, "payments", TWO);
    load_with_bash(&sandbox, &dir, &[]);
    let (vars, log) = load_with_bash(&sandbox, &dir, &["APP"]);
    assert_eq!(vars, ["APP=payments"]);
    assert!(log.contains("(cached, "), "{log}");
    assert_eq!(stand_in.opens(), 1, "the second shell opened nothing");
    // A single environment of the list is another cache entry.
    let single = allowed_project(&sandbox, "single", "environment: acme/payments/dev\n");
    load_with_bash(&sandbox, &single, &[]);
    assert_eq!(stand_in.opens(), 2);
    let status = stdout(&sandbox.run(&dir, &["status"]));
    assert!(
        status.contains("environment: acme/aws/dev + acme/payments/dev@stable"),
        "{status}"
    );
    assert!(
        status.contains("assumed valid for 1h") && status.contains("set `ttl` in .escrc"),
        "without a ttl, status says the default is in use: {status}"
    );
    let json: serde_json::Value =
        serde_json::from_slice(&sandbox.run(&dir, &["status", "--json"]).stdout).unwrap();
    assert_eq!(
        json["escrc"]["environments"],
        json!(["acme/aws/dev", "acme/payments/dev@stable"])
    );
    let _ = sandbox.run(&dir, &["cache", "clear", "--all"]);
}

#[test]
fn an_unknown_import_is_named_and_a_one_element_list_is_the_single_name() {
    let stand_in = two_environments();
    let sandbox = Sandbox::uncached_esc(&stand_in);
    let dir = allowed_project(
        &sandbox,
        "broken",
        "environment: [acme/aws/dev, acme/payments/nope]\n",
    );
    let (vars, log) = load_with_bash(&sandbox, &dir, &["TEAM"]);
    assert_eq!(vars, ["TEAM=<unset>"]);
    assert!(log.contains("acme/aws/dev + acme/payments/nope"), "{log}");
    assert!(log.contains("not found"), "{log}");
    // One element: the environment's own open, as with the plain name.
    let one = allowed_project(&sandbox, "one", "environment: [acme/payments/dev]\n");
    let before = stand_in.requests().len();
    let (vars, _) = load_with_bash(&sandbox, &one, &["APP"]);
    assert_eq!(vars, ["APP=payments"]);
    let requests = stand_in.requests();
    assert_eq!(
        requests[before]["path"],
        "/api/esc/environments/acme/payments/dev/open"
    );
    // Another organization in the list is refused before any request, naming it.
    let other = allowed_project(
        &sandbox,
        "other",
        "environment:\n  - acme/aws/dev\n  - globex/payments/dev\n",
    );
    let before = stand_in.requests().len();
    let (_, log) = load_with_bash(&sandbox, &other, &[]);
    assert!(
        log.contains("`globex/payments/dev` is in organization `globex`"),
        "{log}"
    );
    assert_eq!(stand_in.requests().len(), before, "no request");
}
