//! What esc-hook says about itself is true: every `--help` example runs as written, completions
//! complete in real shells, the man page is complete, and the README's walkthrough runs in order.

use std::fs;
use std::process::Command;

use crate::common::*;
use crate::shells::{Sh, available};

/// Every example line of every `--help`, with the program it is for.
fn help_examples() -> Vec<String> {
    let commands: [&[&str]; 16] = [
        &[],
        &["init"],
        &["export"],
        &["allow"],
        &["deny"],
        &["status"],
        &["reload"],
        &["exec"],
        &["edit"],
        &["doctor"],
        &["credential-process"],
        &["completions"],
        &["man"],
        &["prune"],
        &["cache", "list"],
        &["cache", "clear"],
    ];
    let mut examples = Vec::new();
    for command in commands {
        let out = std::process::Command::new(bin())
            .args(command)
            .arg("--help")
            .output()
            .unwrap();
        let text = stdout(&out);
        let mut in_examples = false;
        for line in text.lines() {
            if line.starts_with("Example") || line.starts_with("Get started") {
                in_examples = true;
                continue;
            }
            if line.trim().is_empty() {
                in_examples = false;
                continue;
            }
            if in_examples && line.starts_with("  ") {
                let line = line.trim();
                // ~/.aws/config shows the command as a setting's value.
                let line = line.strip_prefix("credential_process = ").unwrap_or(line);
                if line.starts_with('[') || line.starts_with('#') {
                    continue;
                }
                examples.push(line.to_string());
            }
        }
    }
    examples
}

// `status --help` gave a jq example that printed `null`: every example must run as written.
#[test]
fn every_help_example_runs_as_written() {
    if !available(Sh::Zsh) || !available(Sh::Fish) || !have("jq") {
        return;
    }
    let stand_in = StandIn::payments();
    let examples = help_examples();
    assert!(examples.len() > 25, "{examples:#?}");
    let mut ran = 0;
    for example in &examples {
        // PowerShell cannot be installed here (its init and completions are parsed elsewhere);
        // nushell's line needs nushell's own config directory.
        if example.contains("pwsh")
            || example.contains("Invoke-Expression")
            || example.contains("init nu")
        {
            continue;
        }
        let mut sandbox = Sandbox::uncached_esc(&stand_in);
        let project = allowed_project(&sandbox, "src/payments", "environment: acme/payments/dev\n");
        // Programs the examples run after esc-hook, which are not esc-hook's to test.
        let stubs = sandbox.path("stubs");
        fs::create_dir_all(&stubs).unwrap();
        for program in ["terraform", "aws", "make", "code", "xdg-open"] {
            let path = stubs.join(program);
            fs::write(&path, "#!/bin/sh\nexit 0\n").unwrap();
            fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o755))
                .unwrap();
        }
        let path = sandbox
            .env()
            .into_iter()
            .find(|(k, _)| k == "PATH")
            .map(|(_, v)| v)
            .unwrap();
        sandbox.set("PATH", &format!("{}:{path}", stubs.display()));
        sandbox.set("VISUAL", "true");
        let line = example.split("  #").next().unwrap().trim();
        if line.contains("esc-hook console") {
            // The AWS sign-in endpoint is the stand-in's, as the user's config may name it.
            stand_in.configure(serde_json::json!({
                "environments": {"acme/payments/dev": {"read": fixture("read-payments-dev.json")}},
                "federation": {"access_key_id": "ASIAEXAMPLEKEYID0001"},
            }));
            sandbox.write_user_config(&format!(
                "aws-signin-url = \"{}/federation\"\n",
                stand_in.url()
            ));
        }
        if line.contains("export gha") {
            // As in a GitHub Actions step, whose runner names this file.
            let github_env = sandbox.path("github_env");
            fs::write(&github_env, "").unwrap();
            sandbox.set("GITHUB_ENV", github_env.to_str().unwrap());
        }
        let shell = if line.contains("init zsh") {
            "zsh"
        } else if line.contains("| source") {
            "fish"
        } else {
            "bash"
        };
        // As typed in a hooked shell inside the project.
        let script =
            format!("set -o pipefail; eval \"$(esc-hook export bash 2>/dev/null)\"; {line}");
        let script = if shell == "fish" {
            line.to_string()
        } else {
            script
        };
        let out = sandbox.shell(shell, &project, &script);
        let doctor = line == "esc-hook doctor";
        assert!(
            out.status.success() || doctor,
            "`{line}` ({shell}) failed: {}{}",
            stdout(&out),
            stderr(&out)
        );
        if line.contains("| jq") {
            assert!(
                !stdout(&out).trim().is_empty() && stdout(&out).trim() != "null",
                "`{line}`: {}",
                stdout(&out)
            );
        }
        ran += 1;
    }
    assert!(ran > 20, "{ran}");
}

#[test]
fn every_command_has_help_with_examples() {
    let sandbox = Sandbox::new();
    for command in [
        "init",
        "export",
        "allow",
        "deny",
        "status",
        "reload",
        "exec",
        "edit",
        "doctor",
        "credential-process",
        "completions",
    ] {
        let out = sandbox.run(&sandbox.home(), &[command, "--help"]);
        assert!(out.status.success(), "{command}");
        assert!(
            stdout(&out).contains("Example"),
            "{command} --help has examples"
        );
    }
}

// bash completed only the first word (clap_complete names the hyphenated binary's functions two
// ways), and fish offered files for `init <TAB>`. Asked of the real shells.
#[test]
fn completions_complete_subcommands_options_and_shell_names() {
    if !available(Sh::Bash) || !available(Sh::Fish) {
        return;
    }
    let sandbox = Sandbox::new();
    let bash_script = sandbox.path("esc-hook.bash-completion");
    fs::write(
        &bash_script,
        sandbox
            .run(&sandbox.home(), &["completions", "bash"])
            .stdout,
    )
    .unwrap();
    let ask_bash = |line: &str| {
        let script = format!(
            "source '{}'; line='{line}'; read -ra COMP_WORDS <<< \"$line\"; [[ $line == *' ' ]] && COMP_WORDS+=(''); \
             COMP_CWORD=$(( ${{#COMP_WORDS[@]}} - 1 )); COMP_LINE=$line; COMP_POINT=${{#line}}; \
             _esc__hook esc-hook \"${{COMP_WORDS[COMP_CWORD]}}\" \"${{COMP_WORDS[COMP_CWORD-1]}}\"; echo \"${{COMPREPLY[*]}}\"",
            bash_script.display()
        );
        stdout(&sandbox.bash(&sandbox.home(), &script))
    };
    assert!(ask_bash("esc-hook ").contains("allow"), "subcommands");
    assert!(
        ask_bash("esc-hook init ").contains("bash zsh fish pwsh nu"),
        "{}",
        ask_bash("esc-hook init ")
    );
    assert!(
        ask_bash("esc-hook status --").contains("--verify"),
        "{}",
        ask_bash("esc-hook status --")
    );
    assert!(
        ask_bash("esc-hook cache ").contains("clear"),
        "{}",
        ask_bash("esc-hook cache ")
    );
    let fish_script = sandbox.path("esc-hook.fish");
    fs::write(
        &fish_script,
        sandbox
            .run(&sandbox.home(), &["completions", "fish"])
            .stdout,
    )
    .unwrap();
    let ask_fish = |line: &str| {
        let out = std::process::Command::new("fish")
            .args([
                "-c",
                &format!("source '{}'; complete -C '{line}'", fish_script.display()),
            ])
            .env_clear()
            .envs(sandbox.env())
            .output()
            .unwrap();
        stdout(&out)
    };
    assert!(
        ask_fish("esc-hook ").contains("credential-process\t"),
        "{}",
        ask_fish("esc-hook ")
    );
    assert_eq!(
        ask_fish("esc-hook init ").lines().collect::<Vec<_>>(),
        ["bash", "fish", "nu", "pwsh", "zsh"]
    );
    assert!(
        ask_fish("esc-hook exec --").contains("--env\t"),
        "{}",
        ask_fish("esc-hook exec --")
    );
}

/// Asks a real interactive zsh (on a pseudo-terminal, through zsh/zpty) what it completes for
/// a line, with the completion function in `$1` on fpath: every match, one per line. compadd is
/// wrapped to print each match as it is added; the markers are assembled at run time so the
/// terminal's echo of these very lines never matches them.
const ASK_ZSH: &str = r#"
zmodload zsh/zpty || exit 3
zpty z zsh -f -i
zpty -w z "PS1='' PROMPT_EOL_MARK=''; fpath=(${(q)1} \$fpath); autoload -Uz compinit; compinit -u -D"
zpty -w z 'compadd() {
  if [[ ${@[1,(i)(-|--)]} == *-(O|A|D)\ * ]]; then builtin compadd "$@"; return; fi
  local -a __hits; builtin compadd -A __hits "$@"
  local h; for h in $__hits; do print -r -- "<ma""tch>$h"; done
  builtin compadd "$@"
}'
zpty -w z '_ask_done() { print -r -- "<do""ne>"; }; comppostfuncs=(_ask_done)'
zpty -w z "bindkey '^I' complete-word"
zpty -w -n z "$2"$'\t'
local out line
while zpty -r z line; do
  out+=$line
  [[ $line == *'<done>'* ]] && break
done
zpty -d z
local -a matches=(${(M)${(f)out//$'\r'/}:#*<match>*})
print -rl -- ${matches##*<match>}
"#;

// zsh completions were only loaded in tests, never asked: a real zsh completes subcommands,
// shell names and options.
#[test]
fn zsh_completes_subcommands_options_and_shell_names() {
    if !available(Sh::Zsh) {
        return;
    }
    let sandbox = Sandbox::new();
    let functions = sandbox.path("zfunc");
    fs::create_dir_all(&functions).unwrap();
    fs::write(
        functions.join("_esc-hook"),
        sandbox.run(&sandbox.home(), &["completions", "zsh"]).stdout,
    )
    .unwrap();
    let ask = sandbox.path("ask.zsh");
    fs::write(&ask, ASK_ZSH).unwrap();
    let ask_zsh = |line: &str| -> Vec<String> {
        let out = std::process::Command::new("timeout")
            .args(["-s", "KILL", "20", "zsh", "-f"])
            .arg(&ask)
            .arg(&functions)
            .arg(line)
            .env_clear()
            .envs(sandbox.env())
            .current_dir(sandbox.home())
            .output()
            .unwrap();
        assert!(out.status.success(), "zsh: {}", stderr(&out));
        let mut matches: Vec<String> = stdout(&out).lines().map(String::from).collect();
        matches.sort();
        matches
    };
    let top = ask_zsh("esc-hook ");
    for command in [
        "init",
        "allow",
        "status",
        "cache",
        "exec",
        "credential-process",
    ] {
        assert!(top.contains(&command.to_string()), "{command}: {top:?}");
    }
    assert_eq!(
        ask_zsh("esc-hook init "),
        ["bash", "fish", "nu", "pwsh", "zsh"]
    );
    assert!(
        ask_zsh("esc-hook status --").contains(&"--verify".to_string()),
        "{:?}",
        ask_zsh("esc-hook status --")
    );
    assert!(ask_zsh("esc-hook cache ").contains(&"list".to_string()));
}

#[test]
fn completions_load_in_real_shells() {
    let sandbox = Sandbox::new();
    for (shell, check) in [
        (
            "bash",
            "source <(esc-hook completions bash) && complete -p esc-hook",
        ),
        (
            "zsh",
            "autoload -Uz compinit && compinit -u && source <(esc-hook completions zsh) && echo ok",
        ),
        (
            "fish",
            "esc-hook completions fish | source; and complete -c esc-hook | head -1",
        ),
    ] {
        if !have(shell) {
            continue;
        }
        let out = Command::new(shell)
            .args(["-c", check])
            .env_clear()
            .envs(sandbox.env())
            .current_dir(sandbox.home())
            .output()
            .unwrap();
        assert!(out.status.success(), "{shell}: {}", stderr(&out));
        assert!(!stdout(&out).is_empty(), "{shell}");
        assert_eq!(stderr(&out), "", "{shell}");
    }
    let pwsh = sandbox.run(&sandbox.home(), &["completions", "pwsh"]);
    crate::quoting::assert_parses_as_powershell(&stdout(&pwsh));
    let man = sandbox.run(&sandbox.home(), &["man"]);
    assert!(
        stdout(&man).starts_with(".ie") || stdout(&man).contains(".TH"),
        "a roff page"
    );
}

// The man page was a stub pointing at pages that do not exist.
#[test]
fn the_man_page_is_complete_and_renders_cleanly() {
    if !have("groff") {
        return;
    }
    let sandbox = Sandbox::new();
    let page = stdout(&sandbox.run(&sandbox.home(), &["man"]));
    // A switch is not a choice of values, and the description is not the name line again.
    assert!(!page.contains("(one of: true, false)"), "{page}");
    let after = |heading: &str| {
        page.split(heading)
            .nth(1)
            .and_then(|rest| rest.lines().nth(1))
            .unwrap_or_default()
            .to_string()
    };
    assert!(
        !after(".SH DESCRIPTION").contains("Load a project"),
        "{page}"
    );
    assert!(page.contains(".SH EXAMPLES"), "{page}");
    for section in [
        ".SH COMMANDS",
        ".SH .ESCRC",
        ".SH ENVIRONMENT",
        ".SH FILES",
        ".SH EXIT STATUS",
    ] {
        assert!(page.contains(section), "{section}");
    }
    for command in [
        "init",
        "export",
        "allow",
        "deny",
        "prune",
        "reload",
        "status",
        "edit",
        "doctor",
        "exec",
        "credential\\-process",
        "cache list",
        "cache clear",
        "completions",
        "man",
    ] {
        assert!(
            page.contains(&format!(".SS \"esc\\-hook {command}\"")),
            "{command}"
        );
    }
    for name in [
        "ESC_HOOK_KEYRING",
        "ESC_HOOK_REFRESH_MARGIN",
        "ESC_HOOK_TIMEOUT",
        "ESC_HOOK_CONNECT_TIMEOUT",
        "ESC_HOOK_QUIET",
        "PULUMI_ACCESS_TOKEN",
        "PULUMI_BACKEND_URL",
        "NO_COLOR",
    ] {
        assert!(page.contains(name), "{name}");
    }
    assert!(
        !page.contains("esc\\-hook\\-init(1)") && !page.contains("esc-hook-init(1)"),
        "no pages that do not exist"
    );
    let path = sandbox.path("esc-hook.1");
    fs::write(&path, &page).unwrap();
    let out = std::process::Command::new("groff")
        .args(["-man", "-Tutf8", "-ww", "-z"])
        .arg(&path)
        .output()
        .unwrap();
    assert!(
        out.status.success() && stderr(&out).is_empty(),
        "{}",
        stderr(&out)
    );
}

/// The README's `sh` blocks, in order, except those marked `<!-- example: … -->` just above
/// (placeholders for the reader's own backend, projects and tools).
fn readme_walkthrough() -> (Vec<String>, usize) {
    let readme = fs::read_to_string(repo().join("README.md")).unwrap();
    let mut blocks = Vec::new();
    let mut examples = 0;
    let mut previous = "";
    let mut lines = readme.lines();
    while let Some(line) = lines.next() {
        if line == "```sh" {
            let body: Vec<&str> = lines.by_ref().take_while(|l| *l != "```").collect();
            if previous.starts_with("<!-- example:") {
                examples += 1;
            } else {
                blocks.push(body.join("\n"));
            }
        }
        if !line.trim().is_empty() {
            previous = line;
        }
    }
    (blocks, examples)
}

// The README's local-API recipe ran `tests/support/…` right after the demo's `cd ..`: every
// block must run as written, in order, in a shell with the hook, as a reader would type it.
#[test]
fn the_readme_walkthrough_runs_as_written_in_order() {
    if !have("python3") {
        return skip("python3 is needed for the README's local ESC API");
    }
    let mut sandbox = Sandbox::new();
    sandbox.set("ESC_HOOK_KEYRING", "none");
    let (blocks, examples) = readme_walkthrough();
    assert!(blocks.len() >= 2 && examples >= 1, "{blocks:#?}");
    // Run where the reader is (the top of the clone); only /tmp is the sandbox's own, so
    // nothing lands outside it.
    let tmp = sandbox.path("tmp");
    let script = blocks
        .join("\n")
        .replace("/tmp/", &format!("{}/", tmp.display()));
    let rc = sandbox.path("walkthrough.bashrc");
    fs::write(&rc, "eval \"$(esc-hook init bash)\"\n").unwrap();
    let mut child = std::process::Command::new("timeout")
        .args(["-s", "KILL", "60"])
        .args(["bash", "--rcfile"])
        .arg(&rc)
        .arg("-i")
        .env_clear()
        .envs(sandbox.env())
        .env("PWD", repo())
        .current_dir(repo())
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(format!("{script}\nkill %1 2>/dev/null\nexit\n").as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let (shown, log) = (stdout(&out), stderr(&out));
    // Every `echo "$NAME"   # value` line printed its value, in order.
    let mut rest = shown.as_str();
    for line in script.lines() {
        let Some((command, expected)) = line.split_once("# ") else {
            continue;
        };
        if !command.trim_start().starts_with("echo \"$") {
            continue;
        }
        let at = rest
            .find(&format!("{}\n", expected.trim()))
            .unwrap_or_else(|| panic!("`{line}` did not print its value:\n{shown}\n{log}"));
        rest = &rest[at..];
    }
    for needed in [
        "esc-hook: loading",
        "esc-hook: unloading",
        "acme/payments/dev",
    ] {
        assert!(log.contains(needed), "{needed}: {log}");
    }
    for bad in ["No such file", "command not found", "could not", "failed"] {
        assert!(!log.contains(bad), "{bad}: {log}");
    }
}

// `--help` listed the hook's plumbing (`init`, `export`) before what a user runs every day.
#[test]
fn help_lists_everyday_commands_first_and_plumbing_last() {
    let out = std::process::Command::new(bin())
        .arg("--help")
        .output()
        .unwrap();
    let text = stdout(&out);
    let position = |name: &str| {
        text.find(&format!("\n  {name} "))
            .unwrap_or_else(|| panic!("{name} is listed: {text}"))
    };
    for (earlier, later) in [
        ("status", "init"),
        ("allow", "init"),
        ("doctor", "init"),
        ("init", "export"),
        ("man", "export"),
        ("exec", "credential-process"),
    ] {
        assert!(
            position(earlier) < position(later),
            "{earlier} before {later}: {text}"
        );
    }
}
