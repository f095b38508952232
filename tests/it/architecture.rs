//! The house keeps its layers (ARCHITECTURE.md): every import points down a floor or stays on
//! its own, no files import each other around a loop, nothing but the settings reads the process
//! environment, and nothing writes it. Read from the source text, so it fails the moment a
//! change breaks a rule, with the file and the name at fault.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use crate::common::repo;

/// The floors from the ground up, as ARCHITECTURE.md names them: the first segment of a
/// module's path decides its floor. What lives directly in `src/` is the top.
const FLOORS: &[(&str, &[&str])] = &[
    ("ground", &["ground"]),
    ("settings", &["settings"]),
    ("inputs", &["inputs"]),
    ("sources", &["provider"]),
    ("keeping", &["keeping"]),
    ("project", &["project"]),
    ("outputs", &["shell"]),
    (
        "top",
        &[
            "cli",
            "cmd",
            "credential_server",
            "fuzz",
            "hook",
            "refresh",
            "main",
        ],
    ),
];

/// One source file: its module path (`keeping::cache::store`) and its text without unit tests.
struct Source {
    file: PathBuf,
    module: Vec<String>,
    code: String,
}

fn sources() -> Vec<Source> {
    let root = repo().join("src");
    let mut pending = vec![root.clone()];
    let mut found = Vec::new();
    while let Some(dir) = pending.pop() {
        for entry in std::fs::read_dir(&dir).unwrap().flatten() {
            let path = entry.path();
            if path.is_dir() {
                pending.push(path);
                continue;
            }
            if path.extension().and_then(|e| e.to_str()) != Some("rs") {
                continue;
            }
            let relative = path.strip_prefix(&root).unwrap();
            let mut module: Vec<String> = relative
                .with_extension("")
                .iter()
                .map(|part| part.to_string_lossy().into_owned())
                .collect();
            if module.last().map(String::as_str) == Some("mod") {
                module.pop();
            }
            let text = std::fs::read_to_string(&path).unwrap();
            // Unit tests may reach anywhere; the rules are for the code they test.
            let code = match text.find("#[cfg(test)]\nmod tests") {
                Some(at) => text[..at].to_string(),
                None => text,
            };
            found.push(Source {
                file: relative.to_path_buf(),
                module,
                code,
            });
        }
    }
    found.sort_by(|a, b| a.file.cmp(&b.file));
    found
}

fn floor_of(module: &[String]) -> usize {
    let first = module.first().map(String::as_str).unwrap_or("main");
    FLOORS
        .iter()
        .position(|(_, roots)| roots.contains(&first))
        .unwrap_or_else(|| panic!("src/{}: on no floor of FLOORS", module.join("/")))
}

/// The module paths a file names: `crate::a::b::…`, `super::…`, and `child::…` for its own
/// declared children, each cut down to the longest path that is a module of the tree. Inside
/// an inline `mod x { … }`, `super` is the file itself.
fn imports(source: &Source, modules: &BTreeSet<Vec<String>>) -> BTreeSet<Vec<String>> {
    let children: BTreeSet<&str> = source
        .code
        .lines()
        .filter_map(|line| {
            let line = line.trim_start().trim_start_matches("pub ");
            line.strip_prefix("mod ")?.strip_suffix(';')
        })
        .collect();
    let own = &source.module;
    let mut found = BTreeSet::new();
    // Brace depth, and the depths at which inline modules opened.
    let mut depth = 0usize;
    let mut inline_modules: Vec<usize> = Vec::new();
    for line in source.code.lines() {
        let trimmed = line.trim_start();
        let declaration = trimmed
            .trim_start_matches("pub(super) ")
            .trim_start_matches("pub(crate) ")
            .trim_start_matches("pub ");
        if declaration.starts_with("mod ") && declaration.trim_end().ends_with('{') {
            inline_modules.push(depth);
        }
        if !trimmed.starts_with("//") {
            for (word, tail) in paths_in(line) {
                let base = match word {
                    "crate" => Vec::new(),
                    "super" if inline_modules.is_empty() => own[..own.len() - 1].to_vec(),
                    "super" => continue,
                    child if children.contains(child) => {
                        let mut path = own.to_vec();
                        path.push(child.to_string());
                        path
                    }
                    _ => continue,
                };
                let mut path = base;
                path.extend(tail);
                while !path.is_empty() && !modules.contains(&path) {
                    path.pop();
                }
                if !path.is_empty() && path != *own {
                    found.insert(path);
                }
            }
        }
        for c in line.chars() {
            match c {
                '{' => depth += 1,
                '}' => {
                    depth = depth.saturating_sub(1);
                    if inline_modules.last().is_some_and(|opened| depth <= *opened) {
                        inline_modules.pop();
                    }
                }
                _ => {}
            }
        }
    }
    found
}

/// Each path in a line that starts a word and goes on with `::`: its first word, and the words
/// after it (`crate::a::b::{c, d}` gives `crate` and `[a, b]`).
fn paths_in(line: &str) -> Vec<(&str, Vec<String>)> {
    let is_word = |c: char| c.is_ascii_alphanumeric() || c == '_';
    let mut found = Vec::new();
    let mut rest = line;
    let mut previous: Option<char> = None;
    while let Some(c) = rest.chars().next() {
        let starts_word = is_word(c) && !previous.is_some_and(|p| is_word(p) || p == ':');
        if !starts_word {
            previous = Some(c);
            rest = &rest[c.len_utf8()..];
            continue;
        }
        let len = rest.find(|c: char| !is_word(c)).unwrap_or(rest.len());
        let word = &rest[..len];
        let mut tail = &rest[len..];
        let mut parts = Vec::new();
        while let Some(next) = tail.strip_prefix("::") {
            let part_len = next.find(|c: char| !is_word(c)).unwrap_or(next.len());
            if part_len == 0 {
                break;
            }
            parts.push(next[..part_len].to_string());
            tail = &next[part_len..];
        }
        if rest[len..].starts_with("::") {
            found.push((word, parts));
        }
        previous = word.chars().last();
        rest = &rest[len..];
    }
    found
}

/// Who imports whom, by module path.
type Edges = BTreeMap<Vec<String>, BTreeSet<Vec<String>>>;

fn graph() -> (Vec<Source>, Edges) {
    let sources = sources();
    let modules: BTreeSet<Vec<String>> = sources.iter().map(|s| s.module.clone()).collect();
    let edges = sources
        .iter()
        .map(|s| (s.module.clone(), imports(s, &modules)))
        .collect();
    (sources, edges)
}

#[test]
fn no_module_imports_one_on_a_higher_floor() {
    let (sources, edges) = graph();
    let mut offenders = Vec::new();
    for source in &sources {
        let floor = floor_of(&source.module);
        for target in &edges[&source.module] {
            let target_floor = floor_of(target);
            if target_floor > floor {
                offenders.push(format!(
                    "src/{} (floor {}) imports {} (floor {})",
                    source.file.display(),
                    FLOORS[floor].0,
                    target.join("::"),
                    FLOORS[target_floor].0
                ));
            }
        }
    }
    assert!(
        offenders.is_empty(),
        "imports that run up a floor:\n{}",
        offenders.join("\n")
    );
}

#[test]
fn no_files_import_each_other_around_a_loop() {
    let (_, edges) = graph();
    // Depth-first search for a back edge; the loop is named whole.
    fn visit(
        node: &Vec<String>,
        edges: &Edges,
        done: &mut BTreeSet<Vec<String>>,
        path: &mut Vec<Vec<String>>,
    ) -> Option<Vec<String>> {
        if let Some(start) = path.iter().position(|p| p == node) {
            let mut names: Vec<String> = path[start..].iter().map(|p| p.join("::")).collect();
            names.push(node.join("::"));
            return Some(names);
        }
        if !done.insert(node.clone()) {
            return None;
        }
        path.push(node.clone());
        for next in edges.get(node).into_iter().flatten() {
            if let Some(found) = visit(next, edges, done, path) {
                return Some(found);
            }
        }
        path.pop();
        None
    }
    let mut done = BTreeSet::new();
    for node in edges.keys() {
        let mut path = Vec::new();
        if let Some(found) = visit(node, &edges, &mut done, &mut path) {
            panic!("a loop of imports: {}", found.join(" -> "));
        }
    }
}

/// The rules above judge what they are given: make sure they see the imports at all.
#[test]
fn the_import_reader_sees_every_kind_of_import() {
    let (_, edges) = graph();
    let names = |m: &str| m.split("::").map(String::from).collect::<Vec<_>>();
    let has = |from: &str, to: &str| edges[&names(from)].contains(&names(to));
    assert!(has("hook", "hook::transition"), "a child by its name");
    assert!(has("provider::login", "provider"), "super::");
    assert!(
        has("keeping::trust", "settings::state"),
        "crate:: in a use line"
    );
    assert!(
        has("project::sources", "keeping::cache::store")
            || has("project::sources", "keeping::cache"),
        "crate:: through an alias"
    );
}

/// Settings are read once, from the environment the process inherited (settings/mod.rs), and
/// passed down; nothing reads the environment on its own (nor the `dirs` crate, which does),
/// and nothing writes it: what a library reads by itself is given to it explicitly instead.
#[test]
fn only_the_settings_read_the_environment_and_nothing_writes_it() {
    let mut offenders = Vec::new();
    for source in sources() {
        let is_settings = source.file == Path::new("settings/mod.rs");
        for needle in ["env::var", "env::vars", "dirs::", "temp_dir()"] {
            if !is_settings && source.code.contains(needle) {
                offenders.push(format!("src/{}: {needle}", source.file.display()));
            }
        }
        for needle in ["set_var", "remove_var"] {
            if source.code.contains(needle) {
                offenders.push(format!("src/{}: {needle}", source.file.display()));
            }
        }
    }
    assert!(offenders.is_empty(), "{offenders:#?}");
}
