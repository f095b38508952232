//! Projects as they really are: several environments opened together in one anonymous open
//! (ESC's import semantics: later wins), in real shells.

use std::os::unix::fs::PermissionsExt;

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

/// A sandbox opening through `stand_in`, caching in the kernel keyring (keyutils).
fn cached_esc(stand_in: &StandIn) -> Sandbox {
    let mut sandbox = Sandbox::new();
    sandbox.with_esc(stand_in);
    sandbox.set("ESC_HOOK_KEYRING", "keyutils");
    sandbox
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
    let sandbox = cached_esc(&stand_in);
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
    let other = trusted_as_it_is(
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

// Layered `.escrc` files: a monorepo's root sets the account, a service adds its environment
// and settings, a sub-directory its own role.

fn monorepo_stand_in() -> StandIn {
    StandIn::start(json!({
        "acme/aws/dev": {"read": read_with(&[
            ("AWS_ACCESS_KEY_ID", "AKIAROOT"), ("AWS_SECRET_ACCESS_KEY", "root-secret"),
            ("TEAM", "platform"), ("LEVEL", "aws"),
        ])},
        "acme/payments/dev": {"read": read_with(&[("APP", "payments"), ("LEVEL", "payments")])},
        "acme/billing/dev": {"read": read_with(&[("APP", "billing")])},
    }))
}

/// `mono/` (root), `mono/payments/` and `mono/billing/` (services) and
/// `mono/payments/deploy/` (a role of its own), every file allowed.
struct Monorepo {
    root: std::path::PathBuf,
    payments: std::path::PathBuf,
    deploy: std::path::PathBuf,
    billing: std::path::PathBuf,
}

const ROOT_ESCRC: &str = "environment: acme/aws/dev\nvalues:\n  ROOT: yes\n";

fn monorepo(sandbox: &Sandbox) -> Monorepo {
    let role = crate::sts::ROLE;
    Monorepo {
        root: allowed_project(sandbox, "mono", ROOT_ESCRC),
        payments: allowed_project(
            sandbox,
            "mono/payments",
            "inherit: true\nenvironment: acme/payments/dev\nvalues:\n  SERVICE: payments\n",
        ),
        deploy: allowed_project(
            sandbox,
            "mono/payments/deploy",
            &format!(
                "inherit: true\nvalues:\n  SERVICE: payments-deploy\naws:\n  region: eu-central-1\n  assume-role:\n    role-arn: {role}\n    session-name: deploy\n"
            ),
        ),
        billing: allowed_project(
            sandbox,
            "mono/billing",
            "inherit: true\nenvironment: acme/billing/dev\n",
        ),
    }
}

const WATCHED: [&str; 7] = [
    "AWS_ACCESS_KEY_ID",
    "AWS_REGION",
    "ROOT",
    "TEAM",
    "LEVEL",
    "APP",
    "SERVICE",
];

fn a_monorepo_walk(shell: Sh, moto: &crate::common::Moto) {
    if !available(shell) {
        return;
    }
    let stand_in = monorepo_stand_in();
    let mut sandbox = crate::sts::sts_sandbox(moto);
    sandbox.with_esc(&stand_in);
    let repo = monorepo(&sandbox);
    let name = shell.name();
    let mut session = Session::new(shell, &sandbox);
    session
        .count_calls()
        .cd(&repo.root)
        .probe("root", &WATCHED)
        .cd(&repo.payments)
        .probe("payments", &WATCHED)
        .cd(&repo.deploy)
        .probe("deploy", &WATCHED)
        // Unchanged prompts inside a three-level chain start nothing (once the trust records
        // written just now are more than the watch's second old).
        .run("sleep 1.2")
        .probe_calls("before")
        .run("true")
        .run("true")
        .probe_calls("after")
        .cd(&repo.payments)
        .probe("back", &WATCHED)
        .cd(&repo.billing)
        .probe("billing", &WATCHED)
        .cd(&repo.root)
        .probe("root-again", &WATCHED)
        .cd(&sandbox.home())
        .probe("home", &WATCHED);
    let (probes, log) = session.finish(&sandbox.home());
    let root = [
        ("AWS_ACCESS_KEY_ID", "AKIAROOT"),
        ("AWS_REGION", "<unset>"),
        ("ROOT", "yes"),
        ("TEAM", "platform"),
        ("LEVEL", "aws"),
        ("APP", "<unset>"),
        ("SERVICE", "<unset>"),
    ];
    expect(&probes, "root", &root);
    let payments = [
        ("AWS_ACCESS_KEY_ID", "AKIAROOT"),
        ("AWS_REGION", "<unset>"),
        ("ROOT", "yes"),
        ("TEAM", "platform"),
        ("LEVEL", "payments"),
        ("APP", "payments"),
        ("SERVICE", "payments"),
    ];
    expect(&probes, "payments", &payments);
    expect(
        &probes,
        "deploy",
        &[
            ("AWS_REGION", "eu-central-1"),
            ("ROOT", "yes"),
            ("LEVEL", "payments"),
            ("APP", "payments"),
            ("SERVICE", "payments-deploy"),
        ],
    );
    let deploy_key = &probes["deploy"]["AWS_ACCESS_KEY_ID"];
    assert!(
        deploy_key != "AKIAROOT" && deploy_key != "<unset>",
        "{name}: the deploy role's own session: {deploy_key}"
    );
    assert_eq!(
        probes["before"]["calls"], probes["after"]["calls"],
        "{name}: unchanged prompts in a chain spawn nothing"
    );
    expect(&probes, "back", &payments);
    expect(
        &probes,
        "billing",
        &[
            ("AWS_ACCESS_KEY_ID", "AKIAROOT"),
            ("ROOT", "yes"),
            ("LEVEL", "aws"),
            ("APP", "billing"),
            ("SERVICE", "<unset>"),
        ],
    );
    expect(&probes, "root-again", &root);
    expect(&probes, "home", &WATCHED.map(|name| (name, "<unset>")));
    // Each move between levels and siblings is one line naming both projects and only what
    // differs (a fresh open's expiry may differ by the second it was made in).
    let swap = |from_to: &str, want: &[&str], unchanged: &[&str]| {
        let found: Vec<&String> = log.iter().filter(|l| l.contains(from_to)).collect();
        assert_eq!(found.len(), 1, "{name}: {from_to}: {log:#?}");
        let words: Vec<&str> = found[0].rsplit(": ").next().unwrap().split(' ').collect();
        for word in want {
            assert!(words.contains(word), "{name}: {word} in {}", found[0]);
        }
        for same in unchanged {
            assert!(
                !found[0].contains(same),
                "{name}: {same} unchanged: {}",
                found[0]
            );
        }
    };
    swap(
        "leaving acme/aws/dev for acme/aws/dev + acme/payments/dev: ",
        &["+APP", "~LEVEL", "+SERVICE"],
        &["AWS_ACCESS_KEY_ID", "ROOT", "TEAM"],
    );
    swap(
        "leaving ~/mono/payments/.escrc for ~/mono/payments/deploy/.escrc: ",
        &[
            "~AWS_ACCESS_KEY_ID",
            "+AWS_REGION",
            "+AWS_SESSION_TOKEN",
            "~SERVICE",
        ],
        &["ROOT", "TEAM", "LEVEL", "APP"],
    );
    swap(
        "leaving acme/aws/dev + acme/payments/dev for acme/aws/dev + acme/billing/dev: ",
        &["~APP", "~LEVEL", "-SERVICE"],
        &["AWS_ACCESS_KEY_ID", "ROOT", "TEAM"],
    );
    swap(
        "leaving acme/aws/dev + acme/billing/dev for acme/aws/dev: ",
        &["-APP"],
        &["AWS_ACCESS_KEY_ID", "ROOT", "TEAM", "LEVEL"],
    );
    let unloading = log.iter().filter(|l| l.contains("unloading")).count();
    assert_eq!(unloading, 1, "{name}: only at the end: {log:#?}");
    // The whole chain in one open: the root's environment first.
    let bodies: Vec<String> = stand_in
        .requests()
        .iter()
        .filter_map(|r| r["body"].as_str().map(String::from))
        .filter(|b| !b.is_empty())
        .collect();
    assert!(
        bodies.contains(&"imports:\n  - aws/dev\n  - payments/dev\n".to_string()),
        "{name}: {bodies:#?}"
    );
}

#[test]
fn a_three_level_monorepo_loads_swaps_and_unloads_in_every_shell() {
    let Some(moto) = crate::common::Moto::start() else {
        return;
    };
    for shell in SHELLS {
        a_monorepo_walk(shell, &moto);
    }
}

fn editing_a_parent(shell: Sh) {
    if !available(shell) {
        return;
    }
    let stand_in = monorepo_stand_in();
    let sandbox = Sandbox::uncached_esc(&stand_in);
    let root = allowed_project(&sandbox, "mono", ROOT_ESCRC);
    let service = allowed_project(
        &sandbox,
        "mono/payments",
        "inherit: true\nvalues:\n  SERVICE: payments\n",
    );
    let name = shell.name();
    let root_file = root.join(".escrc");
    let mut session = Session::new(shell, &sandbox);
    session
        .cd(&service)
        .probe("loaded", &["ROOT", "SERVICE"])
        // An edit that keeps the old modification time: the hooks still see it.
        .run(&format!(
            "printf 'environment: acme/aws/dev\\nvalues:\\n  ROOT: edited\\n' > '{}'; touch -d 2001-01-01 '{}'",
            root_file.display(),
            root_file.display()
        ))
        .probe("edited", &["ROOT", "SERVICE", "AWS_ACCESS_KEY_ID"])
        .run("esc-hook allow ..")
        .probe("allowed", &["ROOT", "SERVICE", "AWS_ACCESS_KEY_ID"]);
    let (probes, log) = session.finish(&service);
    expect(
        &probes,
        "loaded",
        &[("ROOT", "yes"), ("SERVICE", "payments")],
    );
    expect(
        &probes,
        "edited",
        &[
            ("ROOT", "<unset>"),
            ("SERVICE", "<unset>"),
            ("AWS_ACCESS_KEY_ID", "<unset>"),
        ],
    );
    expect(
        &probes,
        "allowed",
        &[
            ("ROOT", "edited"),
            ("SERVICE", "payments"),
            ("AWS_ACCESS_KEY_ID", "AKIAROOT"),
        ],
    );
    assert!(
        log.iter().any(|l| l.contains(
            "~/mono/.escrc is not allowed, and .escrc builds on it: run `esc-hook allow ~/mono/.escrc`"
        )),
        "{name}: names the parent: {log:#?}"
    );
}

#[test]
fn editing_a_parent_blocks_the_chain_until_allowed_in_every_shell() {
    for shell in SHELLS {
        editing_a_parent(shell);
    }
}

#[test]
fn a_chain_with_a_file_not_allowed_sends_no_request() {
    let stand_in = monorepo_stand_in();
    let sandbox = Sandbox::uncached_esc(&stand_in);
    // The parent was never allowed; the child is.
    let root = sandbox.project("mono", ROOT_ESCRC);
    let service = allowed_project(
        &sandbox,
        "mono/payments",
        "inherit: true\nenvironment: acme/payments/dev\n",
    );
    let (vars, log) = load_with_bash(&sandbox, &service, &["APP", "ROOT"]);
    assert_eq!(vars, ["APP=<unset>", "ROOT=<unset>"]);
    assert!(log.contains("~/mono/.escrc is not allowed"), "{log}");
    // (doctor asks the backend whether it answers: one request of its own, counted apart.)
    let doctor = sandbox.run(&service, &["doctor"]);
    assert!(
        stdout(&doctor).contains("~/mono/.escrc is not allowed, and .escrc builds on it"),
        "doctor names the parent: {}",
        stdout(&doctor)
    );
    let doctors = stand_in.requests().len();
    // Allowing the child again says what it still waits for.
    let allow = sandbox.run(&service, &["allow"]);
    assert!(
        stderr(&allow).contains("builds on ~/mono/.escrc, which is not allowed"),
        "{}",
        stderr(&allow)
    );
    // Denied parent, or a child not allowed above an allowed parent: nothing either.
    let denied = sandbox.run(&root, &["deny"]);
    assert!(denied.status.success());
    let (_, log) = load_with_bash(&sandbox, &service, &[]);
    assert!(log.contains("~/mono/.escrc is denied"), "{log}");
    sandbox.allow(&root);
    sandbox.write_escrc(&service, "inherit: true\nenvironment: acme/billing/dev\n");
    let (vars, log) = load_with_bash(&sandbox, &service, &["APP", "ROOT"]);
    assert_eq!(vars, ["APP=<unset>", "ROOT=<unset>"]);
    assert!(
        log.contains(".escrc is not allowed: run `esc-hook allow`"),
        "{log}"
    );
    // `exec` and `reload` refuse the chain the same way.
    sandbox.allow(&service);
    sandbox.write_escrc(
        &root,
        "environment: acme/aws/dev\nvalues: {ROOT: changed}\n",
    );
    let exec = sandbox.run(&service, &["exec", "--", "true"]);
    assert!(
        !exec.status.success() && stderr(&exec).contains("~/mono/.escrc is not allowed"),
        "{}",
        stderr(&exec)
    );
    assert_eq!(stand_in.requests().len(), doctors, "no request at all");
    // A parent others may write is refused however it is allowed, and names its fix.
    sandbox.allow(&root);
    let root_file = root.join(".escrc");
    std::fs::set_permissions(&root_file, std::fs::Permissions::from_mode(0o666)).unwrap();
    let (vars, log) = load_with_bash(&sandbox, &service, &["APP"]);
    assert_eq!(vars, ["APP=<unset>"]);
    assert!(log.contains("chmod go-w"), "{log}");
    std::fs::set_permissions(&root_file, std::fs::Permissions::from_mode(0o644)).unwrap();
    assert_eq!(stand_in.requests().len(), doctors, "no request at all");
    // Once every file is allowed: one open for the chain.
    let (vars, _) = load_with_bash(&sandbox, &service, &["APP", "ROOT"]);
    assert_eq!(vars, ["APP=billing", "ROOT=changed"]);
    assert_eq!(stand_in.requests().len(), doctors + 2);
}

#[test]
fn the_cache_serves_a_chain_to_a_second_shell_and_status_shows_each_origin() {
    if !have_keyrings() {
        return;
    }
    let stand_in = monorepo_stand_in();
    let sandbox = cached_esc(&stand_in);
    allowed_project(&sandbox, "mono", ROOT_ESCRC);
    let service = allowed_project(
        &sandbox,
        "mono/payments",
        "inherit: true\nenvironment: acme/payments/dev\nttl: 30m\nvalues:\n  SERVICE: payments\n",
    );
    let sub = sandbox.home().join("mono/payments/src");
    std::fs::create_dir_all(&sub).unwrap();
    load_with_bash(&sandbox, &service, &[]);
    let out = sandbox.bash(
        &sub,
        "eval \"$(esc-hook export bash)\" || exit 9\nesc-hook status\nesc-hook status --json",
    );
    let text = stdout(&out);
    assert!(stderr(&out).contains("(cached, "), "{}", stderr(&out));
    assert_eq!(stand_in.opens(), 1, "the second shell opened nothing");
    for line in [
        ".escrc:      ~/mono/payments/.escrc (allowed)",
        "builds on:   ~/mono/.escrc (allowed)",
        "environment: acme/aws/dev + acme/payments/dev",
        "from:        acme/aws/dev: AWS_ACCESS_KEY_ID AWS_CREDENTIAL_EXPIRATION AWS_SECRET_ACCESS_KEY TEAM",
        "             acme/payments/dev: APP LEVEL",
        "             ~/mono/.escrc: ROOT",
        "             ~/mono/payments/.escrc: SERVICE",
    ] {
        assert!(text.contains(line), "{line}\n{text}");
    }
    let json_text = &text[text.find("\n{").unwrap()..];
    let json: serde_json::Value = serde_json::from_str(json_text).unwrap();
    assert_eq!(json["escrc"]["chain"][1]["trust"], "allowed");
    assert_eq!(json["escrc"]["chain"][0]["inherit"], true);
    assert_eq!(json["state"]["origins"]["LEVEL"], "acme/payments/dev");
    assert_eq!(
        json["state"]["origins"]["SERVICE"],
        "~/mono/payments/.escrc"
    );
    assert!(
        !text.contains("AKIAROOT") && !text.contains("root-secret"),
        "names only"
    );
    let _ = sandbox.run(&service, &["cache", "clear", "--all"]);
}

#[test]
fn a_swap_between_levels_exports_only_what_differs() {
    let sandbox = Sandbox::new();
    let root = allowed_project(
        &sandbox,
        "mono",
        "values:\n  ACCOUNT: dev\n  REGION: eu-west-1\n",
    );
    let service = allowed_project(
        &sandbox,
        "mono/pay",
        "inherit: true\nvalues:\n  SERVICE: pay\n  REGION: us-east-1\n",
    );
    let out = sandbox.bash(
        &service,
        &format!(
            "eval \"$(esc-hook export bash)\" || exit 9\ncd '{}' && esc-hook export bash",
            root.display()
        ),
    );
    let script = stdout(&out);
    assert!(script.contains("unset SERVICE"), "{script}");
    assert!(script.contains("REGION='eu-west-1'"), "{script}");
    assert!(
        !script.contains("export ACCOUNT"),
        "the same value is not set again: {script}"
    );
    assert!(
        stderr(&out).contains("leaving ~/mono/pay/.escrc for ~/mono/.escrc: ~REGION -SERVICE"),
        "{}",
        stderr(&out)
    );
}

/// A chain's credentials never go stale either: at the refresh point the prompt goes on with
/// the old ones while a background refresher opens the whole chain again into the cache, and
/// the next prompt swaps the new ones in.
#[test]
fn a_chain_refreshes_in_the_background() {
    if !have_keyrings() {
        return;
    }
    let stand_in = StandIn::start(json!({
        "acme/payments/dev": {"read": numbered_payments()},
        "acme/extra/dev": {"read": read_with(&[("EXTRA", "1")])},
    }));
    let mut sandbox = cached_esc(&stand_in);
    sandbox.set("ESC_HOOK_REFRESH_MARGIN", "20s");
    allowed_project(
        &sandbox,
        "mono",
        "environment: acme/payments/dev\nttl: 30s\n",
    );
    let service = allowed_project(
        &sandbox,
        "mono/service",
        "inherit: true\nenvironment: acme/extra/dev\n",
    );
    let out = sandbox.bash(
        &service,
        r#"
        eval "$(esc-hook export bash)"; first=$AWS_ACCESS_KEY_ID
        sleep 11; eval "$(esc-hook export bash)"; at_point=$AWS_ACCESS_KEY_ID
        sleep 2.5; eval "$(esc-hook export bash)"
        echo "$first $at_point $AWS_ACCESS_KEY_ID $EXTRA"
    "#,
    );
    assert_eq!(stdout(&out), "AKIA-1 AKIA-1 AKIA-2 1\n", "{}", stderr(&out));
    let bodies: Vec<serde_json::Value> = stand_in
        .requests()
        .iter()
        .map(|r| r["body"].clone())
        .filter(|b| b.as_str().is_some_and(|b| !b.is_empty()))
        .collect();
    assert_eq!(
        bodies,
        vec![json!("imports:\n  - payments/dev\n  - extra/dev\n"); 2],
        "the refresher opened the whole chain"
    );
    let _ = sandbox.run(&service, &["cache", "clear", "--all"]);
}

/// A parent `.escrc` another user put above an allowed project (a shared `/tmp`, a checkout's
/// parent directory) is never merged in: the chain is refused, naming that file, before any
/// request, and it cannot be allowed.
#[test]
fn a_parent_owned_by_another_user_is_refused_by_name() {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("note: not root, so no file can be given away; ownership refusal not exercised");
        return;
    }
    let stand_in = monorepo_stand_in();
    let sandbox = Sandbox::uncached_esc(&stand_in);
    let shared = sandbox.project(
        "shared",
        "environment: acme/aws/dev\nvalues: {PLANTED: yes}\n",
    );
    std::os::unix::fs::chown(shared.join(".escrc"), Some(65534), None).unwrap();
    let mine = allowed_project(
        &sandbox,
        "shared/mine",
        "inherit: true\nvalues: {MINE: yes}\n",
    );
    let (vars, log) = load_with_bash(&sandbox, &mine, &["MINE", "PLANTED"]);
    assert_eq!(vars, ["MINE=<unset>", "PLANTED=<unset>"]);
    assert!(
        log.contains("shared/.escrc is owned by another user (uid 65534)"),
        "{log}"
    );
    let allow = sandbox.run(&shared, &["allow"]);
    assert_eq!(allow.status.code(), Some(1), "{}", stderr(&allow));
    assert_eq!(stand_in.requests().len(), 0);
}

/// `inherit: true` with no `.escrc` above is an error naming the file, and the hooks watch all
/// the way up: a parent appearing later (and allowed) is merged in at the next prompt.
fn a_parent_appearing_above(shell: Sh) {
    if !available(shell) {
        return;
    }
    let sandbox = Sandbox::new();
    let child = allowed_project(&sandbox, "mono/svc", "inherit: true\nvalues:\n  Y: svc\n");
    let parent = child.parent().unwrap().to_path_buf();
    let name = shell.name();
    let mut session = Session::new(shell, &sandbox);
    session
        .probe("alone", &["X", "Y"])
        .run(&format!(
            "printf 'values:\\n  X: root\\n' > '{}'",
            parent.join(".escrc").display()
        ))
        .run("esc-hook allow ..")
        .probe("joined", &["X", "Y"]);
    let (probes, log) = session.finish(&child);
    expect(&probes, "alone", &[("X", "<unset>"), ("Y", "<unset>")]);
    expect(&probes, "joined", &[("X", "root"), ("Y", "svc")]);
    assert!(
        log.iter()
            .any(|l| l
                .contains("mono/svc/.escrc:1:10: inherit: true, but there is no .escrc above it")),
        "{name}: {log:#?}"
    );
}

#[test]
fn a_parent_appearing_above_a_child_that_inherits_is_merged_in_every_shell() {
    for shell in SHELLS {
        a_parent_appearing_above(shell);
    }
}

// A layered project nobody allowed yet: the first refusal named only the nearest file, and each
// parent surfaced one `allow` at a time. Now it names every file that waits, one
// `esc-hook allow --chain` trusts them all (saying which), and a path given with `..` is shown
// as the file it is.
#[test]
fn one_allow_trusts_a_whole_chain_and_says_which_files() {
    let sandbox = Sandbox::new();
    sandbox.project("mono", "values:\n  ROOT: yes\n");
    sandbox.project("mono/services", "inherit: true\nvalues:\n  MID: yes\n");
    let leaf = sandbox.project("mono/services/pay", "inherit: true\nvalues:\n  LEAF: yes\n");
    let (vars, log) = load_with_bash(&sandbox, &leaf, &["LEAF"]);
    assert_eq!(vars, ["LEAF=<unset>"]);
    assert!(
        log.contains("3 files of this project wait to be allowed (~/mono/services/pay/.escrc, ~/mono/services/.escrc, ~/mono/.escrc): run `esc-hook allow --chain` to trust them all"),
        "{log}"
    );
    let out = sandbox.run(&leaf, &["allow", "--chain"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let said = stderr(&out);
    assert!(
        said.contains("allowed ~/mono/services/pay/.escrc"),
        "{said}"
    );
    assert!(
        said.contains("allowed too, as ~/mono/services/pay/.escrc builds on them: ~/mono/services/.escrc, ~/mono/.escrc"),
        "{said}"
    );
    assert!(
        !said.contains("builds on ~/"),
        "nothing waits any more: {said}"
    );
    let (vars, _) = load_with_bash(&sandbox, &leaf, &["LEAF", "MID", "ROOT"]);
    assert_eq!(vars, ["LEAF=yes", "MID=yes", "ROOT=yes"]);
    let dotted = sandbox.run(&leaf, &["allow", "../.."]);
    assert!(
        stderr(&dotted).contains("allowed ~/mono/.escrc"),
        "{}",
        stderr(&dotted)
    );
    assert!(!stderr(&dotted).contains(".."), "{}", stderr(&dotted));
}
