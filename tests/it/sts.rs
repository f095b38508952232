//! AWS STS against moto's real STS server: a chained session per project, web identity with
//! no ESC at all, the identity check, and credential_process for the real AWS CLI. STS
//! failures that moto cannot produce come from the stand-in's STS mode.

use std::process::Command;

use serde_json::json;

use crate::common::*;

pub const ROLE: &str = "arn:aws:iam::123456789012:role/deploy";

pub fn sts_sandbox(moto: &Moto) -> Sandbox {
    let mut sandbox = Sandbox::new();
    sandbox
        .extra_env
        .push(("AWS_ENDPOINT_URL_STS".into(), moto.url()));
    sandbox.set("ESC_HOOK_KEYRING", "none");
    sandbox
}

fn epoch_of(rfc3339: &str) -> u64 {
    let out = Command::new("date")
        .args(["-u", "-d", rfc3339, "+%s"])
        .output()
        .unwrap();
    stdout(&out).trim().parse().unwrap()
}

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

#[test]
fn assume_role_chains_from_the_environment_and_sts_expiry_drives_the_shell() {
    let Some(moto) = Moto::start() else { return };
    let stand_in = StandIn::payments();
    let mut sandbox = sts_sandbox(&moto);
    sandbox.with_esc(&stand_in);
    let escrc = format!(
        "environment: acme/payments/dev\naws:\n  region: eu-central-1\n  assume-role:\n    role-arn: {ROLE}\n    session-name: ci-deploy\n    duration: 15m\n    external-id: x-123\n    policy-arns: [arn:aws:iam::aws:policy/ReadOnlyAccess]\n"
    );
    let dir = allowed_project(&sandbox, "payments", &escrc);
    let started = now();
    let out = sandbox.bash(&dir, r#"
        eval "$(esc-hook export bash)"
        echo "$AWS_ACCESS_KEY_ID"; echo "$AWS_CREDENTIAL_EXPIRATION"; echo "$AWS_REGION $AWS_DEFAULT_REGION"
        esc-hook status --verify | grep '^aws:'
    "#);
    let text = stdout(&out);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 4, "{text}{}", stderr(&out));
    assert_ne!(
        lines[0], "ASIAEXAMPLEKEYID0001",
        "the chained session replaced the base keys"
    );
    let expires = epoch_of(lines[1]);
    assert!(
        (started + 900..=now() + 901).contains(&expires),
        "STS's 15m expiry, not ESC's 1h: {}",
        lines[1]
    );
    assert_eq!(lines[2], "eu-central-1 eu-central-1");
    assert!(lines[3].contains("assumed-role/deploy/ci-deploy"), "{text}");
    assert_eq!(stand_in.opens(), 1);
}

#[test]
fn web_identity_from_a_file_or_a_command_needs_no_pulumi_at_all() {
    let Some(moto) = Moto::start() else { return };
    let sandbox = sts_sandbox(&moto);
    for source in ["token-file: token.jwt", "token-command: cat token.jwt"] {
        let escrc = format!(
            "aws:\n  web-identity:\n    role-arn: arn:aws:iam::123456789012:role/ci\n    {source}\n    session-name: build-7\n"
        );
        let dir = allowed_project(&sandbox, &format!("p-{}", source.len()), &escrc);
        std::fs::write(dir.join("token.jwt"), "eyJhbGciOiJSUzI1NiJ9.e30.c2ln\n").unwrap();
        let out = sandbox.bash(
            &dir,
            r#"
            eval "$(esc-hook export bash)"
            test -n "$AWS_SESSION_TOKEN" && esc-hook status --verify | grep '^aws:'
        "#,
        );
        assert!(
            stdout(&out).contains("assumed-role/ci/build-7"),
            "{source}: {}{}",
            stdout(&out),
            stderr(&out)
        );
        assert!(
            !stderr(&out).contains("pulumi"),
            "no Pulumi login was needed: {}",
            stderr(&out)
        );
    }
}

#[test]
fn the_aws_cli_uses_esc_hook_as_its_credential_process_and_the_cache_serves_the_second_call() {
    let Some(moto) = Moto::start() else { return };
    if !have_keyrings() {
        return;
    }
    let aws = repo().join(".venv/bin/aws");
    assert!(aws.exists(), "the test virtualenv holds awscli");
    let stand_in = StandIn::payments();
    let mut sandbox = Sandbox::new();
    sandbox.with_esc(&stand_in);
    sandbox.set("ESC_HOOK_KEYRING", "secret-service");
    let config = sandbox.home().join(".aws/config");
    std::fs::create_dir_all(config.parent().unwrap()).unwrap();
    std::fs::write(
        &config,
        format!(
            "[profile payments]\ncredential_process = {} credential-process --env acme/payments/dev\nregion = us-east-1\n",
            bin()
        ),
    )
    .unwrap();
    for _ in 0..2 {
        let out = Command::new(&aws)
            .args([
                "sts",
                "get-caller-identity",
                "--profile",
                "payments",
                "--endpoint-url",
                &moto.url(),
                "--output",
                "json",
            ])
            .env_clear()
            .envs(sandbox.env())
            .output()
            .unwrap();
        assert!(out.status.success(), "aws: {}", stderr(&out));
        let identity: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(identity["Account"], "123456789012");
    }
    assert_eq!(stand_in.opens(), 1, "the second call came from the cache");
}

#[test]
fn credential_process_prints_the_aws_format() {
    let stand_in = StandIn::payments();
    let sandbox = Sandbox::uncached_esc(&stand_in);
    let out = sandbox.run(
        &sandbox.home(),
        &["credential-process", "--env", "acme/payments/dev"],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["Version"], 1);
    assert_eq!(json["AccessKeyId"], "ASIAEXAMPLEKEYID0001");
    assert_eq!(
        json["SecretAccessKey"],
        "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
    );
    assert_eq!(json["SessionToken"], "IQoJb3JpZ2luX2VjEXAMPLETOKEN+/=");
    let expires = epoch_of(json["Expiration"].as_str().unwrap());
    assert!(
        expires.abs_diff(now() + 3600) < 15,
        "the aws-login duration (1h)"
    );

    // --dir needs an allowed .escrc.
    let dir = sandbox.project("payments", "environment: acme/payments/dev\n");
    let refused = sandbox.run(&dir, &["credential-process", "--dir", "."]);
    assert_eq!(refused.status.code(), Some(1));
    assert!(
        stderr(&refused).contains("is not allowed"),
        "{}",
        stderr(&refused)
    );
    sandbox.allow(&dir);
    let allowed = sandbox.run(
        &dir,
        &["credential-process", "--dir", dir.to_str().unwrap()],
    );
    assert!(allowed.status.success(), "{}", stderr(&allowed));
}

/// Each STS failure: one line naming its class, a working shell, nothing exported.
#[test]
fn every_sts_failure_class_gives_its_line_and_leaves_the_shell_working() {
    let cases = [
        (
            "AccessDenied",
            "STS refused AssumeRoleWithWebIdentity for arn:aws:iam::123456789012:role/ci (AccessDenied)",
        ),
        ("ExpiredToken", "have expired (ExpiredToken)"),
        (
            "InvalidIdentityToken",
            "STS rejected the web identity token for arn:aws:iam::123456789012:role/ci (InvalidIdentityToken)",
        ),
        (
            "RegionDisabledException",
            "STS is not enabled in eu-south-2 (RegionDisabled)",
        ),
        ("Throttling", "STS is throttling requests (Throttling)"),
    ];
    for (code, expected) in cases {
        let stand_in = StandIn::start(json!({}));
        let mut sandbox = Sandbox::new();
        sandbox
            .extra_env
            .push(("AWS_ENDPOINT_URL_STS".into(), stand_in.url()));
        sandbox.set("ESC_HOOK_KEYRING", "none");
        set_sts_fault(&stand_in, code);
        let dir = allowed_project(
            &sandbox,
            "ci",
            "aws:\n  region: eu-south-2\n  web-identity:\n    role-arn: arn:aws:iam::123456789012:role/ci\n    token-file: t\n",
        );
        std::fs::write(dir.join("t"), "token").unwrap();
        let out = sandbox.bash(
            &dir,
            r#"
            eval "$(esc-hook export bash)"; echo "alive=$? key=${AWS_ACCESS_KEY_ID-unset}"
            eval "$(esc-hook export bash)"
        "#,
        );
        assert_eq!(
            stdout(&out),
            "alive=0 key=unset\n",
            "{code}: {}",
            stderr(&out)
        );
        let log = stderr(&out);
        assert_eq!(log.lines().count(), 1, "{code}: one line, once: {log}");
        assert!(log.contains(expected), "{code}: {log}");
    }

    // No answer at all: each network cause named, not the SDK's Debug text.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let silent_port = silent.local_addr().unwrap().port();
    let plain_http = StandIn::start(json!({}));
    let refused = free_port();
    let cases = [
        (
            format!("http://127.0.0.1:{refused}"),
            "connection refused".to_string(),
        ),
        (
            "https://sts.esc-hook-test.invalid".into(),
            "the host name does not resolve (DNS)".into(),
        ),
        (
            plain_http.url().replace("http://", "https://"),
            "TLS failed: ".into(),
        ),
        (
            format!("http://127.0.0.1:{silent_port}"),
            "did not answer within 2s".into(),
        ),
    ];
    for (url, expected) in cases {
        let mut sandbox = Sandbox::new();
        sandbox
            .extra_env
            .push(("AWS_ENDPOINT_URL".into(), url.clone()));
        sandbox.set("ESC_HOOK_KEYRING", "none");
        sandbox.set("ESC_HOOK_TIMEOUT", "2s");
        let dir = allowed_project(
            &sandbox,
            "ci",
            "aws:\n  web-identity:\n    role-arn: arn:aws:iam::123456789012:role/ci\n    token-file: t\n",
        );
        std::fs::write(dir.join("t"), "token").unwrap();
        let (vars, log) = load_with_bash(&sandbox, &dir, &["AWS_ACCESS_KEY_ID"]);
        assert_eq!(vars, ["AWS_ACCESS_KEY_ID=<unset>"]);
        assert!(log.contains(&expected), "{url}: {log}");
        assert!(
            !log.contains('}') && !log.contains("Unknown"),
            "{url}: {log}"
        );
        assert_eq!(log.lines().count(), 1, "{url}: {log}");
    }
    drop(silent);
}

fn set_sts_fault(stand_in: &StandIn, code: &str) {
    use std::io::{Read, Write};
    let body = json!({"token": stand_in.token, "environments": {}, "sts_fault": code}).to_string();
    let mut stream =
        std::net::TcpStream::connect(stand_in.url().trim_start_matches("http://")).unwrap();
    write!(
        stream,
        "POST /_stand-in/config HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
}

// `status --verify` asked STS in the user's region, not the loaded project's, and printed its
// failure twice (in the report and again as the error). It asks in the project's `.escrc`
// region now (never one the environment returned), and says why once.
#[test]
fn status_verify_asks_in_the_projects_region_and_says_why_once() {
    let stand_in = StandIn::start(serde_json::json!({}));
    stand_in.configure(serde_json::json!({"sts_fault": "AccessDenied"}));
    let mut sandbox = Sandbox::new();
    sandbox.set("ESC_HOOK_KEYRING", "none");
    sandbox.set("AWS_ENDPOINT_URL_STS", &stand_in.url());
    sandbox.set("AWS_REGION", "us-east-1");
    let dir = allowed_project(
        &sandbox,
        "p",
        "values:\n  AWS_ACCESS_KEY_ID: AKIAEXAMPLE\n  AWS_SECRET_ACCESS_KEY: secretvalue\n  AWS_REGION: eu-west-3\naws:\n  region: eu-central-1\n",
    );
    let out = sandbox.bash(
        &dir,
        "eval \"$(esc-hook export bash 2>/dev/null)\"; esc-hook status --verify; echo \"exit=$?\"",
    );
    let (shown, log) = (stdout(&out), stderr(&out));
    assert!(shown.contains("exit=1"), "{shown}{log}");
    assert!(shown.contains("aws:         not verified: "), "{shown}");
    assert!(
        !log.contains("AccessDenied"),
        "the reason is said once: {log}"
    );
    assert!(log.contains("not verified (why: above)"), "{log}");
    let asked = stand_in
        .requests()
        .into_iter()
        .find(|r| r["path"] == "/")
        .unwrap();
    let authorization = asked["headers"]["authorization"]
        .as_str()
        .unwrap_or_default();
    assert!(
        authorization.contains("/eu-central-1/sts/"),
        "{authorization}"
    );
}
