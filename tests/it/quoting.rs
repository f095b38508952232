//! Values that break naive quoting, printed by `esc-hook export <shell>`, evaluated by the
//! real shell, and compared byte for byte with what the shell hands to a child process.
//! PowerShell cannot be installed here: its output is parsed with the tree-sitter grammar
//! instead (and run for real where `pwsh` is on PATH).

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

use crate::common::*;

fn hand_picked() -> Vec<String> {
    [
        "'",
        "\"",
        "$(touch pwned)",
        "`touch pwned`",
        "ends with \\",
        "\\'",
        "'\\''",
        "a\rb",
        "line\nbreak",
        "tab\there",
        "\u{2018}left\u{2019}",
        "\u{201A}low\u{201B}",
        "emoji 🦀🔑",
        "${HOME}",
        "$HOME",
        "%PATH%",
        "!!",
        "*",
        "~",
        "#comment",
        ";",
        "&&",
        "|",
        " lead",
        "trail ",
        "",
        "\\",
        "\\\\",
        "\\n",
        "\u{7f}",
        "\u{1b}[31m",
        "\u{feff}bom",
        "\u{202e}rtl",
        "e\u{301}",
        "\u{f600}\u{f6ff}",
        "-n",
        "-e",
        "--",
        "=",
        "a=b",
        "}",
        "{",
        "\"'`$\\",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

/// Deterministic unicode strings from all planes (no NUL, no surrogates).
fn generated(count: usize) -> Vec<String> {
    let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    (0..count)
        .map(|_| {
            let len = (next() % 24) as usize;
            (0..len)
                .map(|_| {
                    let pick = next();
                    let code = match pick % 4 {
                        0 => (pick >> 8) % 0x80,      // ASCII, controls included
                        1 => (pick >> 8) % 0x800,     // two-byte range
                        2 => (pick >> 8) % 0x10000,   // the BMP
                        _ => (pick >> 8) % 0x11_0000, // anything
                    } as u32;
                    char::from_u32(code).filter(|c| *c != '\0').unwrap_or('x')
                })
                .collect()
        })
        .collect()
}

pub fn all_values() -> BTreeMap<String, String> {
    hand_picked()
        .into_iter()
        .chain(generated(1000))
        .enumerate()
        .map(|(i, value)| (format!("V{i:04}"), value))
        .collect()
}

/// A project whose inline values are `values`, allowed, in a fresh sandbox.
fn project_with(values: &BTreeMap<String, String>) -> (Sandbox, std::path::PathBuf) {
    let sandbox = Sandbox::new();
    let escrc = serde_yaml::to_string(&serde_json::json!({ "values": values })).unwrap();
    let dir = allowed_project(&sandbox, "hostile", &escrc);
    (sandbox, dir)
}

/// `env -0` output as a map.
fn parse_env0(bytes: &[u8]) -> BTreeMap<Vec<u8>, Vec<u8>> {
    bytes
        .split(|b| *b == 0)
        .filter(|entry| !entry.is_empty())
        .filter_map(|entry| {
            let eq = entry.iter().position(|b| *b == b'=')?;
            Some((entry[..eq].to_vec(), entry[eq + 1..].to_vec()))
        })
        .collect()
}

fn check_shell(shell: &str, run_script: &[&str]) {
    if !have(shell) {
        return;
    }
    let values = all_values();
    let (sandbox, dir) = project_with(&values);
    let export = sandbox.run(&dir, &["export", shell]);
    assert!(export.status.success(), "{}", stderr(&export));
    let script_path = dir.join("export.script");
    std::fs::write(&script_path, &export.stdout).unwrap();
    let out = Command::new(run_script[0])
        .args(&run_script[1..])
        .arg(&script_path)
        .env_clear()
        .envs(sandbox.env())
        .current_dir(&dir)
        .output()
        .unwrap();
    assert!(out.status.success(), "{shell} failed: {}", stderr(&out));
    assert_eq!(stderr(&out), "", "{shell} complained");
    let env = parse_env0(&out.stdout);
    assert!(
        !dir.join("pwned").exists(),
        "{shell} executed part of a value"
    );
    let mut mismatches = Vec::new();
    for (name, value) in &values {
        let got = env.get(name.as_bytes());
        if got.map(Vec::as_slice) != Some(value.as_bytes()) {
            mismatches.push(format!(
                "{name}: want {value:?}, got {:?}",
                got.map(|g| String::from_utf8_lossy(g).into_owned())
            ));
        }
    }
    assert!(
        mismatches.is_empty(),
        "{shell}: {} mismatches:\n{}",
        mismatches.len(),
        mismatches[..mismatches.len().min(10)].join("\n")
    );
}

#[test]
fn bash_receives_every_hostile_value_byte_for_byte() {
    check_shell(
        "bash",
        &[
            "bash",
            "-c",
            "eval \"$(cat \"$1\")\" && exec env -0",
            "bash",
        ],
    );
}

#[test]
fn zsh_receives_every_hostile_value_byte_for_byte() {
    check_shell(
        "zsh",
        &["zsh", "-c", "eval \"$(<$1)\" && exec env -0", "zsh"],
    );
}

#[test]
fn fish_receives_every_hostile_value_byte_for_byte() {
    check_shell("fish", &["fish", "-c", "source $argv[1]; and exec env -0"]);
}

#[test]
fn nushell_receives_every_hostile_value_byte_for_byte_through_its_hook() {
    let Some(nu) = nu() else { return };
    let values = all_values();
    let (sandbox, dir) = project_with(&values);
    let hook_path = sandbox.nu_hook();
    let script = format!("source '{}'; ^env -0", hook_path.display());
    let out = sandbox.nu(&nu, &dir, &script);
    assert!(out.status.success(), "nu failed: {}", stderr(&out));
    let env = parse_env0(&out.stdout);
    let mut mismatches = Vec::new();
    for (name, value) in &values {
        if env.get(name.as_bytes()).map(Vec::as_slice) != Some(value.as_bytes()) {
            mismatches.push(name.clone());
        }
    }
    assert!(
        mismatches.is_empty(),
        "nu: {} mismatches: {:?}",
        mismatches.len(),
        &mismatches[..mismatches.len().min(10)]
    );
}

#[test]
fn powershell_output_parses_cleanly() {
    let values = all_values();
    let (sandbox, dir) = project_with(&values);
    let export = sandbox.run(&dir, &["export", "pwsh"]);
    let script = String::from_utf8(export.stdout).unwrap();
    assert_eq!(
        script.lines().filter(|l| l.starts_with("${env:V")).count(),
        values.len()
    );
    assert_parses_as_powershell(&script);
    // Unsets parse too.
    let out = sandbox.bash(
        &dir,
        "eval \"$(esc-hook export bash)\"; cd .. && esc-hook export pwsh",
    );
    let unset = stdout(&out);
    assert!(
        unset.contains("Remove-Item -LiteralPath 'env:/V0000'"),
        "{unset}"
    );
    assert_parses_as_powershell(&unset);

    if which_pwsh() {
        let script_path = dir.join("export.ps1");
        std::fs::write(&script_path, &script).unwrap();
        let out = Command::new("pwsh")
            .args(["-NoProfile", "-Command", &format!(". '{}'; Get-ChildItem env: | ForEach-Object {{ [Console]::Out.Write($_.Name + '=' + $_.Value + [char]0) }}", script_path.display())])
            .output()
            .unwrap();
        let env = parse_env0(&out.stdout);
        for (name, value) in &values {
            assert_eq!(
                env.get(name.as_bytes()).map(Vec::as_slice),
                Some(value.as_bytes()),
                "{name}"
            );
        }
    }
}

#[test]
fn the_powershell_hook_parses_cleanly() {
    let script = Command::new(bin()).args(["init", "pwsh"]).output().unwrap();
    assert_parses_as_powershell(&String::from_utf8(script.stdout).unwrap());
}

fn which_pwsh() -> bool {
    Command::new("sh")
        .args(["-c", "command -v pwsh"])
        .output()
        .is_ok_and(|o| o.status.success())
}

pub fn assert_parses_as_powershell(script: &str) {
    let mut parser = tree_sitter::Parser::new();
    parser
        .set_language(&tree_sitter_powershell::LANGUAGE.into())
        .unwrap();
    let tree = parser.parse(script, None).unwrap();
    let root = tree.root_node();
    if root.has_error() {
        let mut cursor = root.walk();
        let mut first_error = None;
        let mut stack = vec![root];
        while let Some(node) = stack.pop() {
            if node.is_error() || node.is_missing() {
                first_error = Some(node);
                break;
            }
            stack.extend(
                node.children(&mut cursor)
                    .collect::<Vec<_>>()
                    .into_iter()
                    .rev(),
            );
        }
        let at = first_error.map(|n| n.start_position());
        panic!(
            "PowerShell parse error at {at:?}: {:?}",
            first_error.map(|n| &script[n.byte_range()])
        );
    }
}

#[test]
fn the_test_sees_a_wrongly_quoted_value() {
    // The byte-for-byte check is only worth something if it can fail: POSIX quoting is
    // known to break fish on a trailing backslash.
    if !have("fish") {
        return;
    }
    let sandbox = Sandbox::new();
    let dir = sandbox.home();
    let broken = "set -gx V 'ends with \\'\n";
    std::fs::write(dir.join("broken.fish"), broken).unwrap();
    let out = Command::new("fish")
        .args(["-c", "source $argv[1]; and exec env -0"])
        .arg(dir.join("broken.fish"))
        .env_clear()
        .envs(sandbox.env())
        .output()
        .unwrap();
    let env = parse_env0(&out.stdout);
    assert_ne!(
        env.get(b"V".as_slice()).map(Vec::as_slice),
        Some(b"ends with \\".as_slice())
    );
    let _ = Path::new("");
}
