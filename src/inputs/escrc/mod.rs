//! The project file: find the nearest `.escrc` walking up from a directory, and parse it.
//!
//! Everything here is local and cheap: no network, no token. Parse errors name the file, line
//! and key, because a user reading them is looking at that file in an editor.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::ground::fs::{FileId, FileStamp, SmallFile, home_relative};
use crate::ground::glob::ExportFilter;

mod errors;
mod fields;

pub use errors::{EscrcError, line_of_top_level_key};
pub use fields::{EnvRef, MAX_ENVIRONMENTS};

use errors::{line_of_nested_key, lines_of_values, yaml_error};
use fields::{
    AllowedNameField, DurationField, EnvironmentsField, OpenDurationKey, PatternField, ScalarText,
    TtlKey, duration_text,
};

pub const FILE_NAME: &str = ".escrc";

/// Larger files are refused before parsing: a real `.escrc` is a few lines, and a hook must not
/// spend a prompt reading a huge file.
pub const MAX_SIZE: u64 = 64 * 1024;

/// A parsed `.escrc`.
#[derive(Clone, Debug)]
pub struct Escrc {
    pub path: PathBuf,
    /// The environments to open, in import order (later ones win); opened together in one
    /// open when there are several. Empty when the file only has values.
    pub environments: Vec<EnvRef>,
    /// How long the ESC open session may be read (`duration` on the open request).
    pub open_duration: Option<Duration>,
    /// How long the resolved credentials count as valid.
    pub ttl: Option<Duration>,
    /// Which of the environment's variables are exported.
    pub export: ExportFilter,
    /// Plain variables written in the file itself; they win over the environment's.
    pub values: BTreeMap<String, String>,
    /// Per-project AWS: region, and an STS session of its own.
    pub aws: Option<AwsSettings>,
    /// Names that change how a shell behaves (`PATH`, `LD_LIBRARY_PATH`, …), exported anyway
    /// because the project says so.
    pub allow_names: BTreeSet<String>,
    /// The line of each name under `values` (block style), for messages about a name.
    pub value_lines: BTreeMap<String, usize>,
    /// `inherit: true`: this file builds on the nearest `.escrc` above it (the project floor
    /// merges such chains).
    pub inherit: bool,
    /// Whether `export` was written (an empty filter also means "everything"), so that a
    /// layered file without one keeps its parent's.
    pub export_given: bool,
    /// In a layered project: the file each name under `values` comes from, when it is not
    /// `path` (for `status` and messages).
    pub value_files: BTreeMap<String, PathBuf>,
    /// The very file that was read (and whose trust was checked): what runs or is read in its
    /// directory must find this file there (see `ground::fs::HeldDir`). None for a project
    /// named on the command line.
    pub file_id: Option<FileId>,
}

/// The `aws:` section.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct AwsSettings {
    /// Exported as `AWS_REGION` and `AWS_DEFAULT_REGION`, and used for STS.
    pub region: Option<String>,
    /// Chain from the base credentials into this role.
    pub assume_role: Option<AssumeRole>,
    /// Get credentials with an OIDC token, no AWS keys needed.
    pub web_identity: Option<WebIdentity>,
    /// How commands get the credentials: static keys (the default), a loopback server for
    /// `exec`, or a `credential_process` profile that refreshes by itself. Not part of what
    /// is opened, so not part of the cache key. `None` when not written (static, or in a
    /// layered project the parent's).
    #[serde(default, skip_serializing)]
    pub credentials: Option<CredentialsMode>,
}

/// `aws: { credentials: … }`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum CredentialsMode {
    /// `AWS_ACCESS_KEY_ID` and friends in the environment.
    #[default]
    Static,
    /// `exec` serves them on a loopback endpoint (`exec --server`).
    Server,
    /// The shell gets an AWS config whose default profile runs `esc-hook credential-process`.
    Process,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct AssumeRole {
    pub role_arn: String,
    pub session_name: Option<String>,
    #[serde(default, with = "duration_text")]
    pub duration: Option<Duration>,
    pub external_id: Option<String>,
    #[serde(default)]
    pub policy_arns: Vec<String>,
    /// An inline session policy (JSON).
    pub policy: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct WebIdentity {
    pub role_arn: String,
    pub session_name: Option<String>,
    #[serde(default, with = "duration_text")]
    pub duration: Option<Duration>,
    /// A file holding the token, relative to the `.escrc`'s directory (as
    /// `AWS_WEB_IDENTITY_TOKEN_FILE`).
    pub token_file: Option<PathBuf>,
    /// A command printing the token, run in the `.escrc`'s directory without a shell.
    pub token_command: Option<String>,
    /// A property of the ESC environment holding the token (from `fn::open::oidc`), as a
    /// dotted path such as `oidc.token`.
    pub token_property: Option<String>,
    /// The directory of the `.escrc` that wrote this section, when a layered project took it
    /// from a parent: the token file and command belong there, not in the child.
    #[serde(skip)]
    pub dir: Option<PathBuf>,
    /// The `.escrc` in `dir` that was read and checked.
    #[serde(skip)]
    pub dir_file: Option<FileId>,
}

impl AwsSettings {
    /// How programs get the credentials (static keys unless the file says otherwise).
    pub fn credentials_mode(&self) -> CredentialsMode {
        self.credentials.unwrap_or_default()
    }

    /// Whether this section asks STS for anything (and so needs the network).
    pub fn uses_sts(&self) -> bool {
        self.assume_role.is_some() || self.web_identity.is_some()
    }

    fn check(&self) -> Result<(), String> {
        let arns = self
            .assume_role
            .iter()
            .map(|r| ("aws.assume-role", &r.role_arn));
        let arns = arns.chain(
            self.web_identity
                .iter()
                .map(|w| ("aws.web-identity", &w.role_arn)),
        );
        for (key, arn) in arns {
            if !arn.starts_with("arn:") || arn.split(':').count() < 6 {
                return Err(format!(
                    "{key}.role-arn: `{arn}` is not a role ARN (arn:aws:iam::123456789012:role/name)"
                ));
            }
        }
        if let Some(web) = &self.web_identity {
            let sources = [
                web.token_file.is_some(),
                web.token_command.is_some(),
                web.token_property.is_some(),
            ];
            if sources.iter().filter(|s| **s).count() != 1 {
                return Err("aws.web-identity: name exactly one of token-file, token-command, token-property".into());
            }
        }
        if let Some(region) = &self.region {
            if !crate::ground::names::is_region(region) {
                return Err(format!(
                    "aws.region: `{region}` is not an AWS region (such as eu-west-1)"
                ));
            }
        }
        Ok(())
    }
}

impl Escrc {
    /// Where a name under `values` is written, as `file:line`, for messages.
    pub fn place_of_value(&self, name: &str) -> Option<String> {
        let line = self.value_lines.get(name)?;
        Some(format!(
            "{}:{line}",
            home_relative(self.file_of_value(name))
        ))
    }

    /// The file a name under `values` comes from (in a layered project, maybe a parent).
    pub fn file_of_value(&self, name: &str) -> &Path {
        self.value_files.get(name).unwrap_or(&self.path)
    }

    /// Whether programs get the credentials from a `credential_process` profile.
    pub fn credentials_mode(&self) -> CredentialsMode {
        self.aws
            .as_ref()
            .map_or(CredentialsMode::Static, AwsSettings::credentials_mode)
    }

    /// What messages call this project: its environments (`acme/aws/dev + acme/payments/dev`),
    /// or the file when it only has values.
    pub fn label(&self) -> String {
        match self.environments.is_empty() {
            false => environments_label(&self.environments),
            true => home_relative(&self.path),
        }
    }
}

/// Environments as messages name them: `acme/aws/dev + acme/payments/dev@stable`. (No part of a
/// name holds a space or `+`, so the text names exactly one list.)
pub fn environments_label(environments: &[EnvRef]) -> String {
    environments
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(" + ")
}

/// Reads an `.escrc` (see [`crate::ground::fs::read_small`]), refusing one over [`MAX_SIZE`].
pub fn read(path: &Path) -> Result<SmallFile, EscrcError> {
    crate::ground::fs::read_small(path, MAX_SIZE)
        .map_err(|message| EscrcError::whole_file(path, message))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawEscrc {
    environment: Option<EnvironmentsField>,
    open_duration: Option<DurationField<OpenDurationKey>>,
    ttl: Option<DurationField<TtlKey>>,
    #[serde(default)]
    export: Vec<PatternField>,
    #[serde(default)]
    values: BTreeMap<String, ScalarText>,
    aws: Option<AwsSettings>,
    #[serde(default)]
    allow_names: Vec<AllowedNameField>,
    #[serde(default)]
    inherit: bool,
}

/// Parses `.escrc` content. `path` is only used in messages.
pub fn parse(path: &Path, content: &[u8]) -> Result<Escrc, EscrcError> {
    let text = std::str::from_utf8(content)
        .map_err(|_| EscrcError::whole_file(path, "is not UTF-8 text"))?;
    if text.trim().is_empty() {
        return Err(EscrcError::whole_file(
            path,
            "is empty: name an `environment: org/project/env` or some `values`",
        ));
    }
    let raw: RawEscrc = serde_yaml::from_str(text).map_err(|e| yaml_error(path, text, &e))?;
    if raw.environment.is_none() && raw.values.is_empty() && raw.aws.is_none() && !raw.inherit {
        return Err(EscrcError::whole_file(
            path,
            "names no `environment` and no `values`: add `environment: org/project/env`",
        ));
    }
    if let Some(aws) = &raw.aws {
        aws.check().map_err(|message| {
            let key = message.split(['.', ':']).nth(1).unwrap_or("aws");
            EscrcError {
                path: path.to_path_buf(),
                position: line_of_nested_key(text, key),
                message,
            }
        })?;
    }
    Ok(Escrc {
        path: path.to_path_buf(),
        environments: raw.environment.map(|e| e.0).unwrap_or_default(),
        open_duration: raw.open_duration.map(|d| d.0),
        ttl: raw.ttl.map(|d| d.0),
        export_given: !raw.export.is_empty(),
        export: ExportFilter::new(raw.export.into_iter().map(|p| p.0).collect()),
        values: raw.values.into_iter().map(|(k, v)| (k, v.0)).collect(),
        aws: raw.aws,
        allow_names: raw.allow_names.into_iter().map(|n| n.0).collect(),
        value_lines: lines_of_values(text),
        inherit: raw.inherit,
        value_files: BTreeMap::new(),
        file_id: None,
    })
}

/// Walks up from `start` to `/` and returns the stamp of the first `.escrc` found. Something
/// named `.escrc` that is not a readable file (a directory, a dangling link) still counts as
/// found, so the user hears about it instead of silently getting the parent's project.
pub fn find_nearest(start: &Path) -> Option<FileStamp> {
    let mut dir = Some(start);
    while let Some(current) = dir {
        let candidate = current.join(FILE_NAME);
        if let Ok(link_meta) = fs::symlink_metadata(&candidate) {
            let meta = fs::metadata(&candidate).unwrap_or(link_meta);
            return Some(FileStamp::of(&candidate, &meta));
        }
        dir = current.parent();
    }
    None
}

/// The stamp of the `.escrc` at exactly `path`, when that file is the one its directory's walk
/// finds (the commands and the refresher start from a path the hook recorded).
pub fn stamp_of(path: &Path) -> Option<FileStamp> {
    path.parent()
        .and_then(find_nearest)
        .filter(|stamp| stamp.path == path)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_text(text: &str) -> Result<Escrc, EscrcError> {
        parse(Path::new("/p/.escrc"), text.as_bytes())
    }

    #[test]
    fn an_environment_list_is_bounded_before_anything_else() {
        let list = |n: usize| {
            let names: Vec<String> = (0..n).map(|i| format!("acme/p/e{i}")).collect();
            format!("environment: [{}]\n", names.join(", "))
        };
        assert_eq!(
            parse_text(&list(MAX_ENVIRONMENTS))
                .unwrap()
                .environments
                .len(),
            16
        );
        let error = parse_text(&list(MAX_ENVIRONMENTS + 1)).unwrap_err();
        assert!(error.message.contains("at most 16 environments"), "{error}");
        // Aliases count as what they expand to.
        let mut bomb = String::from("environment: [&x acme/p/e");
        bomb.push_str(&", *x".repeat(10_000));
        bomb.push_str("]\n");
        let error = parse_text(&bomb).unwrap_err();
        assert!(error.message.contains("names 10001"), "{error}");
    }

    #[test]
    fn parses_every_key() {
        let escrc = parse_text(
            "environment: acme/payments/dev@12\nopen-duration: 2h\nttl: 50m\n\
             export: ['AWS_*', '!AWS_PROFILE']\nvalues:\n  AWS_REGION: eu-west-1\n  PORT: 8080\n  ON: true\n  NONE: null\n",
        )
        .unwrap();
        assert_eq!(escrc.environments.len(), 1);
        assert_eq!(escrc.environments[0].to_string(), "acme/payments/dev@12");
        assert_eq!(escrc.open_duration, Some(Duration::from_secs(7200)));
        assert_eq!(escrc.ttl, Some(Duration::from_secs(3000)));
        assert!(escrc.export.allows("AWS_REGION"));
        assert!(!escrc.export.allows("AWS_PROFILE"));
        assert_eq!(escrc.values["PORT"], "8080");
        assert_eq!(escrc.values["ON"], "true");
        assert_eq!(escrc.values["NONE"], "");
    }

    #[test]
    fn parses_the_aws_section() {
        let escrc = parse_text(
            "aws:\n  region: eu-west-1\n  web-identity:\n    role-arn: arn:aws:iam::1:role/ci\n    token-file: token\n  assume-role:\n    role-arn: arn:aws:iam::1:role/deploy\n    duration: 30m\n    external-id: x\n    policy-arns: [arn:aws:iam::aws:policy/ReadOnlyAccess]\n",
        )
        .unwrap();
        let aws = escrc.aws.unwrap();
        assert!(aws.uses_sts());
        assert_eq!(
            aws.assume_role.unwrap().duration,
            Some(Duration::from_secs(1800))
        );
        assert_eq!(
            aws.web_identity.unwrap().token_file,
            Some(PathBuf::from("token"))
        );
    }

    #[test]
    fn aws_mistakes_are_named() {
        let err = parse_text("aws:\n  web-identity:\n    role-arn: arn:aws:iam::1:role/ci\n")
            .unwrap_err();
        assert!(err.message.contains("exactly one of token-file"), "{err}");
        assert_eq!(err.position.map(|p| p.0), Some(2));
        let err = parse_text("aws:\n  assume-role:\n    role-arn: deploy\n").unwrap_err();
        assert!(err.message.contains("is not a role ARN"), "{err}");
        let err = parse_text("aws:\n  assume-role:\n    role: x\n").unwrap_err();
        assert!(err.message.contains("unknown field `role`"), "{err}");
        let err = parse_text("aws:\n  region: EU West\n").unwrap_err();
        assert!(err.message.contains("not an AWS region"), "{err}");
    }

    #[test]
    fn two_part_names_suggest_the_default_project() {
        let err = parse_text("environment: acme/dev\n").unwrap_err();
        assert_eq!(err.position.map(|p| p.0), Some(1));
        assert!(err.message.starts_with("environment: "), "{err}");
        assert!(err.message.contains("acme/default/dev"), "{err}");
    }

    #[test]
    fn unknown_keys_name_file_line_and_key() {
        let err = parse_text("environment: a/b/c\nttll: 1h\n").unwrap_err();
        assert_eq!(err.position.map(|p| p.0), Some(2));
        assert!(err.to_string().starts_with("/p/.escrc:2:"), "{err}");
        assert!(err.message.contains("ttll"), "{err}");
    }

    #[test]
    fn mistakes_are_named_where_they_are() {
        let err = parse_text("environment: a/b/c\nttll: 1h\n").unwrap_err();
        assert_eq!(err.message, "unknown field `ttll`: did you mean `ttl`?");
        assert_eq!(err.position, Some((2, 1)));
        let err = parse_text("aws:\n  regoin: x\n").unwrap_err();
        assert!(err.message.contains("did you mean `region`?"), "{err}");
        assert_eq!(err.position.map(|p| p.0), Some(2));
        let err = parse_text("environment: a/b/c\nttl: 1h\nttl: 2h\n").unwrap_err();
        assert_eq!(
            (err.message.as_str(), err.position),
            ("`ttl` is given twice", Some((3, 1)))
        );
        let err = parse_text("values:\n\tA: b\n").unwrap_err();
        assert!(err.message.starts_with("YAML does not allow tabs"), "{err}");
        let err = parse_text("values:\n  A: b\n   B: c\n").unwrap_err();
        assert!(err.message.starts_with("bad indentation"), "{err}");
    }

    #[test]
    fn wrong_types_name_the_key() {
        let err = parse_text("environment: a/b/c\nttl: [1]\n").unwrap_err();
        assert!(err.message.starts_with("ttl: "), "{err}");
        let err = parse_text("environment: a/b/c\n\nopen-duration: 1x\n").unwrap_err();
        assert_eq!(err.position.map(|p| p.0), Some(3));
        assert!(err.message.starts_with("open-duration: "), "{err}");
        let err = parse_text("values:\n  A:\n    nested: 1\n").unwrap_err();
        assert!(err.message.contains("values.A"), "{err}");
        assert_eq!(err.position.map(|p| p.0), Some(3));
        // Parser words, translated into what to write.
        let err = parse_text("environment: a/b/c\nexport: AWS_*\n").unwrap_err();
        assert_eq!(
            err.message,
            "`export` must be a list: `export: [\"AWS_*\"]`"
        );
        assert_eq!(err.position.map(|p| p.0), Some(2));
        let err = parse_text("environment: a/b/c\ninherit: maybe\n").unwrap_err();
        assert_eq!(err.message, "`inherit` must be true or false");
        let err = parse_text("environment: a/b/c\naws: eu-west-1\n").unwrap_err();
        assert!(err.message.starts_with("`aws` must be a mapping"), "{err}");
    }

    #[test]
    fn empty_and_pointless_files_are_refused() {
        assert!(parse_text("").unwrap_err().message.contains("empty"));
        assert!(
            parse_text("export: ['A*']\n")
                .unwrap_err()
                .message
                .contains("no `environment`")
        );
        assert!(parse_text("- a\n").is_err());
    }

    #[test]
    fn env_refs_validate_every_part() {
        assert!(EnvRef::parse("a/b/c").is_ok());
        assert!(EnvRef::parse("a/b/c@stable").is_ok());
        for bad in ["a", "a/b/c/d", "a//c", "a/b/c@", "a/b c/d", "a/b/c@x/y"] {
            assert!(EnvRef::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn names_under_values_know_their_lines() {
        let text = "environment: a/b/c\nvalues:\n  # a comment\n  GOOD: 1\n  \"BAD NAME\": 2\n  'quoted': |\n    NOT_A_KEY: x\n  1X: 3\nttl: 1h\n";
        let lines = lines_of_values(text);
        assert_eq!(lines.get("GOOD"), Some(&4));
        assert_eq!(lines.get("BAD NAME"), Some(&5));
        assert_eq!(lines.get("quoted"), Some(&6));
        assert_eq!(lines.get("1X"), Some(&8));
        assert_eq!(
            lines.get("NOT_A_KEY"),
            None,
            "a value's own lines are not keys"
        );
        assert_eq!(lines.get("ttl"), None);
        assert!(lines_of_values("values: {A: 1}\n").is_empty());
    }

    /// The example shows every key: it must parse, as written.
    #[test]
    fn the_example_parses() {
        let example = include_bytes!("../../../.escrc.example");
        let escrc = parse(Path::new("/p/.escrc"), example).unwrap();
        let aws = escrc.aws.unwrap();
        assert_eq!(aws.credentials_mode(), CredentialsMode::Static);
        assert!(aws.assume_role.is_some());
        for mode in ["server", "process"] {
            let text = format!("environment: a/b/c\naws:\n  credentials: {mode}\n");
            assert!(
                parse(Path::new("/p/.escrc"), text.as_bytes()).is_ok(),
                "{mode}"
            );
        }
        let wrong = parse(
            Path::new("/p/.escrc"),
            b"environment: a/b/c\naws:\n  credentials: env\n",
        );
        assert!(
            wrong.unwrap_err().message.contains("static"),
            "names the valid modes"
        );
    }

    #[test]
    fn environment_takes_a_list_of_one_organization() {
        let escrc =
            parse_text("environment:\n  - acme/aws/dev\n  - acme/payments/dev@3\n").unwrap();
        assert_eq!(escrc.label(), "acme/aws/dev + acme/payments/dev@3");
        let err = parse_text("environment: [acme/aws/dev, globex/payments/dev]\n").unwrap_err();
        assert!(
            err.message
                .contains("`globex/payments/dev` is in organization `globex`"),
            "{err}"
        );
        assert_eq!(err.position.map(|p| p.0), Some(1));
        let err = parse_text("environment: []\n").unwrap_err();
        assert!(err.message.contains("the list is empty"), "{err}");
    }

    #[test]
    fn finds_the_nearest_file_walking_up() {
        let root = tempfile::tempdir().unwrap();
        let inner = root.path().join("a/b");
        fs::create_dir_all(&inner).unwrap();
        assert!(find_nearest(&inner).is_none_or(|s| !s.path.starts_with(root.path())));
        fs::write(root.path().join("a/.escrc"), "values: {A: 1}\n").unwrap();
        assert_eq!(
            find_nearest(&inner).unwrap().path,
            root.path().join("a/.escrc")
        );
        fs::write(inner.join(".escrc"), "values: {A: 1}\n").unwrap();
        assert_eq!(find_nearest(&inner).unwrap().path, inner.join(".escrc"));
    }
}
