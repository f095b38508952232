//! `esc-hook status`: what is loaded in this shell and what the nearest `.escrc` would do.
//! Names only, never values.

use serde_json::{Value as Json, json};

use crate::ground::time;
use crate::inputs::escrc;
use crate::keeping::trust::{TrustStore, Verdict};
use crate::project::chain::{Chain, Layer};
use crate::provider::sts::{Endpoint, Session, caller_identity};
use crate::settings::Settings;
use crate::settings::state::Outcome;

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
    // The reason is in what was printed; JSON's readers get it on stderr too.
    match (failed, as_json) {
        (Some(error), true) => Err(anyhow::anyhow!("could not verify the credentials: {error}")),
        (Some(_), false) => Err(anyhow::anyhow!(
            "the credentials were not verified (why: above)"
        )),
        (None, _) => Ok(()),
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
            format!("{} {}\n", state.label, crate::ground::duration::human(left))
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
    // STS in the loaded project's own region (its `.escrc`'s `aws.region`), else the user's:
    // never a region the environment returned.
    let region = settings
        .state
        .as_ref()
        .ok()
        .and_then(Option::as_ref)
        .and_then(|state| state.escrc.as_ref())
        .and_then(|stamp| {
            let file = crate::inputs::escrc::read(&stamp.path).ok()?;
            crate::inputs::escrc::parse(&stamp.path, &file).ok()
        })
        .and_then(|escrc| escrc.aws.and_then(|aws| aws.region));
    let network = settings.network()?;
    let endpoint = Endpoint::from_env(
        region.as_deref(),
        &setting,
        std::time::Duration::from_secs(10),
        network,
    )
    .map_err(|e| e.to_string())?;
    caller_identity(&endpoint, &session).map_err(|e| e.to_string())
}

/// The status as JSON; the text form is rendered from it, so the two never disagree.
fn report(settings: &Settings) -> Json {
    let nearest = settings
        .current_dir()
        .and_then(|dir| escrc::find_nearest(&dir));
    let store = TrustStore::open(settings.data_dir(), settings.config()).ok();
    let escrc = nearest.map(|stamp| {
        let chain = Chain::discover(stamp);
        // Each file of the chain with its own trust, nearest first.
        let files: Vec<Json> = chain
            .layers
            .iter()
            .map(|layer| {
                let (trust, trusted_prefix) = trust_of(store.as_ref(), layer);
                let own = layer.parsed.as_ref().ok();
                json!({
                    "path": layer.stamp.path.display().to_string(),
                    "trust": trust,
                    "trusted_prefix": trusted_prefix,
                    "inherit": own.is_some_and(|e| e.inherit),
                    "environments": own.map(|e| e.environments.iter().map(ToString::to_string).collect::<Vec<_>>()),
                    "error": layer.parsed.as_ref().err().map(ToString::to_string),
                })
            })
            .collect();
        let mut aws_role = Json::Null;
        let mut environments = Json::Null;
        let mut credentials = Json::Null;
        let mut default_ttl = false;
        let (environment, error) = match chain.project() {
            Ok(project) => {
                aws_role = role_of(&project);
                credentials = project
                    .aws
                    .as_ref()
                    .and_then(|aws| serde_json::to_value(aws.credentials_mode()).ok())
                    .unwrap_or(Json::Null);
                environments = project
                    .environments
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .into();
                // An anonymous open does not show the imported environments'
                // fn::open::aws-login durations: without a ttl, the default applies.
                default_ttl = project.environments.len() > 1 && project.ttl.is_none();
                let label = (!project.environments.is_empty())
                    .then(|| escrc::environments_label(&project.environments));
                (Json::from(label), Json::Null)
            }
            Err(e) => (Json::Null, e.to_string().into()),
        };
        json!({
            "path": files[0]["path"],
            "trust": files[0]["trust"],
            "trusted_prefix": files[0]["trusted_prefix"],
            "chain": files,
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
            // Where each variable came from, names only.
            let origins: serde_json::Map<String, Json> = state
                .loaded
                .iter()
                .flat_map(|l| l.vars.iter().filter(|v| !v.unset).map(move |v| (l, v)))
                .filter_map(|(l, v)| Some((v.name.clone(), Json::from(l.origin_of(v)?))))
                .collect();
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
                "origins": origins,
                "set_aside": set_aside,
                "opened_at": opened_at,
                "expires_at": expires_at,
                "seconds_left": state.loaded.as_ref().and_then(|l| l.expires_at)
                    .map(|t| t.saturating_sub(time::now())),
            })
        }
        _ => Json::Null,
    };
    let hook_active = settings.current_var(crate::settings::state::VAR).is_some()
        || settings.hooked_shell().is_some();
    json!({ "escrc": escrc.unwrap_or(Json::Null), "state": loaded, "hook_seen": hook_active })
}

/// A file's trust as `status` names it, and the trusted prefix that allows it, if one does.
fn trust_of(store: Option<&TrustStore>, layer: &Layer) -> (Json, Json) {
    let (Some(store), Some(file)) = (store, layer.file.as_ref()) else {
        return (Json::Null, Json::Null);
    };
    let path = &layer.stamp.path;
    let mut prefix = Json::Null;
    let trust = match store.verdict(path, file) {
        Verdict::Allowed => {
            if let Some(found) = store.trusted_prefix_of(path) {
                prefix = found.written.clone().into();
            }
            "allowed"
        }
        Verdict::NotAllowed => "not-allowed",
        Verdict::Denied => "denied",
        Verdict::Unsafe(_) => "unsafe",
    };
    (trust.into(), prefix)
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
        .map(|p| crate::ground::fs::home_relative(std::path::Path::new(p)))
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
            // A layered project: the files it builds on, nearest first, each with its trust.
            let parents = e["chain"]
                .as_array()
                .map_or(&[][..], |c| c.get(1..).unwrap_or(&[]));
            for (index, parent) in parents.iter().enumerate() {
                let heading = if index == 0 { "builds on:" } else { "" };
                let trust = parent["trust"].as_str().unwrap_or("unknown");
                out.push(format!(
                    "{heading:<12} {} ({trust})",
                    shown_path(&parent["path"])
                ));
            }
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
                    crate::ground::duration::human(crate::provider::DEFAULT_TTL)
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
            for parent in parents {
                if matches!(parent["trust"].as_str(), Some("not-allowed" | "denied")) {
                    let path = crate::project::chain::shown_path(&shown_path(&parent["path"]));
                    out.push(format!(
                        "             run `esc-hook allow {path}` to trust it"
                    ));
                }
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
            // Grouped by where they came from: the environments in import order, then the
            // files from the farthest to the nearest, then the rest.
            let mut groups: Vec<(String, Vec<String>)> = Vec::new();
            for name in &names {
                let Some(origin) = state["origins"][name.as_str()].as_str() else {
                    continue;
                };
                match groups.iter_mut().find(|(o, _)| o == origin) {
                    Some((_, group)) => group.push(name.clone()),
                    None => groups.push((origin.to_string(), vec![name.clone()])),
                }
            }
            let escrc = &report["escrc"];
            let environments: Vec<&str> = escrc["environments"]
                .as_array()
                .map(|list| list.iter().filter_map(Json::as_str).collect())
                .unwrap_or_default();
            let files: Vec<String> = escrc["chain"]
                .as_array()
                .map(|chain| chain.iter().rev().map(|f| shown_path(&f["path"])).collect())
                .unwrap_or_default();
            groups.sort_by_key(|(origin, _)| {
                let environment = environments.iter().position(|e| e == origin);
                let file = files.iter().position(|f| f == origin);
                match (environment, file) {
                    (Some(index), _) => (0, index),
                    (None, Some(index)) => (1, index),
                    (None, None) => (2, 0),
                }
            });
            for (index, (origin, group)) in groups.iter().enumerate() {
                let heading = if index == 0 { "from:" } else { "" };
                out.push(format!("{heading:<12} {origin}: {}", group.join(" ")));
            }
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
                let left = crate::ground::duration::human(std::time::Duration::from_secs(left));
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
            .push(crate::ground::names::escape_controls(&line).into_owned());
    }

    fn text(self) -> String {
        self.0.iter().map(|line| format!("{line}\n")).collect()
    }
}
