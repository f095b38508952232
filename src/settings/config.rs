//! The user's config file, `$XDG_CONFIG_HOME/esc-hook/config.toml`: lasting defaults for what
//! the `ESC_HOOK_*` variables set (a variable, when set, wins over the file), and directories
//! whose `.escrc` files need no `allow` (direnv's `[whitelist] prefix`).
//!
//! ```toml
//! timeout = "30s"            # ESC_HOOK_TIMEOUT
//! connect-timeout = "5s"     # ESC_HOOK_CONNECT_TIMEOUT
//! refresh-margin = "15m"     # ESC_HOOK_REFRESH_MARGIN
//! keyring = "keyutils"       # ESC_HOOK_KEYRING
//! quiet = true               # ESC_HOOK_QUIET
//! trusted-prefixes = ["~/work/acme"]
//! ```
//!
//! The file can make esc-hook load files nobody allowed, so it is read only when it is the
//! user's own and nobody else can write it, like an `.escrc`. A mistake in it costs that one
//! entry, with a line naming the file, the line and the key; never the prompt.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use toml::{Spanned, Value};

pub const FILE_NAME: &str = "config.toml";

/// A real config file is a few lines; a larger one is refused unread.
const MAX_SIZE: u64 = 64 * 1024;

/// The file's keys for settings, and the variables that override them.
pub const SETTING_KEYS: &[(&str, &str)] = &[
    ("timeout", "ESC_HOOK_TIMEOUT"),
    ("connect-timeout", "ESC_HOOK_CONNECT_TIMEOUT"),
    ("refresh-margin", "ESC_HOOK_REFRESH_MARGIN"),
    ("keyring", "ESC_HOOK_KEYRING"),
    ("quiet", "ESC_HOOK_QUIET"),
    ("aws-signin-url", "ESC_HOOK_AWS_SIGNIN_URL"),
];

pub const TRUSTED_PREFIXES: &str = "trusted-prefixes";

/// The config file as read: its settings, trusted prefixes, and what was wrong with it.
#[derive(Debug, Default)]
pub struct Config {
    /// Where the file is (or would be).
    pub path: Option<PathBuf>,
    /// The file was there and was read.
    pub read: bool,
    /// Values by the variable they stand in for, as text that variable would hold.
    values: BTreeMap<&'static str, FileValue>,
    /// Directories (canonical where they exist) below which every `.escrc` counts as allowed.
    pub trusted_prefixes: Vec<TrustedPrefix>,
    /// One line each; the entries at fault were left out.
    pub problems: Vec<String>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TrustedPrefix {
    /// As written in the file, for messages.
    pub written: String,
    pub dir: PathBuf,
}

#[derive(Debug, Clone)]
struct FileValue {
    key: &'static str,
    text: String,
    line: usize,
}

/// A setting's value and where it came from, for the line that names a bad one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Setting {
    pub value: String,
    /// `ESC_HOOK_TIMEOUT=5x`, or `timeout = "5x" (~/.config/esc-hook/config.toml line 2)`.
    pub origin: String,
}

impl std::fmt::Display for Setting {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.origin)
    }
}

impl Setting {
    pub fn from_env(name: &str, value: &str) -> Setting {
        Setting {
            value: value.to_string(),
            origin: format!("{name}={}", crate::ground::names::printable(value, 40)),
        }
    }
}

impl Config {
    /// No file read: every setting comes from the environment or its default.
    pub fn absent(path: Option<PathBuf>) -> Config {
        Config {
            path,
            ..Config::default()
        }
    }

    /// Reads the file at `path` (absent is fine), home-relative `~` in prefixes meaning `home`.
    /// What the problems are, in short: a shell that was told these is not told them again
    /// (see `State::config_said`). None when there are none.
    pub fn problems_fingerprint(&self) -> Option<String> {
        (!self.problems.is_empty()).then(|| {
            let joined = self.problems.join("\n");
            crate::ground::digest::sha256_hex(&[joined.as_bytes()])[..16].to_string()
        })
    }

    pub fn load(path: PathBuf, home: Option<&Path>) -> Config {
        let shown = crate::ground::fs::home_relative(&path);
        let mut config = Config {
            path: Some(path.clone()),
            ..Config::default()
        };
        let file = match crate::ground::fs::read_small(&path, MAX_SIZE) {
            Ok(file) => file,
            Err(_) if std::fs::symlink_metadata(&path).is_err() => return config,
            Err(reason) => {
                config.problems.push(format!("ignoring {shown}: {reason}"));
                return config;
            }
        };
        // SAFETY: geteuid has no preconditions and cannot fail.
        let me = unsafe { libc::geteuid() };
        if file.uid != me {
            config.problems.push(format!(
                "ignoring {shown}: it is owned by another user (uid {})",
                file.uid
            ));
            return config;
        }
        if file.mode & 0o022 != 0 {
            config.problems.push(format!(
                "ignoring {shown}: it is writable by other users: run `chmod go-w {}`",
                crate::ground::text::posix_quote(&path.to_string_lossy())
            ));
            return config;
        }
        config.read = true;
        let Ok(text) = String::from_utf8(file.content) else {
            config
                .problems
                .push(format!("ignoring {shown}: it is not UTF-8 text"));
            return config;
        };
        config.parse(&text, &shown, home);
        config
    }

    fn parse(&mut self, text: &str, shown: &str, home: Option<&Path>) {
        let line_of = |offset: usize| text[..offset.min(text.len())].matches('\n').count() + 1;
        let entries: BTreeMap<Spanned<String>, Spanned<Value>> = match toml::from_str(text) {
            Ok(entries) => entries,
            Err(error) => {
                let at = error
                    .span()
                    .map(|span| format!(" line {}", line_of(span.start)))
                    .unwrap_or_default();
                self.problems.push(format!(
                    "ignoring {shown}:{at} {}",
                    error.message().trim().trim_end_matches('.')
                ));
                return;
            }
        };
        // In the file's order, so the lines about it read top to bottom.
        let mut entries: Vec<_> = entries.into_iter().collect();
        entries.sort_by_key(|(key, _)| key.span().start);
        for (key, value) in entries {
            let line = line_of(key.span().start);
            let place = format!("{shown} line {line}");
            let key = key.into_inner();
            let value = value.into_inner();
            if key == TRUSTED_PREFIXES {
                self.trusted_prefixes_from(&value, &place, home);
                continue;
            }
            let Some(&(key, variable)) = SETTING_KEYS.iter().find(|(known, _)| *known == key)
            else {
                let mut known: Vec<&str> = SETTING_KEYS.iter().map(|(k, _)| *k).collect();
                known.push(TRUSTED_PREFIXES);
                let hint = known
                    .iter()
                    .map(|k| (crate::ground::text::edit_distance(&key, k), *k))
                    .filter(|(distance, _)| *distance <= 2)
                    .min()
                    .map(|(_, k)| format!(": did you mean `{k}`?"))
                    .unwrap_or_else(|| format!(" (known keys: {})", known.join(", ")));
                self.problems.push(format!(
                    "ignoring unknown key `{}` in {place}{hint}",
                    crate::ground::names::printable(&key, 40)
                ));
                continue;
            };
            let text = match (key, value) {
                ("quiet", Value::Boolean(quiet)) => String::from(if quiet { "1" } else { "0" }),
                ("quiet", _) => {
                    self.problems.push(format!(
                        "ignoring `quiet` in {place}: it must be true or false"
                    ));
                    continue;
                }
                (_, Value::String(text)) => text,
                ("timeout" | "connect-timeout" | "refresh-margin", Value::Integer(seconds))
                    if seconds >= 0 =>
                {
                    format!("{seconds}s")
                }
                (key, _) => {
                    let example = match key {
                        "keyring" => "a store name such as \"keyutils\"",
                        _ => "a duration such as \"30s\" or \"10m\"",
                    };
                    self.problems
                        .push(format!("ignoring `{key}` in {place}: it must be {example}"));
                    continue;
                }
            };
            self.values.insert(variable, FileValue { key, text, line });
        }
    }

    fn trusted_prefixes_from(&mut self, value: &Value, place: &str, home: Option<&Path>) {
        let Value::Array(items) = value else {
            self.problems.push(format!(
                "ignoring `{TRUSTED_PREFIXES}` in {place}: it must be a list of directories, such as [\"~/work\"]"
            ));
            return;
        };
        for item in items {
            let Value::String(written) = item else {
                self.problems.push(format!(
                    "ignoring an entry of `{TRUSTED_PREFIXES}` in {place}: each must be a directory in quotes"
                ));
                continue;
            };
            let expanded = match (written.strip_prefix("~/"), home) {
                (Some(rest), Some(home)) => home.join(rest),
                _ if written == "~" => match home {
                    Some(home) => home.to_path_buf(),
                    None => PathBuf::from(written),
                },
                _ => PathBuf::from(written),
            };
            let printable = crate::ground::names::printable(written, 200);
            if !expanded.is_absolute() {
                self.problems.push(format!(
                    "ignoring trusted prefix \"{printable}\" in {place}: it must be absolute or start with ~/"
                ));
                continue;
            }
            // Resolved first, then checked: `/tmp/..`, `~/sub/..` or a link to `/` are what they
            // resolve to.
            let dir = match std::fs::canonicalize(&expanded) {
                Ok(dir) => dir,
                Err(e) => {
                    self.problems.push(format!(
                        "ignoring trusted prefix \"{printable}\" in {place}: {}",
                        crate::ground::fs::io_reason(&e)
                    ));
                    continue;
                }
            };
            let home = home.and_then(|home| std::fs::canonicalize(home).ok());
            if dir.parent().is_none() || home.as_deref().is_some_and(|home| home.starts_with(&dir))
            {
                // Trusting every checkout on the machine (or in the home directory) is what
                // `allow` exists to prevent.
                self.problems.push(format!(
                    "ignoring trusted prefix \"{printable}\" in {place}: it would trust every .escrc under it, name a narrower directory"
                ));
                continue;
            }
            if let Err(problem) = held_by_the_user(&dir) {
                self.problems.push(format!(
                    "ignoring trusted prefix \"{printable}\" in {place}: {problem}"
                ));
                continue;
            }
            self.trusted_prefixes.push(TrustedPrefix {
                written: written.clone(),
                dir,
            });
        }
    }

    /// The file's value for the setting the variable `name` stands for.
    pub fn setting(&self, name: &str) -> Option<Setting> {
        let value = self.values.get(name)?;
        let shown = self
            .path
            .as_deref()
            .map(crate::ground::fs::home_relative)
            .unwrap_or_default();
        Some(Setting {
            value: value.text.clone(),
            origin: format!(
                "{} = \"{}\" ({shown} line {})",
                value.key,
                crate::ground::names::printable(&value.text, 40),
                value.line
            ),
        })
    }

    /// How many settings the file gives.
    pub fn setting_count(&self) -> usize {
        self.values.len()
    }
}

/// Whether nobody but the user (and root) can change what is under `dir`: `dir` is the user's
/// own and writable by nobody else, and every directory above it belongs to the user or root
/// and is writable by nobody else, or is sticky (like `/tmp`, where others cannot move what is
/// not theirs). Else another user could put a checkout of their choosing under the prefix.
fn held_by_the_user(dir: &Path) -> Result<(), String> {
    use std::os::unix::fs::MetadataExt;
    // SAFETY: geteuid has no preconditions and cannot fail.
    let me = unsafe { libc::geteuid() };
    let meta = std::fs::metadata(dir).map_err(|e| crate::ground::fs::io_reason(&e))?;
    if !meta.is_dir() || meta.uid() != me || meta.mode() & 0o022 != 0 {
        return Err("it must be a directory of yours that others cannot write".into());
    }
    for above in dir.ancestors().skip(1) {
        let meta = std::fs::metadata(above).map_err(|e| crate::ground::fs::io_reason(&e))?;
        let owner_ok = meta.uid() == me || meta.uid() == 0;
        let sticky = meta.mode() & 0o1000 != 0;
        if !owner_ok || (meta.mode() & 0o022 != 0 && !sticky) {
            return Err(format!(
                "others can change {}, above it",
                crate::ground::names::printable(&above.to_string_lossy(), 120)
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;
    use std::os::unix::fs::PermissionsExt;

    fn config(text: &str) -> (tempfile::TempDir, Config) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(FILE_NAME);
        fs::write(&path, text).unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).unwrap();
        let home = dir.path().to_path_buf();
        let config = Config::load(path, Some(&home));
        (dir, config)
    }

    #[test]
    fn settings_stand_in_for_their_variables() {
        let (_dir, config) =
            config("timeout = \"30s\"\nconnect-timeout = 3\nquiet = true\nkeyring = \"none\"\n");
        assert!(config.problems.is_empty(), "{:?}", config.problems);
        assert_eq!(config.setting("ESC_HOOK_TIMEOUT").unwrap().value, "30s");
        assert_eq!(
            config.setting("ESC_HOOK_CONNECT_TIMEOUT").unwrap().value,
            "3s"
        );
        assert_eq!(config.setting("ESC_HOOK_QUIET").unwrap().value, "1");
        let keyring = config.setting("ESC_HOOK_KEYRING").unwrap();
        assert_eq!(keyring.value, "none");
        assert!(
            keyring.origin.starts_with("keyring = \"none\" (")
                && keyring.origin.ends_with("config.toml line 4)"),
            "{keyring}"
        );
        assert_eq!(config.setting("ESC_HOOK_REFRESH_MARGIN"), None);
    }

    #[test]
    fn mistakes_cost_one_entry_and_name_their_line() {
        let (_dir, config) = config("timout = \"30s\"\nquiet = \"yes\"\nrefresh-margin = \"5m\"\n");
        assert_eq!(config.problems.len(), 2, "{:?}", config.problems);
        assert!(
            config.problems[0].contains("`timout`")
                && config.problems[0].contains("line 1")
                && config.problems[0].ends_with("did you mean `timeout`?"),
            "{}",
            config.problems[0]
        );
        assert!(config.problems[1].contains("`quiet`") && config.problems[1].contains("line 2"));
        assert_eq!(
            config.setting("ESC_HOOK_REFRESH_MARGIN").unwrap().value,
            "5m"
        );
    }

    #[test]
    fn a_syntax_error_names_its_line() {
        let (_dir, config) = config("quiet = true\ntimeout = \"30s\ntrusted-prefixes = []\n");
        assert_eq!(config.problems.len(), 1, "{:?}", config.problems);
        assert!(
            config.problems[0].contains("line 2"),
            "{}",
            config.problems[0]
        );
        assert!(!config.problems[0].contains('\n'));
        assert_eq!(
            config.setting("ESC_HOOK_QUIET"),
            None,
            "nothing from a broken file"
        );
    }

    #[test]
    fn prefixes_are_resolved_then_checked() {
        let home = tempfile::tempdir().unwrap();
        let make = |name: &str, mode: u32| {
            let dir = home.path().join(name);
            fs::create_dir_all(&dir).unwrap();
            fs::set_permissions(&dir, fs::Permissions::from_mode(mode)).unwrap();
        };
        make("work", 0o755);
        make("shared", 0o777);
        make("shared/clone", 0o755);
        std::os::unix::fs::symlink("/", home.path().join("root-link")).unwrap();
        let path = home.path().join(FILE_NAME);
        fs::write(
            &path,
            "trusted-prefixes = [\"~/work\", \"/\", \"~\", \"relative/dir\", \"/srv/acme\", \
             \"/tmp/..\", \"~/work/..\", \"~/root-link\", \"~/shared\", \"~/shared/clone\"]\n",
        )
        .unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).unwrap();
        let config = Config::load(path, Some(home.path()));
        let dirs: Vec<&Path> = config
            .trusted_prefixes
            .iter()
            .map(|p| p.dir.as_path())
            .collect();
        let work = fs::canonicalize(home.path().join("work")).unwrap();
        assert_eq!(dirs, [work.as_path()], "{:?}", config.problems);
        let problems = config.problems.join("\n");
        assert_eq!(config.problems.len(), 9, "{problems}");
        for (prefix, why) in [
            ("\"/\"", "would trust every .escrc"),
            ("\"~\"", "would trust every .escrc"),
            ("\"/tmp/..\"", "would trust every .escrc"),
            ("\"~/work/..\"", "would trust every .escrc"),
            ("\"~/root-link\"", "would trust every .escrc"),
            ("\"/srv/acme\"", "no such file or directory"),
            (
                "\"~/shared\"",
                "a directory of yours that others cannot write",
            ),
            ("\"~/shared/clone\"", "others can change"),
        ] {
            assert!(
                config
                    .problems
                    .iter()
                    .any(|p| p.contains(prefix) && p.contains(why)),
                "{prefix}: {problems}"
            );
        }
    }

    #[test]
    fn a_file_others_can_write_is_not_read() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(FILE_NAME);
        fs::write(&path, "trusted-prefixes = [\"/srv\"]\n").unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o666)).unwrap();
        let config = Config::load(path, None);
        assert!(config.trusted_prefixes.is_empty());
        assert!(
            config.problems[0].contains("chmod go-w"),
            "{:?}",
            config.problems
        );
    }

    #[test]
    fn no_file_is_no_problem() {
        let dir = tempfile::tempdir().unwrap();
        let config = Config::load(dir.path().join(FILE_NAME), None);
        assert!(!config.read && config.problems.is_empty());
    }
}
