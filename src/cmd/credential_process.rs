//! `esc-hook credential-process`: AWS credentials in the `credential_process` format, so
//! `credential_process = esc-hook credential-process --env acme/payments/dev` in ~/.aws/config
//! serves every AWS SDK and the AWS CLI, from the keyring cache while valid.

use std::path::PathBuf;

use anyhow::anyhow;
use serde_json::json;

use crate::ground::time;
use crate::provider::sts::Session;
use crate::provider::{OpenRequest, Provider};
use crate::settings::Settings;

pub fn run(
    settings: &'static Settings,
    env: Option<String>,
    dir: Option<PathBuf>,
) -> anyhow::Result<()> {
    let escrc = super::project_escrc(settings, env, dir)?;
    let request = OpenRequest::for_escrc(&escrc).ok_or_else(|| {
        anyhow!(
            "{} opens nothing that holds AWS credentials",
            escrc.path.display()
        )
    })?;
    let provider = crate::project::sources::provider_for(settings, &request)?;
    // No keyring is said once per shell, by the hook (and by `doctor`): an SDK calling this
    // for every client would repeat it.
    let resolved = provider.resolve(&request)?;
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
