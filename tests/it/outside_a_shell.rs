//! The places a prompt never reaches: a GitHub Actions job (`export gha`, read back the way the
//! runner reads `$GITHUB_ENV`) and `.env` files (`export dotenv`, read back by python-dotenv),
//! every value byte for byte, secrets masked in the job's log.

use std::collections::BTreeMap;
use std::fs;

use crate::common::*;

/// The runner's reading of `$GITHUB_ENV` (actions/runner, SetEnvFileCommand): by lines (a line
/// ends at LF, CRLF or CR), `NAME=value`, or `NAME<<DELIMITER` then lines up to the delimiter,
/// joined with LF.
fn read_github_env(text: &str) -> BTreeMap<String, String> {
    let lines: Vec<&str> = text
        .split("\r\n")
        .flat_map(|l| l.split(['\r', '\n']))
        .collect();
    let mut vars = BTreeMap::new();
    let mut index = 0;
    while index < lines.len() {
        let line = lines[index];
        index += 1;
        if line.is_empty() {
            continue;
        }
        if let Some((name, delimiter)) = line.split_once("<<") {
            let mut value = Vec::new();
            loop {
                assert!(index < lines.len(), "no closing {delimiter}");
                let next = lines[index];
                index += 1;
                if next == delimiter {
                    break;
                }
                value.push(next);
            }
            vars.insert(name.to_string(), value.join("\n"));
        } else if let Some((name, value)) = line.split_once('=') {
            vars.insert(name.to_string(), value.to_string());
        }
    }
    vars
}

#[test]
fn export_gha_appends_every_value_exactly_and_masks_the_secrets() {
    let stand_in = StandIn::payments();
    let sandbox = Sandbox::uncached_esc(&stand_in);
    let mut values = crate::quoting::all_values();
    // What the runner cannot carry (a carriage return) is left out, with a line.
    let carried: Vec<String> = values
        .iter()
        .filter(|(_, v)| v.contains('\r'))
        .map(|(k, _)| k.clone())
        .collect();
    values.insert("MULTI".into(), "first\nESC_HOOK_x\n%0A and %\n".into());
    let escrc = serde_yaml::to_string(&serde_json::json!({
        "environment": "acme/payments/dev",
        "values": values,
    }))
    .unwrap();
    let dir = allowed_project(&sandbox, "payments", &escrc);
    let github_env = sandbox.path("set_env_file");
    fs::write(&github_env, "EARLIER=kept\n").unwrap();
    let out = sandbox
        .esc(&dir, &["export", "gha"])
        .env("GITHUB_ENV", &github_env)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let written = read_github_env(&fs::read_to_string(&github_env).unwrap());
    assert_eq!(written["EARLIER"], "kept", "appended, not replaced");
    assert_eq!(written["MULTI"], "first\nESC_HOOK_x\n%0A and %\n");
    for (name, value) in &values {
        if carried.contains(name) {
            assert!(!written.contains_key(name), "{name}");
            continue;
        }
        assert_eq!(written.get(name), Some(value), "{name}");
    }
    assert_eq!(written["AWS_ACCESS_KEY_ID"], "ASIAEXAMPLEKEYID0001");
    let secret = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";
    assert_eq!(written["AWS_SECRET_ACCESS_KEY"], secret);
    // Every secret masked before anything else, and nothing of it on stderr.
    let masks = stdout(&out);
    assert!(
        masks.lines().all(|l| l.starts_with("::add-mask::")),
        "{masks}"
    );
    assert!(
        masks.contains(&format!("::add-mask::{secret}\n")),
        "{masks}"
    );
    assert!(
        masks.contains("::add-mask::IQoJb3JpZ2luX2VjEXAMPLETOKEN"),
        "{masks}"
    );
    assert!(
        !masks.contains("eu-west-1"),
        "a plain value is not masked: {masks}"
    );
    let log = stderr(&out);
    assert!(!log.contains(secret), "{log}");
    assert!(log.contains("exported "), "{log}");
    if !carried.is_empty() {
        assert!(
            log.contains("a carriage return in a value cannot pass"),
            "{log}"
        );
    }
    // Outside Actions: one line, nothing opened.
    let opens = stand_in.opens();
    let outside = sandbox.run(&dir, &["export", "gha"]);
    assert_eq!(outside.status.code(), Some(1));
    assert!(
        stderr(&outside)
            .contains("export gha runs in a GitHub Actions step, and GITHUB_ENV is not set"),
        "{}",
        stderr(&outside)
    );
    assert_eq!(stand_in.opens(), opens);
}

#[test]
fn export_dotenv_reads_back_byte_for_byte_in_python_dotenv() {
    let python = repo().join(".venv/bin/python");
    if !python.exists() {
        return skip(".venv (python-dotenv) is missing: run tests/run.sh once");
    }
    let stand_in = StandIn::payments();
    let sandbox = Sandbox::uncached_esc(&stand_in);
    let values = crate::quoting::all_values();
    let escrc = serde_yaml::to_string(&serde_json::json!({
        "environment": "acme/payments/dev",
        "values": values,
    }))
    .unwrap();
    let dir = allowed_project(&sandbox, "payments", &escrc);
    let out = sandbox.run(&dir, &["export", "dotenv"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let file = sandbox.path("exported.env");
    fs::write(&file, &out.stdout).unwrap();
    // Read as a file, as an application would (line endings translated), without expansion.
    let read = std::process::Command::new(&python)
        .args([
            "-c",
            "import json, sys\nfrom dotenv import dotenv_values\nprint(json.dumps(dotenv_values(sys.argv[1], interpolate=False)))",
        ])
        .arg(&file)
        .output()
        .unwrap();
    assert!(read.status.success(), "{}", stderr(&read));
    let back: BTreeMap<String, String> = serde_json::from_slice(&read.stdout).unwrap();
    for (name, value) in &values {
        assert_eq!(back.get(name), Some(value), "{name}");
    }
    assert_eq!(back["AWS_ACCESS_KEY_ID"], "ASIAEXAMPLEKEYID0001");
}

// CI login without a stored Pulumi token: the job's OIDC ID token is exchanged (RFC 8693, at the
// backend's /api/oauth/token) for a short-lived Pulumi token, kept in the keyring with its
// expiry and used for that backend only. The ID token never shows; a refused exchange is one
// line; an expired token is never sent.
#[test]
fn a_ci_job_logs_in_by_oidc_token_exchange() {
    if !have_keyrings() {
        return;
    }
    let stand_in = StandIn::payments();
    let id_token = "eyJhbGciOiJSUzI1NiJ9.ci-job-id-token.c2ln";
    let configure = |expires_in: u64| {
        stand_in.configure(serde_json::json!({
            "environments": {"acme/payments/dev": {"read": fixture("read-payments-dev.json")}},
            "oidc": {"subject_token": id_token, "org": "acme", "expires_in": expires_in},
        }))
    };
    configure(7200);
    let mut sandbox = Sandbox::new();
    sandbox.set("PULUMI_BACKEND_URL", &stand_in.url());
    sandbox.set("ESC_HOOK_KEYRING", "keyutils");
    let dir = allowed_project(&sandbox, "payments", "environment: acme/payments/dev\n");
    let token_file = sandbox.path("id-token");
    fs::write(&token_file, format!("{id_token}\n")).unwrap();
    let at_file = format!("@{}", token_file.display());

    let login = sandbox.run(
        &dir,
        &["login", "--oidc-token", &at_file, "--oidc-org", "acme"],
    );
    assert!(login.status.success(), "{}", stderr(&login));
    let said = stderr(&login);
    assert!(
        said.contains("logged in to http://127.0.0.1:")
            && said.contains("as organization acme for 2h"),
        "{said}"
    );
    let exchange = stand_in
        .requests()
        .into_iter()
        .find(|r| r["path"] == "/api/oauth/token")
        .unwrap();
    assert_eq!(exchange["body"]["audience"], "urn:pulumi:org:acme");
    assert_eq!(
        exchange["body"]["requested_token_type"],
        "urn:pulumi:token-type:access_token:organization"
    );
    // Later commands of the job use it, for this backend.
    let out = sandbox
        .esc(
            &dir,
            &["exec", "--", "sh", "-c", "echo \"$AWS_ACCESS_KEY_ID\"; env"],
        )
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).starts_with("ASIAEXAMPLEKEYID0001\n"));
    assert_eq!(stand_in.opens(), 1 + 1, "the exchange and one open");
    for text in [said.as_str(), &stdout(&out), &stderr(&out)] {
        assert!(!text.contains(id_token), "the ID token shows: {text}");
    }

    // Refused: one line, the ID token not in it.
    for (args, expected) in [
        (
            ["--oidc-token", "not-the-token", "--oidc-org", "acme"],
            "(401): the ID token is not trusted",
        ),
        (
            ["--oidc-token", id_token, "--oidc-org", "globex"],
            "(400): unknown organization",
        ),
    ] {
        let mut all = vec!["login"];
        all.extend(args);
        let refused = sandbox.run(&dir, &all);
        assert_eq!(refused.status.code(), Some(1));
        let line = stderr(&refused);
        assert_eq!(line.lines().count(), 1, "{line}");
        assert!(
            line.contains("refused the OIDC token exchange") && line.contains(expected),
            "{line}"
        );
        assert!(
            !line.contains(id_token) && !line.contains("not-the-token"),
            "{line}"
        );
    }

    // An expired token is never sent: the line says to log in again.
    configure(1);
    let login = sandbox.run(
        &dir,
        &["login", "--oidc-token", &at_file, "--oidc-org", "acme"],
    );
    assert!(login.status.success(), "{}", stderr(&login));
    std::thread::sleep(std::time::Duration::from_millis(2100));
    let _ = sandbox.run(&dir, &["cache", "clear", "--all"]);
    let before = stand_in.requests().len();
    let expired = sandbox.run(&dir, &["exec", "--", "true"]);
    assert_eq!(expired.status.code(), Some(125));
    assert!(
        stderr(&expired).contains("expired at") && stderr(&expired).contains("log in again"),
        "{}",
        stderr(&expired)
    );
    assert_eq!(stand_in.requests().len(), before, "nothing was sent");
}

// `esc-hook console`: the AWS console for the project, from its current session, through the
// federation endpoint (here the stand-in's, named by the user's config file: a project or an
// environment never can). The secret key and session token go to that endpoint only: never
// into the URL, a line or an error.
#[test]
fn console_signs_in_through_the_federation_endpoint_the_user_names() {
    let stand_in = StandIn::payments();
    stand_in.configure(serde_json::json!({
        "environments": {"acme/payments/dev": {"read": fixture("read-payments-dev.json")}},
        "federation": {"access_key_id": "ASIAEXAMPLEKEYID0001"},
    }));
    let sandbox = Sandbox::uncached_esc(&stand_in);
    sandbox.write_user_config(&format!(
        "aws-signin-url = \"{}/federation\"\n",
        stand_in.url()
    ));
    let dir = allowed_project(&sandbox, "payments", "environment: acme/payments/dev\n");
    let out = sandbox.run(&dir, &["console", "--print"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let url = stdout(&out);
    assert!(
        url.starts_with(&format!("{}/federation?Action=login&Issuer=esc-hook&Destination=https%3A%2F%2Feu-west-1.console.aws.amazon.com", stand_in.url())),
        "{url}"
    );
    assert!(
        url.trim_end()
            .ends_with("&SigninToken=signin-token-from-stand-in"),
        "{url}"
    );
    let secret = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";
    let token = "IQoJb3JpZ2luX2VjEXAMPLETOKEN";
    for text in [url.as_str(), &stderr(&out)] {
        assert!(!text.contains(secret) && !text.contains(token), "{text}");
    }
    // The session went to the endpoint, and only there.
    let asked = stand_in
        .requests()
        .into_iter()
        .find(|r| r["path"] == "/federation")
        .unwrap();
    assert!(
        asked["query"]
            .as_str()
            .unwrap()
            .contains("Action=getSigninToken")
    );

    // A project cannot name the endpoint: its ESC_HOOK_* values are refused, and the
    // environment's region only picks the console's page, validated.
    let mut hostile = Sandbox::uncached_esc(&stand_in);
    hostile.set("BROWSER", "false");
    let dir = allowed_project(
        &hostile,
        "payments",
        &format!(
            "environment: acme/payments/dev\nvalues:\n  ESC_HOOK_AWS_SIGNIN_URL: {}/federation\n",
            stand_in.url()
        ),
    );
    let before = stand_in.requests().len();
    let out = hostile
        .esc(&dir, &["console", "--print"])
        .env("ESC_HOOK_KEYRING", "none")
        .output()
        .unwrap();
    // Without the user's setting the real endpoint is used, which is not reachable here.
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("the AWS sign-in endpoint https://signin.aws.amazon.com/federation"),
        "{}",
        stderr(&out)
    );
    assert_eq!(
        stand_in.requests().len(),
        before + 2,
        "only the open: {:?}",
        stand_in.requests()
    );
}

// Pinned environments (`@2`, `@stable`) keep working in the commands for places a prompt never
// reaches: the open goes to that version.
#[test]
fn the_new_commands_open_a_pinned_version() {
    let stand_in = StandIn::start(serde_json::json!({
        "acme/payments/dev@2": {"read": fixture("read-payments-dev.json")},
    }));
    let sandbox = Sandbox::uncached_esc(&stand_in);
    let home = sandbox.home();
    let out = sandbox.run(&home, &["export", "dotenv", "--env", "acme/payments/dev@2"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("AWS_ACCESS_KEY_ID=\"ASIAEXAMPLEKEYID0001\""),
        "{}",
        stdout(&out)
    );
    let opened = stand_in
        .requests()
        .into_iter()
        .find(|r| r["method"] == "POST")
        .unwrap();
    assert!(
        opened["path"]
            .as_str()
            .unwrap()
            .ends_with("/acme/payments/dev/versions/2/open"),
        "{opened}"
    );
    let redacted = sandbox
        .esc(
            &home,
            &[
                "exec",
                "--env",
                "acme/payments/dev@2",
                "--redact",
                "--min-ttl",
                "10m",
                "--",
                "sh",
                "-c",
                "echo $AWS_SECRET_ACCESS_KEY",
            ],
        )
        .output()
        .unwrap();
    assert_eq!(stdout(&redacted), "[secret]\n", "{}", stderr(&redacted));
}
