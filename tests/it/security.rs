//! The security model, attacked the way an attacker would: a hostile checkout (`.escrc` files,
//! links, directory names), a hostile ESC environment (names, values, sizes), a neighbour
//! sharing `/tmp`, and a forged inherited environment. Each class runs in real bash, zsh and
//! fish where a shell is involved.

use std::fs;
use std::process::Command;

use crate::common::*;
use crate::shells::{SHELLS, Session, Sh, available, expect};

/// Options a user may set that rewrite unquoted words, turned on before the hook runs.
fn hostile_options(shell: Sh) -> &'static str {
    match shell {
        Sh::Bash => "set -u; shopt -s extglob nocasematch failglob nullglob",
        Sh::Zsh => {
            "setopt extended_glob ksh_arrays rc_quotes nounset glob_subst sh_word_split brace_ccl"
        }
        Sh::Fish => "set -g fish_trace 0",
    }
}

// C2 and E3: quoting holds under every option. A directory merely named `{1..100000000}` once
// made bash and zsh brace-expand the hook's watch list (and die); `^` broke every zsh prompt
// under extended_glob; `p{a,b}ss` became `pbss` and stayed after leaving.
fn options_rewrite_no_value_and_no_path(shell: Sh) {
    if !available(shell) {
        return;
    }
    let sandbox = Sandbox::new();
    let home = sandbox.home();
    let dir = allowed_project(
        &sandbox,
        "{1..100000000}/^x*[ab]~ #",
        "values:\n  BRACE: p{a,b}ss\n  BANG: '!!'\n  CARET: ^foo\n  GLOB: '*'\n  TILDE: '~'\n  QUOTES: \"''a''\"\n",
    );
    let names = ["BRACE", "BANG", "CARET", "GLOB", "TILDE", "QUOTES"];
    let mut session = Session::new(shell, &sandbox);
    session
        .run(hostile_options(shell))
        .cd(&dir)
        .run("true")
        .probe("in", &names)
        .cd(&home)
        .probe("out", &names);
    let (probes, log) = session.finish(&home);
    expect(
        &probes,
        "in",
        &[
            ("BRACE", "p{a,b}ss"),
            ("BANG", "!!"),
            ("CARET", "^foo"),
            ("GLOB", "*"),
            ("TILDE", "~"),
            ("QUOTES", "''a''"),
        ],
    );
    let unset: Vec<(&str, &str)> = names.iter().map(|n| (*n, "<unset>")).collect();
    expect(&probes, "out", &unset);
    assert!(
        !log.iter()
            .any(|l| l.contains("error") || l.contains("not valid")),
        "{}: {log:#?}",
        shell.name()
    );
}

#[test]
fn shell_options_rewrite_no_value_and_no_path() {
    for shell in SHELLS {
        options_rewrite_no_value_and_no_path(shell);
    }
}

/// An ESC read response exporting exactly `vars`.
fn read_exporting(vars: &[(String, String)]) -> serde_json::Value {
    let map: serde_json::Map<String, serde_json::Value> = vars
        .iter()
        .map(|(name, value)| (name.clone(), serde_json::json!({ "value": value })))
        .collect();
    serde_json::json!({"properties": {"environmentVariables": {"value": map}}})
}

fn pairs(items: &[(&str, &str)]) -> Vec<(String, String)> {
    items
        .iter()
        .map(|(n, v)| (n.to_string(), v.to_string()))
        .collect()
}

/// Strict modes, and a variable the user made read-only, before the hook runs.
fn strict_options(shell: Sh) -> &'static str {
    match shell {
        Sh::Bash => "set -euo pipefail; export MINE=user; readonly MINE",
        Sh::Zsh => "setopt err_exit nounset pipe_fail; typeset -rx MINE=user",
        Sh::Fish => "set -gx MINE user",
    }
}

// C1: the environment chooses values, not the shell's behaviour. Its PROMPT_COMMAND once ran
// server code in the shell; read-only names aborted the script, exited strict shells, and made
// plain zsh re-open at every prompt and keep credentials after leaving.
fn hostile_names_are_refused(shell: Sh) {
    if !available(shell) {
        return;
    }
    let marker = "esc-hook-pwned";
    let evil = format!("touch {marker}");
    let mut vars = pairs(&[
        ("GOOD", "fine"),
        ("MINE", "server"),
        ("PROMPT_COMMAND", &evil),
        ("PS1", "$(touch esc-hook-pwned)> "),
        ("BASH_ENV", "/tmp/evil"),
        ("ZDOTDIR", "/tmp/evil"),
        ("LD_PRELOAD", "/tmp/evil.so"),
        ("IFS", "x"),
        ("PATH", "/tmp/evil"),
        ("UID", "0"),
        ("EUID", "0"),
        ("EGID", "0"),
        ("ARGC", "1"),
        ("status", "1"),
        ("fish_pid", "1"),
        ("fish_function_path", "/tmp/evil"),
        ("ESC_HOOK_REFRESH_MARGIN", "0s"),
        // Round 3: hook killers (FUNCNEST=1 stopped the hook, and the secrets stayed after
        // leaving), a locale that re-pairs fish's quoting bytes, terminal and .NET loaders.
        ("FUNCNEST", "1"),
        ("ARGV0", "evil"),
        ("LC_ALL", "zh_CN.GBK"),
        ("LANG", "zh_CN.GBK"),
        ("TERMINFO", "/tmp/evil"),
        ("TERMCAP", "/tmp/evil"),
        ("DOTNET_STARTUP_HOOKS", "/tmp/evil.dll"),
        ("CORECLR_PROFILER_PATH", "/tmp/evil.so"),
        ("DIRS_LIST", "x"),
    ]);
    vars.push(("BIG".into(), "x".repeat(200 * 1024)));
    let stand_in = StandIn::start(serde_json::json!({
        "acme/hostile/dev": {"read": read_exporting(&vars)}
    }));
    let sandbox = Sandbox::uncached_esc(&stand_in);
    let home = sandbox.home();
    let dir = allowed_project(&sandbox, "hostile", "environment: acme/hostile/dev\n");
    let mut session = Session::new(shell, &sandbox);
    session
        .run(strict_options(shell))
        .cd(&dir)
        .run("true")
        .run("true")
        .probe(
            "in",
            &[
                "GOOD",
                "MINE",
                "LD_PRELOAD",
                "BASH_ENV",
                "BIG",
                "ESC_HOOK_REFRESH_MARGIN",
                "FUNCNEST",
                "LC_ALL",
                "TERMINFO",
            ],
        )
        .run("/bin/true && echo 'exec ok=yes' >> ../exec-probe")
        .cd(&home)
        .run("true")
        .probe("out", &["GOOD", "MINE"]);
    let (probes, log) = session.finish(&home);
    let name = shell.name();
    // fish has no read-only variables of the user's: there the environment's value applies.
    let mine = if shell == Sh::Fish { "server" } else { "user" };
    expect(
        &probes,
        "in",
        &[
            ("GOOD", "fine"),
            ("MINE", mine),
            ("LD_PRELOAD", "<unset>"),
            ("BASH_ENV", "<unset>"),
            ("BIG", "<unset>"),
            ("ESC_HOOK_REFRESH_MARGIN", "<unset>"),
            // zsh's own default; never the environment's 1.
            ("FUNCNEST", if shell == Sh::Zsh { "500" } else { "<unset>" }),
            ("LC_ALL", "<unset>"),
            ("TERMINFO", "<unset>"),
        ],
    );
    expect(&probes, "out", &[("GOOD", "<unset>"), ("MINE", "user")]);
    assert!(
        fs::read_to_string(home.join("exec-probe"))
            .unwrap_or_default()
            .contains("exec ok=yes"),
        "{name}: programs still start: {log:#?}"
    );
    assert!(
        !dir.join(marker).exists() && !home.join(marker).exists(),
        "{name}: no server code ran"
    );
    assert_eq!(
        stand_in.opens(),
        1,
        "{name}: the state was recorded: {log:#?}"
    );
    let refused = log
        .iter()
        .find(|l| l.contains("change how the shell"))
        .unwrap_or_else(|| panic!("{name}: {log:#?}"));
    for behaviour in [
        "PROMPT_COMMAND",
        "PS1",
        "BASH_ENV",
        "LD_PRELOAD",
        "IFS",
        "PATH",
        "TERMINFO",
        "TERMCAP",
        "DOTNET_STARTUP_HOOKS",
        "CORECLR_PROFILER_PATH",
    ] {
        assert!(refused.contains(behaviour), "{name}: {refused}");
    }
    let reserved = log
        .iter()
        .find(|l| l.contains("reserved by a shell"))
        .unwrap_or_else(|| panic!("{name}: {log:#?}"));
    for name in [
        "UID",
        "EUID",
        "EGID",
        "ARGC",
        "status",
        "fish_pid",
        "ESC_HOOK_REFRESH_MARGIN",
        "FUNCNEST",
        "ARGV0",
        "LC_ALL",
        "LANG",
        "DIRS_LIST",
    ] {
        assert!(reserved.contains(name), "{reserved}");
    }
    assert!(
        log.iter()
            .any(|l| l.contains("skipped BIG: its value is 200 KiB")),
        "{name}: {log:#?}"
    );
    assert!(
        !log.iter().any(|l| l.contains("kept MINE")),
        "{name}: a refused assignment is not a user change: {log:#?}"
    );
}

#[test]
fn hostile_names_and_sizes_are_refused_in_every_shell() {
    for shell in SHELLS {
        hostile_names_are_refused(shell);
    }
}

// C3: thousands of variables once grew the state past what the kernel allows one string.
#[test]
fn a_project_too_large_for_the_environment_is_bounded() {
    let many: Vec<(String, String)> = (0..2200)
        .map(|i| (format!("VAR_{i:04}"), "v".repeat(40)))
        .collect();
    let stand_in = StandIn::start(serde_json::json!({
        "acme/huge/dev": {"read": read_exporting(&many)}
    }));
    let sandbox = Sandbox::uncached_esc(&stand_in);
    let dir = allowed_project(&sandbox, "huge", "environment: acme/huge/dev\n");
    let out = sandbox.bash(
        &dir,
        "set -e; eval \"$(esc-hook export bash)\"; /bin/true; echo \"state=${#ESC_HOOK_STATE} first=$VAR_0000 last=${VAR_2199-unset}\"; cd /; eval \"$(esc-hook export bash)\"; echo \"after=${VAR_0000-unset}\"",
    );
    let text = stdout(&out);
    let log = stderr(&out);
    assert!(out.status.success(), "{text}{log}");
    assert!(text.contains("first=vvvv"), "{text}{log}");
    assert!(text.contains("last=unset"), "{text}");
    assert!(text.contains("after=unset"), "{text}");
    let state_len: usize = text
        .split("state=")
        .nth(1)
        .and_then(|t| t.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap();
    assert!(state_len < 100 * 1024, "{state_len}");
    assert!(
        log.contains("variables (VAR_") && log.contains("would exceed 96 KiB"),
        "{log}"
    );
}

#[test]
fn allow_names_opts_a_listed_name_back_in_and_reserved_names_never() {
    let sandbox = Sandbox::new();
    let dir = allowed_project(
        &sandbox,
        "tools",
        "allow-names: [LD_LIBRARY_PATH]\nvalues:\n  LD_LIBRARY_PATH: /opt/lib\n  LD_PRELOAD: /opt/x.so\n",
    );
    let (vars, log) = load_with_bash(&sandbox, &dir, &["LD_LIBRARY_PATH", "LD_PRELOAD"]);
    assert_eq!(
        vars,
        ["LD_LIBRARY_PATH=/opt/lib", "LD_PRELOAD=<unset>"],
        "{log}"
    );
    let bad = sandbox.project("bad", "allow-names: [UID]\nvalues:\n  A: b\n");
    let log = stderr(&sandbox.run(&bad, &["allow"]));
    assert!(
        log.contains("bad/.escrc:1:14: allow-names: `UID` is reserved"),
        "{log}"
    );
}

// B: one project never configures another. Going from A to B in one hook run, B was opened
// with A's variables in the process: A's backend got the user's token, A's STS endpoint got
// B's OIDC token, B's token-command saw A's secrets, and A's data directory made a
// never-allowed `.escrc` count as allowed.
fn one_project_never_configures_another(shell: Sh) {
    if !available(shell) {
        return;
    }
    let evil = StandIn::start(serde_json::json!({}));
    let good = StandIn::payments();
    let mut sandbox = Sandbox::uncached_esc(&good);
    // The user's own STS endpoint: answers every call with an error, and records it.
    sandbox.set("AWS_ENDPOINT_URL_STS", &good.url());
    let home = sandbox.home();
    let attacker_data = sandbox.path("attacker-data");
    let project_a = allowed_project(
        &sandbox,
        "a",
        &format!(
            "allow-names: [XDG_DATA_HOME]\nvalues:\n  PULUMI_BACKEND_URL: {evil}\n  PULUMI_ACCESS_TOKEN: pul-of-project-a\n  AWS_ENDPOINT_URL_STS: {evil}\n  AWS_ENDPOINT_URL: {evil}\n  HTTP_PROXY: {evil}\n  http_proxy: {evil}\n  HTTPS_PROXY: {evil}\n  A_SECRET: a-secret-value\n  XDG_DATA_HOME: {data}\n",
            evil = evil.url(),
            data = attacker_data.display()
        ),
    );
    let project_b = allowed_project(&sandbox, "b", "environment: acme/payments/dev\n");
    let dump = sandbox.path(&format!("token-command-env-{}", shell.name()));
    let project_c = allowed_project(
        &sandbox,
        "c",
        &format!(
            "aws:\n  web-identity:\n    role-arn: arn:aws:iam::123456789012:role/ci\n    token-command: sh -c 'env > {}; echo token'\n",
            dump.display()
        ),
    );
    // D was never allowed; its record sits in the data directory A points at.
    let project_d = sandbox.project("d", "values:\n  D_LOADED: yes\n");
    let mut attacker = Sandbox::new();
    attacker.set("XDG_DATA_HOME", attacker_data.to_str().unwrap());
    attacker.set("HOME", home.to_str().unwrap());
    attacker.allow(&project_d);

    let mut session = Session::new(shell, &sandbox);
    session
        .cd(&project_a)
        .cd(&project_b)
        .probe(
            "b",
            &["AWS_ACCESS_KEY_ID", "A_SECRET", "PULUMI_BACKEND_URL"],
        )
        .cd(&project_a)
        .cd(&project_c)
        .cd(&project_a)
        .cd(&project_d)
        .probe("d", &["D_LOADED"])
        .cd(&home);
    let (probes, log) = session.finish(&home);
    let name = shell.name();
    expect(
        &probes,
        "b",
        &[
            ("AWS_ACCESS_KEY_ID", "ASIAEXAMPLEKEYID0001"),
            ("A_SECRET", "<unset>"),
            ("PULUMI_BACKEND_URL", good.url().as_str()),
        ],
    );
    expect(&probes, "d", &[("D_LOADED", "<unset>")]);
    assert_eq!(
        evil.requests().len(),
        0,
        "{name}: nothing reached A's hosts: {:?} {log:#?}",
        evil.requests()
    );
    let esc_opens = good
        .requests()
        .iter()
        .filter(|r| r["path"].as_str().is_some_and(|p| p.ends_with("/open")))
        .count();
    assert_eq!(esc_opens, 1, "{name}: {log:#?}");
    let env = fs::read_to_string(&dump).unwrap_or_else(|_| panic!("{name}: {log:#?}"));
    assert!(env.contains("PATH="), "{env}");
    assert!(
        !env.contains("a-secret-value") && !env.contains(&evil.url()),
        "{name}: the token command saw A's variables: {env}"
    );
    assert!(
        log.iter()
            .any(|l| l.contains(".escrc is not allowed") && l.contains("d/.escrc")),
        "{name}: {log:#?}"
    );
}

#[test]
fn one_project_never_configures_another_in_every_shell() {
    for shell in SHELLS {
        one_project_never_configures_another(shell);
    }
}

// D1: a shell started by `exec` (an editor's terminal) took exec's secrets for the user's own,
// kept them in plain text in its state, and put them back on leaving.
fn a_shell_started_by_exec_knows_what_exec_set(shell: Sh) {
    if !available(shell) {
        return;
    }
    let stand_in = StandIn::payments();
    let sandbox = Sandbox::uncached_esc(&stand_in);
    let home = sandbox.home();
    let payments = allowed_project(&sandbox, "payments", "environment: acme/payments/dev\n");
    let other = allowed_project(&sandbox, "other", "values:\n  OTHER: yes\n");
    let state_file = sandbox.path(&format!("state-{}", shell.name()));
    let dump_state = match shell {
        Sh::Fish => format!("printf %s \"$ESC_HOOK_STATE\" > '{}'", state_file.display()),
        _ => format!("printf %s \"$ESC_HOOK_STATE\" > '{}'", state_file.display()),
    };
    let dir = payments.to_str().unwrap().to_string();
    let mut session = Session::new(shell, &sandbox);
    session
        .launched_by(&[bin(), "exec", "--dir", &dir, "--"])
        .probe("start", &["AWS_SECRET_ACCESS_KEY"])
        .run(&dump_state)
        .cd(&other)
        .probe("other", &["AWS_SECRET_ACCESS_KEY", "OTHER"])
        .cd(&home)
        .probe("home", &["AWS_SECRET_ACCESS_KEY", "OTHER"]);
    let (probes, log) = session.finish(&home);
    let secret = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";
    expect(&probes, "start", &[("AWS_SECRET_ACCESS_KEY", secret)]);
    expect(
        &probes,
        "other",
        &[("AWS_SECRET_ACCESS_KEY", "<unset>"), ("OTHER", "yes")],
    );
    expect(
        &probes,
        "home",
        &[("AWS_SECRET_ACCESS_KEY", "<unset>"), ("OTHER", "<unset>")],
    );
    let decoded = decode_state(&fs::read_to_string(&state_file).unwrap()).to_string();
    assert!(decoded.contains("AWS_SECRET_ACCESS_KEY"), "{decoded}");
    assert!(
        !decoded.contains(secret),
        "no value in the state: {decoded}"
    );
    assert!(
        !log.iter().any(|l| l.contains("kept AWS")),
        "{}: {log:#?}",
        shell.name()
    );
}

#[test]
fn a_shell_started_by_exec_knows_what_exec_set_in_every_shell() {
    for shell in SHELLS {
        a_shell_started_by_exec_knows_what_exec_set(shell);
    }
}

// D2: the files directory was named after getppid(): a subshell leaving the project deleted
// its parent's KUBECONFIG (so did an ERR trap under `set -E`).
#[test]
fn only_the_shell_that_loaded_files_removes_them() {
    if !available(Sh::Bash) {
        return;
    }
    let stand_in = StandIn::payments();
    let sandbox = Sandbox::uncached_esc(&stand_in);
    let home = sandbox.home();
    let payments = allowed_project(&sandbox, "payments", "environment: acme/payments/dev\n");
    let rc = sandbox.path("child-rc");
    fs::write(
        &rc,
        String::from_utf8(sandbox.run(&home, &["init", "bash"]).stdout).unwrap(),
    )
    .unwrap();
    let mut session = Session::new(Sh::Bash, &sandbox);
    session
        .run("set -E; trap ':' ERR")
        .cd(&payments)
        .run("false || true")
        .run("test -f \"$KUBECONFIG\" && echo 'at kubeconfig=present' >> ../files-probe")
        // A non-interactive child leaving the project, and a hooked interactive one.
        .run("(cd / && eval \"$(esc-hook export bash)\")")
        .run(&format!(
            "printf 'cd /\\ntrue\\nexit\\n' | bash --rcfile '{}' -i >/dev/null 2>&1",
            rc.display()
        ))
        // Another shell's load sweeps the directories of shells that are gone.
        .run(&format!(
            "(cd '{}' && bash -c 'eval \"$(esc-hook export bash)\"')",
            payments.display()
        ))
        .run("test -f \"$KUBECONFIG\" && echo 'after kubeconfig=present' >> ../files-probe")
        .run("echo \"$KUBECONFIG\" > ../files-path")
        .cd(&home);
    let (_, log) = session.finish(&home);
    let probes = fs::read_to_string(home.join("files-probe")).unwrap_or_default();
    assert!(
        probes.contains("at kubeconfig=present"),
        "{probes} {log:#?}"
    );
    assert!(
        probes.contains("after kubeconfig=present"),
        "the parent's files survived its children: {probes} {log:#?}"
    );
    let path = fs::read_to_string(home.join("files-path")).unwrap();
    assert!(
        !std::path::Path::new(path.trim()).exists(),
        "the shell that loaded them removed them on leaving"
    );
}

// D3: without XDG_RUNTIME_DIR the base is `<temp>/esc-hook-<uid>`, which another user can make
// first. The cache lock then followed their symlink and stalled each open.
#[test]
fn a_runtime_directory_made_by_another_user_is_never_used_and_files_still_load() {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        skip("needs root to make a directory owned by another user");
        return;
    }
    let stand_in = StandIn::payments();
    let mut sandbox = Sandbox::uncached_esc(&stand_in);
    sandbox.set("ESC_HOOK_KEYRING", "auto");
    sandbox
        .extra_env
        .push(("XDG_RUNTIME_DIR".into(), String::new()));
    let base = sandbox.path("tmp/esc-hook-0");
    let victim = sandbox.path("victim");
    fs::create_dir_all(&victim).unwrap();
    fs::create_dir_all(&base).unwrap();
    std::os::unix::fs::symlink(&victim, base.join("locks")).unwrap();
    std::process::Command::new("chown")
        .args(["-R", "65534:65534"])
        .arg(&base)
        .status()
        .unwrap();
    std::process::Command::new("chmod")
        .arg("777")
        .arg(&base)
        .status()
        .unwrap();
    let payments = allowed_project(&sandbox, "payments", "environment: acme/payments/dev\n");
    let started = std::time::Instant::now();
    let (vars, log) = load_with_bash(&sandbox, &payments, &["AWS_ACCESS_KEY_ID", "KUBECONFIG"]);
    assert!(started.elapsed().as_secs() < 5, "{:?}", started.elapsed());
    // Nothing is denied: the files go to a private directory of the user's own, and the line
    // says where.
    assert!(
        log.contains("is not a directory of yours: an environment's files go to")
            && log.contains("esc-hook/run instead"),
        "{log}"
    );
    let kubeconfig = vars[1].strip_prefix("KUBECONFIG=").unwrap();
    assert!(
        kubeconfig.starts_with(&sandbox.path("cache/esc-hook/run").display().to_string()),
        "{log}"
    );
    assert_eq!(
        fs::read_dir(&victim).unwrap().count(),
        0,
        "nothing was created where the other user pointed"
    );
    let values = allowed_project(&sandbox, "values", "values:\n  PLAIN: yes\n");
    let (vars, _) = load_with_bash(&sandbox, &values, &["PLAIN"]);
    assert_eq!(vars, ["PLAIN=yes"]);
}

// A1, A4: trust means "this exact file, here". A link `.escrc -> ../payments/.escrc` in
// another checkout counted as allowed while its token-command ran in the link's directory,
// and `deny` there denied the real project; a FIFO put in place blocked the prompt.
fn trust_is_this_exact_file_here(shell: Sh) {
    if !available(shell) {
        return;
    }
    let mut sandbox = Sandbox::new();
    sandbox.set(
        "AWS_ENDPOINT_URL_STS",
        &format!("http://127.0.0.1:{}", free_port()),
    );
    let home = sandbox.home();
    let escrc = "values:\n  PAYMENTS: yes\naws:\n  web-identity:\n    role-arn: arn:aws:iam::123456789012:role/ci\n    token-command: sh ./token.sh\n";
    let payments = allowed_project(&sandbox, "payments", escrc);
    fs::write(payments.join("token.sh"), "touch ran-here; echo token\n").unwrap();
    let checkout = home.join("checkout");
    fs::create_dir_all(&checkout).unwrap();
    std::os::unix::fs::symlink(payments.join(".escrc"), checkout.join(".escrc")).unwrap();
    fs::write(checkout.join("token.sh"), "touch pwned; echo token\n").unwrap();
    let fifo = home.join("fifo");
    fs::create_dir_all(&fifo).unwrap();
    assert!(
        std::process::Command::new("mkfifo")
            .arg(fifo.join(".escrc"))
            .status()
            .unwrap()
            .success()
    );

    let mut session = Session::new(shell, &sandbox);
    session
        .cd(&checkout)
        .probe("link", &["PAYMENTS"])
        .run("esc-hook deny")
        .cd(&payments)
        .cd(&fifo)
        .probe("fifo", &["PAYMENTS"])
        .cd(&home);
    let (probes, log) = session.finish(&home);
    let name = shell.name();
    expect(&probes, "link", &[("PAYMENTS", "<unset>")]);
    expect(&probes, "fifo", &[("PAYMENTS", "<unset>")]);
    assert!(
        !checkout.join("pwned").exists(),
        "{name}: the checkout's script ran"
    );
    // The real project is still allowed after `deny` in the checkout: its own command ran
    // there (its STS endpoint, a closed port, then failed the load).
    assert!(
        payments.join("ran-here").exists(),
        "{name}: the project was denied through the link: {log:#?}"
    );
    fs::remove_file(payments.join("ran-here")).unwrap();
    assert!(
        log.iter()
            .any(|l| l.contains(".escrc is not allowed") && l.contains("checkout")),
        "{name}: {log:#?}"
    );
    assert!(
        log.iter()
            .any(|l| l.contains("fifo/.escrc: is not a regular file")),
        "{name}: {log:#?}"
    );
}

#[test]
fn trust_is_this_exact_file_here_in_every_shell() {
    for shell in SHELLS {
        trust_is_this_exact_file_here(shell);
    }
}

// A3: sha256(path + "\n" + content) made `x/.escrc` holding "b/.escrc\n…" and
// `x/.escrc\nb/.escrc` holding the rest one and the same record.
#[test]
fn a_path_with_a_newline_borrows_no_allow_record() {
    let sandbox = Sandbox::new();
    let home = sandbox.home();
    let x = home.join("x");
    let tricky = x.join(".escrc\nb");
    fs::create_dir_all(&tricky).unwrap();
    sandbox.write_escrc(&tricky, "values:\n  TRICKY: yes\n");
    fs::write(x.join(".escrc"), "b/.escrc\nvalues:\n  TRICKY: yes\n").unwrap();
    // The plain file is not even YAML-valid here (`allow` refuses it); trusted as it is, the
    // record names only (path, content).
    sandbox.allow_as_it_is(&x);
    let (vars, log) = load_with_bash(&sandbox, &tricky, &["TRICKY"]);
    assert_eq!(vars, ["TRICKY=<unset>"], "{log}");
    assert!(log.contains(".escrc is not allowed"), "{log}");
}

// A2: a state inherited from a parent process, naming a never-allowed `.escrc` as loaded
// (without trust keys, or with another file's), made the refresh load it without a verdict.
#[test]
fn a_forged_state_cannot_make_a_refresh_load_an_unallowed_file() {
    let sandbox = Sandbox::new();
    let allowed = allowed_project(&sandbox, "allowed", "values:\n  OK: yes\n");
    let hostile = sandbox.project(
        "hostile",
        "values:\n  HOSTILE: loaded\naws:\n  web-identity:\n    role-arn: arn:aws:iam::1:role/x\n    token-command: touch pwned\n",
    );
    let real = state_after_export(&sandbox, &allowed);
    use std::os::unix::fs::MetadataExt;
    let meta = fs::metadata(hostile.join(".escrc")).unwrap();
    let stamp = serde_json::json!({
        "path": hostile.join(".escrc").to_str().unwrap(),
        "size": meta.len(),
        "mtime_ns": i128::from(meta.mtime()) * 1_000_000_000 + i128::from(meta.mtime_nsec()),
        "ctime_ns": i128::from(meta.ctime()) * 1_000_000_000 + i128::from(meta.ctime_nsec()),
        "dev": meta.dev(),
        "ino": meta.ino(),
    });
    for keep_keys in [false, true] {
        let mut forged = real.clone();
        forged["escrc"] = stamp.clone();
        forged["loaded"]["expires_at"] = serde_json::json!(1);
        if !keep_keys {
            forged["trust"] = serde_json::Value::Null;
        }
        let forged = encode_state(&forged);
        let out = sandbox.bash(
            &hostile,
            &format!("export ESC_HOOK_STATE='{forged}'; eval \"$(esc-hook export bash)\"; echo \"hostile=${{HOSTILE-unset}}\""),
        );
        assert_eq!(stdout(&out), "hostile=unset\n", "{}", stderr(&out));
        assert!(
            stderr(&out).contains(".escrc is not allowed"),
            "{}",
            stderr(&out)
        );
        assert!(!hostile.join("pwned").exists(), "keys kept: {keep_keys}");
    }
}

/// The payments fixture with every `fn::open::aws-login` duration set to `literal`.
fn payments_with_login_duration(literal: &str) -> serde_json::Value {
    fn set(node: &mut serde_json::Value, literal: &str) {
        match node {
            serde_json::Value::Object(map) => {
                if let Some(text) = map.get_mut("duration").and_then(|d| d.get_mut("literal")) {
                    *text = serde_json::json!(literal);
                }
                map.values_mut().for_each(|child| set(child, literal));
            }
            serde_json::Value::Array(items) => {
                items.iter_mut().for_each(|child| set(child, literal))
            }
            _ => {}
        }
    }
    let mut read = fixture("read-payments-dev.json");
    set(&mut read["exprs"], literal);
    read
}

// E1: a huge duration (an `.escrc` ttl, the server's `fn::open::aws-login` duration, a margin)
// overflowed the time arithmetic: an abort at every prompt, with a new open each time.
#[test]
fn huge_durations_and_times_never_crash_the_hook() {
    let read = payments_with_login_duration("18446744073709551615");
    let stand_in = StandIn::start(serde_json::json!({"acme/payments/dev": {"read": read}}));
    let mut sandbox = Sandbox::uncached_esc(&stand_in);
    sandbox.set("ESC_HOOK_REFRESH_MARGIN", "18446744073709551615");
    let dir = allowed_project(&sandbox, "payments", "environment: acme/payments/dev\n");
    let (vars, log) = load_with_bash(&sandbox, &dir, &["AWS_ACCESS_KEY_ID"]);
    assert_eq!(vars, ["AWS_ACCESS_KEY_ID=ASIAEXAMPLEKEYID0001"], "{log}");
    let ttl = trusted_as_it_is(
        &sandbox,
        "ttl",
        "environment: acme/payments/dev\nttl: 18446744073709551615\n",
    );
    let (_, log) = load_with_bash(&sandbox, &ttl, &[]);
    assert!(
        log.contains("ttl: `18446744073709551615` is longer than a year"),
        "{log}"
    );
    assert_eq!(stand_in.opens(), 1);

    // A state from a parent process with times at the end of the range.
    let mut state = state_after_export(&sandbox, &dir);
    for (opened, expires, retry) in [
        (u64::MAX, u64::MAX, u64::MAX),
        (0, 1, u64::MAX),
        (u64::MAX, 0, 0),
    ] {
        state["loaded"]["opened_at"] = serde_json::json!(opened);
        state["loaded"]["expires_at"] = serde_json::json!(expires);
        state["loaded"]["retry_at"] = serde_json::json!(retry);
        let text = encode_state(&state);
        for command in ["export bash", "status", "status --short", "status --json"] {
            let out = sandbox.bash(
                &dir,
                &format!("export ESC_HOOK_STATE='{text}'; esc-hook {command} >/dev/null; echo \"exit=$?\""),
            );
            assert!(
                !stderr(&out).contains("panicked") && stdout(&out).starts_with("exit="),
                "{command}: {}{}",
                stdout(&out),
                stderr(&out)
            );
            assert_ne!(out.status.code(), Some(134), "{command} aborted");
        }
    }
}

// E2: directory names reached the terminal raw in warnings, `status`, `allow` and `doctor`:
// escape sequences, and newlines starting fake `esc-hook:` lines.
fn names_cannot_write_to_the_terminal(shell: Sh) {
    if !available(shell) {
        return;
    }
    let sandbox = Sandbox::new();
    let home = sandbox.home();
    sandbox.project(
        "evil\u{1b}[2J\u{1b}]0;title\u{7}\u{202e}\u{200b}\nesc-hook: loaded acme/prod/admin",
        "values:\n  X: y\n",
    );
    let shown = sandbox.path(&format!("shown-{}", shell.name()));
    let mut session = Session::new(shell, &sandbox);
    session
        // The shell's own prompt would show the directory name raw: not esc-hook's doing.
        .run(match shell {
            Sh::Fish => "function fish_prompt; echo '$ '; end",
            _ => "PS1='$ '",
        })
        // A glob: control characters typed at an interactive prompt are read as keys.
        .run("cd $HOME/evil*/prod/admin")
        .run(&format!("esc-hook status > '{}' 2>&1", shown.display()))
        .run(&format!("esc-hook doctor >> '{}' 2>&1", shown.display()))
        .cd(&home);
    let (_, log) = session.finish(&home);
    let name = shell.name();
    let shown = fs::read_to_string(&shown).unwrap();
    assert!(shown.contains("evil\\u{1b}[2J"), "{name}: {shown}");
    assert!(!shown.contains('\u{1b}'), "{name}: {shown}");
    // Nor a right-to-left override or a zero-width space: they would make it read otherwise.
    assert!(
        !shown.contains('\u{202e}') && shown.contains("\\u{202e}\\u{200b}"),
        "{name}: {shown}"
    );
    assert!(
        !shown.lines().any(|l| l.starts_with("esc-hook: loaded")),
        "{name}: {shown}"
    );
    // The hook's own line, less esc-hook's colour (fish runs on a terminal): one line, with
    // the name escaped. (The shells' own titles and prompts show names raw: not ours to fix.)
    let line = log
        .iter()
        .find(|l| l.contains(".escrc is not allowed"))
        .unwrap_or_else(|| panic!("{name}: {log:#?}"))
        .replace("\u{1b}[33m", "")
        .replace("\u{1b}[0m", "");
    assert!(
        !line.contains('\u{1b}') && !line.contains('\u{7}'),
        "{name}: {line}"
    );
    assert!(
        line.contains("evil\\u{1b}[2J") && line.contains("\\nesc-hook: loaded"),
        "{name}: {line}"
    );
    assert!(
        !log.iter()
            .any(|l| l.starts_with("esc-hook: loaded acme/prod/admin/.escrc)")),
        "{name}: a forged line: {log:#?}"
    );
}

#[test]
fn directory_names_cannot_write_to_the_terminal_in_any_shell() {
    for shell in SHELLS {
        names_cannot_write_to_the_terminal(shell);
    }
}

#[test]
fn status_allow_and_doctor_escape_what_they_show() {
    let sandbox = Sandbox::new();
    let dir = sandbox.project("evil\u{1b}[31m\nesc-hook: fake", "values:\n  X: y\n");
    fs::set_permissions(
        dir.join(".escrc"),
        std::os::unix::fs::PermissionsExt::from_mode(0o666),
    )
    .unwrap();
    for args in [
        &["status"][..],
        &["doctor"],
        &["allow"],
        &["deny"],
        &["export", "bash"],
    ] {
        let out = sandbox.run(&dir, args);
        // export's stdout is code for the shell to evaluate, not text to show.
        let shown = if args[0] == "export" {
            String::new()
        } else {
            stdout(&out)
        };
        let all = format!("{shown}{}", stderr(&out));
        assert!(!all.contains('\u{1b}'), "{args:?}: {all}");
        assert!(
            !all.lines().any(|l| l.starts_with("esc-hook: fake")),
            "{args:?}: {all}"
        );
    }
}

// The nushell hook applies JSON with load-env: the binary's refusals are what keeps an
// environment from replacing nushell's prompt, config, library path or working directory.
#[test]
fn nushell_takes_no_name_that_changes_it() {
    let Some(nu) = nu() else { return };
    let sandbox = Sandbox::new();
    let dir = allowed_project(
        &sandbox,
        "app",
        "values:\n  GOOD: yes\n  PROMPT_COMMAND: evil\n  PROMPT_INDICATOR: evil\n  config: evil\n  NU_LIB_DIRS: /tmp/evil\n  FILE_PWD: /tmp/evil\n  PWD: /tmp\n  LAST_EXIT_CODE: '7'\n",
    );
    let hook_path = sandbox.nu_hook();
    let script = format!(
        "cd '{}'; source '{}'; print $env.GOOD; print ($env.PROMPT_COMMAND? | default unset); print ($env.config | describe | str substring 0..5); print ($env.NU_LIB_DIRS? | default unset | to text); print $env.PWD",
        dir.display(),
        hook_path.display()
    );
    let out = sandbox.nu(&nu, &sandbox.home(), &script);
    let text = stdout(&out);
    let mut lines = text.lines();
    assert_eq!(lines.next(), Some("yes"), "{text}{}", stderr(&out));
    assert_eq!(lines.next(), Some("unset"), "{text}");
    assert!(
        lines.next().is_some_and(|l| l.starts_with("recor")),
        "{text}"
    );
    assert_ne!(lines.next(), Some("/tmp/evil"), "{text}");
    assert_eq!(lines.next(), dir.to_str(), "{text}");
    assert!(stderr(&out).contains("refused"), "{}", stderr(&out));
}

// B, for the commands a loaded shell runs: `exec`, `credential-process` and `reload` open with
// the user's settings, and `exec`'s command sees none of the other project's variables.
#[test]
fn exec_credential_process_and_reload_ignore_what_a_project_set() {
    // The project overrides the user's PULUMI_ACCESS_TOKEN, which waits in the keyring.
    if !have_keyrings() {
        return;
    }
    let evil = StandIn::start(serde_json::json!({}));
    let good = StandIn::payments();
    let mut sandbox = Sandbox::uncached_esc(&good);
    sandbox.set("ESC_HOOK_KEYRING", "keyutils");
    let project_a = allowed_project(
        &sandbox,
        "a",
        &format!(
            "values:\n  PULUMI_BACKEND_URL: {evil}\n  PULUMI_ACCESS_TOKEN: pul-of-a\n  HTTP_PROXY: {evil}\n  A_SECRET: a-secret-value\n",
            evil = evil.url()
        ),
    );
    let project_b = allowed_project(&sandbox, "b", "environment: acme/payments/dev\n");
    let script = format!(
        "eval \"$(esc-hook export bash)\"; test \"$A_SECRET\" = a-secret-value || exit 9\n\
         esc-hook exec --dir '{b}' -- env > exec-env || exit 10\n\
         esc-hook credential-process --dir '{b}' > credentials || exit 11\n\
         (cd '{b}' && esc-hook reload) || exit 12",
        b = project_b.display()
    );
    let out = sandbox.bash(&project_a, &script);
    assert!(out.status.success(), "{}", stderr(&out));
    let env = fs::read_to_string(project_a.join("exec-env")).unwrap();
    assert!(
        env.contains("AWS_ACCESS_KEY_ID=ASIAEXAMPLEKEYID0001"),
        "{env}"
    );
    assert!(!env.contains("a-secret-value"), "{env}");
    assert!(!env.contains(&evil.url()), "{env}");
    let credentials = fs::read_to_string(project_a.join("credentials")).unwrap();
    assert!(
        credentials.contains("ASIAEXAMPLEKEYID0001"),
        "{credentials}"
    );
    assert_eq!(evil.requests().len(), 0, "{:?}", evil.requests());
    assert_eq!(
        good.opens(),
        2,
        "exec and reload opened (credential-process was served by exec's cache entry)"
    );
}

// Nothing writes the process environment: what a library or a child would read from it is
// handed the user's own values instead. A project's resolver variable (glibc reads it, and no
// HTTP client takes it as a parameter) stops esc-hook from going to the network at all, with a
// line naming it; an editor started by `edit` sees none of the project's variables.
#[test]
fn a_projects_resolver_and_secrets_reach_no_request_and_no_child() {
    let evil = StandIn::start(serde_json::json!({}));
    let good = StandIn::payments();
    let sandbox = Sandbox::uncached_esc(&good);
    let aliases = sandbox.path("aliases");
    fs::write(&aliases, "api.pulumi.com evil.example\n").unwrap();
    let project_a = allowed_project(
        &sandbox,
        "a",
        &format!(
            "allow-names: [HOSTALIASES]\nvalues:\n  HOSTALIASES: {aliases}\n  HTTPS_PROXY: {evil}\n  SSL_CERT_FILE: {aliases}\n  A_SECRET: a-secret-value\n",
            aliases = aliases.display(),
            evil = evil.url()
        ),
    );
    let project_b = allowed_project(&sandbox, "b", "environment: acme/payments/dev\n");
    let script = format!(
        "eval \"$(esc-hook export bash)\"; test \"$A_SECRET\" = a-secret-value || exit 9\n\
         esc-hook exec --dir '{b}' -- true 2> refused; echo \"exit $?\" >> refused\n\
         VISUAL=\"sh -c 'env > edit-env' sh\" esc-hook edit 2> edit-log\n\
         cd ~ && eval \"$(esc-hook export bash)\" && esc-hook exec --dir '{b}' -- true || exit 11",
        b = project_b.display()
    );
    let out = sandbox.bash(&project_a, &script);
    assert!(out.status.success(), "{}", stderr(&out));
    let refused = fs::read_to_string(project_a.join("refused")).unwrap();
    assert!(
        refused.contains("HOSTALIASES holds a value a project set")
            && refused.ends_with("exit 125\n"),
        "{refused}"
    );
    let editor_env = fs::read_to_string(project_a.join("edit-env")).unwrap();
    assert!(editor_env.contains("PATH="), "{editor_env}");
    for project_value in [
        "a-secret-value",
        "HOSTALIASES",
        "SSL_CERT_FILE",
        "HTTPS_PROXY",
    ] {
        assert!(
            !editor_env.contains(project_value),
            "the editor saw {project_value}: {editor_env}"
        );
    }
    assert_eq!(evil.requests().len(), 0, "{:?}", evil.requests());
    assert_eq!(good.opens(), 1, "only the open after leaving the project");
}

// An `environment:` list made long with YAML aliases wrote a label of megabytes into
// ESC_HOOK_STATE: after that every program failed with E2BIG, even after leaving. The list is
// bounded where the file is parsed (whether the file is allowed by hand or by a trusted prefix),
// and the state's label is bounded too; a file never allowed is not even parsed.
fn an_alias_bomb_leaves_a_small_state(shell: Sh) {
    if !available(shell) {
        return;
    }
    let sandbox = Sandbox::new();
    let name = format!("acme/{}/{}", "p".repeat(100), "e".repeat(100));
    let mut text = format!("environment: [&x {name}");
    while text.len() < 60 * 1024 {
        text.push_str(", *x");
    }
    text.push_str("]\n");
    let never_allowed = sandbox.project("never", &text);
    let allowed = trusted_as_it_is(&sandbox, "allowed", &text);
    let home = sandbox.home();
    let mut session = Session::new(shell, &sandbox);
    session
        .cd(&never_allowed)
        .probe("never", &["ESC_HOOK_STATE"])
        .cd(&allowed)
        .probe("allowed", &["ESC_HOOK_STATE"])
        .run("env true")
        .probe_status("program")
        .cd(&home);
    let (probes, log) = session.finish(&home);
    let name = shell.name();
    for label in ["never", "allowed"] {
        let state = &probes[label]["ESC_HOOK_STATE"];
        assert!(
            state.len() < 4096,
            "{name}, {label}: a state of {} bytes: {log:#?}",
            state.len()
        );
    }
    expect(&probes, "program", &[("status", "0")]);
    assert!(
        log.iter()
            .any(|l| l.contains("at most 16 environments are opened together")),
        "{name}: {log:#?}"
    );
}

#[test]
fn an_alias_bomb_leaves_a_small_state_in_every_shell() {
    for shell in SHELLS {
        an_alias_bomb_leaves_a_small_state(shell);
    }
}

// `exec` handed its command every variable but recorded only the first ~1,150 names in the
// command's ESC_HOOK_STATE: in a shell started by `exec`, the rest counted as the user's own,
// and a PULUMI_BACKEND_URL behind 1,300 padding names took the user's token to the project's
// host at the next project. What the state cannot record, the command does not get.
#[test]
fn exec_hands_over_only_what_its_state_records() {
    let evil = StandIn::start(serde_json::json!({}));
    let good = StandIn::payments();
    let sandbox = Sandbox::uncached_esc(&good);
    let mut values = String::from("values:\n");
    for i in 0..1300 {
        values.push_str(&format!("  A{i:04}: {}\n", "v".repeat(40)));
    }
    values.push_str(&format!("  PULUMI_BACKEND_URL: {}\n", evil.url()));
    let padded = allowed_project(&sandbox, "padded", &values);
    let next = allowed_project(&sandbox, "next", "environment: acme/payments/dev\n");
    let script = format!(
        "esc-hook exec -- env > handed 2> exec-log || exit 9\n\
         esc-hook exec -- esc-hook exec --dir '{next}' -- true 2> nested-log || exit 10",
        next = next.display()
    );
    let out = sandbox.bash(&padded, &script);
    assert!(out.status.success(), "{}", stderr(&out));
    let handed = fs::read_to_string(padded.join("handed")).unwrap();
    let state_text = handed
        .lines()
        .find_map(|l| l.strip_prefix("ESC_HOOK_STATE="))
        .expect("a state for the command");
    let state = decode_state(state_text);
    let recorded: Vec<&str> = state["loaded"]["vars"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["name"].as_str().unwrap())
        .collect();
    let handed_names: Vec<&str> = handed
        .lines()
        .filter_map(|l| l.split_once('=').map(|(name, _)| name))
        .filter(|name| name.starts_with('A') && name[1..].bytes().all(|b| b.is_ascii_digit()))
        .collect();
    assert!(handed_names.len() > 100, "{}", handed_names.len());
    for name in &handed_names {
        assert!(recorded.contains(name), "{name} handed but not recorded");
    }
    for name in recorded.iter().filter(|n| n.starts_with('A')) {
        assert!(
            handed_names.contains(name),
            "{name} recorded but not handed"
        );
    }
    assert!(
        !handed.contains(&format!("PULUMI_BACKEND_URL={}", evil.url())),
        "the last name is left out: the command has the user's own"
    );
    let log = fs::read_to_string(padded.join("exec-log")).unwrap();
    assert!(
        log.contains("skipped") && log.contains("would exceed 96 KiB"),
        "{log}"
    );
    assert_eq!(evil.requests().len(), 0, "{:?}", evil.requests());
    assert_eq!(
        good.opens(),
        1,
        "the nested exec opened with the user's own backend"
    );
}

// The opened environment's AWS_REGION was spliced unchecked into
// `https://sts.{region}.amazonaws.com`: a region of `x@HOST:PORT/` sent the OIDC token from the
// user's own token command to that host. The region of esc-hook's own STS calls comes from the
// `.escrc` or the user, never from the environment's values, and is always one DNS label.
#[test]
fn the_environment_never_chooses_the_sts_host() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let port = listener.local_addr().unwrap().port();
    let region = format!("x@127.0.0.1:{port}/");
    let stand_in = StandIn::start(serde_json::json!({
        "acme/aws/dev": {"read": read_exporting(&pairs(&[
            ("AWS_REGION", region.as_str()),
            ("AWS_ACCESS_KEY_ID", "AKIAEXAMPLEBASEKEY01"),
            ("AWS_SECRET_ACCESS_KEY", "base-secret"),
        ]))}
    }));
    let mut sandbox = Sandbox::uncached_esc(&stand_in);
    sandbox.set("ESC_HOOK_TIMEOUT", "3s");
    let project = allowed_project(
        &sandbox,
        "aws",
        "environment: acme/aws/dev\naws:\n  assume-role:\n    role-arn: arn:aws:iam::123456789012:role/deploy\n",
    );
    let out = sandbox.run(&project, &["exec", "--", "true"]);
    assert!(!out.status.success(), "no STS answers here");
    let said = stderr(&out);
    assert!(
        !said.contains(&port.to_string()),
        "the environment's region reached a message: {said}"
    );
    assert!(
        matches!(listener.accept(), Err(e) if e.kind() == std::io::ErrorKind::WouldBlock),
        "STS was called at the host the environment chose: {said}"
    );
    // The user's own region is one DNS label too; a bad one is named, not used.
    sandbox.set("AWS_REGION", &region);
    let out = sandbox.run(&project, &["exec", "--", "true"]);
    let said = stderr(&out);
    assert!(
        said.contains("AWS_REGION `x@127.0.0.1") && said.contains("is not an AWS region"),
        "{said}"
    );
    assert!(matches!(listener.accept(), Err(e) if e.kind() == std::io::ErrorKind::WouldBlock));
}

// A `token-file` was read blindly: a link to /dev/zero ate gigabytes, a FIFO blocked the prompt
// for ever. Regular files only, opened without blocking, bounded in size.
#[test]
fn a_token_file_is_a_small_regular_file_or_a_line() {
    let sandbox = Sandbox::new();
    let escrc = |token: &str| {
        format!(
            "aws:\n  web-identity:\n    role-arn: arn:aws:iam::123456789012:role/ci\n    token-file: {token}\n"
        )
    };
    let fifo = allowed_project(&sandbox, "fifo", &escrc("pipe"));
    let made = Command::new("mkfifo")
        .arg(fifo.join("pipe"))
        .status()
        .unwrap();
    assert!(made.success());
    let zero = allowed_project(&sandbox, "zero", &escrc("zero"));
    std::os::unix::fs::symlink("/dev/zero", zero.join("zero")).unwrap();
    let huge = allowed_project(&sandbox, "huge", &escrc("huge"));
    fs::write(huge.join("huge"), "x".repeat(100 * 1024)).unwrap();
    for (dir, expected) in [
        (&fifo, "pipe is not a regular file"),
        (&zero, "zero is not a regular file"),
        (&huge, "huge is larger than 64 KiB"),
    ] {
        // The outer bound only keeps a regression from hanging the suite.
        let out = sandbox.bash(dir, "timeout -s KILL 20 esc-hook exec -- true");
        let said = stderr(&out);
        assert_eq!(out.status.code(), Some(125), "{said}");
        assert!(
            said.contains("aws.web-identity: the token file") && said.contains(expected),
            "{said}"
        );
    }
}

// An `fn::open::aws-login` duration of `1ms` made every prompt open the environment again, in
// the foreground. A duration below STS's own minimum (15m) counts as that minimum.
#[test]
fn a_one_millisecond_login_duration_opens_once() {
    let read = payments_with_login_duration("1ms");
    let stand_in = StandIn::start(serde_json::json!({"acme/payments/dev": {"read": read}}));
    let sandbox = Sandbox::uncached_esc(&stand_in);
    let dir = allowed_project(&sandbox, "payments", "environment: acme/payments/dev\n");
    let home = sandbox.home();
    let mut session = Session::new(Sh::Bash, &sandbox);
    session
        .cd(&dir)
        .run("sleep 0.1")
        .run("sleep 0.1")
        .run("true")
        .probe("in", &["AWS_ACCESS_KEY_ID"]);
    let (probes, log) = session.finish(&home);
    expect(
        &probes,
        "in",
        &[("AWS_ACCESS_KEY_ID", "ASIAEXAMPLEKEYID0001")],
    );
    assert_eq!(stand_in.opens(), 1, "{log:#?}");
    let state = state_after_export(&sandbox, &dir);
    let loaded = &state["loaded"];
    let lifetime = loaded["expires_at"].as_u64().unwrap() - loaded["opened_at"].as_u64().unwrap();
    assert!(lifetime >= 15 * 60, "a lifetime of {lifetime}s");
}

// The HTTP client no longer reads proxies from the process environment (which holds what a
// project exported): the user's own are handed to it. Yours is used; a project's never is.
#[test]
fn the_users_own_proxy_is_used_and_a_projects_never() {
    let evil = StandIn::start(serde_json::json!({}));
    let proxy = StandIn::payments();
    let mut sandbox = Sandbox::uncached_esc(&proxy);
    // A backend reachable only through the user's proxy.
    sandbox.set("PULUMI_BACKEND_URL", "http://esc.invalid");
    sandbox.set("HTTP_PROXY", &proxy.url());
    let project_a = allowed_project(
        &sandbox,
        "a",
        &format!(
            "values:\n  HTTP_PROXY: {evil}\n  http_proxy: {evil}\n  ALL_PROXY: {evil}\n",
            evil = evil.url()
        ),
    );
    let project_b = allowed_project(&sandbox, "b", "environment: acme/payments/dev\n");
    let script = format!(
        "eval \"$(esc-hook export bash)\"; test \"$HTTP_PROXY\" = '{evil}' || exit 9\n\
         esc-hook exec --dir '{b}' -- sh -c 'echo \"$AWS_ACCESS_KEY_ID\"' > key || exit 10",
        evil = evil.url(),
        b = project_b.display()
    );
    let out = sandbox.bash(&project_a, &script);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        fs::read_to_string(project_a.join("key")).unwrap(),
        "ASIAEXAMPLEKEYID0001\n"
    );
    assert_eq!(evil.requests().len(), 0, "{:?}", evil.requests());
    let through_proxy = proxy.requests();
    assert!(
        !through_proxy.is_empty()
            && through_proxy
                .iter()
                .all(|r| r["proxied_to"].as_str() == Some("esc.invalid")),
        "{through_proxy:?}"
    );
}

// Core dumps: esc-hook holds the Pulumi token and opened values, so its process is not
// dumpable: its /proc files become root's, out of reach of the user's other processes (and of
// a core file). The check runs as an unprivileged user, to whom the difference shows: as root
// it drops to nobody. The editor `edit` starts (a child that outlives nothing) looks at its
// parent; it is itself as dumpable as ever.
#[test]
fn esc_hook_is_not_dumpable_and_what_it_starts_is() {
    if !cfg!(target_os = "linux") {
        return;
    }
    // SAFETY: geteuid has no preconditions.
    let root = unsafe { libc::geteuid() } == 0;
    if root && !have("setpriv") {
        skip("needs setpriv to look as an unprivileged user");
        return;
    }
    let sandbox = Sandbox::new();
    let dir = sandbox.path("p");
    fs::create_dir_all(&dir).unwrap();
    fs::write(dir.join(".escrc"), "values:\n  PLAIN: yes\n").unwrap();
    let copy = sandbox.path("esc-hook");
    fs::copy(bin(), &copy).unwrap();
    let seen = sandbox.path("seen");
    let editor = sandbox.path("editor");
    fs::write(
        &editor,
        format!(
            "#!/bin/sh\necho parent=$(stat -c %u /proc/$PPID/environ) self=$(stat -c %u /proc/$$/environ) me=$(id -u) > '{}'\n",
            seen.display()
        ),
    )
    .unwrap();
    std::process::Command::new("chmod")
        .arg("755")
        .arg(&editor)
        .status()
        .unwrap();
    if root {
        // The whole sandbox becomes nobody's (its home, data and cache directories too).
        std::process::Command::new("chown")
            .args(["-R", "65534:65534"])
            .arg(sandbox.path(""))
            .status()
            .unwrap();
    }
    let mut command = match root {
        true => {
            let mut c = std::process::Command::new("setpriv");
            c.args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"]);
            c.arg(&copy);
            c
        }
        false => std::process::Command::new(&copy),
    };
    let out = command
        .arg("edit")
        .env_clear()
        .envs(sandbox.env())
        .env("EDITOR", &editor)
        .env("PWD", &dir)
        .current_dir(&dir)
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    let shown = fs::read_to_string(&seen).unwrap_or_default();
    assert!(out.status.success(), "{shown}{}", stderr(&out));
    let me = shown
        .split_whitespace()
        .find_map(|w| w.strip_prefix("me="))
        .unwrap_or_default()
        .to_string();
    assert_eq!(root, me == "65534", "{shown}");
    assert!(!me.is_empty() && me != "0", "{shown}");
    assert!(
        shown.contains("parent=0 "),
        "esc-hook is not dumpable: {shown}"
    );
    assert!(
        shown.contains(&format!("self={me} ")),
        "its editor is: {shown}"
    );
}

// Finding 12: the user's own secrets (their static AWS keys, a GITHUB_TOKEN), overridden or
// set aside by a project, were kept in plain text in ESC_HOOK_STATE, which every program in
// the project inherits. They now wait in the keyring; the state holds only a salted hash, and
// leaving brings them back. Without a usable keyring the project is not loaded, with a line,
// and nothing of the user's is lost.
fn a_users_own_secrets_never_reach_the_state(shell: Sh) {
    if !available(shell) || !have_keyrings() {
        return;
    }
    let stand_in = StandIn::payments();
    let mut sandbox = Sandbox::uncached_esc(&stand_in);
    sandbox.set("ESC_HOOK_KEYRING", "keyutils");
    let home = sandbox.home();
    let payments = allowed_project(
        &sandbox,
        "payments",
        "environment: acme/payments/dev\nvalues:\n  GITHUB_TOKEN: the-projects-token\n  AWS_REGION: eu-west-1\n",
    );
    let own = [
        ("AWS_ACCESS_KEY_ID", "AKIAUSERSOWNKEY"),
        ("AWS_SECRET_ACCESS_KEY", "users-own-secret-key"),
        ("GITHUB_TOKEN", "ghp_users_own_token"),
        ("AWS_REGION", "us-west-2"),
    ];
    let names: Vec<&str> = own.iter().map(|(name, _)| *name).collect();
    let state_file = sandbox.path(&format!("state-{}", shell.name()));
    let env_file = sandbox.path(&format!("env-{}", shell.name()));
    let mut session = Session::new(shell, &sandbox);
    for (name, value) in own {
        session.user_set(name, value);
    }
    session
        .cd(&payments)
        .probe("inside", &names)
        .run(&format!(
            "printf %s \"$ESC_HOOK_STATE\" > '{}'",
            state_file.display()
        ))
        .run(&format!("env > '{}'", env_file.display()))
        .cd(&home)
        .probe("outside", &names)
        .cd(&payments)
        .cd(&home)
        .probe("again", &names);
    let (probes, log) = session.finish(&home);
    expect(
        &probes,
        "inside",
        &[
            ("AWS_ACCESS_KEY_ID", "ASIAEXAMPLEKEYID0001"),
            ("GITHUB_TOKEN", "the-projects-token"),
            ("AWS_REGION", "eu-west-1"),
        ],
    );
    expect(&probes, "outside", &own);
    expect(&probes, "again", &own);
    let decoded = decode_state(&fs::read_to_string(&state_file).unwrap()).to_string();
    let children_see = fs::read_to_string(&env_file).unwrap();
    for (name, value) in &own[..3] {
        assert!(decoded.contains(name), "{decoded}");
        assert!(
            !decoded.contains(value),
            "{}: {value} in the state",
            shell.name()
        );
        assert!(
            !children_see.contains(value),
            "{}: {value} in a child",
            shell.name()
        );
    }
    // Not a secret: the user's region is recorded as before.
    assert!(decoded.contains("us-west-2"), "{decoded}");
    assert!(
        !log.iter().any(|l| l.contains("could not bring back")),
        "{log:#?}"
    );

    // No keyring to hold them: not loaded, said once, nothing of the user's touched.
    let mut sandbox = Sandbox::uncached_esc(&stand_in);
    sandbox.set("ESC_HOOK_KEYRING", "none");
    let payments = allowed_project(
        &sandbox,
        "payments",
        "environment: acme/payments/dev\nvalues:\n  GITHUB_TOKEN: the-projects-token\n",
    );
    let mut session = Session::new(shell, &sandbox);
    for (name, value) in own {
        session.user_set(name, value);
    }
    session
        .cd(&payments)
        .probe("refused", &names)
        .cd(&sandbox.home())
        .probe("after", &names);
    let (probes, log) = session.finish(&sandbox.home());
    expect(&probes, "refused", &own);
    expect(&probes, "after", &own);
    let refusals: Vec<&String> = log
        .iter()
        .filter(|l| l.contains("not loaded: your own AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY GITHUB_TOKEN would wait in a keyring"))
        .collect();
    assert_eq!(refusals.len(), 1, "{}: {log:#?}", shell.name());
    assert!(
        refusals[0].contains("ESC_HOOK_KEYRING=none"),
        "{refusals:?}"
    );
}

#[test]
fn a_users_own_secrets_never_reach_the_state_in_every_shell() {
    for shell in SHELLS {
        a_users_own_secrets_never_reach_the_state(shell);
    }
}

// exec: the state it hands its command records no secret of the user's either.
#[test]
fn exec_records_no_secret_of_the_users() {
    let stand_in = StandIn::payments();
    let mut sandbox = Sandbox::uncached_esc(&stand_in);
    sandbox.set("AWS_SECRET_ACCESS_KEY", "users-own-secret-key");
    sandbox.set("AWS_REGION", "us-west-2");
    let payments = allowed_project(
        &sandbox,
        "payments",
        "environment: acme/payments/dev\nvalues:\n  AWS_REGION: eu-west-1\n",
    );
    let out = sandbox
        .esc(
            &payments,
            &["exec", "--", "sh", "-c", "printf %s \"$ESC_HOOK_STATE\""],
        )
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let decoded = decode_state(&stdout(&out)).to_string();
    assert!(decoded.contains("AWS_SECRET_ACCESS_KEY"), "{decoded}");
    assert!(!decoded.contains("users-own-secret-key"), "{decoded}");
    assert!(decoded.contains("us-west-2"), "{decoded}");
}

// Finding 6: check, then use. Trust was checked on the `.escrc` read through a path, and the
// token-command later ran in that path resolved again: another user who may rename entries of
// a directory above the project swapped in their own directory in between, and their
// `./bin/tok` ran as the victim. The swap here happens at the one moment that matters (while
// the environment is being opened, after the check, before the token), every time. What runs
// in the project runs in the directory holding the checked file, by its handle; a directory
// that no longer holds it runs nothing, with a line.
#[test]
fn a_directory_swapped_after_the_check_runs_nothing() {
    let sandbox_dir = tempfile::tempdir().unwrap();
    let gate = sandbox_dir.path().join("gate");
    let stand_in = StandIn::start(serde_json::json!({"acme/payments/dev": {
        "read": fixture("read-payments-dev.json"),
        "fault": format!("wait-for:{}", gate.display()),
    }}));
    let sandbox = Sandbox::uncached_esc(&stand_in);
    let tool = |dir: &std::path::Path, marker: &str| {
        fs::create_dir_all(dir.join("bin")).unwrap();
        let tok = dir.join("bin/tok");
        fs::write(
            &tok,
            format!(
                "#!/bin/sh\ntouch '{}'\necho eyJhbGciOiJSUzI1NiJ9.e30.c2ln\n",
                sandbox.path(marker).display()
            ),
        )
        .unwrap();
        Command::new("chmod").arg("755").arg(&tok).status().unwrap();
    };
    let escrc = "environment: acme/payments/dev\naws:\n  region: us-east-1\n  web-identity:\n    role-arn: arn:aws:iam::123456789012:role/ci\n    token-command: ./bin/tok\n";
    let project = allowed_project(&sandbox, "work/app", escrc);
    tool(&project, "ran-the-users-tok");
    // The neighbour's directory, ready to take the project's place.
    let theirs = sandbox.home().join("theirs/app");
    fs::create_dir_all(&theirs).unwrap();
    fs::write(theirs.join(".escrc"), escrc).unwrap();
    tool(&theirs, "ran-their-tok");

    let export = sandbox
        .esc(&project, &["export", "bash"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while stand_in.opens() == 0 && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    assert_eq!(stand_in.opens(), 1, "the open arrived");
    // Checked and opening: the path now leads to the neighbour's directory.
    let home = sandbox.home();
    fs::rename(home.join("work"), home.join("work-moved")).unwrap();
    fs::rename(home.join("theirs"), home.join("work")).unwrap();
    fs::write(&gate, "").unwrap();
    let out = export.wait_with_output().unwrap();
    let log = stderr(&out);
    assert!(
        !sandbox.path("ran-their-tok").exists(),
        "the neighbour's command ran: {log}"
    );
    assert!(
        log.contains("changed since its .escrc was allowed: nothing is read or run there"),
        "{log}"
    );
    assert!(
        !stdout(&out).contains("AWS_SESSION_TOKEN"),
        "{}",
        stdout(&out)
    );
}
