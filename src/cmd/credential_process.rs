//! `esc-hook credential-process`: AWS credentials in the `credential_process` format, so
//! `credential_process = esc-hook credential-process --env acme/payments/dev` in ~/.aws/config
//! serves every AWS SDK and the AWS CLI, from the keyring cache while valid.

use std::path::PathBuf;

use anyhow::{anyhow, bail};
use serde_json::json;

use crate::escrc::{self, EnvRef, Escrc};
use crate::glob::ExportFilter;
use crate::log;
use crate::provider::sts::Session;
use crate::provider::{OpenRequest, Provider};
use crate::time;
use crate::trust::{TrustStore, Verdict};

pub fn run(env: Option<String>, dir: Option<PathBuf>) -> anyhow::Result<()> {
    let escrc = match (env, dir) {
        (Some(reference), _) => {
            let env = EnvRef::parse(&reference).map_err(|e| anyhow!(e))?;
            // No .escrc: the user named the environment in their own AWS config.
            Escrc {
                path: PathBuf::from(format!("/{}", escrc::FILE_NAME)),
                environment: Some(env),
                open_duration: None,
                ttl: None,
                export: ExportFilter::default(),
                values: Default::default(),
                aws: None,
            }
        }
        (None, Some(dir)) => allowed_escrc(dir)?,
        (None, None) => bail!("name an environment with --env or a project with --dir"),
    };
    let request = OpenRequest::for_escrc(&escrc).ok_or_else(|| {
        anyhow!(
            "{} opens nothing that holds AWS credentials",
            escrc.path.display()
        )
    })?;
    let provider = super::provider_for(&request)?;
    let resolved = provider.resolve(&request)?;
    if let Some(warning) = &resolved.warning {
        log::warn(warning);
    }
    let session = Session::from_vars(&resolved.vars).ok_or_else(|| {
        anyhow!(
            "{} exports no AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY",
            request.label()
        )
    })?;
    let mut out = json!({
        "Version": 1,
        "AccessKeyId": session.access_key_id,
        "SecretAccessKey": session.secret_access_key,
        "Expiration": time::rfc3339(time::unix(resolved.expires_at)),
    });
    if let Some(token) = session.session_token {
        out["SessionToken"] = json!(token);
    }
    super::print(&format!("{out}\n"))
}

/// The `.escrc` of a project directory (or the nearest above it), which must be allowed.
fn allowed_escrc(dir: PathBuf) -> anyhow::Result<Escrc> {
    let dir = std::path::absolute(&dir).unwrap_or(dir);
    let stamp = escrc::find_nearest(&dir).ok_or_else(|| {
        anyhow!(
            "no {} in {} or any parent directory",
            escrc::FILE_NAME,
            dir.display()
        )
    })?;
    let content = escrc::read(&stamp.path)?;
    let store = TrustStore::open().map_err(|e| anyhow!(e))?;
    match store.verdict(&stamp.path, &content) {
        Verdict::Allowed => Ok(escrc::parse(&stamp.path, &content)?),
        Verdict::Unsafe(problem) => bail!("{problem}"),
        _ => bail!(
            "{} is not allowed: run `esc-hook allow {}`",
            stamp.path.display(),
            dir.display()
        ),
    }
}
