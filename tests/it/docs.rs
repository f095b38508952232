//! The documentation a newcomer reads: a README they read in five minutes, links that lead
//! somewhere, and recipes that end. (The README's walkthrough itself runs in `help.rs`.)

use std::fs;
use std::path::{Path, PathBuf};

use crate::common::*;

/// The Markdown files of the repository: the top level and `docs/`.
fn markdown_files() -> Vec<PathBuf> {
    let mut files = Vec::new();
    for dir in [repo().to_path_buf(), repo().join("docs")] {
        for entry in fs::read_dir(&dir).unwrap().flatten() {
            let path = entry.path();
            if path.extension().is_some_and(|e| e == "md") {
                files.push(path);
            }
        }
    }
    files.sort();
    files
}

/// GitHub's anchor for a heading: lower case, punctuation other than `-` and `_` dropped,
/// spaces as hyphens.
fn anchor_of(heading: &str) -> String {
    heading
        .trim()
        .to_lowercase()
        .chars()
        .filter(|c| c.is_alphanumeric() || matches!(c, ' ' | '-' | '_'))
        .map(|c| if c == ' ' { '-' } else { c })
        .collect()
}

fn anchors(file: &Path) -> Vec<String> {
    let text = fs::read_to_string(file).unwrap();
    let mut fenced = false;
    let mut found = Vec::new();
    for line in text.lines() {
        if line.starts_with("```") {
            fenced = !fenced;
        }
        if !fenced && line.starts_with('#') {
            found.push(anchor_of(line.trim_start_matches('#')));
        }
    }
    found
}

/// `(target, line)` of every Markdown link `](target)` outside code blocks.
fn links(text: &str) -> Vec<(String, usize)> {
    let mut found = Vec::new();
    let mut fenced = false;
    for (number, line) in text.lines().enumerate() {
        if line.starts_with("```") {
            fenced = !fenced;
        }
        if fenced {
            continue;
        }
        let mut rest = line;
        while let Some(at) = rest.find("](") {
            let after = &rest[at + 2..];
            let Some(end) = after.find(')') else { break };
            found.push((after[..end].to_string(), number + 1));
            rest = &after[end..];
        }
    }
    found
}

#[test]
fn every_relative_link_resolves() {
    let mut broken = Vec::new();
    for file in markdown_files() {
        let text = fs::read_to_string(&file).unwrap();
        for (target, line) in links(&text) {
            if target.starts_with("http://") || target.starts_with("https://") {
                continue;
            }
            let (path, anchor) = match target.split_once('#') {
                Some((path, anchor)) => (path, Some(anchor)),
                None => (target.as_str(), None),
            };
            let linked = match path {
                "" => file.clone(),
                path => file.parent().unwrap().join(path),
            };
            let shown = format!(
                "{}:{line}: {target}",
                file.strip_prefix(repo()).unwrap().display()
            );
            if !linked.exists() {
                broken.push(format!("{shown} (no such file)"));
            } else if let Some(anchor) = anchor
                && !anchors(&linked).iter().any(|a| a == anchor)
            {
                broken.push(format!("{shown} (no such heading)"));
            }
        }
    }
    assert!(broken.is_empty(), "{broken:#?}");
}

// The README was 9,189 words: user reference, auditor material and contributor notes in one
// page. It is a user's page now, and the rest is where its readers look.
#[test]
fn the_readme_is_a_users_page() {
    let readme = fs::read_to_string(repo().join("README.md")).unwrap();
    let words = readme.split_whitespace().count();
    assert!(words <= 1500, "{words} words");
    // The two set-up commands come first.
    let first_block = readme.split("```sh\n").nth(1).unwrap();
    let mut lines = first_block.lines();
    assert!(
        lines
            .next()
            .unwrap()
            .starts_with("cargo install --locked --path .")
    );
    assert!(lines.next().unwrap().starts_with("tests/run.sh"));
    for page in [
        "docs/reference.md",
        "docs/security.md",
        "docs/speed.md",
        "CONTRIBUTING.md",
        "ARCHITECTURE.md",
    ] {
        assert!(
            readme.contains(&format!("]({page}")),
            "the README leads to {page}"
        );
    }
}

// The README's local-API recipe waited for ever (`until grep -q listening`) with its fixed port
// 8085 taken, and an interactive bash ignores SIGTERM: the suite hung for minutes. The recipe
// takes the port the server chose and gives up with a line; the server says in one line that
// a port it was given is in use.
#[test]
fn recipes_use_no_fixed_port_and_a_taken_port_is_one_line() {
    let readme = fs::read_to_string(repo().join("README.md")).unwrap();
    assert!(!readme.contains("\"port\""), "no fixed port in the README");
    assert!(
        !readme
            .lines()
            .any(|l| l.trim_start().starts_with("until ") || l.contains("while true")),
        "no loop without an end"
    );
    if !have("python3") {
        return skip("python3 runs the ESC stand-in");
    }
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config.json");
    fs::write(&config, format!("{{\"port\": {port}}}")).unwrap();
    let out = std::process::Command::new("timeout")
        .args(["-s", "KILL", "20", "python3"])
        .arg(repo().join("tests/support/esc_stand_in.py"))
        .arg(&config)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let said = stderr(&out);
    assert_eq!(said.lines().count(), 1, "{said}");
    assert!(said.contains(&format!("port {port} is in use")), "{said}");
}
