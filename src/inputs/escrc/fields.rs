//! The `.escrc` fields that validate while they are read, so that serde_yaml reports the exact
//! place of a bad value: environment names, durations, export patterns, scalar values.

use std::fmt;
use std::time::Duration;

use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serialize};

use crate::ground::duration;

/// An ESC environment reference: `org/project/env` with an optional `@version` (a revision
/// number or a tag).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnvRef {
    pub org: String,
    pub project: String,
    pub env: String,
    pub version: Option<String>,
}

impl EnvRef {
    pub fn parse(text: &str) -> Result<EnvRef, String> {
        let (path, version) = match text.split_once('@') {
            Some((path, version)) => (path, Some(version)),
            None => (text, None),
        };
        let parts: Vec<&str> = path.split('/').collect();
        let (org, project, env) = match parts.as_slice() {
            [org, project, env] => (*org, *project, *env),
            [org, env] => {
                return Err(format!(
                    "`{text}` has two parts; environments are named org/project/env \
                     (environments made before projects live in `default`: try `{org}/default/{env}`)"
                ));
            }
            _ => {
                return Err(format!(
                    "`{text}` is not an environment name: use org/project/env"
                ));
            }
        };
        for (what, part) in [
            ("organization", org),
            ("project", project),
            ("environment", env),
        ] {
            check_name_part(what, part, text)?;
        }
        if let Some(version) = version {
            check_name_part("version", version, text)?;
        }
        Ok(EnvRef {
            org: org.into(),
            project: project.into(),
            env: env.into(),
            version: version.map(String::from),
        })
    }
}

fn check_name_part(what: &str, part: &str, whole: &str) -> Result<(), String> {
    let valid_chars = part
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
    if part.is_empty() || part.len() > 100 || !valid_chars {
        return Err(format!(
            "`{whole}`: the {what} name must be 1-100 characters of A-Z a-z 0-9 . _ -"
        ));
    }
    Ok(())
}

impl fmt::Display for EnvRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}/{}", self.org, self.project, self.env)?;
        if let Some(version) = &self.version {
            write!(f, "@{version}")?;
        }
        Ok(())
    }
}

/// Field types that validate while deserializing, so serde_yaml reports the exact position.
pub(super) struct DurationField<K>(pub Duration, std::marker::PhantomData<K>);
pub(super) struct PatternField(pub String);
pub(super) struct ScalarText(pub String);
pub(super) struct AllowedNameField(pub String);

impl<'de> Deserialize<'de> for AllowedNameField {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use crate::ground::names::{Refusal, VarName, refusal};
        let text = String::deserialize(d)?;
        let shown = crate::ground::names::printable(&text, 60);
        match (VarName::parse(&text), refusal(&text)) {
            (None, _) => Err(de::Error::custom(format!(
                "`{shown}` is not a variable name"
            ))),
            (Some(_), Some(Refusal::Behaviour)) => Ok(AllowedNameField(text)),
            (Some(_), Some(Refusal::Reserved)) => Err(de::Error::custom(format!(
                "`{shown}` is reserved by a shell or by esc-hook and is never exported"
            ))),
            (Some(_), None) => Err(de::Error::custom(format!(
                "`{shown}` is exported without being listed here"
            ))),
        }
    }
}

/// `environment:` takes one name or a list of them, all of one organization (they are opened
/// together, in one open of that organization).
pub(super) struct EnvironmentsField(pub Vec<EnvRef>);

/// The most environments one project opens together (in a layered project, all its files
/// together): a real project imports a handful, and a list made long with YAML aliases must
/// not become a label of megabytes in the state every program inherits.
pub const MAX_ENVIRONMENTS: usize = 16;

impl<'de> Deserialize<'de> for EnvironmentsField {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum OneOrMany {
            One(String),
            Many(Vec<String>),
        }
        let texts = match OneOrMany::deserialize(d).map_err(|_| {
            de::Error::custom(
                "environment: name one environment (org/project/env) or a list of them",
            )
        })? {
            OneOrMany::One(text) => vec![text],
            OneOrMany::Many(texts) => texts,
        };
        if texts.is_empty() {
            return Err(de::Error::custom(
                "environment: the list is empty: name at least one org/project/env",
            ));
        }
        if texts.len() > MAX_ENVIRONMENTS {
            return Err(de::Error::custom(format!(
                "environment: the list names {}: at most {MAX_ENVIRONMENTS} environments are opened together",
                texts.len()
            )));
        }
        let mut environments = Vec::with_capacity(texts.len());
        for text in &texts {
            let env =
                EnvRef::parse(text).map_err(|e| de::Error::custom(format!("environment: {e}")))?;
            if let Some(first) = environments.first().map(|e: &EnvRef| e.org.clone())
                && env.org != first
            {
                return Err(de::Error::custom(format!(
                    "environment: `{text}` is in organization `{}`, the list's first in `{first}`: environments opened together must share one organization",
                    env.org
                )));
            }
            environments.push(env);
        }
        Ok(EnvironmentsField(environments))
    }
}

/// Names the key a field belongs to, for messages.
pub(super) trait Key {
    const NAME: &'static str;
}
pub(super) struct TtlKey;
pub(super) struct OpenDurationKey;
impl Key for TtlKey {
    const NAME: &'static str = "ttl";
}
impl Key for OpenDurationKey {
    const NAME: &'static str = "open-duration";
}

impl<'de, K: Key> Deserialize<'de> for DurationField<K> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = ScalarText::deserialize(d)?.0;
        let key = K::NAME;
        match duration::parse(&text) {
            Ok(value) if value.as_secs() > 0 => Ok(DurationField(value, std::marker::PhantomData)),
            Ok(_) => Err(de::Error::custom(format!(
                "{key}: `{text}` must be at least 1s"
            ))),
            Err(message) => Err(de::Error::custom(format!("{key}: {message}"))),
        }
    }
}

impl<'de> Deserialize<'de> for PatternField {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        crate::ground::glob::check_pattern(&text)
            .map(|()| PatternField(text))
            .map_err(|e| de::Error::custom(format!("export: {e}")))
    }
}

/// A YAML scalar as the text a variable would hold: strings as they are, numbers and booleans
/// as written, null as empty. Lists and maps are refused.
impl<'de> Deserialize<'de> for ScalarText {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct ScalarVisitor;
        impl Visitor<'_> for ScalarVisitor {
            type Value = ScalarText;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a string, number or boolean")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<ScalarText, E> {
                Ok(ScalarText(v.to_string()))
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<ScalarText, E> {
                Ok(ScalarText(v.to_string()))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<ScalarText, E> {
                Ok(ScalarText(v.to_string()))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<ScalarText, E> {
                Ok(ScalarText(v.to_string()))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<ScalarText, E> {
                Ok(ScalarText(v.to_string()))
            }
            fn visit_unit<E: de::Error>(self) -> Result<ScalarText, E> {
                Ok(ScalarText(String::new()))
            }
        }
        d.deserialize_any(ScalarVisitor)
    }
}

/// Durations inside the `aws:` section, written as Go-style text.
pub(super) mod duration_text {
    use super::*;

    pub fn serialize<S: serde::Serializer>(
        value: &Option<Duration>,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        match value {
            Some(d) => s.serialize_some(&d.as_secs()),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
        let text = ScalarText::deserialize(d)?.0;
        match duration::parse(&text) {
            Ok(value) if value.as_secs() >= 900 => Ok(Some(value)),
            Ok(_) => Err(de::Error::custom(format!(
                "duration: `{text}` is under STS's minimum of 15m"
            ))),
            Err(message) => Err(de::Error::custom(format!("duration: {message}"))),
        }
    }
}
