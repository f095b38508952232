//! The hooks in real interactive bash, zsh and fish, driven prompt by prompt: bash and zsh
//! read their commands from a pipe (their prompt hooks still fire), fish runs under `script`
//! on a pseudo-terminal (its prompt events need one).

use std::collections::BTreeMap;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::common::*;

#[derive(Clone, Copy, PartialEq)]
pub enum Sh {
    Bash,
    Zsh,
    Fish,
}

impl Sh {
    pub fn name(self) -> &'static str {
        match self {
            Sh::Bash => "bash",
            Sh::Zsh => "zsh",
            Sh::Fish => "fish",
        }
    }
}

/// The shells whose hooks run in real sessions.
pub const SHELLS: [Sh; 3] = [Sh::Bash, Sh::Zsh, Sh::Fish];

/// Whether `shell` is here (fish also needs `script` for a terminal); skips loudly if not.
pub fn available(shell: Sh) -> bool {
    have(shell.name()) && (shell != Sh::Fish || have("script"))
}

/// A scripted interactive session: each line is typed at its own prompt.
pub struct Session<'a> {
    shell: Sh,
    sandbox: &'a Sandbox,
    lines: Vec<String>,
    probes: PathBuf,
    /// When set, the hook calls esc-hook through a wrapper that counts the calls here.
    calls: Option<PathBuf>,
    /// A command the shell is started through (such as `esc-hook exec --`).
    launcher: Vec<String>,
}

fn quoted(path: &Path) -> String {
    format!("'{}'", path.display())
}

impl<'a> Session<'a> {
    pub fn new(shell: Sh, sandbox: &'a Sandbox) -> Session<'a> {
        let probes = sandbox.path(&format!("probes-{}", shell.name()));
        Session {
            shell,
            sandbox,
            lines: Vec::new(),
            probes,
            calls: None,
            launcher: Vec::new(),
        }
    }

    /// Starts the shell through `command` (which ends by running the rest of its arguments).
    pub fn launched_by(&mut self, command: &[&str]) -> &mut Self {
        self.launcher = command.iter().map(|s| s.to_string()).collect();
        self
    }

    pub fn cd(&mut self, dir: &Path) -> &mut Self {
        self.lines.push(format!("cd {}", quoted(dir)));
        self
    }

    /// Any command, the same text in every shell.
    pub fn run(&mut self, command: &str) -> &mut Self {
        self.lines.push(command.to_string());
        self
    }

    /// The user sets a variable by hand.
    pub fn user_set(&mut self, name: &str, value: &str) -> &mut Self {
        self.lines.push(match self.shell {
            Sh::Fish => format!("set -gx {name} '{value}'"),
            _ => format!("export {name}='{value}'"),
        });
        self
    }

    /// Records `label NAME=value` (or `=<unset>`) for each name.
    pub fn probe(&mut self, label: &str, names: &[&str]) -> &mut Self {
        let out = quoted(&self.probes);
        for name in names {
            self.lines.push(match self.shell {
                Sh::Fish => format!(
                    "if set -q {name}; echo \"{label} {name}=${name}\"; else; echo \"{label} {name}=<unset>\"; end >> {out}"
                ),
                _ => format!("printf '%s\\n' \"{label} {name}=${{{name}-<unset>}}\" >> {out}"),
            });
        }
        self
    }

    /// Counts every time the hook starts the binary, for [`Session::probe_calls`].
    pub fn count_calls(&mut self) -> &mut Self {
        self.calls = Some(self.sandbox.path(&format!("calls-{}", self.shell.name())));
        self
    }

    /// Records `label calls=N`: how often the hook has started the binary so far.
    pub fn probe_calls(&mut self, label: &str) -> &mut Self {
        let calls = quoted(self.calls.as_ref().expect("count_calls first"));
        let out = quoted(&self.probes);
        self.lines.push(match self.shell {
            Sh::Fish => format!("echo \"{label} calls=\"(count (cat {calls})) >> {out}"),
            _ => format!("echo \"{label} calls=$(wc -l < {calls})\" >> {out}"),
        });
        self
    }

    /// The hook script for this shell, calling the counting wrapper when asked to.
    fn hook_script(&self) -> String {
        let init = Command::new(bin())
            .args(["init", self.shell.name()])
            .output()
            .unwrap();
        let script = String::from_utf8(init.stdout).unwrap();
        let Some(calls) = &self.calls else {
            return script;
        };
        let wrapper = counting_wrapper(self.sandbox, self.shell.name(), calls);
        script.replace(bin(), wrapper.to_str().unwrap())
    }

    /// Records the exit status of the previous command as `label status=N`: the hook ran at
    /// the prompt in between and must not have changed it.
    pub fn probe_status(&mut self, label: &str) -> &mut Self {
        let out = quoted(&self.probes);
        self.lines.push(match self.shell {
            Sh::Fish => format!("echo \"{label} status=$status\" >> {out}"),
            _ => format!("echo \"{label} status=$?\" >> {out}"),
        });
        self
    }

    /// Runs the session starting in `start`; returns the probes (label → name → value) and
    /// the hook's log lines.
    pub fn finish(
        &mut self,
        start: &Path,
    ) -> (BTreeMap<String, BTreeMap<String, String>>, Vec<String>) {
        let sandbox = self.sandbox;
        let rc_dir = sandbox.path(&format!("rc-{}", self.shell.name()));
        fs::create_dir_all(rc_dir.join("fish")).unwrap();
        let mut input = self.lines.join("\n");
        input.push_str("\nexit\n");
        let mut command = match self.shell {
            Sh::Bash => {
                fs::write(rc_dir.join("bashrc"), self.hook_script()).unwrap();
                let mut c = Command::new("timeout");
                c.args(["-s", "KILL", "60"])
                    .args(&self.launcher)
                    .args(["bash", "--rcfile"])
                    .arg(rc_dir.join("bashrc"))
                    .arg("-i");
                c
            }
            Sh::Zsh => {
                fs::write(rc_dir.join(".zshrc"), self.hook_script()).unwrap();
                let mut c = Command::new("timeout");
                c.args(["-s", "KILL", "60"])
                    .args(&self.launcher)
                    .args(["zsh", "-i"]);
                c
            }
            Sh::Fish => {
                fs::write(rc_dir.join("fish/config.fish"), self.hook_script()).unwrap();
                let mut c = Command::new("timeout");
                c.args(["-s", "KILL", "60"]).args(&self.launcher).args([
                    "script",
                    "-qfec",
                    "fish -i",
                    "/dev/null",
                ]);
                c
            }
        };
        command
            .env_clear()
            .envs(sandbox.env())
            .env("PWD", start)
            .current_dir(start)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        match self.shell {
            Sh::Fish => command.env("XDG_CONFIG_HOME", &rc_dir),
            Sh::Zsh => command.env("ZDOTDIR", &rc_dir),
            Sh::Bash => &mut command,
        };
        let mut child = command.spawn().unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(input.as_bytes())
            .unwrap();
        let out = child.wait_with_output().unwrap();
        // `timeout -s KILL` exits 137 once it had to kill.
        assert!(
            out.status.code() != Some(137),
            "{} timed out",
            self.shell.name()
        );
        let all_output = format!("{}{}", stdout(&out), stderr(&out));
        let log: Vec<String> = all_output
            .lines()
            .filter_map(|l| {
                l.find("esc-hook: ")
                    .map(|at| l[at..].trim_end_matches('\r').to_string())
            })
            .collect();
        let mut probes: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
        for line in fs::read_to_string(&self.probes).unwrap_or_default().lines() {
            let (label, rest) = line.split_once(' ').unwrap();
            let (name, value) = rest.split_once('=').unwrap();
            probes
                .entry(label.into())
                .or_default()
                .insert(name.into(), value.into());
        }
        assert!(
            !all_output.contains("command not found"),
            "{}: {all_output}",
            self.shell.name()
        );
        (probes, log)
    }
}

/// An esc-hook that writes a line to `calls` each time it starts, then runs the real one.
fn counting_wrapper(sandbox: &Sandbox, shell: &str, calls: &Path) -> PathBuf {
    let wrapper = sandbox.path(&format!("counting-esc-hook-{shell}"));
    fs::write(
        &wrapper,
        format!(
            "#!/bin/sh\necho call >> '{}'\nexec '{}' \"$@\"\n",
            calls.display(),
            bin()
        ),
    )
    .unwrap();
    Command::new("chmod")
        .arg("755")
        .arg(&wrapper)
        .status()
        .unwrap();
    fs::write(calls, "").unwrap();
    wrapper
}

pub fn expect(
    probes: &BTreeMap<String, BTreeMap<String, String>>,
    label: &str,
    want: &[(&str, &str)],
) {
    let got = probes
        .get(label)
        .unwrap_or_else(|| panic!("no probe {label}: {probes:#?}"));
    for (name, value) in want {
        assert_eq!(
            got.get(*name).map(String::as_str),
            Some(*value),
            "{label} {name}: {probes:#?}"
        );
    }
}

/// Enter, leave, user edits, nested projects, edit → blocked → allowed, deny.
fn a_working_day(shell: Sh) {
    if !have(shell.name()) || (shell == Sh::Fish && !have("script")) {
        return;
    }
    let stand_in = StandIn::payments();
    let mut sandbox = Sandbox::new();
    sandbox.with_esc(&stand_in);
    let home = sandbox.home();
    let payments = allowed_project(
        &sandbox,
        "payments",
        "environment: acme/payments/dev\nvalues:\n  PROJECT: payments\n",
    );
    let outer = allowed_project(&sandbox, "outer", "values:\n  X: outer\n  Y: a\n");
    let inner = allowed_project(&sandbox, "outer/inner", "values:\n  X: inner\n");

    let mut session = Session::new(shell, &sandbox);
    session
        .user_set("AWS_REGION", "us-east-1")
        .probe("start", &["AWS_REGION", "AWS_ACCESS_KEY_ID"])
        .cd(&payments)
        .run("false")
        .probe_status("after-false")
        .probe("in", &["AWS_REGION", "AWS_ACCESS_KEY_ID", "PROJECT"])
        .user_set("PROJECT", "mine")
        .cd(&home)
        .probe("out", &["AWS_REGION", "AWS_ACCESS_KEY_ID", "PROJECT"])
        .cd(&inner)
        .probe("inner", &["X", "Y"])
        .cd(&outer)
        .probe("outer", &["X", "Y"])
        .run("printf '  Z: new\\n' >> .escrc")
        .probe("edited", &["X", "Z"])
        .run("true")
        .run("true")
        .run("esc-hook allow")
        .probe("allowed", &["X", "Y", "Z"])
        .run("esc-hook deny")
        .probe("denied", &["X", "Z"])
        .cd(&home);
    let (probes, log) = session.finish(&home);

    expect(
        &probes,
        "start",
        &[
            ("AWS_REGION", "us-east-1"),
            ("AWS_ACCESS_KEY_ID", "<unset>"),
        ],
    );
    expect(
        &probes,
        "in",
        &[
            ("AWS_REGION", "eu-west-1"),
            ("AWS_ACCESS_KEY_ID", "ASIAEXAMPLEKEYID0001"),
            ("PROJECT", "payments"),
        ],
    );
    expect(
        &probes,
        "out",
        &[
            ("AWS_REGION", "us-east-1"),
            ("AWS_ACCESS_KEY_ID", "<unset>"),
            ("PROJECT", "mine"),
        ],
    );
    expect(&probes, "inner", &[("X", "inner"), ("Y", "<unset>")]);
    expect(&probes, "outer", &[("X", "outer"), ("Y", "a")]);
    expect(&probes, "edited", &[("X", "<unset>"), ("Z", "<unset>")]);
    expect(
        &probes,
        "allowed",
        &[("X", "outer"), ("Y", "a"), ("Z", "new")],
    );
    expect(&probes, "denied", &[("X", "<unset>"), ("Z", "<unset>")]);

    let has = |text: &str| log.iter().filter(|l| l.contains(text)).count();
    assert_eq!(has("esc-hook: loading acme/payments/dev"), 1, "{log:#?}");
    assert_eq!(has("+AWS_ACCESS_KEY_ID"), 1, "{log:#?}");
    // Loading and unloading each say what changed (the user's AWS_REGION comes back).
    assert_eq!(has("~AWS_REGION"), 2, "{log:#?}");
    assert_eq!(has("-AWS_ACCESS_KEY_ID"), 1, "{log:#?}");
    assert_eq!(has("unloading acme/payments/dev"), 1, "{log:#?}");
    assert_eq!(
        has("kept PROJECT: it changed since esc-hook set it"),
        1,
        "{log:#?}"
    );
    assert_eq!(
        has(".escrc is not allowed: run `esc-hook allow`"),
        1,
        "once per state: {log:#?}"
    );
    assert_eq!(has(".escrc is denied"), 1, "{log:#?}");
    assert_eq!(stand_in.requests().len(), 2, "one open for one entry");
}

/// A shell started inside a project has the variables at its first prompt.
fn starts_loaded(shell: Sh) {
    if !have(shell.name()) || (shell == Sh::Fish && !have("script")) {
        return;
    }
    let sandbox = Sandbox::new();
    let project = allowed_project(&sandbox, "app", "values:\n  X: from-start\n");
    let mut session = Session::new(shell, &sandbox);
    session.probe("first", &["X"]);
    let (probes, log) = session.finish(&project);
    expect(&probes, "first", &[("X", "from-start")]);
    assert_eq!(
        log.iter()
            .filter(|l| l.contains("esc-hook: loading"))
            .count(),
        1,
        "{log:#?}"
    );
}

#[test]
fn bash_hook_follows_a_working_day() {
    a_working_day(Sh::Bash);
}

#[test]
fn zsh_hook_follows_a_working_day() {
    a_working_day(Sh::Zsh);
}

#[test]
fn fish_hook_follows_a_working_day() {
    a_working_day(Sh::Fish);
}

#[test]
fn bash_started_inside_a_project_loads_before_the_first_prompt() {
    starts_loaded(Sh::Bash);
}

#[test]
fn zsh_started_inside_a_project_loads_before_the_first_prompt() {
    starts_loaded(Sh::Zsh);
}

#[test]
fn fish_started_inside_a_project_loads_before_the_first_prompt() {
    starts_loaded(Sh::Fish);
}

#[test]
fn hooks_keep_the_exit_status_survive_strict_modes_and_install_once() {
    if !have("zsh") {
        return;
    }
    let sandbox = Sandbox::new();
    let project = allowed_project(&sandbox, "app", "values:\n  X: strict\n");
    // bash: set -u, re-sourced twice, $? kept across the hook.
    let out = Command::new("bash")
        .args([
            "-c",
            r#"
            set -euo pipefail
            eval "$(esc-hook init bash)"; eval "$(esc-hook init bash)"
            echo "pc=$PROMPT_COMMAND"
            set +e; ( exit 7 ); _esc_hook; echo "status=$?"; set -e
            echo "X=$X"
        "#,
        ])
        .env_clear()
        .envs(sandbox.env())
        .env("PWD", &project)
        .current_dir(&project)
        .output()
        .unwrap();
    assert_eq!(
        stdout(&out),
        "pc=_esc_hook\nstatus=7\nX=strict\n",
        "{}",
        stderr(&out)
    );
    // zsh: nounset and err_exit, re-sourced, hooks registered once.
    let out = Command::new("zsh")
        .args([
            "-c",
            r#"
            setopt nounset err_exit
            eval "$(esc-hook init zsh)"; eval "$(esc-hook init zsh)"
            echo "precmd=${precmd_functions[*]} chpwd=${chpwd_functions[*]}"
            echo "X=$X"
        "#,
        ])
        .env_clear()
        .envs(sandbox.env())
        .env("PWD", &project)
        .current_dir(&project)
        .output()
        .unwrap();
    assert_eq!(
        stdout(&out),
        "precmd=_esc_hook_precmd chpwd=_esc_hook_chpwd\nX=strict\n",
        "{}",
        stderr(&out)
    );
}

#[test]
fn init_scripts_pass_shellcheck_and_parse_in_every_shell() {
    let dir = tempfile::tempdir().unwrap();
    for shell in ["bash", "zsh", "fish"] {
        if !have(shell) {
            continue;
        }
        let out = Command::new(bin()).args(["init", shell]).output().unwrap();
        let path = dir.path().join(format!("hook.{shell}"));
        fs::write(&path, &out.stdout).unwrap();
        let check = match shell {
            "fish" => Command::new("fish")
                .arg("--no-execute")
                .arg(&path)
                .output()
                .unwrap(),
            _ => Command::new(shell).arg("-n").arg(&path).output().unwrap(),
        };
        assert!(check.status.success(), "{shell}: {}", stderr(&check));
    }
    if have("shellcheck") {
        let out = Command::new(bin()).args(["init", "bash"]).output().unwrap();
        let path = dir.path().join("hook.bash");
        fs::write(&path, &out.stdout).unwrap();
        let check = Command::new("shellcheck")
            .args(["--shell=bash", "--severity=warning"])
            .arg(&path)
            .output()
            .unwrap();
        assert!(check.status.success(), "shellcheck: {}", stdout(&check));
    }
}

/// Ctrl-C typed (through tmux) while the hook waits on a slow open: the prompt comes back,
/// the environment is as it was, and the next prompts do not start the same open again.
fn ctrl_c_during_an_open(shell: Sh) {
    if !have(shell.name()) || !have("tmux") {
        return;
    }
    let stand_in = StandIn::start(serde_json::json!({"acme/payments/dev": {"fault": "slow:30"}}));
    let mut sandbox = Sandbox::new();
    sandbox.with_esc(&stand_in);
    let project = allowed_project(&sandbox, "payments", "environment: acme/payments/dev\n");
    let rc_dir = sandbox.path("rc");
    fs::create_dir_all(&rc_dir).unwrap();
    fs::write(rc_dir.join("bashrc"), "eval \"$(esc-hook init bash)\"\n").unwrap();
    fs::write(rc_dir.join(".zshrc"), "eval \"$(esc-hook init zsh)\"\n").unwrap();
    fs::create_dir_all(rc_dir.join("fish")).unwrap();
    fs::write(
        rc_dir.join("fish/config.fish"),
        "esc-hook init fish | source\n",
    )
    .unwrap();
    let start = match shell {
        Sh::Bash => format!("bash --rcfile '{}' -i", rc_dir.join("bashrc").display()),
        Sh::Zsh => "zsh -i".to_string(),
        Sh::Fish => "fish -i".to_string(),
    };
    let config_home = match shell {
        Sh::Fish => rc_dir.clone(),
        _ => sandbox.path("config"),
    };
    let tmux = Tmux::start(
        &sandbox,
        &[("ZDOTDIR", &rc_dir), ("XDG_CONFIG_HOME", &config_home)],
        &start,
    );
    let probe = sandbox.path("probe");
    let wait_for = |what: &str, done: &dyn Fn() -> bool| {
        let started = std::time::Instant::now();
        while !done() {
            assert!(
                started.elapsed().as_secs() < 15,
                "waited too long for {what}"
            );
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
    };
    let export_keep = match shell {
        Sh::Fish => "set -gx KEEP 1",
        _ => "export KEEP=1",
    };
    tmux.send(&[
        &format!("{export_keep}; cd '{}'", project.display()),
        "Enter",
    ]);
    wait_for("the open", &|| !stand_in.requests().is_empty());
    tmux.send(&["C-c"]);
    let probe_line = match shell {
        Sh::Fish => format!(
            "echo \"K=$KEEP A=\"(set -q AWS_ACCESS_KEY_ID; and echo set; or echo unset)\" S=\"(test -n \"$ESC_HOOK_STATE\"; and echo set) > '{}'",
            probe.display()
        ),
        _ => format!(
            "echo \"K=$KEEP A=${{AWS_ACCESS_KEY_ID-unset}} S=${{ESC_HOOK_STATE:+set}}\" > '{}'",
            probe.display()
        ),
    };
    tmux.send(&[&probe_line, "Enter"]);
    wait_for("the probe", &|| {
        fs::read_to_string(&probe).is_ok_and(|p| p.ends_with('\n'))
    });
    // `status` says why nothing is loaded, and how to try again.
    let status_file = sandbox.path(&format!("status-{}", shell.name()));
    tmux.send(&[
        &format!("esc-hook status > '{}'", status_file.display()),
        "Enter",
    ]);
    wait_for("the status", &|| {
        fs::read_to_string(&status_file).is_ok_and(|s| s.contains("loaded"))
    });
    tmux.send(&["true", "Enter"]);
    std::thread::sleep(std::time::Duration::from_millis(300));
    let screen = tmux.screen();
    drop(tmux);
    let status = fs::read_to_string(&status_file).unwrap();
    assert!(
        status.contains("stopped opening acme/payments/dev (Ctrl-C): `esc-hook reload`, or leave and re-enter, to try again"),
        "{status}"
    );

    assert_eq!(
        fs::read_to_string(&probe).unwrap(),
        "K=1 A=unset S=set\n",
        "{screen}"
    );
    assert_eq!(
        screen
            .matches("stopped opening acme/payments/dev (Ctrl-C)")
            .count(),
        1,
        "{screen}"
    );
    assert_eq!(stand_in.requests().len(), 1, "no second open: {screen}");
}

#[test]
fn bash_survives_ctrl_c_during_an_open() {
    ctrl_c_during_an_open(Sh::Bash);
}

#[test]
fn zsh_survives_ctrl_c_during_an_open() {
    ctrl_c_during_an_open(Sh::Zsh);
}

#[test]
fn fish_survives_ctrl_c_during_an_open() {
    ctrl_c_during_an_open(Sh::Fish);
}

/// No process on an unchanged prompt, and one binary run within one prompt of each trigger:
/// a directory change, an .escrc appearing, changing or going, an allow or deny, and the state
/// variable changed behind the hook's back. (The refresh time is shown by the cache tests.)
fn unchanged_prompts_spawn_nothing_and_every_trigger_reaches_the_binary(shell: Sh) {
    if !have(shell.name()) || (shell == Sh::Fish && !have("script")) {
        return;
    }
    let sandbox = Sandbox::new();
    let project = allowed_project(&sandbox, "p", "values:\n  X: p\n");
    let sub = project.join("sub");
    let mut session = Session::new(shell, &sandbox);
    let unset_state = match shell {
        Sh::Fish => "set -e ESC_HOOK_STATE",
        _ => "unset ESC_HOOK_STATE",
    };
    session
        .count_calls()
        .run("sleep 1.2")
        .probe_calls("idle-start")
        .run("true")
        .run("true")
        .run("true")
        .probe_calls("idle-end")
        .probe("loaded", &["X"])
        .run(&format!("mkdir '{}'", sub.display()))
        .cd(&sub)
        .probe("cd", &["X"])
        .probe_calls("after-cd")
        .run("printf 'values:\\n  X: sub\\n' > .escrc")
        .probe("appeared", &["X"])
        .run("esc-hook allow")
        .probe("allowed", &["X", "Y"])
        .run("printf '  Y: edited\\n' >> .escrc")
        .probe("edited", &["X", "Y"])
        .run("esc-hook allow")
        .probe("allowed-again", &["X", "Y"])
        .run("rm .escrc")
        .probe("removed", &["X", "Y"])
        .run("esc-hook deny")
        .probe("denied", &["X"])
        .run("esc-hook allow")
        .probe("re-allowed", &["X"])
        .run("sleep 1.2")
        .probe_calls("before-state")
        .run(unset_state)
        .probe_calls("after-state");
    let (probes, log) = session.finish(&project);
    let calls = |label: &str| probes[label]["calls"].trim().parse::<u32>().unwrap();
    assert_eq!(
        calls("idle-end"),
        calls("idle-start"),
        "unchanged prompts ran the binary: {probes:#?}"
    );
    assert!(calls("after-cd") > calls("idle-end"), "{probes:#?}");
    expect(&probes, "cd", &[("X", "p")]);
    expect(&probes, "appeared", &[("X", "<unset>")]);
    expect(&probes, "allowed", &[("X", "sub"), ("Y", "<unset>")]);
    expect(&probes, "edited", &[("X", "<unset>"), ("Y", "<unset>")]);
    expect(&probes, "allowed-again", &[("X", "sub"), ("Y", "edited")]);
    expect(&probes, "removed", &[("X", "p"), ("Y", "<unset>")]);
    expect(&probes, "denied", &[("X", "<unset>")]);
    expect(&probes, "re-allowed", &[("X", "p")]);
    assert!(
        calls("after-state") > calls("before-state"),
        "a changed state reaches the binary: {probes:#?}"
    );
    assert!(
        log.iter().any(|l| l.contains(".escrc is not allowed")),
        "{log:#?}"
    );
}

#[test]
fn bash_unchanged_prompts_spawn_nothing_and_triggers_reach_the_binary() {
    unchanged_prompts_spawn_nothing_and_every_trigger_reaches_the_binary(Sh::Bash);
}

#[test]
fn zsh_unchanged_prompts_spawn_nothing_and_triggers_reach_the_binary() {
    unchanged_prompts_spawn_nothing_and_every_trigger_reaches_the_binary(Sh::Zsh);
}

#[test]
fn fish_unchanged_prompts_spawn_nothing_and_triggers_reach_the_binary() {
    unchanged_prompts_spawn_nothing_and_every_trigger_reaches_the_binary(Sh::Fish);
}

// bash before 5 has no EPOCHSECONDS; from 4.2 on its printf tells the time, and an unchanged
// prompt must still spawn nothing. (A bash 5 without the variable stands in for it.)
#[test]
fn bash_without_epochseconds_still_spawns_nothing_on_unchanged_prompts() {
    if !available(Sh::Bash) {
        return;
    }
    let sandbox = Sandbox::new();
    let project = allowed_project(&sandbox, "p", "values:\n  X: p\n");
    let mut session = Session::new(Sh::Bash, &sandbox);
    session
        .count_calls()
        .run("unset EPOCHSECONDS")
        .run("sleep 1.2")
        .probe_calls("idle-start")
        .run("true")
        .run("true")
        .probe_calls("idle-end")
        .run("printf '  Y: edited\\n' >> .escrc")
        .probe("edited", &["X"])
        .probe_calls("after-edit");
    let (probes, _) = session.finish(&project);
    let calls = |label: &str| probes[label]["calls"].trim().parse::<u32>().unwrap();
    assert_eq!(calls("idle-end"), calls("idle-start"), "{probes:#?}");
    assert!(calls("after-edit") > calls("idle-end"), "{probes:#?}");
    expect(&probes, "edited", &[("X", "<unset>")]);
}

// nushell ran the binary at every prompt. Its hook now decides an unchanged prompt with
// builtins; each prompt is `do --env $esc_hook_apply`, what its pre_prompt hook runs.
#[test]
fn nushell_unchanged_prompts_spawn_nothing_and_triggers_reach_the_binary() {
    let Some(nu) = nu() else { return };
    let sandbox = Sandbox::new();
    // A name nushell's `ls` would take as a glob, were the hook to pass it as one.
    let project = allowed_project(&sandbox, "p*[x]", "values:\n  X: p\n");
    let prelude = counted_nu_prelude(&sandbox, "nu");
    let script = format!(
        r#"{prelude}
do --env $esc_hook_apply
do --env $esc_hook_apply
do --env $esc_hook_apply
calls idle-end
print $"loaded ($env.X)"
mkdir sub
cd sub
do --env $esc_hook_apply
print $"cd ($env.X)"
calls after-cd
"values:\n  X: sub\n" | save .escrc
do --env $esc_hook_apply
print $"appeared ($env.X? | default unset)"
^'{bin}' allow
do --env $esc_hook_apply
print $"allowed ($env.X)"
^touch -r .escrc ../.escrc.time
"values:\n  X: sub2\n" | save --force .escrc
^touch -r ../.escrc.time .escrc
do --env $esc_hook_apply
print $"edited-old-mtime ($env.X? | default unset)"
sleep 1100ms
do --env $esc_hook_apply
calls before-state
hide-env ESC_HOOK_STATE
do --env $esc_hook_apply
calls after-state
"#,
        bin = bin(),
    );
    let out = sandbox.nu(&nu, &project, &script);
    let printed = NuOutput::of(&out);
    let count = |label: &str| printed.count(label);
    let shown = &printed.shown;
    assert_eq!(count("idle-end"), count("idle-start"), "{shown}");
    assert!(count("after-cd") > count("idle-end"), "{shown}");
    printed.expect_lines(&[
        "loaded p",
        "cd p",
        "appeared unset",
        "allowed sub",
        "edited-old-mtime unset",
    ]);
    assert!(count("after-state") > count("before-state"), "{shown}");
}

/// nushell's hook watches every file of a layered project: unchanged prompts inside the chain
/// spawn nothing, and an edit of the parent that keeps its old mtime still blocks the child.
#[test]
fn nushell_watches_every_file_of_a_chain() {
    let Some(nu) = nu() else { return };
    let sandbox = Sandbox::new();
    let parent = allowed_project(&sandbox, "mono", "values:\n  X: root\n");
    let child = allowed_project(&sandbox, "mono/svc", "inherit: true\nvalues:\n  Y: svc\n");
    let prelude = counted_nu_prelude(&sandbox, "nu-chain");
    let parent_file = parent.join(".escrc");
    let script = format!(
        r#"{prelude}
do --env $esc_hook_apply
do --env $esc_hook_apply
calls idle-end
print $"loaded ($env.X) ($env.Y)"
^touch -r '{parent_file}' ../.escrc.time
"values:\n  X: edited\n" | save --force '{parent_file}'
^touch -r ../.escrc.time '{parent_file}'
do --env $esc_hook_apply
print $"edited ($env.X? | default unset) ($env.Y? | default unset)"
^'{bin}' allow '{parent_file}'
do --env $esc_hook_apply
print $"allowed ($env.X) ($env.Y)"
"#,
        bin = bin(),
        parent_file = parent_file.display(),
    );
    let out = sandbox.nu(&nu, &child, &script);
    let printed = NuOutput::of(&out);
    let count = |label: &str| printed.count(label);
    let shown = &printed.shown;
    assert_eq!(count("idle-end"), count("idle-start"), "{shown}");
    printed.expect_lines(&[
        "loaded root svc",
        "edited unset unset",
        "allowed edited svc",
    ]);
}

/// The start of a nushell script: a `calls LABEL` command printing how often the hook has
/// started esc-hook (through a counting wrapper), the saved hook sourced, a second for the
/// watch file to age, one prompt, and `idle-start` counted.
fn counted_nu_prelude(sandbox: &Sandbox, name: &str) -> String {
    let calls = sandbox.path(&format!("calls-{name}"));
    let wrapper = counting_wrapper(sandbox, name, &calls);
    let hook = sandbox.nu_hook();
    let text = fs::read_to_string(&hook).unwrap();
    fs::write(&hook, text.replace(bin(), wrapper.to_str().unwrap())).unwrap();
    format!(
        r#"
def calls [label: string] {{ print $"($label) (open --raw '{calls}' | lines | length)" }}
source '{hook}'
sleep 1100ms
do --env $esc_hook_apply
calls idle-start"#,
        calls = calls.display(),
        hook = hook.display(),
    )
}

/// What a nushell script printed: `label N` call counts, and lines to look for.
struct NuOutput {
    shown: String,
    errors: String,
}

impl NuOutput {
    fn of(out: &std::process::Output) -> NuOutput {
        NuOutput {
            shown: stdout(out),
            errors: stderr(out),
        }
    }

    fn count(&self, label: &str) -> u32 {
        let shown = &self.shown;
        shown
            .lines()
            .find_map(|l| l.strip_prefix(&format!("{label} ")))
            .unwrap_or_else(|| panic!("{label}: {shown}{}", self.errors))
            .parse()
            .unwrap()
    }

    fn expect_lines(&self, lines: &[&str]) {
        for line in lines {
            assert!(
                self.shown.contains(&format!("{line}\n")),
                "{line}: {}{}",
                self.shown,
                self.errors
            );
        }
    }
}

// Re-sourcing ~/.bashrc installed the hook twice once bash-preexec or starship had moved it.
#[test]
fn re_sourcing_finds_the_hook_wherever_a_framework_moved_it() {
    let sandbox = Sandbox::new();
    let script = r#"
        set -u
        eval "$(esc-hook init bash)"
        # starship's takeover: the old PROMPT_COMMAND moves into STARSHIP_PROMPT_COMMAND.
        STARSHIP_PROMPT_COMMAND="$PROMPT_COMMAND"; PROMPT_COMMAND=starship_precmd
        eval "$(esc-hook init bash)"
        echo "starship: $PROMPT_COMMAND"
        # bash-preexec keeps each entry on a line of its own.
        unset STARSHIP_PROMPT_COMMAND
        PROMPT_COMMAND=$'__bp_precmd_invoke_cmd\n_esc_hook\n__bp_interactive_mode'
        eval "$(esc-hook init bash)"
        echo "preexec: ${PROMPT_COMMAND//$'\n'/ }"
        # bash-preexec's own list.
        __bp_imported=1 PROMPT_COMMAND=; precmd_functions=(other _esc_hook)
        eval "$(esc-hook init bash)"
        echo "precmd_functions: ${precmd_functions[*]}"
    "#;
    let out = sandbox.bash(&sandbox.home(), script);
    assert_eq!(
        stdout(&out),
        "starship: starship_precmd\npreexec: __bp_precmd_invoke_cmd _esc_hook __bp_interactive_mode\nprecmd_functions: other _esc_hook\n",
        "{}",
        stderr(&out)
    );
}

// `esc-hook init` without a shell takes the one $SHELL names.
#[test]
fn init_without_a_shell_uses_the_login_shell() {
    let mut sandbox = Sandbox::new();
    sandbox.set("SHELL", "/usr/bin/zsh");
    let out = sandbox.run(&sandbox.home(), &["init"]);
    assert!(
        stdout(&out).contains("add-zsh-hook precmd"),
        "{}",
        stderr(&out)
    );
    sandbox.set("SHELL", "/bin/tcsh");
    let out = sandbox.run(&sandbox.home(), &["init"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("SHELL=/bin/tcsh is not a shell esc-hook has a hook for"),
        "{}",
        stderr(&out)
    );
    // No SHELL at all: said so, with what to type.
    sandbox.extra_env.retain(|(name, _)| name != "SHELL");
    let out = sandbox.run(&sandbox.home(), &["init"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("SHELL is not set, so the shell is not known: name it (esc-hook init bash, zsh, fish, pwsh or nu)"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn nushell_enters_and_leaves_with_its_hook() {
    let Some(nu) = nu() else { return };
    let sandbox = Sandbox::new();
    let dir = allowed_project(&sandbox, "app", VALUES);
    let hook_path = sandbox.nu_hook();
    let script = format!(
        "$env.AWS_REGION = 'mine'; cd '{}'; source '{}'; print $env.AWS_REGION; cd ..; do --env $esc_hook_apply; print $env.AWS_REGION",
        dir.display(),
        hook_path.display()
    );
    let out = sandbox.nu(&nu, &sandbox.home(), &script);
    assert_eq!(stdout(&out), "eu-west-1\nmine\n", "{}", stderr(&out));
}

// The wrong shell's hook: `eval "$(esc-hook init bash)"` in ~/.zshrc printed one cryptic line
// and then never ran, the zsh hook in bash printed six errors, and fish failed to parse either;
// doctor said "installed in this bash" inside zsh. Now the line says which one to use (the
// binary sees which shell reads it; a saved script checks its shell itself), and doctor looks
// at the shell it really runs in.
#[test]
fn the_wrong_shells_hook_says_which_line_to_use_and_doctor_agrees() {
    let sandbox = Sandbox::new();
    let home = sandbox.home();
    let eval = |asked: &str, reader: &str| match reader {
        "fish" => format!("esc-hook init {asked} | source"),
        _ => format!("eval \"$(esc-hook init {asked})\""),
    };
    let run = |shell: &str, script: &str| {
        let out = Command::new("timeout")
            .args(["-s", "KILL", "30", shell, "-c", script])
            .env_clear()
            .envs(sandbox.env())
            .current_dir(&home)
            .output()
            .unwrap();
        format!("{}{}", stdout(&out), stderr(&out))
    };
    for (reader, asked) in [
        ("zsh", "bash"),
        ("bash", "zsh"),
        ("fish", "bash"),
        ("fish", "zsh"),
        ("bash", "fish"),
        ("zsh", "fish"),
    ] {
        if !have(reader) {
            continue;
        }
        let said = run(
            reader,
            &format!("{}; esc-hook doctor; true", eval(asked, reader)),
        );
        let wanted = format!(
            "esc-hook: this is the hook for {asked}, and this shell is {reader}: use the {reader} one, in "
        );
        assert_eq!(
            said.matches(&wanted).count(),
            1,
            "{reader} reading {asked}: {said}"
        );
        for noise in [
            "not found",
            "syntax error",
            "bad substitution",
            "Unsupported",
            "invalid option",
        ] {
            assert!(!said.contains(noise), "{reader} reading {asked}: {said}");
        }
        assert!(
            said.contains(&format!("not installed in this {reader}: ")),
            "doctor: {said}"
        );
    }
    // A script saved to a file and read by the other of bash and zsh checks its shell itself.
    for (reader, asked) in [("zsh", "bash"), ("bash", "zsh")] {
        if !have(reader) {
            continue;
        }
        let saved = sandbox.path(&format!("saved-{asked}"));
        let init = sandbox.run(&home, &["init", asked]);
        fs::write(&saved, init.stdout).unwrap();
        let said = run(reader, &format!(". '{}'; true", saved.display()));
        assert_eq!(
            said.matches(&format!(
                "this is the hook for {asked}, and this shell is {reader}"
            ))
            .count(),
            1,
            "{said}"
        );
        assert!(!said.contains("not found"), "{said}");
    }
    // Another shell's hook variable in this shell: not "installed in this bash".
    if have("zsh") {
        let said = run(
            "zsh",
            "export ESC_HOOK_SHELL=\"bash $$\"; esc-hook doctor; true",
        );
        assert!(
            said.contains("the bash hook was loaded into this zsh: use the zsh one"),
            "{said}"
        );
    }
}
