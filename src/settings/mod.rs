//! esc-hook's own settings, read once, from the user's environment **without anything esc-hook
//! set**.
//!
//! A project's variables live in the shell while it is loaded, and so in every process the shell
//! starts, esc-hook included. Were esc-hook to read its settings from that environment, one
//! project could configure esc-hook for the next: send the user's Pulumi token to a host of its
//! choosing (`PULUMI_BACKEND_URL`), another project's OIDC token to its STS endpoint, trust a
//! never-allowed `.escrc` (`XDG_DATA_HOME`), or hand its secrets to the next project's
//! `token-command`. So [`Settings::capture`] reads the environment once, at start-up, and every
//! setting is read through it, taking the state variable's word for what esc-hook set: a
//! variable that still holds esc-hook's value reads as the user's own, or as unset. What would
//! read the environment implicitly gets the clean values explicitly instead: the HTTP clients
//! their proxies and CA certificates (`provider::network`), every child command the clean
//! environment, the keyring its D-Bus session only when it is the user's own. Nothing writes
//! the process environment. `main` builds the settings once and passes them down; they are read
//! here and nowhere else, and a test keeps it so.

pub mod config;
pub mod state;

use std::collections::BTreeMap;
use std::ffi::{OsStr, OsString};
use std::fs;
use std::path::PathBuf;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use config::{Config, Setting};
use state::State;

/// The environment as the shell handed it, esc-hook's own exports included: what the hook
/// compares against when it unloads.
pub struct Environ {
    pub vars: BTreeMap<String, OsString>,
}

impl<K: Into<String>, V: Into<OsString>> FromIterator<(K, V)> for Environ {
    fn from_iter<I: IntoIterator<Item = (K, V)>>(iter: I) -> Environ {
        Environ {
            vars: iter
                .into_iter()
                .map(|(k, v)| (k.into(), v.into()))
                .collect(),
        }
    }
}

pub struct Settings {
    /// What the shell handed over.
    pub current: Environ,
    /// `ESC_HOOK_STATE`: `Err` when present but unreadable.
    pub state: Result<Option<State>, String>,
    /// Whether the user's config file is read (not in unit tests: the developer's own file
    /// must not change what they see).
    reads_config_file: bool,
    config: OnceLock<Config>,
    config_reported: AtomicBool,
    /// Where the user's own values of secret names wait while a project overrides them (the
    /// keyring; `main` names it, a floor above): asked at the first need only.
    held_source: OnceLock<HeldSource>,
    held: OnceLock<BTreeMap<String, OsString>>,
}

/// Reads a keyring entry of held values (see [`state::SetVar::held`]): salted hash → value.
pub type HeldSource = Box<dyn Fn(&str) -> BTreeMap<String, String> + Send + Sync>;

/// How long before expiry credentials are refreshed (and stop being served from the cache).
pub const MARGIN_SETTING: &str = "ESC_HOOK_REFRESH_MARGIN";
pub const DEFAULT_MARGIN: Duration = Duration::from_secs(600);

impl Settings {
    /// Reads the process environment once (in `main`). Cheap: what esc-hook set is worked out
    /// per name, when a setting is read.
    pub fn capture() -> Settings {
        let mut settings = Settings::from_environ(
            std::env::vars_os()
                .filter_map(|(name, value)| Some((name.into_string().ok()?, value)))
                .collect(),
        );
        settings.reads_config_file = true;
        settings
    }

    /// The settings for a given environment: the state it holds decides what is not the user's.
    pub fn from_environ(current: Environ) -> Settings {
        let state = match current.vars.get(state::VAR) {
            None => Ok(None),
            Some(text) if text.is_empty() => Ok(None),
            Some(text) => match text.to_str() {
                Some(text) => State::decode(text).map(Some),
                None => Err(format!("{} is not valid", state::VAR)),
            },
        };
        Settings {
            current,
            state,
            reads_config_file: false,
            config: OnceLock::new(),
            config_reported: AtomicBool::new(false),
            held_source: OnceLock::new(),
            held: OnceLock::new(),
        }
    }

    /// The user's own value of `name`: what the shell has, unless esc-hook set it (and it
    /// still holds esc-hook's value), in which case what the user had before, or nothing.
    fn clean_value(&self, name: &str) -> Option<&OsStr> {
        if name == state::VAR {
            return None;
        }
        let current = self.current.vars.get(name).map(OsString::as_os_str);
        let Ok(Some(State {
            loaded: Some(loaded),
            ..
        })) = &self.state
        else {
            return current;
        };
        match loaded.vars.iter().find(|var| var.name == name) {
            // Changed since esc-hook set it, or never set: the user's own.
            Some(var) if loaded.still_ours(var, current.and_then(OsStr::to_str)) => {
                match (&var.prev, &var.held) {
                    (Some(prev), _) => Some(OsStr::new(prev)),
                    (None, Some(hash)) => self
                        .held_values(loaded.held_in.as_deref())
                        .get(hash)
                        .map(OsString::as_os_str),
                    (None, None) => None,
                }
            }
            _ => current,
        }
    }

    /// Names where held values are read from (once, by `main`).
    pub fn set_held_source(&self, source: HeldSource) {
        let _ = self.held_source.set(source);
    }

    /// The user's own values held in the keyring entry `account`, read once.
    fn held_values(&self, account: Option<&str>) -> &BTreeMap<String, OsString> {
        self.held
            .get_or_init(|| match (account, self.held_source.get()) {
                (Some(account), Some(source)) => source(account)
                    .into_iter()
                    .map(|(hash, value)| (hash, OsString::from(value)))
                    .collect(),
                _ => BTreeMap::new(),
            })
    }

    /// A setting: the user's own value, when set, non-empty and UTF-8.
    pub fn var(&self, name: &str) -> Option<&str> {
        self.clean_value(name)
            .and_then(OsStr::to_str)
            .filter(|v| !v.is_empty())
    }

    fn path_var(&self, name: &str) -> Option<PathBuf> {
        self.clean_value(name)
            .map(PathBuf::from)
            .filter(|p| p.is_absolute())
    }

    /// The user's own value of a variable, if it is set and UTF-8 (empty included).
    pub fn clean_var(&self, name: &str) -> Option<String> {
        self.clean_value(name)
            .and_then(OsStr::to_str)
            .map(String::from)
    }

    /// A variable as the shell has it now (not a setting: `PWD`, and what the hook restores).
    pub fn current_var(&self, name: &str) -> Option<&OsStr> {
        self.current.vars.get(name).map(OsString::as_os_str)
    }

    /// The user's environment, for child commands (token commands, the editor, `exec`).
    pub fn clean_env(&self) -> impl Iterator<Item = (&String, &OsStr)> {
        self.current
            .vars
            .keys()
            .filter_map(|name| Some((name, self.clean_value(name)?)))
    }

    /// The directory the shell is in: `$PWD` when it is absolute and really is the working
    /// directory (it keeps the user's symlinked path), else the working directory itself. A shell
    /// that does not maintain `$PWD` (PowerShell started from bash inherits bash's) must not send
    /// esc-hook to another project.
    pub fn current_dir(&self) -> Option<PathBuf> {
        use std::os::unix::fs::MetadataExt;
        let same_dir =
            |a: &fs::Metadata, b: &fs::Metadata| a.dev() == b.dev() && a.ino() == b.ino();
        match self.current_var("PWD").map(PathBuf::from) {
            Some(pwd)
                if pwd.is_absolute()
                    && matches!((fs::metadata(&pwd), fs::metadata(".")), (Ok(a), Ok(b)) if same_dir(&a, &b)) =>
            {
                Some(pwd)
            }
            _ => std::env::current_dir().ok(),
        }
    }

    /// `$HOME`, else the home directory of the user's account.
    pub fn home(&self) -> Option<PathBuf> {
        self.path_var("HOME").or_else(account_home)
    }

    /// Where trust records live: `$XDG_DATA_HOME`, else the platform's default.
    pub fn data_dir(&self) -> Option<PathBuf> {
        self.xdg_dir(
            "XDG_DATA_HOME",
            ".local/share",
            "Library/Application Support",
        )
    }

    /// Where the cache index lives: `$XDG_CACHE_HOME`, else the platform's default.
    pub fn cache_dir(&self) -> Option<PathBuf> {
        self.xdg_dir("XDG_CACHE_HOME", ".cache", "Library/Caches")
    }

    /// An absolute `$name`, else the platform's default under the home directory.
    fn xdg_dir(&self, name: &str, linux: &str, macos: &str) -> Option<PathBuf> {
        self.path_var(name).or_else(|| {
            let under_home = if cfg!(target_os = "macos") {
                macos
            } else {
                linux
            };
            Some(self.home()?.join(under_home))
        })
    }

    /// The base of esc-hook's private runtime files (environment files, locks, per-shell
    /// markers): `$XDG_RUNTIME_DIR/esc-hook`, else `<temp>/esc-hook-<uid>`.
    pub fn runtime_base(&self) -> PathBuf {
        match self.path_var("XDG_RUNTIME_DIR") {
            Some(dir) => dir.join("esc-hook"),
            None => {
                let temp = self
                    .path_var("TMPDIR")
                    .unwrap_or_else(|| PathBuf::from("/tmp"));
                // SAFETY: geteuid has no preconditions and cannot fail.
                temp.join(format!("esc-hook-{}", unsafe { libc::geteuid() }))
            }
        }
    }

    /// The hooked shell this process runs under, from `ESC_HOOK_SHELL` (`bash 1234`, set by
    /// every hook): its name and pid, when that pid is this process's parent or an ancestor
    /// (a command substitution, a script, a subshell of the hooked shell). A value inherited
    /// from an unrelated shell does not count.
    pub fn hooked_shell(&self) -> Option<(&str, i32)> {
        let (name, pid) = self.var("ESC_HOOK_SHELL")?.split_once(' ')?;
        let pid: i32 = pid.parse().ok().filter(|pid| *pid > 1)?;
        // SAFETY: getppid has no preconditions and cannot fail.
        let mut ancestor = unsafe { libc::getppid() };
        for _ in 0..64 {
            if ancestor == pid {
                return Some((name, pid));
            }
            ancestor = parent_of(ancestor)?;
        }
        None
    }

    /// Where the config file is: `$XDG_CONFIG_HOME/esc-hook/config.toml`, else the platform's
    /// default config directory.
    pub fn config_path(&self) -> Option<PathBuf> {
        let dir = self.xdg_dir("XDG_CONFIG_HOME", ".config", "Library/Application Support")?;
        Some(dir.join("esc-hook").join(config::FILE_NAME))
    }

    /// The user's config file, read at first use; its problems are reported once.
    pub fn config(&self) -> &Config {
        let config = self.config.get_or_init(|| match self.config_path() {
            Some(path) if self.reads_config_file => Config::load(path, self.home().as_deref()),
            path => Config::absent(path),
        });
        // Not a `Once`: a line printed here asks for settings (colour, quiet) in turn. A shell
        // already told these problems is not told again.
        let told = self
            .state
            .as_ref()
            .ok()
            .and_then(Option::as_ref)
            .and_then(|state| state.config_said.as_deref());
        let already = told.is_some() && told == config.problems_fingerprint().as_deref();
        if !already && !self.config_reported.swap(true, Ordering::Relaxed) {
            for problem in &config.problems {
                crate::ground::log::warn(problem);
            }
        }
        config
    }

    /// The config file for a command that shows its problems itself (`doctor`): they are not
    /// also printed as warnings.
    pub fn config_for_report(&self) -> &Config {
        self.config_reported.store(true, Ordering::Relaxed);
        self.config()
    }

    /// A setting of esc-hook's own: the variable `name` when the user set it (non-empty),
    /// else the config file's entry for it.
    pub fn setting(&self, name: &str) -> Option<Setting> {
        match self.var(name) {
            Some(value) => Some(Setting::from_env(name, value)),
            None => self.config().setting(name),
        }
    }

    /// `ESC_HOOK_QUIET` (or `quiet` in the config file): informational lines hidden.
    pub fn quiet(&self) -> bool {
        self.setting("ESC_HOOK_QUIET")
            .is_some_and(|s| s.value != "0")
    }

    /// What the log may do on a terminal.
    pub fn terminal(&self) -> crate::ground::log::Terminal {
        crate::ground::log::Terminal {
            dumb: self.var("TERM") == Some("dumb"),
            no_colour: !self.colour_allowed(),
        }
    }

    /// Whether the user's own D-Bus session is the one this process reaches: the Secret Service
    /// library reads `DBUS_SESSION_BUS_ADDRESS` from the process environment, so an address a
    /// project exported counts as no session at all.
    pub fn session_bus(&self) -> bool {
        const NAME: &str = "DBUS_SESSION_BUS_ADDRESS";
        self.var(NAME).is_some() && self.var(NAME) == self.current_var(NAME).and_then(OsStr::to_str)
    }

    /// Whether colour may be used on a terminal: never with `NO_COLOR`, or a `dumb` one.
    pub fn colour_allowed(&self) -> bool {
        self.var("NO_COLOR").is_none() && self.var("TERM") != Some("dumb")
    }

    /// The refresh margin, `ESC_HOOK_REFRESH_MARGIN` (or the config file's), else 10 minutes
    /// (with a line naming a value that is not a duration).
    pub fn refresh_margin(&self) -> Duration {
        let Some(setting) = self.setting(MARGIN_SETTING) else {
            return DEFAULT_MARGIN;
        };
        crate::ground::duration::parse(&setting.value).unwrap_or_else(|problem| {
            crate::ground::log::warn(format!(
                "ignoring {setting}: {problem}; using {}",
                crate::ground::duration::human(DEFAULT_MARGIN)
            ));
            DEFAULT_MARGIN
        })
    }
}

#[derive(Clone, Copy, Debug)]
pub struct Timeouts {
    pub connect: Duration,
    /// For the whole open: both requests and any retries.
    pub total: Duration,
}

impl Timeouts {
    pub const DEFAULT: Timeouts = Timeouts {
        connect: Duration::from_secs(5),
        total: Duration::from_secs(20),
    };
}

impl Settings {
    /// `ESC_HOOK_CONNECT_TIMEOUT` and `ESC_HOOK_TIMEOUT` (or the config file's), else the
    /// defaults; one that is not a duration is an error naming it.
    pub fn timeouts(&self) -> Result<Timeouts, String> {
        Ok(Timeouts {
            connect: self.timeout("ESC_HOOK_CONNECT_TIMEOUT", Timeouts::DEFAULT.connect)?,
            total: self.timeout("ESC_HOOK_TIMEOUT", Timeouts::DEFAULT.total)?,
        })
    }

    /// The bound on a whole open (`ESC_HOOK_TIMEOUT`), its default when the setting is
    /// unusable.
    pub fn open_timeout(&self) -> Duration {
        self.timeout("ESC_HOOK_TIMEOUT", Timeouts::DEFAULT.total)
            .unwrap_or(Timeouts::DEFAULT.total)
    }

    /// A timeout setting (the variable `name`, else the config file's entry), else `default`.
    fn timeout(&self, name: &str, default: Duration) -> Result<Duration, String> {
        match self.setting(name) {
            None => Ok(default),
            Some(setting) => crate::ground::duration::parse(&setting.value)
                .ok()
                .filter(|d| !d.is_zero())
                .ok_or_else(|| format!("{setting} is not a duration (examples: 5s, 1m)")),
        }
    }
}

/// Names glibc's resolver reads from the process environment, which no HTTP client lets us
/// pass explicitly: while one holds a value a project set (only with `allow-names`), esc-hook
/// does not go to the network.
const RESOLVER_VARS: &[&str] = &[
    "HOSTALIASES",
    "RES_OPTIONS",
    "LOCALDOMAIN",
    "RESOLV_HOST_CONF",
];

/// The proxies and trust roots of the user's own environment.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Network {
    /// `HTTP_PROXY`/`http_proxy` (not under CGI, where `HTTP_PROXY` is a request header).
    pub http_proxy: Option<String>,
    /// `HTTPS_PROXY`/`https_proxy`.
    pub https_proxy: Option<String>,
    /// `ALL_PROXY`/`all_proxy`: for either scheme, when the scheme's own is not set.
    pub all_proxy: Option<String>,
    /// `NO_PROXY`/`no_proxy`.
    pub no_proxy: Option<String>,
    /// `SSL_CERT_FILE` and `SSL_CERT_DIR`: the user's CA certificates instead of the system's.
    pub cert_file: Option<PathBuf>,
    pub cert_dir: Option<PathBuf>,
}

impl Settings {
    /// The network as the user's own environment describes it, as the HTTP libraries would have
    /// read it from a clean environment (upper case first, then lower case). Refused while a
    /// resolver variable holds what a project set: name lookups would follow it.
    pub fn network(&self) -> Result<Network, String> {
        let settings = self;
        if let Some(name) = resolver_set_by_a_project(settings) {
            return Err(format!(
                "{name} holds a value a project set, and host names would be looked up under it: leave that project first (or unset {name})"
            ));
        }
        let first = |names: [&str; 2]| names.iter().find_map(|n| settings.var(n)).map(String::from);
        let existing = |name: &str| settings.var(name).map(PathBuf::from).filter(|p| p.exists());
        Ok(Network {
            http_proxy: match settings.var("REQUEST_METHOD") {
                Some(_) => None,
                None => first(["HTTP_PROXY", "http_proxy"]),
            },
            https_proxy: first(["HTTPS_PROXY", "https_proxy"]),
            all_proxy: first(["ALL_PROXY", "all_proxy"]),
            no_proxy: first(["NO_PROXY", "no_proxy"]),
            cert_file: existing("SSL_CERT_FILE"),
            cert_dir: existing("SSL_CERT_DIR"),
        })
    }
}

/// The first resolver variable that holds a value a project set.
fn resolver_set_by_a_project(settings: &Settings) -> Option<&'static str> {
    RESOLVER_VARS.iter().copied().find(|name| {
        settings.current_var(name).and_then(|v| v.to_str()) != settings.clean_var(name).as_deref()
    })
}

/// The parent of a process (Linux: from `/proc`; elsewhere unknown).
fn parent_of(pid: i32) -> Option<i32> {
    if pid <= 1 {
        return None;
    }
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // `pid (comm) state ppid …`, where comm may hold anything but ends at the last `)`.
    stat.rsplit_once(')')?
        .1
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

/// The home directory in the user database, for a process started without `HOME`.
fn account_home() -> Option<PathBuf> {
    use std::ffi::CStr;
    use std::os::unix::ffi::OsStrExt;
    let mut buffer = vec![0u8; 4096];
    // SAFETY: getpwuid_r writes into our buffer and record; the result pointer is checked.
    unsafe {
        let mut record: libc::passwd = std::mem::zeroed();
        let mut result: *mut libc::passwd = std::ptr::null_mut();
        let status = libc::getpwuid_r(
            libc::geteuid(),
            &mut record,
            buffer.as_mut_ptr().cast(),
            buffer.len(),
            &mut result,
        );
        if status != 0 || result.is_null() || record.pw_dir.is_null() {
            return None;
        }
        let dir = CStr::from_ptr(record.pw_dir).to_bytes();
        (!dir.is_empty()).then(|| PathBuf::from(OsStr::from_bytes(dir)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::settings::state::{Loaded, Outcome, SetVar};

    fn loaded_state(vars: &[(&str, Option<&str>, &str)]) -> String {
        let salt = Loaded::new_salt();
        let mut state = State::outside(false);
        state.outcome = Outcome::Loaded;
        state.loaded = Some(Loaded {
            vars: vars
                .iter()
                .map(|(name, prev, set)| SetVar {
                    name: name.to_string(),
                    prev: prev.map(String::from),
                    hash: Loaded::hash(&salt, name, set),
                    unset: false,
                    from: None,
                    held: None,
                })
                .collect(),
            salt,
            files_dir: None,
            opened_at: 0,
            expires_at: None,
            retry_at: None,
            origins: Vec::new(),
            held_in: None,
        });
        state.encode()
    }

    #[test]
    fn what_esc_hook_set_is_not_a_setting() {
        let state = loaded_state(&[
            ("PULUMI_BACKEND_URL", None, "https://evil.example"),
            ("XDG_DATA_HOME", Some("/home/u/.data"), "/tmp/evil"),
            ("AWS_ENDPOINT_URL_STS", None, "https://sts.evil.example"),
            ("HTTPS_PROXY", None, "http://proxy.evil.example"),
        ]);
        let settings = Settings::from_environ(Environ::from_iter([
            ("ESC_HOOK_STATE", state.as_str()),
            ("PULUMI_BACKEND_URL", "https://evil.example"),
            ("XDG_DATA_HOME", "/tmp/evil"),
            // The user changed this one since: it is theirs now.
            ("AWS_ENDPOINT_URL_STS", "http://127.0.0.1:5055"),
            ("HTTPS_PROXY", "http://proxy.evil.example"),
            ("HOME", "/home/u"),
        ]));
        assert_eq!(settings.var("PULUMI_BACKEND_URL"), None);
        assert_eq!(
            settings.data_dir(),
            Some(PathBuf::from("/home/u/.data")),
            "the user's own value is back"
        );
        assert_eq!(
            settings.var("AWS_ENDPOINT_URL_STS"),
            Some("http://127.0.0.1:5055")
        );
        assert_eq!(settings.var("HTTPS_PROXY"), None);
        assert_eq!(settings.var("HOME"), Some("/home/u"));
        let child: Vec<&String> = settings.clean_env().map(|(k, _)| k).collect();
        assert!(
            !child
                .iter()
                .any(|k| *k == "ESC_HOOK_STATE" || *k == "HTTPS_PROXY")
        );
        assert_eq!(
            settings.current_var("PULUMI_BACKEND_URL"),
            Some(OsStr::new("https://evil.example")),
            "the hook still sees what the shell has"
        );
    }

    #[test]
    fn relative_directories_are_not_used() {
        let settings = Settings::from_environ(Environ::from_iter([
            ("XDG_DATA_HOME", "relative/data"),
            ("XDG_RUNTIME_DIR", "run"),
            ("TMPDIR", "tmp"),
            ("HOME", "/home/u"),
        ]));
        assert_eq!(
            settings.data_dir(),
            Some(PathBuf::from("/home/u/.local/share"))
        );
        assert!(
            settings
                .runtime_base()
                .to_string_lossy()
                .starts_with("/tmp/esc-hook-")
        );
    }

    #[test]
    fn proxies_and_roots_are_the_users_own() {
        let settings = Settings::from_environ(Environ::from_iter([
            ("https_proxy", "http://proxy.corp:3128"),
            ("HTTP_PROXY", "http://plain.corp:3128"),
            ("NO_PROXY", "localhost,.corp"),
            ("SSL_CERT_FILE", "/does/not/exist.pem"),
        ]));
        let network = settings.network().unwrap();
        assert_eq!(
            network.https_proxy.as_deref(),
            Some("http://proxy.corp:3128")
        );
        assert_eq!(
            network.http_proxy.as_deref(),
            Some("http://plain.corp:3128")
        );
        assert_eq!(network.no_proxy.as_deref(), Some("localhost,.corp"));
        assert_eq!(
            network.cert_file, None,
            "a file that is not there is not used"
        );
    }

    #[test]
    fn under_cgi_http_proxy_is_a_header_not_a_setting() {
        let settings = Settings::from_environ(Environ::from_iter([
            ("REQUEST_METHOD", "GET"),
            ("HTTP_PROXY", "http://attacker:1"),
        ]));
        assert_eq!(settings.network().unwrap().http_proxy, None);
    }
}
