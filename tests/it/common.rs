//! Shared test fixtures: an isolated home per test, the ESC stand-in, tool discovery.

#![allow(dead_code)]

use std::fs;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};

use serde_json::{Value as Json, json};

pub const TOKEN: &str = "pul-test-token-0123456789";

pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_esc-hook")
}

pub fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

pub fn fixture(name: &str) -> Json {
    let text = fs::read_to_string(repo().join("tests/fixtures").join(name)).unwrap();
    serde_json::from_str(&text).unwrap()
}

/// Says that a test did not run, where the summary of tests/run.sh shows it (cargo hides what
/// a passing test prints). In CI nothing may be skipped: the test fails instead.
pub fn skip(reason: &str) {
    assert!(
        std::env::var("CI").as_deref() != Ok("true"),
        "{reason}: required in CI"
    );
    eprintln!("SKIP: {reason}");
    if let Ok(list) = std::env::var("ESC_HOOK_TEST_SKIPS") {
        let test = std::thread::current().name().unwrap_or("?").to_string();
        if let Ok(mut file) = fs::OpenOptions::new().append(true).create(true).open(list) {
            let _ = writeln!(file, "{test}: {reason}");
        }
    }
}

/// Whether an external tool is here. Outside CI a missing one skips the test with a loud
/// line; in CI (`CI=true`) nothing may be skipped.
pub fn have(tool: &str) -> bool {
    let found = Command::new("sh")
        .args(["-c", &format!("command -v {tool}")])
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !found {
        skip(&format!("{tool} is not installed"));
    }
    found
}

/// An isolated user: its own home, XDG directories and Pulumi home, nothing inherited.
pub struct Sandbox {
    pub dir: tempfile::TempDir,
    pub extra_env: Vec<(String, String)>,
}

impl Sandbox {
    pub fn new() -> Sandbox {
        let dir = tempfile::Builder::new()
            .prefix("esc-hook-test")
            .tempdir()
            .unwrap();
        for sub in ["home", "data", "config", "cache", "run", "tmp"] {
            fs::create_dir_all(dir.path().join(sub)).unwrap();
        }
        fs::set_permissions(dir.path().join("run"), fs::Permissions::from_mode(0o700)).unwrap();
        // An interactive fish's first start generates completions from man pages in the
        // background, writing here after the test (and its temporary directory) is gone: it
        // skips that when the directory exists.
        fs::create_dir_all(dir.path().join("data/fish/generated_completions")).unwrap();
        Sandbox {
            dir,
            extra_env: Vec::new(),
        }
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    pub fn home(&self) -> PathBuf {
        self.path("home")
    }

    /// A project directory under home holding `escrc`.
    pub fn project(&self, rel: &str, escrc: &str) -> PathBuf {
        let dir = self.home().join(rel);
        fs::create_dir_all(&dir).unwrap();
        self.write_escrc(&dir, escrc);
        dir
    }

    pub fn write_escrc(&self, dir: &Path, escrc: &str) {
        let file = dir.join(".escrc");
        fs::write(&file, escrc).unwrap();
        fs::set_permissions(&file, fs::Permissions::from_mode(0o644)).unwrap();
    }

    pub fn with_esc(&mut self, stand_in: &StandIn) {
        self.extra_env
            .push(("PULUMI_BACKEND_URL".into(), stand_in.url()));
        self.extra_env
            .push(("PULUMI_ACCESS_TOKEN".into(), stand_in.token.clone()));
    }

    /// Logged in to `stand_in`, with the keyring cache switched off.
    pub fn uncached_esc(stand_in: &StandIn) -> Sandbox {
        let mut sandbox = Sandbox::new();
        sandbox.with_esc(stand_in);
        sandbox.set("ESC_HOOK_KEYRING", "none");
        sandbox
    }

    /// Sets a variable for every process of this sandbox.
    pub fn set(&mut self, name: &str, value: &str) {
        self.extra_env.retain(|(k, _)| k != name);
        self.extra_env.push((name.into(), value.into()));
    }

    pub fn env(&self) -> Vec<(String, String)> {
        let bin_dir = Path::new(bin()).parent().unwrap().display().to_string();
        let mut env = vec![
            ("HOME".to_string(), self.home().display().to_string()),
            (
                "PATH".into(),
                format!("{bin_dir}:/usr/local/bin:/usr/bin:/bin"),
            ),
            (
                "XDG_DATA_HOME".into(),
                self.path("data").display().to_string(),
            ),
            (
                "XDG_CONFIG_HOME".into(),
                self.path("config").display().to_string(),
            ),
            (
                "XDG_CACHE_HOME".into(),
                self.path("cache").display().to_string(),
            ),
            (
                "XDG_RUNTIME_DIR".into(),
                self.path("run").display().to_string(),
            ),
            (
                "PULUMI_HOME".into(),
                self.home().join(".pulumi").display().to_string(),
            ),
            ("TMPDIR".into(), self.path("tmp").display().to_string()),
            ("LANG".into(), "C.UTF-8".into()),
            ("TERM".into(), "xterm".into()),
        ];
        // The private D-Bus session of tests/run.sh, where the Secret Service lives.
        if let Ok(bus) = std::env::var("DBUS_SESSION_BUS_ADDRESS") {
            env.push(("DBUS_SESSION_BUS_ADDRESS".into(), bus));
        }
        env.extend(self.extra_env.iter().cloned());
        env
    }

    /// esc-hook with this sandbox's environment, run in `dir`.
    pub fn esc(&self, dir: &Path, args: &[&str]) -> Command {
        let mut cmd = Command::new(bin());
        cmd.args(args)
            .env_clear()
            .envs(self.env())
            .env("PWD", dir)
            .current_dir(dir)
            .stdin(Stdio::null());
        cmd
    }

    pub fn run(&self, dir: &Path, args: &[&str]) -> Output {
        self.esc(dir, args).output().unwrap()
    }

    pub fn allow(&self, dir: &Path) {
        let out = self.run(dir, &["allow"]);
        assert!(out.status.success(), "allow failed: {}", stderr(&out));
    }

    /// Trusts the `.escrc` in `dir` as it is, even one `allow` refuses (it does not parse): a
    /// file allowed before it broke, or under a trusted prefix, is what the hook then meets.
    /// Writes the allow record the way the trust store does (keeping/trust.rs).
    pub fn allow_as_it_is(&self, dir: &Path) {
        use sha2::{Digest, Sha256};
        use std::os::unix::ffi::OsStrExt;
        let path = fs::canonicalize(dir).unwrap().join(".escrc");
        let content = fs::read(&path).unwrap();
        let mut hash = Sha256::new();
        hash.update(b"esc-hook trust v2\0allow\0");
        hash.update(path.as_os_str().as_bytes());
        hash.update(b"\0");
        hash.update(&content);
        let key: String = hash.finalize().iter().map(|b| format!("{b:02x}")).collect();
        let records = self.path("data/esc-hook/allow");
        fs::create_dir_all(&records).unwrap();
        fs::set_permissions(
            self.path("data/esc-hook"),
            fs::Permissions::from_mode(0o700),
        )
        .unwrap();
        let mut line = path.as_os_str().as_bytes().to_vec();
        line.push(b'\n');
        fs::write(records.join(key), line).unwrap();
    }

    /// Writes the user's config file (`$XDG_CONFIG_HOME/esc-hook/config.toml`, 0600).
    pub fn write_user_config(&self, text: &str) {
        let config = self.path("config/esc-hook/config.toml");
        fs::create_dir_all(config.parent().unwrap()).unwrap();
        fs::write(&config, text).unwrap();
        fs::set_permissions(&config, fs::Permissions::from_mode(0o600)).unwrap();
    }

    /// Runs `script` in a non-interactive bash with this sandbox's environment, in `dir`.
    pub fn bash(&self, dir: &Path, script: &str) -> Output {
        self.shell("bash", dir, script)
    }

    /// Runs `script` with `program -c` (bash, zsh, fish) in this sandbox's environment, in `dir`.
    pub fn shell(&self, program: &str, dir: &Path, script: &str) -> Output {
        Command::new(program)
            .args(["-c", script])
            .env_clear()
            .envs(self.env())
            .env("PWD", dir)
            .current_dir(dir)
            .stdin(Stdio::null())
            .output()
            .unwrap()
    }

    /// Saves the nushell hook in the sandbox (nushell sources files, not generated code).
    pub fn nu_hook(&self) -> PathBuf {
        let hook = Command::new(bin()).args(["init", "nu"]).output().unwrap();
        let path = self.path("esc-hook.nu");
        fs::write(&path, &hook.stdout).unwrap();
        path
    }

    /// Runs `script` in nushell (`nu`, from [`nu`]) without a config file, in `dir`.
    pub fn nu(&self, nu: &Path, dir: &Path, script: &str) -> Output {
        Command::new(nu)
            .args(["--no-config-file", "-c", script])
            .env_clear()
            .envs(self.env())
            .env("PWD", dir)
            .current_dir(dir)
            .stdin(Stdio::null())
            .output()
            .unwrap()
    }
}

pub fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// The ESC stand-in (tests/support/esc_stand_in.py) on a free loopback port.
pub struct StandIn {
    child: Child,
    port: u16,
    /// Its own token: the tests share one kernel keyring, and a stand-in may get an earlier
    /// one's port, so the token (part of every cache key) keeps their entries apart.
    pub token: String,
    _config: tempfile::NamedTempFile,
}

impl StandIn {
    /// Serves `environments` (name → {"read": …} or {"fault": …}) for a token of its own.
    pub fn start(environments: Json) -> StandIn {
        static STARTED: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let token = format!(
            "{TOKEN}-{}-{}",
            std::process::id(),
            STARTED.fetch_add(1, std::sync::atomic::Ordering::SeqCst)
        );
        let mut config = tempfile::NamedTempFile::new().unwrap();
        let body = json!({"token": token, "environments": environments});
        config.write_all(body.to_string().as_bytes()).unwrap();
        let mut child = Command::new("python3")
            .arg(repo().join("tests/support/esc_stand_in.py"))
            .arg(config.path())
            .stdout(Stdio::piped())
            .stdin(Stdio::null())
            .spawn()
            .expect("python3 runs the ESC stand-in");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let port = line
            .trim()
            .strip_prefix("listening on ")
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| panic!("stand-in did not start: {line:?}"));
        StandIn {
            child,
            port,
            token,
            _config: config,
        }
    }

    /// The usual environment: the payments fixture under `acme/payments/dev`.
    pub fn payments() -> StandIn {
        StandIn::start(json!({"acme/payments/dev": {"read": fixture("read-payments-dev.json")}}))
    }

    /// The open (POST) requests received so far.
    pub fn opens(&self) -> usize {
        self.requests()
            .iter()
            .filter(|r| r["method"] == "POST")
            .count()
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Serves `environments` from now on (the same token): a backend that recovers.
    pub fn reconfigure(&self, environments: Json) {
        self.configure(json!({"environments": environments}));
    }

    /// Replaces the stand-in's whole configuration (its token kept).
    pub fn configure(&self, mut config: Json) {
        config["token"] = json!(self.token);
        let body = config.to_string();
        let mut stream = TcpStream::connect(("127.0.0.1", self.port)).unwrap();
        write!(
            stream,
            "POST /_stand-in/config HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        )
        .unwrap();
        let mut response = String::new();
        stream.read_to_string(&mut response).unwrap();
        assert!(
            response.starts_with("HTTP/1.0 200") || response.starts_with("HTTP/1.1 200"),
            "{response}"
        );
    }

    pub fn requests(&self) -> Vec<Json> {
        let mut stream = TcpStream::connect(("127.0.0.1", self.port)).unwrap();
        write!(
            stream,
            "GET /_stand-in/requests HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
        )
        .unwrap();
        let mut response = String::new();
        stream.read_to_string(&mut response).unwrap();
        let body = response.split("\r\n\r\n").nth(1).unwrap();
        serde_json::from_str::<Json>(body)
            .unwrap()
            .as_array()
            .unwrap()
            .clone()
    }
}

impl Drop for StandIn {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A project at `home/<rel>` whose `.escrc` is allowed.
pub fn allowed_project(sandbox: &Sandbox, rel: &str, escrc: &str) -> PathBuf {
    let dir = sandbox.project(rel, escrc);
    sandbox.allow(&dir);
    dir
}

/// A project at `home/<rel>` whose `.escrc` is trusted as it is, even if `allow` would refuse
/// it (see [`Sandbox::allow_as_it_is`]).
pub fn trusted_as_it_is(sandbox: &Sandbox, rel: &str, escrc: &str) -> PathBuf {
    let dir = sandbox.project(rel, escrc);
    sandbox.allow_as_it_is(&dir);
    dir
}

/// The exported variables after evaluating `esc-hook export bash` in `dir`, as
/// `NAME=value` lines of `env`, plus the hook's stderr.
pub fn load_with_bash(sandbox: &Sandbox, dir: &Path, print: &[&str]) -> (Vec<String>, String) {
    let mut script = String::from("eval \"$(esc-hook export bash)\" || exit 9\n");
    for name in print {
        script.push_str(&format!(
            "printf '%s=%s\\n' {name} \"${{{name}-<unset>}}\"\n"
        ));
    }
    let out = sandbox.bash(dir, &script);
    assert!(out.status.success(), "bash failed: {}", stderr(&out));
    (
        stdout(&out).lines().map(String::from).collect(),
        stderr(&out),
    )
}

/// `ESC_HOOK_STATE` as JSON.
pub fn decode_state(text: &str) -> Json {
    use base64::Engine;
    let json = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(text.trim())
        .unwrap();
    serde_json::from_slice(&json).unwrap()
}

/// JSON as an `ESC_HOOK_STATE` value (to forge one).
pub fn encode_state(state: &Json) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(state.to_string())
}

/// The state `esc-hook export bash` leaves in `dir`.
pub fn state_after_export(sandbox: &Sandbox, dir: &Path) -> Json {
    let out = sandbox.bash(
        dir,
        "eval \"$(esc-hook export bash)\"; printf %s \"$ESC_HOOK_STATE\"",
    );
    decode_state(&stdout(&out))
}

/// Whether the real keyrings of tests/run.sh are here. Outside CI their absence skips the
/// test loudly; in CI it fails.
pub fn have_keyrings() -> bool {
    let here = std::env::var("ESC_HOOK_TEST_KEYRINGS").is_ok();
    if !here {
        skip("no private keyrings (run tests/run.sh: real Secret Service and keyutils)");
    }
    here
}

/// The payments fixture, with credentials numbered by open (`AKIA-1`, `AKIA-2`, …).
pub fn numbered_payments() -> Json {
    let mut read = fixture("read-payments-dev.json");
    read["properties"]["environmentVariables"]["value"]["AWS_ACCESS_KEY_ID"]["value"] =
        json!("AKIA-@@OPEN@@");
    read
}

/// moto's STS server (from the test virtualenv) on a free loopback port.
pub struct Moto {
    child: Child,
    port: u16,
}

impl Moto {
    /// None (after a loud SKIP, or a failure in CI) when moto is not installed.
    pub fn start() -> Option<Moto> {
        let server = repo().join(".venv/bin/moto_server");
        if !server.exists() {
            skip(".venv/bin/moto_server is missing (run .ci/run's setup)");
            return None;
        }
        let port = free_port();
        let child = Command::new(server)
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .stdin(Stdio::null())
            .spawn()
            .unwrap();
        let started = std::time::Instant::now();
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(started.elapsed().as_secs() < 20, "moto did not start");
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        Some(Moto { child, port })
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// nushell's binary, from the npm package `nushell` that .ci/run installs under .tools/.
pub fn nu() -> Option<std::path::PathBuf> {
    let arch = if cfg!(target_arch = "aarch64") {
        "arm64"
    } else {
        "x64"
    };
    let path = repo().join(format!(".tools/node_modules/@nushell/linux-{arch}/bin/nu"));
    if path.exists() {
        return Some(path);
    }
    skip("nushell is not installed under .tools (see .ci/run)");
    None
}

/// A loopback port nothing listens on (bound once, then freed).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A tmux server of the sandbox's own, running one interactive shell on a real terminal;
/// killed when dropped, even when the test fails.
pub struct Tmux {
    socket: PathBuf,
    env: Vec<(String, String)>,
}

impl Tmux {
    pub fn start(sandbox: &Sandbox, extra_env: &[(&str, &Path)], shell: &str) -> Tmux {
        let mut env = sandbox.env();
        env.extend(
            extra_env
                .iter()
                .map(|(k, v)| (k.to_string(), v.display().to_string())),
        );
        let tmux = Tmux {
            socket: sandbox.path("tmux.sock"),
            env,
        };
        tmux.run(&[
            "new-session",
            "-d",
            "-s",
            "t",
            "-x",
            "200",
            "-y",
            "50",
            shell,
        ]);
        tmux
    }

    fn run(&self, args: &[&str]) -> String {
        let out = Command::new("tmux")
            .arg("-S")
            .arg(&self.socket)
            .args(args)
            .env_clear()
            .envs(self.env.iter().cloned())
            .output()
            .unwrap();
        assert!(out.status.success(), "tmux {args:?}: {}", stderr(&out));
        stdout(&out)
    }

    /// Types `keys` (tmux key names, such as `Enter` or `C-c`).
    pub fn send(&self, keys: &[&str]) {
        let mut args = vec!["send-keys", "-t", "t"];
        args.extend(keys);
        self.run(&args);
    }

    pub fn screen(&self) -> String {
        self.run(&["capture-pane", "-p", "-t", "t"])
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = Command::new("tmux")
            .arg("-S")
            .arg(&self.socket)
            .arg("kill-server")
            .output();
    }
}

/// A values-only project: loads without any network.
pub const VALUES: &str = "values:\n  AWS_REGION: eu-west-1\n";
