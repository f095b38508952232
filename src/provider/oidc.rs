//! A CI job's OIDC ID token exchanged for a short-lived Pulumi access token (RFC 8693, as
//! `esc login --oidc-token` does): `POST {backend}/api/oauth/token`. The ID token is sent
//! there only, and never shown.

use std::time::Duration;

use serde_json::{Value as Json, json};

use super::ProviderError;
use super::network::Network;
use crate::ground::names::printable;
use crate::settings::Timeouts;

/// An ID token or an answer larger than this is not one.
const MAX_LEN: usize = 64 * 1024;

/// The longest an exchanged token is kept, whatever the backend says (a CI job is hours).
const MAX_LIFETIME: Duration = Duration::from_secs(24 * 3600);

/// What kind of Pulumi token to ask for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Scope {
    Organization,
    Team(String),
    Personal(String),
}

impl Scope {
    fn requested_token_type(&self) -> &'static str {
        match self {
            Scope::Organization => "urn:pulumi:token-type:access_token:organization",
            Scope::Team(_) => "urn:pulumi:token-type:access_token:team",
            Scope::Personal(_) => "urn:pulumi:token-type:access_token:personal",
        }
    }

    fn scope(&self) -> String {
        match self {
            Scope::Organization => String::new(),
            Scope::Team(team) => format!("team:{team}"),
            Scope::Personal(user) => format!("user:{user}"),
        }
    }
}

/// A Pulumi access token and how long it lasts.
pub struct Exchanged {
    pub token: String,
    pub expires_in: Duration,
}

impl std::fmt::Debug for Exchanged {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Exchanged")
            .field("token", &"<redacted>")
            .field("expires_in", &self.expires_in)
            .finish()
    }
}

pub struct Exchange<'a> {
    pub backend: &'a str,
    pub id_token: &'a str,
    pub org: &'a str,
    pub scope: Scope,
    pub expiration: Option<Duration>,
}

/// Exchanges the ID token; errors are one line naming the backend, never the token.
pub fn exchange(
    request: &Exchange,
    network: &Network,
    timeouts: Timeouts,
) -> Result<Exchanged, ProviderError> {
    if request.id_token.is_empty() || request.id_token.len() > MAX_LEN {
        return Err(ProviderError::Config(
            "the OIDC token is empty or too large to be one".into(),
        ));
    }
    let mut body = json!({
        "audience": format!("urn:pulumi:org:{}", request.org),
        "grant_type": "urn:ietf:params:oauth:grant-type:token-exchange",
        "subject_token": request.id_token,
        "subject_token_type": "urn:ietf:params:oauth:token-type:id_token",
        "requested_token_type": request.scope.requested_token_type(),
        "scope": request.scope.scope(),
    });
    if let Some(expiration) = request.expiration {
        body["expiration"] = json!(expiration.as_secs());
    }
    let url = format!("{}/api/oauth/token", request.backend);
    crate::ground::log::debug(format!("POST {url} (OIDC token exchange)"));
    let connect = |reason: String| ProviderError::Connect {
        backend: request.backend.to_string(),
        reason,
    };
    let http = network
        .http_client(request.backend)
        .map_err(ProviderError::Config)?
        .connect_timeout(timeouts.connect)
        .timeout(timeouts.total)
        .build()
        .map_err(|e| connect(e.to_string()))?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| ProviderError::Config(format!("could not start the network runtime: {e}")))?;
    let (status, answer) = runtime.block_on(async {
        let response = http
            .post(&url)
            .header("Accept", "application/vnd.pulumi+8")
            .header("Content-Type", "application/json")
            .body(body.to_string())
            .send()
            .await
            .map_err(|e| connect(printable(&e.without_url().to_string(), 160)))?;
        let status = response.status();
        let bytes = super::network::bounded_body(response, MAX_LEN)
            .await
            .map_err(connect)?;
        Ok((status, bytes))
    })?;
    let json: Option<Json> = serde_json::from_slice(&answer).ok();
    if !status.is_success() {
        // RFC 6749's `error_description`, or Pulumi's `message`.
        let said = json
            .as_ref()
            .and_then(|j| {
                j.get("error_description")
                    .or_else(|| j.get("message"))
                    .or_else(|| j.get("error"))
            })
            .and_then(Json::as_str)
            .map(|text| printable(text, 200))
            .unwrap_or_else(|| "no reason given".into());
        return Err(ProviderError::Config(format!(
            "{} refused the OIDC token exchange for organization {} ({}): {said}",
            request.backend,
            request.org,
            status.as_u16()
        )));
    }
    let token = json
        .as_ref()
        .and_then(|j| j.get("access_token"))
        .and_then(Json::as_str)
        .filter(|t| !t.is_empty() && t.len() <= 4096)
        .ok_or_else(|| ProviderError::BadResponse {
            status: status.as_u16(),
            snippet: "the token exchange answered without an access_token".into(),
        })?;
    let expires_in = json
        .as_ref()
        .and_then(|j| j.get("expires_in"))
        .and_then(Json::as_u64)
        .map(Duration::from_secs)
        .unwrap_or(Duration::from_secs(3600))
        .min(MAX_LIFETIME);
    Ok(Exchanged {
        token: token.to_string(),
        expires_in,
    })
}
