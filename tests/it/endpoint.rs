//! Credentials that never go stale for work that outlives them: `exec --server` (a loopback
//! endpoint in the container-credentials format), with moto's STS, boto3 and the AWS CLI, and a
//! ttl short enough that the credentials rotate several times within a test.

use std::net::TcpStream;
use std::path::PathBuf;

use crate::common::*;

/// The virtualenv's python (boto3 comes with moto) and AWS CLI.
fn venv(program: &str) -> Option<PathBuf> {
    let path = repo().join(".venv/bin").join(program);
    if path.exists() {
        Some(path)
    } else {
        skip(&format!(
            ".venv/bin/{program} is missing (run .ci/run's setup)"
        ));
        None
    }
}

/// A sandbox logged in to a stand-in whose every open gives a new key (AKIA-1, AKIA-2, …),
/// with STS at moto, and a project whose credentials live 6 seconds and are refreshed 3
/// seconds before they expire.
fn rotating_project(stand_in: &StandIn, moto: &Moto, escrc_extra: &str) -> (Sandbox, PathBuf) {
    let mut sandbox = Sandbox::new();
    sandbox.with_esc(stand_in);
    sandbox.set("ESC_HOOK_KEYRING", "none");
    sandbox.set("ESC_HOOK_REFRESH_MARGIN", "3s");
    sandbox.set("AWS_ENDPOINT_URL_STS", &moto.url());
    sandbox.set("AWS_DEFAULT_REGION", "us-east-1");
    let dir = allowed_project(
        &sandbox,
        "payments",
        &format!("environment: acme/payments/dev\nttl: 6s\n{escrc_extra}"),
    );
    (sandbox, dir)
}

/// The distinct keys a key loop signed with, and its summary line.
fn keys_and_summary(output: &str) -> (Vec<String>, String) {
    let keys = output
        .lines()
        .filter_map(|l| l.strip_prefix("key "))
        .map(String::from)
        .collect();
    let summary = output
        .lines()
        .find(|l| l.starts_with("calls="))
        .unwrap_or_default()
        .to_string();
    (keys, summary)
}

#[test]
fn exec_server_keeps_a_long_boto3_client_and_the_aws_cli_working_across_rotations() {
    let (Some(python), Some(aws), Some(moto)) = (venv("python"), venv("aws"), Moto::start()) else {
        return;
    };
    let stand_in =
        StandIn::start(serde_json::json!({"acme/payments/dev": {"read": numbered_payments()}}));
    let (sandbox, dir) = rotating_project(&stand_in, &moto, "");
    let key_loop = repo().join("tests/support/aws_key_loop.py");
    let script = format!(
        "set -u; '{python}' '{key_loop}' 13 || echo 'loop failed'; \
         echo \"uri=$AWS_CONTAINER_CREDENTIALS_FULL_URI\"; \
         for i in 1 2; do '{aws}' sts get-caller-identity --debug 2>&1 | grep -o 'Credential=[^/]*' | head -1; sleep 3.5; done",
        python = python.display(),
        key_loop = key_loop.display(),
        aws = aws.display(),
    );
    let out = sandbox
        .esc(&dir, &["exec", "--server", "--", "bash", "-c", &script])
        .output()
        .unwrap();
    let shown = stdout(&out);
    assert!(out.status.success(), "{shown}{}", stderr(&out));
    let (keys, summary) = keys_and_summary(&shown);
    assert_eq!(
        summary,
        format!("calls={} failures=0 static=none", summary_calls(&summary)),
        "{shown}"
    );
    assert!(
        keys.len() >= 4,
        "one client saw at least 3 rotations: {keys:?}\n{shown}{}",
        stderr(&out)
    );
    assert!(!shown.contains("loop failed"), "{shown}");
    let cli_keys: Vec<&str> = shown
        .lines()
        .filter_map(|l| l.strip_prefix("Credential="))
        .collect();
    assert_eq!(
        cli_keys.len(),
        2,
        "the AWS CLI signed with the served keys: {shown}"
    );
    assert_ne!(
        cli_keys[0], cli_keys[1],
        "and with fresh ones later: {shown}"
    );
    assert!(
        !stderr(&out).contains("AKIA") && !stderr(&out).contains("SECRET"),
        "{}",
        stderr(&out)
    );

    // Gone with the command.
    let uri = shown
        .lines()
        .find_map(|l| l.strip_prefix("uri=http://"))
        .unwrap()
        .trim_end_matches("/credentials")
        .to_string();
    assert!(uri.starts_with("127.0.0.1:"), "loopback only: {uri}");
    assert!(
        TcpStream::connect(&uri).is_err(),
        "the endpoint ends with the command"
    );
}

fn summary_calls(summary: &str) -> &str {
    summary
        .strip_prefix("calls=")
        .and_then(|rest| rest.split(' ').next())
        .unwrap_or_default()
}

#[test]
fn the_exec_server_refuses_requests_without_its_token() {
    let stand_in = StandIn::payments();
    let mut sandbox = Sandbox::uncached_esc(&stand_in);
    sandbox.set("AWS_ACCESS_KEY_ID", "AKIAUSERSOWN");
    sandbox.set("AWS_PROFILE", "users-own");
    let dir = allowed_project(
        &sandbox,
        "payments",
        "environment: acme/payments/dev\naws:\n  credentials: server\n",
    );
    // The command reports what it was given, then asks the endpoint three ways.
    let script = r#"
        echo "static=${AWS_ACCESS_KEY_ID-none} profile=${AWS_PROFILE-none} secret=${AWS_SECRET_ACCESS_KEY-none}"
        hostport=${AWS_CONTAINER_CREDENTIALS_FULL_URI#http://}; hostport=${hostport%%/*}
        echo "hostport=$hostport"
        ask() { exec 3<>"/dev/tcp/${hostport%:*}/${hostport#*:}"; printf "GET /credentials HTTP/1.1\r\nHost: x\r\n$1\r\n" >&3; head -1 <&3; exec 3>&-; }
        echo "none: $(ask '')"
        echo "wrong: $(ask 'Authorization: nope\r\n')"
        echo "right: $(ask "Authorization: $AWS_CONTAINER_AUTHORIZATION_TOKEN\r\n")"
    "#;
    let out = sandbox
        .esc(&dir, &["exec", "--", "bash", "-c", script])
        .output()
        .unwrap();
    let shown = stdout(&out).replace('\r', "");
    assert!(out.status.success(), "{shown}{}", stderr(&out));
    assert!(
        shown.contains("static=none profile=none secret=none"),
        "no static keys (the project's or the user's) and no profile: {shown}"
    );
    assert!(shown.contains("none: HTTP/1.1 401"), "{shown}");
    assert!(shown.contains("wrong: HTTP/1.1 401"), "{shown}");
    assert!(shown.contains("right: HTTP/1.1 200"), "{shown}");
    // Nothing answers on other interfaces.
    let hostport = shown
        .lines()
        .find_map(|l| l.strip_prefix("hostport="))
        .unwrap()
        .to_string();
    assert!(hostport.starts_with("127.0.0.1:"), "{hostport}");
}

// `aws: { credentials: process }`: the hooked shell holds no static keys (not even the user's
// own, set aside while inside and back on leaving) but an AWS config whose default profile runs
// `esc-hook credential-process`; a long boto3 client started from it refreshes by itself.
#[test]
fn a_credentials_process_project_keeps_a_long_client_working_from_the_shell() {
    if !have_keyrings() || !crate::shells::available(crate::shells::Sh::Bash) {
        return;
    }
    let (Some(python), Some(moto)) = (venv("python"), Moto::start()) else {
        return;
    };
    let stand_in =
        StandIn::start(serde_json::json!({"acme/payments/dev": {"read": numbered_payments()}}));
    let (mut sandbox, dir) = rotating_project(&stand_in, &moto, "aws:\n  credentials: process\n");
    // The cache answers credential_process until the refresh point, as in real use.
    sandbox.set("ESC_HOOK_KEYRING", "keyutils");
    let out_file = sandbox.path("loop-output");
    let status_file = sandbox.path("status");
    let key_loop = repo().join("tests/support/aws_key_loop.py");
    let mut session = crate::shells::Session::new(crate::shells::Sh::Bash, &sandbox);
    session
        .user_set("AWS_ACCESS_KEY_ID", "AKIAUSERSOWN")
        .user_set("AWS_PROFILE", "users-own")
        .cd(&dir)
        .probe(
            "inside",
            &["AWS_ACCESS_KEY_ID", "AWS_SESSION_TOKEN", "AWS_PROFILE"],
        )
        .run(&format!(
            "'{}' '{}' 13 > '{}' 2>&1",
            python.display(),
            key_loop.display(),
            out_file.display()
        ))
        .run("export PROFILE_LINES=\"$(grep -c '^credential_process = ' \"$AWS_CONFIG_FILE\")\"")
        .run(&format!("esc-hook status > '{}'", status_file.display()))
        .probe("config", &["PROFILE_LINES"])
        .cd(&sandbox.home())
        .probe(
            "outside",
            &["AWS_ACCESS_KEY_ID", "AWS_PROFILE", "AWS_CONFIG_FILE"],
        );
    let (probes, log) = session.finish(&sandbox.home());
    crate::shells::expect(
        &probes,
        "inside",
        &[
            ("AWS_ACCESS_KEY_ID", "<unset>"),
            ("AWS_SESSION_TOKEN", "<unset>"),
            ("AWS_PROFILE", "default"),
        ],
    );
    crate::shells::expect(&probes, "config", &[("PROFILE_LINES", "1")]);
    crate::shells::expect(
        &probes,
        "outside",
        &[
            ("AWS_ACCESS_KEY_ID", "AKIAUSERSOWN"),
            ("AWS_PROFILE", "users-own"),
            ("AWS_CONFIG_FILE", "<unset>"),
        ],
    );
    let status = std::fs::read_to_string(&status_file).unwrap();
    assert!(
        status.contains("set aside:   AWS_ACCESS_KEY_ID (yours, back when you leave)"),
        "{status}"
    );
    assert!(
        status.contains("credentials: process (no keys in the shell"),
        "{status}"
    );
    assert!(
        !status
            .lines()
            .any(|l| l.starts_with("variables:") && l.contains("AWS_ACCESS_KEY_ID")),
        "{status}"
    );
    let output = std::fs::read_to_string(&out_file).unwrap();
    let (keys, summary) = keys_and_summary(&output);
    assert!(
        summary.ends_with("failures=0 static=none"),
        "{output}\n{log:#?}"
    );
    assert!(keys.len() >= 4, "at least 3 rotations: {keys:?}\n{output}");
    assert!(keys.iter().all(|k| k.starts_with("AKIA-")), "{keys:?}");
    let _ = sandbox.run(&dir, &["cache", "clear", "--all"]);
}

/// Kills the process whose id is in `file` (SIGKILL), if any: what a test left running.
fn kill_from(file: &std::path::Path) {
    if let Some(pid) = std::fs::read_to_string(file)
        .ok()
        .and_then(|text| text.trim().parse::<i32>().ok())
    {
        // SAFETY: a plain kill of a process this test started.
        unsafe { libc::kill(pid, libc::SIGKILL) };
    }
}

// Finding 8: processes the command leaves behind keep the endpoint's URI and token; once `exec`
// was gone, another user bound the freed port, received the token and served credentials of
// their own. Now a keeper holds the port while anything holds the token: nobody else can bind
// it, a leftover asking gets a refusal (never someone else's credentials), and once the last
// holder is gone the port is given up.
#[test]
fn the_endpoint_port_is_held_while_a_leftover_holds_its_token() {
    if !cfg!(target_os = "linux") {
        return;
    }
    let stand_in = StandIn::payments();
    let sandbox = Sandbox::uncached_esc(&stand_in);
    let dir = allowed_project(
        &sandbox,
        "payments",
        "environment: acme/payments/dev\naws:\n  credentials: server\n",
    );
    let pid_file = sandbox.path("leftover.pid");
    let uri_file = sandbox.path("uri");
    let token_file = sandbox.path("token");
    // The command starts something that outlives it, and ends.
    let script = format!(
        "sleep 60 </dev/null >/dev/null 2>&1 & echo $! > '{}'; printf %s \"$AWS_CONTAINER_CREDENTIALS_FULL_URI\" > '{}'; printf %s \"$AWS_CONTAINER_AUTHORIZATION_TOKEN\" > '{}'",
        pid_file.display(),
        uri_file.display(),
        token_file.display()
    );
    let out = sandbox
        .esc(&dir, &["exec", "--", "sh", "-c", &script])
        .output()
        .unwrap();
    struct Leftover(std::path::PathBuf);
    impl Drop for Leftover {
        fn drop(&mut self) {
            kill_from(&self.0);
        }
    }
    let leftover = Leftover(pid_file.clone());
    assert!(out.status.success(), "{}", stderr(&out));
    let uri = std::fs::read_to_string(&uri_file).unwrap();
    let token = std::fs::read_to_string(&token_file).unwrap();
    let hostport = uri
        .strip_prefix("http://")
        .and_then(|rest| rest.split('/').next())
        .unwrap()
        .to_string();
    // exec has ended; the port is not free for anyone else.
    let taken = std::net::TcpListener::bind(&hostport);
    assert!(taken.is_err(), "another process could bind {hostport}");
    // What the leftover gets when it asks: a refusal, not credentials.
    let mut stream = TcpStream::connect(&hostport).unwrap();
    use std::io::{Read, Write};
    write!(
        stream,
        "GET /credentials HTTP/1.1\r\nHost: x\r\nAuthorization: {token}\r\n\r\n"
    )
    .unwrap();
    let mut answer = String::new();
    stream
        .set_read_timeout(Some(std::time::Duration::from_secs(10)))
        .unwrap();
    let _ = stream.read_to_string(&mut answer);
    assert!(answer.starts_with("HTTP/1.1 503"), "{answer}");
    assert!(answer.contains("has ended"), "{answer}");
    assert!(!answer.contains("AccessKeyId"), "{answer}");
    // The last holder gone, the keeper lets go (it looks every 2 seconds).
    drop(leftover);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let mut freed = false;
    while std::time::Instant::now() < deadline {
        if std::net::TcpListener::bind(&hostport).is_ok() {
            freed = true;
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert!(freed, "the port is given up once nothing holds the token");
}
