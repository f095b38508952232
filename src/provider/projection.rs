//! From an ESC read response to variables, exactly as `esc run` / `esc open --format shell`:
//! the scalar children of `environmentVariables` (then of `files`), sorted by key; strings as
//! they are, booleans and numbers as their JSON text, null or absent as empty; lists and
//! objects skipped. A child is secret if it or an ancestor says so.

use std::time::Duration;

use serde_json::Value as Json;

use super::{ResolvedVar, Value};
use crate::ground::duration;

pub struct Projection {
    pub vars: Vec<ResolvedVar>,
    /// Names skipped because their value is a list or an object.
    pub skipped: Vec<String>,
}

pub fn project(read: &Json) -> Projection {
    let mut projection = Projection {
        vars: Vec::new(),
        skipped: Vec::new(),
    };
    let properties = read.get("properties");
    for (key, as_file) in [("environmentVariables", false), ("files", true)] {
        let Some(node) = properties.and_then(|p| p.get(key)) else {
            continue;
        };
        let parent_secret = is_secret(node);
        let Some(children) = node.get("value").and_then(Json::as_object) else {
            continue;
        };
        let mut names: Vec<&String> = children.keys().collect();
        names.sort();
        for name in names {
            let child = &children[name];
            let Some(text) = scalar_text(child.get("value")) else {
                projection.skipped.push(name.clone());
                continue;
            };
            projection.vars.push(ResolvedVar {
                name: name.clone(),
                value: if as_file {
                    Value::File(text)
                } else {
                    Value::Text(text)
                },
                secret: parent_secret || is_secret(child),
                origin: None,
            });
        }
    }
    projection
}

/// Which of `envs` (opened together, in import order) defined the variable `name`: the only one,
/// or the one its trace names (ESC names an imported environment `project/env`, a plain one
/// by its name alone; a version may follow). `None` when the trace names none of them.
pub fn origin(read: &Json, name: &str, envs: &[crate::inputs::escrc::EnvRef]) -> Option<u8> {
    if envs.len() == 1 {
        return Some(0);
    }
    let properties = read.get("properties")?;
    let node = ["environmentVariables", "files"]
        .iter()
        .find_map(|key| properties.get(key)?.get("value")?.get(name))?;
    let defined_in = node
        .get("trace")?
        .get("def")?
        .get("environment")?
        .as_str()?;
    let defined_in = defined_in.split('@').next().unwrap_or(defined_in);
    let matches = |env: &crate::inputs::escrc::EnvRef| {
        [
            format!("{}/{}/{}", env.org, env.project, env.env),
            format!("{}/{}", env.project, env.env),
        ]
        .contains(&defined_in.to_string())
    };
    // Later imports win, so the last environment of that name is the one that counts.
    let found = envs.iter().rposition(matches).or_else(|| {
        let mut named = envs.iter().enumerate().filter(|(_, e)| e.env == defined_in);
        match (named.next(), named.next()) {
            (Some((index, _)), None) => Some(index),
            _ => None,
        }
    })?;
    u8::try_from(found).ok()
}

fn is_secret(node: &Json) -> bool {
    node.get("secret").and_then(Json::as_bool) == Some(true)
}

fn scalar_text(value: Option<&Json>) -> Option<String> {
    match value {
        None | Some(Json::Null) => Some(String::new()),
        Some(Json::String(text)) => Some(text.clone()),
        Some(Json::Bool(b)) => Some(b.to_string()),
        // With arbitrary_precision, a number prints exactly as the server wrote it.
        Some(Json::Number(n)) => Some(n.to_string()),
        Some(Json::Array(_) | Json::Object(_)) => None,
    }
}

/// The shortest credentials an `fn::open::aws-login` can mint: STS's own minimum session.
pub const MIN_LOGIN_DURATION: Duration = Duration::from_secs(15 * 60);

/// The shortest `duration` literal of any `fn::open::aws-login` in the read response's
/// `exprs`: ESC never says when the credentials it minted expire, but this says how long
/// they were asked to live. Never below [`MIN_LOGIN_DURATION`]: an environment's `1ms` must not
/// make every prompt open it again.
pub fn aws_login_duration(read: &Json) -> Option<Duration> {
    let mut found: Option<Duration> = None;
    let mut pending: Vec<&Json> = read.get("exprs").into_iter().collect();
    while let Some(expr) = pending.pop() {
        match expr {
            Json::Object(map) => {
                if let Some(builtin) = map.get("builtin")
                    && builtin.get("name").and_then(Json::as_str) == Some("fn::open::aws-login")
                    && let Some(literal) = builtin
                        .pointer("/arg/object/oidc/object/duration/literal")
                        .and_then(Json::as_str)
                    && let Ok(d) = duration::parse(literal)
                {
                    found = Some(found.map_or(d, |f| f.min(d)));
                }
                pending.extend(map.values());
            }
            Json::Array(items) => pending.extend(items),
            _ => {}
        }
    }
    found.map(|duration| duration.max(MIN_LOGIN_DURATION))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture() -> Json {
        serde_json::from_str(include_str!("../../tests/fixtures/read-payments-dev.json")).unwrap()
    }

    #[test]
    fn projects_like_esc_run() {
        let projection = project(&fixture());
        let text: Vec<(String, String, bool)> = projection
            .vars
            .iter()
            .map(|v| {
                let value = match &v.value {
                    Value::Text(t) => format!("text:{t}"),
                    Value::File(t) => format!("file:{t}"),
                };
                (v.name.clone(), value, v.secret)
            })
            .collect();
        let expected = [
            ("AWS_ACCESS_KEY_ID", "text:ASIAEXAMPLEKEYID0001", false),
            ("AWS_REGION", "text:eu-west-1", false),
            (
                "AWS_SECRET_ACCESS_KEY",
                "text:wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
                true,
            ),
            (
                "AWS_SESSION_TOKEN",
                "text:IQoJb3JpZ2luX2VjEXAMPLETOKEN+/=",
                true,
            ),
            ("DEBUG", "text:true", false),
            ("EMPTY", "text:", false),
            ("MAX_RETRIES", "text:3", false),
            (
                "MULTILINE",
                "text:line one\nline 'two' with $HOME and `cmd`\n",
                true,
            ),
            ("RATIO", "text:0.25", false),
            (
                "GOOGLE_APPLICATION_CREDENTIALS",
                "file:{\"type\": \"service_account\"}",
                true,
            ),
            ("KUBECONFIG", "file:apiVersion: v1\nkind: Config\n", false),
        ];
        let expected: Vec<(String, String, bool)> = expected
            .iter()
            .map(|(n, v, s)| (n.to_string(), v.to_string(), *s))
            .collect();
        assert_eq!(text, expected);
        assert_eq!(projection.skipped, ["LIST_IS_SKIPPED", "OBJECT_IS_SKIPPED"]);
    }

    #[test]
    fn numbers_keep_their_exact_text() {
        let read: Json = serde_json::from_str(
            r#"{"properties":{"environmentVariables":{"value":{"BIG":{"value":12345678901234567890123},"F":{"value":1.10}}}}}"#,
        )
        .unwrap();
        let values: Vec<Value> = project(&read).vars.into_iter().map(|v| v.value).collect();
        assert_eq!(
            values,
            [
                Value::Text("12345678901234567890123".into()),
                Value::Text("1.10".into())
            ]
        );
    }

    #[test]
    fn secret_parents_make_children_secret() {
        let read: Json = serde_json::from_str(
            r#"{"properties":{"environmentVariables":{"secret":true,"value":{"A":{"value":"x"}}}}}"#,
        )
        .unwrap();
        assert!(project(&read).vars[0].secret);
    }

    #[test]
    fn finds_the_aws_login_duration() {
        assert_eq!(
            aws_login_duration(&fixture()),
            Some(Duration::from_secs(3600))
        );
        assert_eq!(aws_login_duration(&serde_json::json!({"exprs": {}})), None);
    }
}
