//! `esc-hook status`: what is loaded in this shell and what the nearest `.escrc` would do.
//! Names only, never values.

use serde_json::{Value as Json, json};

use crate::escrc;
use crate::provider::sts::{Endpoint, Session, caller_identity};
use crate::settings::Settings;
use crate::state::Outcome;
use crate::time;
use crate::trust::{TrustStore, Verdict};

pub fn run(settings: &Settings, as_json: bool, verify: bool) -> anyhow::Result<()> {
    let mut report = report(settings);
    let mut failed = None;
    if verify {
        report["verify"] = match verify_loaded(settings) {
            Ok((account, arn)) => json!({"account": account, "arn": arn}),
            Err(error) => {
                failed = Some(error.clone());
                json!({"error": error})
            }
        };
    }
    if as_json {
        super::print(&format!("{report:#}\n"))?;
    } else {
        super::print(&human(&report))?;
    }
    match failed {
        Some(error) => Err(anyhow::anyhow!("could not verify the credentials: {error}")),
        None => Ok(()),
    }
}

/// One line for a prompt (starship's custom module): `acme/payments/dev 52m`, or nothing.
pub fn short(settings: &Settings) -> anyhow::Result<()> {
    let Ok(Some(state)) = &settings.state else {
        return Ok(());
    };
    let Some(loaded) = state
        .loaded
        .as_ref()
        .filter(|_| state.outcome == Outcome::Loaded)
    else {
        return Ok(());
    };
    let line = match loaded.expires_at {
        Some(at) => {
            let left = std::time::Duration::from_secs(at.saturating_sub(time::now()));
            format!("{} {}\n", state.label, crate::duration::human(left))
        }
        None => format!("{}\n", state.label),
    };
    super::print(&line)
}

/// GetCallerIdentity with the AWS credentials in this shell's environment.
fn verify_loaded(settings: &Settings) -> Result<(String, String), String> {
    // The credentials in this shell are esc-hook's own: read as the shell has them.
    let var = |name: &str| {
        settings
            .current_var(name)
            .and_then(|v| v.to_str())
            .filter(|v| !v.is_empty())
            .map(String::from)
    };
    let setting = |name: &str| settings.var(name).map(String::from);
    let session = Session {
        access_key_id: var("AWS_ACCESS_KEY_ID")
            .ok_or("AWS_ACCESS_KEY_ID is not set in this shell")?,
        secret_access_key: var("AWS_SECRET_ACCESS_KEY")
            .ok_or("AWS_SECRET_ACCESS_KEY is not set in this shell")?,
        session_token: var("AWS_SESSION_TOKEN"),
        expires_at: None,
    };
    let endpoint = Endpoint::from_env(None, &setting, std::time::Duration::from_secs(10));
    caller_identity(&endpoint, &session).map_err(|e| e.to_string())
}

/// The status as JSON; the text form is rendered from it, so the two never disagree.
fn report(settings: &Settings) -> Json {
    let nearest = escrc::current_dir(settings).and_then(|dir| escrc::find_nearest(&dir));
    let escrc = nearest.map(|stamp| {
        let path = stamp.path;
        let mut aws_role = Json::Null;
        let mut trusted_prefix = Json::Null;
        let mut environments = Json::Null;
        let mut credentials = Json::Null;
        let mut default_ttl = false;
        let (trust, environment, error) = match escrc::read(&path) {
            Err(e) => (Json::Null, Json::Null, Json::from(e.to_string())),
            Ok(content) => {
                let trust = match TrustStore::open(settings) {
                    Ok(store) => Json::from(match store.verdict(&path, &content) {
                        Verdict::Allowed => {
                            if let Some(prefix) = store.trusted_prefix_of(&path) {
                                trusted_prefix = prefix.written.clone().into();
                            }
                            "allowed"
                        }
                        Verdict::NotAllowed => "not-allowed",
                        Verdict::Denied => "denied",
                        Verdict::Unsafe(_) => "unsafe",
                    }),
                    Err(_) => Json::Null,
                };
                match escrc::parse(&path, &content) {
                    Ok(parsed) => {
                        aws_role = role_of(&parsed);
                        credentials = parsed
                            .aws
                            .as_ref()
                            .and_then(|aws| serde_json::to_value(aws.credentials).ok())
                            .unwrap_or(Json::Null);
                        environments = parsed
                            .environments
                            .iter()
                            .map(ToString::to_string)
                            .collect::<Vec<_>>()
                            .into();
                        // An anonymous open does not show the imported environments'
                        // fn::open::aws-login durations: without a ttl, the default applies.
                        default_ttl = parsed.environments.len() > 1 && parsed.ttl.is_none();
                        (
                            trust,
                            match parsed.environments.is_empty() {
                                true => Json::Null,
                                false => {
                                    crate::escrc::environments_label(&parsed.environments).into()
                                }
                            },
                            Json::Null,
                        )
                    }
                    Err(e) => (trust, Json::Null, e.to_string().into()),
                }
            }
        };
        json!({
            "path": path.display().to_string(),
            "trust": trust,
            "trusted_prefix": trusted_prefix,
            "environment": environment,
            "environments": environments,
            "default_ttl": default_ttl,
            "aws_role": aws_role,
            "credentials": credentials,
            "error": error,
        })
    });
    let loaded = match &settings.state {
        Ok(Some(state)) if state.outcome != Outcome::Outside => {
            let outcome = serde_json::to_value(state.outcome).unwrap_or(Json::Null);
            let names = |unset: bool| -> Vec<String> {
                state
                    .loaded
                    .iter()
                    .flat_map(|l| &l.vars)
                    .filter(|v| v.unset == unset)
                    .map(|v| v.name.clone())
                    .collect()
            };
            let set_aside = names(true);
            let (variables, opened_at, expires_at) = match &state.loaded {
                Some(loaded) => (
                    names(false),
                    Json::from(time::rfc3339(loaded.opened_at)),
                    loaded
                        .expires_at
                        .map_or(Json::Null, |t| time::rfc3339(t).into()),
                ),
                None => (Vec::new(), Json::Null, Json::Null),
            };
            json!({
                "error": state.error,
                "label": state.label,
                "escrc": state.escrc.as_ref().map(|s| s.path.display().to_string()),
                "outcome": outcome,
                "variables": variables,
                "set_aside": set_aside,
                "opened_at": opened_at,
                "expires_at": expires_at,
                "seconds_left": state.loaded.as_ref().and_then(|l| l.expires_at)
                    .map(|t| t.saturating_sub(time::now())),
            })
        }
        _ => Json::Null,
    };
    let hook_active =
        settings.current_var(crate::state::VAR).is_some() || settings.hooked_shell().is_some();
    json!({ "escrc": escrc.unwrap_or(Json::Null), "state": loaded, "hook_seen": hook_active })
}

/// The AWS role the `.escrc` asks STS for (the last step of its chain), from the file alone:
/// no network (`--verify` asks STS who the credentials really are).
fn role_of(escrc: &escrc::Escrc) -> Json {
    let Some(aws) = &escrc.aws else {
        return Json::Null;
    };
    match (&aws.assume_role, &aws.web_identity) {
        (Some(role), _) => json!({"arn": role.role_arn, "via": "assume-role"}),
        (None, Some(web)) => json!({"arn": web.role_arn, "via": "web-identity"}),
        (None, None) => Json::Null,
    }
}

/// A path from the report, home-relative as every message shows paths.
fn shown_path(path: &Json) -> String {
    path.as_str()
        .map(|p| escrc::home_relative(std::path::Path::new(p)))
        .unwrap_or_default()
}

fn human(report: &Json) -> String {
    let text = |v: &Json| v.as_str().unwrap_or("").to_string();
    let mut out = Lines::default();
    match report.get("escrc").filter(|e| !e.is_null()) {
        None => out.push(".escrc:      none here or above".to_string()),
        Some(e) => {
            let trust = match (e["trust"].as_str(), e["trusted_prefix"].as_str()) {
                (Some("allowed"), Some(prefix)) => {
                    format!("allowed: under trusted prefix {prefix}")
                }
                (trust, _) => trust.unwrap_or("unknown").to_string(),
            };
            out.push(format!(".escrc:      {} ({trust})", shown_path(&e["path"])));
            if let Some(env) = e["environment"].as_str() {
                out.push(format!("environment: {env}"));
            }
            match e["credentials"].as_str() {
                Some("process") => out.push(
                    "credentials: process (no keys in the shell: AWS_CONFIG_FILE's default profile runs `esc-hook credential-process`)"
                        .to_string(),
                ),
                Some("server") => out.push(
                    "credentials: server (`esc-hook exec` serves them on a loopback endpoint)"
                        .to_string(),
                ),
                _ => {}
            }
            if e["default_ttl"] == json!(true) {
                out.push(format!(
                    "             assumed valid for {} (ESC does not show the durations of imported environments): set `ttl` in .escrc if they differ",
                    crate::duration::human(crate::provider::DEFAULT_TTL)
                ));
            }
            if let (Some(arn), Some(how)) =
                (e["aws_role"]["arn"].as_str(), e["aws_role"]["via"].as_str())
            {
                out.push(format!("aws role:    {arn} ({how})"));
            }
            if let Some(error) = e["error"].as_str() {
                out.push(format!("error:       {error}"));
            }
            if trust == "not-allowed" || trust == "denied" {
                out.push("             run `esc-hook allow` to trust it".to_string());
            }
        }
    }
    match report.get("state").filter(|s| !s.is_null()) {
        Some(state) if state["outcome"] == json!(Outcome::Loaded) => {
            // A values-only project is labelled by its file: no need to name it twice.
            let (label, file) = (text(&state["label"]), shown_path(&state["escrc"]));
            out.push(match label == file || file.is_empty() {
                true => format!("loaded:      {label}"),
                false => format!("loaded:      {label} from {file}"),
            });
            let names: Vec<String> = state["variables"]
                .as_array()
                .map(|v| v.iter().map(text).collect())
                .unwrap_or_default();
            out.push(format!("variables:   {}", names.join(" ")));
            let aside: Vec<String> = state["set_aside"]
                .as_array()
                .map(|v| v.iter().map(text).collect())
                .unwrap_or_default();
            if !aside.is_empty() {
                out.push(format!(
                    "set aside:   {} (yours, back when you leave)",
                    aside.join(" ")
                ));
            }
            if let (Some(at), Some(left)) =
                (state["expires_at"].as_str(), state["seconds_left"].as_u64())
            {
                let left = crate::duration::human(std::time::Duration::from_secs(left));
                out.push(format!("expires:     {at} ({left} left)"));
            }
        }
        Some(state) if state["error"].is_string() => {
            out.push("loaded:      nothing".to_string());
            out.push(format!("because:     {}", text(&state["error"])));
        }
        _ if report["hook_seen"] == json!(true) => out.push("loaded:      nothing".to_string()),
        _ => out.push(
            "loaded:      nothing (is the hook installed? see `esc-hook init --help`)".to_string(),
        ),
    }
    if let Some(verify) = report.get("verify") {
        match (verify["account"].as_str(), verify["arn"].as_str()) {
            (Some(account), Some(arn)) => {
                out.push(format!("aws:         account {account}, {arn}"));
            }
            _ => out.push(format!(
                "aws:         not verified: {}",
                text(&verify["error"])
            )),
        }
    }
    out.text()
}

/// Output lines, each shown with its control characters escaped: paths and messages in them
/// come from directory names and servers.
#[derive(Default)]
struct Lines(Vec<String>);

impl Lines {
    fn push(&mut self, line: String) {
        self.0
            .push(crate::names::escape_controls(&line).into_owned());
    }

    fn text(self) -> String {
        self.0.iter().map(|line| format!("{line}\n")).collect()
    }
}
