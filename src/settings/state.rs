//! The state variable, `ESC_HOOK_STATE`: what the hook decided last time, exported so that it
//! follows the shell (and only that shell) around.
//!
//! It never holds a value esc-hook set: only names, the values they had *before* esc-hook
//! overwrote them (the user's own), and a salted hash of each value set, which is enough to
//! tell on unload whether the user has changed a variable since.

use std::path::PathBuf;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};

use crate::ground::digest::{random_hex, sha256_hex};
use crate::ground::fs::FileStamp;

pub const VAR: &str = "ESC_HOOK_STATE";

/// Bumped whenever the encoding changes; an older state is treated as unreadable.
const SCHEMA: u32 = 1;

/// States larger than this are refused on decode: the variable is copied into every child
/// process, and a forged huge one must not make the hook slow.
const MAX_ENCODED_LEN: usize = 256 * 1024;

/// The largest state a load may leave: well under the 128 KiB the kernel allows one
/// environment string, so every program can still be started and the project unloaded.
pub const MAX_STATE_LEN: usize = 96 * 1024;

/// A parent file as the state remembers it, to tell cheaply at each prompt that the chain is
/// still the same: its identity, and the trust records that decided it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Link {
    pub stamp: FileStamp,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trust: Option<TrustKeys>,
}

/// The names of the two records that decide a file's verdict; the state keeps them so that an
/// unchanged prompt can re-check trust with two `stat` calls and no hashing.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct TrustKeys {
    pub allow: String,
    pub deny: String,
}

impl TrustKeys {
    /// Both are SHA-256 hex digests, as the trust store makes them.
    pub fn well_formed(&self) -> bool {
        [&self.allow, &self.deny].iter().all(|key| {
            key.len() == 64
                && key
                    .bytes()
                    .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        })
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct State {
    v: u32,
    /// The `.escrc` this decision was made for; none outside any project (a state is then
    /// kept only to remember what this shell was already told).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub escrc: Option<FileStamp>,
    /// What messages call the project (environment name or file path).
    pub label: String,
    pub outcome: Outcome,
    /// The trust records the decision read, to re-check them cheaply at every prompt.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trust: Option<TrustKeys>,
    /// In a layered project: the files `escrc` builds on, nearest first, with their trust
    /// records.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub parents: Vec<Link>,
    /// The farthest file asks to inherit and there was nothing above it.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub seeks_parent: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub loaded: Option<Loaded>,
    /// This shell has been told the keyring does not answer; it is not told again.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub keyring_warned: bool,
    /// Why nothing was loaded, as the line the user was shown (for `status`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The fingerprint of the login the backend refused: the load is tried again as soon as
    /// the login differs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failed_login: Option<String>,
    /// After a transient failure (the backend down, 429, 5xx): unix seconds from which a
    /// prompt tries again by itself.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_at: Option<u64>,
    /// The config file's problems this shell was told (their fingerprint): said once per
    /// state of the file, not at every `cd`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config_said: Option<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Outcome {
    Loaded,
    NotAllowed,
    Denied,
    Unsafe,
    /// Allowed, but the file or the environment failed to load; the error was shown once.
    Failed,
    /// No `.escrc` here or above.
    Outside,
}

impl Outcome {
    /// Whether the trust records said "allowed" when this outcome was decided.
    pub fn was_allowed(self) -> bool {
        matches!(self, Outcome::Loaded | Outcome::Failed)
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Loaded {
    pub salt: String,
    pub vars: Vec<SetVar>,
    /// The private directory holding the environment's `files`, removed on unload.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "opt_path_text"
    )]
    pub files_dir: Option<PathBuf>,
    /// Unix seconds.
    pub opened_at: u64,
    /// Unix seconds; none when everything came from inline values.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<u64>,
    /// After a failed refresh: unix seconds before which no new attempt is made.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_at: Option<u64>,
    /// Where the variables came from (environments, files), each named once.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub origins: Vec<String>,
    /// The keyring entry where the user's own values of secret names wait while the project
    /// is loaded (see [`SetVar::held`]): `held-<shell pid>`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub held_in: Option<String>,
}

/// Whether `account` can name a keyring entry of held values: `held-` and a process id. A
/// state names nothing else for esc-hook to read from the keyring.
pub fn is_held_account(account: &str) -> bool {
    account
        .strip_prefix("held-")
        .is_some_and(|pid| (1..=10).contains(&pid.len()) && pid.bytes().all(|b| b.is_ascii_digit()))
}

impl Loaded {
    /// Where `var` came from, when recorded.
    pub fn origin_of(&self, var: &SetVar) -> Option<&str> {
        self.origins.get(var.from.unwrap_or(0)).map(String::as_str)
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SetVar {
    pub name: String,
    /// The user's value before esc-hook set this variable; none if it was unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prev: Option<String>,
    /// Salted hash of the value esc-hook set.
    pub hash: String,
    /// esc-hook unset the user's variable while the project is loaded (it would override
    /// what the project sets up), rather than setting it; `prev` is restored on leaving.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub unset: bool,
    /// Where the value came from, as an index into [`Loaded::origins`]; none for the first
    /// (so a project whose values all come from one place pays nothing per variable).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<usize>,
    /// The user's previous value is a secret (`ground::names::is_secret_name`): it is not in
    /// `prev` but in the keyring entry [`Loaded::held_in`], under this salted hash of the name
    /// and value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub held: Option<String>,
}

impl Loaded {
    pub fn new_salt() -> String {
        random_hex(16)
    }

    pub fn hash(salt: &str, name: &str, value: &str) -> String {
        sha256_hex(&[
            salt.as_bytes(),
            b"\0",
            name.as_bytes(),
            b"\0",
            value.as_bytes(),
        ])[..32]
            .to_string()
    }

    /// Whether `current` is still exactly what esc-hook set for `var`.
    pub fn still_ours(&self, var: &SetVar, current: Option<&str>) -> bool {
        match var.unset {
            true => current.is_none(),
            false => {
                current.is_some_and(|value| Self::hash(&self.salt, &var.name, value) == var.hash)
            }
        }
    }
}

/// The most characters of a label the state keeps: a label is for messages, and a project
/// must not grow the state that every program inherits.
const MAX_LABEL_CHARS: usize = 300;

/// `label`, cut to [`MAX_LABEL_CHARS`] with an ellipsis.
pub fn bounded_label(label: String) -> String {
    match label.char_indices().nth(MAX_LABEL_CHARS) {
        Some((end, _)) => format!("{}…", &label[..end]),
        None => label,
    }
}

/// The line for variables left out because the state could not record them (and so they are
/// handed to no process either).
pub fn skipped_line(dropped: &[String]) -> String {
    format!(
        "skipped {} variable{} ({}): the state that records them would exceed {} KiB",
        dropped.len(),
        if dropped.len() == 1 { "" } else { "s" },
        crate::ground::names::printable(&dropped.join(" "), 80),
        MAX_STATE_LEN / 1024
    )
}

/// How many of `vars` (from the first) a state can record within [`MAX_STATE_LEN`], leaving
/// room for the rest of the state (paths, label, trust keys, times).
pub fn fitting(vars: &[SetVar]) -> usize {
    const ROOM_FOR_THE_REST: usize = 8 * 1024;
    let budget = (MAX_STATE_LEN - ROOM_FOR_THE_REST) / 4 * 3;
    let mut used = 0;
    for (index, var) in vars.iter().enumerate() {
        used += serde_json::to_vec(var).map_or(usize::MAX / 2, |json| json.len() + 1);
        if used > budget {
            return index;
        }
    }
    vars.len()
}

impl State {
    pub fn new(escrc: FileStamp, label: String, outcome: Outcome) -> State {
        State {
            v: SCHEMA,
            escrc: Some(escrc),
            label: bounded_label(label),
            outcome,
            trust: None,
            parents: Vec::new(),
            seeks_parent: false,
            loaded: None,
            keyring_warned: false,
            error: None,
            failed_login: None,
            retry_at: None,
            config_said: None,
        }
    }

    /// Outside any project, remembering only what the shell was told.
    pub fn outside(keyring_warned: bool) -> State {
        State {
            v: SCHEMA,
            escrc: None,
            label: String::new(),
            outcome: Outcome::Outside,
            trust: None,
            parents: Vec::new(),
            seeks_parent: false,
            loaded: None,
            keyring_warned,
            error: None,
            failed_login: None,
            retry_at: None,
            config_said: None,
        }
    }

    pub fn encode(&self) -> String {
        // Serializing plain data to a String cannot fail.
        let json = serde_json::to_vec(self).unwrap_or_default();
        URL_SAFE_NO_PAD.encode(json)
    }

    pub fn decode(text: &str) -> Result<State, String> {
        if text.len() > MAX_ENCODED_LEN {
            return Err(format!("{VAR} is too large"));
        }
        let json = URL_SAFE_NO_PAD
            .decode(text.trim())
            .map_err(|_| format!("{VAR} is not valid"))?;
        let state: State =
            serde_json::from_slice(&json).map_err(|_| format!("{VAR} is not valid"))?;
        if state.v != SCHEMA {
            return Err(format!("{VAR} is from another esc-hook version"));
        }
        let held_in = state.loaded.as_ref().and_then(|l| l.held_in.as_deref());
        if held_in.is_some_and(|account| !is_held_account(account)) {
            return Err(format!("{VAR} is not valid"));
        }
        Ok(state)
    }
}

mod opt_path_text {
    use super::*;
    use crate::ground::fs::path_text;
    use serde::{Deserializer, Serializer};

    pub fn serialize<S: Serializer>(path: &Option<PathBuf>, s: S) -> Result<S::Ok, S::Error> {
        match path {
            Some(path) => s.serialize_some(&path_text::to_text(path)),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<PathBuf>, D::Error> {
        match Option::<String>::deserialize(d)? {
            Some(text) => path_text::from_text(&text)
                .map(Some)
                .ok_or_else(|| serde::de::Error::custom("bad path")),
            None => Ok(None),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::ffi::OsString;
    use std::os::unix::ffi::OsStringExt;

    fn sample() -> State {
        let stamp = FileStamp {
            path: PathBuf::from(OsString::from_vec(b"/p/\xff/.escrc".to_vec())),
            size: 10,
            mtime_ns: 1,
            ctime_ns: 2,
            dev: 3,
            ino: 4,
        };
        let mut state = State::new(stamp, "acme/payments/dev".into(), Outcome::Loaded);
        let salt = Loaded::new_salt();
        state.loaded = Some(Loaded {
            vars: vec![SetVar {
                name: "AWS_REGION".into(),
                prev: Some("us-east-1".into()),
                hash: Loaded::hash(&salt, "AWS_REGION", "eu-west-1"),
                unset: false,
                from: None,
                held: None,
            }],
            salt,
            files_dir: Some(PathBuf::from("/run/user/1/esc-hook/x")),
            opened_at: 5,
            expires_at: Some(3605),
            retry_at: None,
            origins: vec!["acme/payments/dev".into()],
            held_in: None,
        });
        state
    }

    #[test]
    fn round_trips_including_non_utf8_paths() {
        let state = sample();
        assert_eq!(State::decode(&state.encode()).unwrap(), state);
    }

    #[test]
    fn holds_no_value_that_was_set() {
        let encoded = sample().encode();
        let json = String::from_utf8(URL_SAFE_NO_PAD.decode(encoded).unwrap()).unwrap();
        assert!(!json.contains("eu-west-1"), "{json}");
        assert!(
            json.contains("us-east-1"),
            "the user's previous value is kept: {json}"
        );
    }

    #[test]
    fn tells_whether_a_variable_is_still_ours() {
        let state = sample();
        let loaded = state.loaded.as_ref().unwrap();
        let var = &loaded.vars[0];
        assert!(loaded.still_ours(var, Some("eu-west-1")));
        assert!(!loaded.still_ours(var, Some("changed")));
        assert!(!loaded.still_ours(var, None));
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        for bad in [
            "",
            "!!!",
            "e30",
            "bm90IGpzb24",
            &"A".repeat(MAX_ENCODED_LEN + 1),
        ] {
            assert!(State::decode(bad).is_err(), "{bad:.20}");
        }
    }
}
