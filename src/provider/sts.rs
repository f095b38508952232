//! AWS STS: a project's own AWS session. Chains from the environment's credentials into a role
//! (AssumeRole), or gets a session with an OIDC token and no AWS keys at all
//! (AssumeRoleWithWebIdentity). STS says exactly when the session expires, and that time then
//! drives the cache and `AWS_CREDENTIAL_EXPIRATION`.
//!
//! The AWS SDK shares the one TLS stack (rustls with ring) and the current-thread runtime,
//! both built only here on the network path.

use std::ffi::OsString;
use std::path::Path;
use std::time::{Duration, SystemTime};

use aws_sdk_sts::config::retry::RetryConfig;
use aws_sdk_sts::config::timeout::TimeoutConfig;
use aws_sdk_sts::config::{BehaviorVersion, Credentials, Region};
use aws_sdk_sts::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_sts::types::PolicyDescriptorType;

use super::network::Network;
use super::token;
use super::{OpenRequest, Provider, ProviderError, Resolved, ResolvedVar, Value};
use crate::ground::names::{is_region, printable};
use crate::inputs::escrc::{AssumeRole, AwsSettings, WebIdentity};

/// Used when neither `aws.region`, the environment, nor the shell names a region.
const DEFAULT_REGION: &str = "us-east-1";
const DEFAULT_SESSION: Duration = Duration::from_secs(3600);

/// A session's keys, as STS returns them.
pub struct Session {
    pub access_key_id: String,
    pub secret_access_key: String,
    pub session_token: Option<String>,
    pub expires_at: Option<SystemTime>,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("access_key_id", &self.access_key_id)
            .finish_non_exhaustive()
    }
}

impl Session {
    /// The AWS credentials among a set of variables, if there are any.
    pub fn from_vars(vars: &[ResolvedVar]) -> Option<Session> {
        let text = |name: &str| {
            vars.iter()
                .find(|v| v.name == name)
                .and_then(|v| match &v.value {
                    Value::Text(t) if !t.is_empty() => Some(t.clone()),
                    _ => None,
                })
        };
        Some(Session {
            access_key_id: text("AWS_ACCESS_KEY_ID")?,
            secret_access_key: text("AWS_SECRET_ACCESS_KEY")?,
            session_token: text("AWS_SESSION_TOKEN"),
            expires_at: None,
        })
    }
}

/// Where STS is and how long to wait for it.
#[derive(Clone, Debug)]
pub struct Endpoint {
    pub region: String,
    /// `AWS_ENDPOINT_URL_STS`, else `AWS_ENDPOINT_URL`; none means AWS's own.
    pub url: Option<String>,
    pub timeout: Duration,
    /// The user's own trust roots (never the process environment's).
    pub network: Network,
}

impl Endpoint {
    pub fn from_env(
        region: Option<&str>,
        var: &dyn Fn(&str) -> Option<String>,
        timeout: Duration,
        network: Network,
    ) -> Result<Endpoint, ProviderError> {
        let (region, origin) = match region {
            Some(region) => (region.to_string(), "aws.region"),
            None => ["AWS_REGION", "AWS_DEFAULT_REGION"]
                .into_iter()
                .find_map(|name| Some((var(name)?, name)))
                .unwrap_or_else(|| (DEFAULT_REGION.to_string(), "the default")),
        };
        if !is_region(&region) {
            return Err(ProviderError::Config(format!(
                "{origin} `{}` is not an AWS region (such as eu-west-1)",
                printable(&region, 40)
            )));
        }
        let url = var("AWS_ENDPOINT_URL_STS")
            .or_else(|| var("AWS_ENDPOINT_URL"))
            .filter(|u| !u.is_empty());
        Ok(Endpoint {
            region,
            url,
            timeout,
            network,
        })
    }

    fn describe(&self) -> String {
        self.url
            .clone()
            .unwrap_or_else(|| format!("STS in {}", self.region))
    }

    fn client(&self, credentials: Option<&Session>) -> Result<aws_sdk_sts::Client, ProviderError> {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let http = self
            .network
            .sts_http_client(self.url.as_deref())
            .map_err(|e| ProviderError::Config(format!("{}: {e}", self.describe())))?;
        let mut config = aws_sdk_sts::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new(self.region.clone()))
            .http_client(http)
            .retry_config(RetryConfig::standard().with_max_attempts(2))
            .timeout_config(
                TimeoutConfig::builder()
                    .connect_timeout(Duration::from_secs(5).min(self.timeout))
                    .operation_timeout(self.timeout)
                    .build(),
            );
        if let Some(url) = &self.url {
            config = config.endpoint_url(url);
        }
        if let Some(session) = credentials {
            config = config.credentials_provider(Credentials::new(
                &session.access_key_id,
                &session.secret_access_key,
                session.session_token.clone(),
                None,
                "esc-hook",
            ));
        }
        Ok(aws_sdk_sts::Client::from_conf(config.build()))
    }
}

pub type VarLookup = Box<dyn Fn(&str) -> Option<String>>;

/// The environment (if any), then STS.
pub struct StsProvider {
    pub esc: Option<Box<dyn Provider>>,
    /// Reads `AWS_*` and `USER` settings (the clean environment in production).
    pub setting: VarLookup,
    pub timeout: Duration,
    pub network: Network,
    /// The environment a `token-command` runs with: the user's own, never what a project set.
    pub child_env: Vec<(String, OsString)>,
}

impl Provider for StsProvider {
    fn resolve(&self, request: &OpenRequest) -> Result<Resolved, ProviderError> {
        let mut resolved = match &self.esc {
            Some(esc) => esc.resolve(request)?,
            None => Resolved {
                vars: Vec::new(),
                opened_at: SystemTime::now(),
                expires_at: SystemTime::now() + DEFAULT_SESSION,
                from_cache: false,
                warning: None,
                raw: None,
            },
        };
        let Some(aws) = request.aws else {
            return Ok(resolved);
        };
        // The region names STS's host: from the `.escrc` or the user, never from what the
        // environment returned (an `AWS_REGION` of `x@host:port/` would choose the host).
        let endpoint = Endpoint::from_env(
            aws.region.as_deref(),
            &*self.setting,
            self.timeout,
            self.network.clone(),
        )?;
        let user = (self.setting)("USER");
        let session = chain(
            aws,
            &endpoint,
            &resolved,
            (request.project_dir, request.escrc_file),
            user.as_deref(),
            &self.child_env,
        )?;
        if let Some(session) = session {
            replace_credentials(&mut resolved, session);
        }
        Ok(resolved)
    }
}

/// Runs the configured STS steps: web identity first (it needs no keys), then assume-role
/// from whatever credentials there are by then.
fn chain(
    aws: &AwsSettings,
    endpoint: &Endpoint,
    resolved: &Resolved,
    (project_dir, escrc_file): (&Path, Option<crate::ground::fs::FileId>),
    user: Option<&str>,
    child_env: &[(String, OsString)],
) -> Result<Option<Session>, ProviderError> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| ProviderError::Config(format!("could not start the network runtime: {e}")))?;
    let mut session = Session::from_vars(&resolved.vars);
    if let Some(web) = &aws.web_identity {
        let token = token::web_identity_token(web, resolved, project_dir, escrc_file, child_env)?;
        session = Some(runtime.block_on(assume_role_with_web_identity(
            endpoint,
            web,
            &token,
            &session_name(web.session_name.as_deref(), project_dir, user),
        ))?);
    }
    if let Some(role) = &aws.assume_role {
        let base = session.ok_or_else(|| {
            ProviderError::Config(format!(
                "aws.assume-role needs base credentials, and the environment exports no AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY (role {})",
                role.role_arn
            ))
        })?;
        let name = session_name(role.session_name.as_deref(), project_dir, user);
        session = Some(runtime.block_on(assume_role(endpoint, role, &base, &name))?);
    }
    Ok(session)
}

async fn assume_role(
    endpoint: &Endpoint,
    role: &AssumeRole,
    base: &Session,
    session_name: &str,
) -> Result<Session, ProviderError> {
    let policy_arns: Vec<PolicyDescriptorType> = role
        .policy_arns
        .iter()
        .map(|arn| PolicyDescriptorType::builder().arn(arn).build())
        .collect();
    let output = endpoint
        .client(Some(base))?
        .assume_role()
        .role_arn(&role.role_arn)
        .role_session_name(session_name)
        .duration_seconds(seconds(role.duration))
        .set_external_id(role.external_id.clone())
        .set_policy_arns((!policy_arns.is_empty()).then_some(policy_arns))
        .set_policy(role.policy.clone())
        .send()
        .await
        .map_err(|e| sts_error(&e, "AssumeRole", &role.role_arn, endpoint))?;
    session_from(output.credentials(), &role.role_arn)
}

async fn assume_role_with_web_identity(
    endpoint: &Endpoint,
    web: &WebIdentity,
    token: &str,
    session_name: &str,
) -> Result<Session, ProviderError> {
    let output = endpoint
        .client(None)?
        .assume_role_with_web_identity()
        .role_arn(&web.role_arn)
        .role_session_name(session_name)
        .web_identity_token(token)
        .duration_seconds(seconds(web.duration))
        .send()
        .await
        .map_err(|e| sts_error(&e, "AssumeRoleWithWebIdentity", &web.role_arn, endpoint))?;
    session_from(output.credentials(), &web.role_arn)
}

/// Who is using these credentials: account and ARN.
pub fn caller_identity(
    endpoint: &Endpoint,
    session: &Session,
) -> Result<(String, String), ProviderError> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| ProviderError::Config(format!("could not start the network runtime: {e}")))?;
    let output = runtime
        .block_on(endpoint.client(Some(session))?.get_caller_identity().send())
        .map_err(|e| sts_error(&e, "GetCallerIdentity", "the loaded credentials", endpoint))?;
    Ok((
        output.account().unwrap_or("?").to_string(),
        output.arn().unwrap_or("?").to_string(),
    ))
}

fn seconds(duration: Option<Duration>) -> i32 {
    i32::try_from(duration.unwrap_or(DEFAULT_SESSION).as_secs()).unwrap_or(i32::MAX)
}

fn session_from(
    credentials: Option<&aws_sdk_sts::types::Credentials>,
    role: &str,
) -> Result<Session, ProviderError> {
    let credentials = credentials
        .ok_or_else(|| ProviderError::Sts(format!("STS returned no credentials for {role}")))?;
    let expiration = credentials.expiration();
    Ok(Session {
        access_key_id: credentials.access_key_id().to_string(),
        secret_access_key: credentials.secret_access_key().to_string(),
        session_token: Some(credentials.session_token().to_string()),
        expires_at: u64::try_from(expiration.secs())
            .ok()
            .map(crate::ground::time::from_unix),
    })
}

/// The chained session replaces the environment's AWS credentials; its exact expiry becomes
/// the whole result's.
fn replace_credentials(resolved: &mut Resolved, session: Session) {
    const NAMES: [&str; 4] = [
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
        "AWS_CREDENTIAL_EXPIRATION",
    ];
    resolved.vars.retain(|v| !NAMES.contains(&v.name.as_str()));
    let mut add = |name: &str, value: String, secret: bool| {
        resolved.vars.push(ResolvedVar {
            name: name.into(),
            value: Value::Text(value),
            secret,
            origin: None,
        });
    };
    add("AWS_ACCESS_KEY_ID", session.access_key_id, false);
    add("AWS_SECRET_ACCESS_KEY", session.secret_access_key, true);
    if let Some(token) = session.session_token {
        add("AWS_SESSION_TOKEN", token, true);
    }
    resolved.vars.sort_by(|a, b| a.name.cmp(&b.name));
    if let Some(expires_at) = session.expires_at {
        resolved.expires_at = expires_at;
    }
}

/// A traceable default session name: `esc-hook-<user>-<project directory>`, cut to STS's rules.
fn session_name(configured: Option<&str>, project_dir: &Path, user: Option<&str>) -> String {
    let name = configured.map(String::from).unwrap_or_else(|| {
        let user = user.unwrap_or("user");
        let repo = project_dir
            .file_name()
            .map_or_else(|| "project".into(), |n| n.to_string_lossy().into_owned());
        format!("esc-hook-{user}-{repo}")
    });
    let clean: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "+=,.@-_".contains(c) {
                c
            } else {
                '-'
            }
        })
        .take(64)
        .collect();
    if clean.len() < 2 {
        "esc-hook".into()
    } else {
        clean
    }
}

/// One line per STS failure class.
fn sts_error<
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug + 'static,
>(
    error: &SdkError<E, R>,
    operation: &str,
    role: &str,
    endpoint: &Endpoint,
) -> ProviderError {
    let message = error
        .message()
        .map(|m| printable(m, 160))
        .unwrap_or_default();
    let line = match error.code() {
        Some("AccessDenied") => {
            format!("STS refused {operation} for {role} (AccessDenied): {message}")
        }
        Some("ExpiredToken" | "ExpiredTokenException") => format!(
            "the credentials used for {role} have expired (ExpiredToken): reload the environment (`esc-hook reload`)"
        ),
        Some(
            "InvalidIdentityToken"
            | "InvalidIdentityTokenException"
            | "IDPRejectedClaim"
            | "IDPRejectedClaimException",
        ) => {
            format!(
                "STS rejected the web identity token for {role} (InvalidIdentityToken): {message}"
            )
        }
        Some("RegionDisabledException" | "RegionDisabled") => format!(
            "STS is not enabled in {} (RegionDisabled): enable the region in IAM or set aws.region",
            endpoint.region
        ),
        Some(
            "Throttling"
            | "ThrottlingException"
            | "TooManyRequestsException"
            | "RequestLimitExceeded",
        ) => "STS is throttling requests (Throttling): try again in a minute".to_string(),
        Some(code) => format!("STS {operation} for {role} failed ({code}): {message}"),
        None => match error {
            SdkError::TimeoutError(_) => format!(
                "{} did not answer within {}s",
                endpoint.describe(),
                endpoint.timeout.as_secs()
            ),
            _ => match network_cause(error) {
                NetworkCause::TimedOut => format!(
                    "{} did not answer within {}s",
                    endpoint.describe(),
                    endpoint.timeout.as_secs()
                ),
                cause => format!("could not reach {}: {cause}", endpoint.describe()),
            },
        },
    };
    ProviderError::Sts(line)
}

/// Why a request never got an answer, as a person can act on it.
enum NetworkCause {
    Dns,
    Refused,
    TimedOut,
    Tls(String),
    Other(String),
}

impl std::fmt::Display for NetworkCause {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            NetworkCause::Dns => f.write_str("the host name does not resolve (DNS)"),
            NetworkCause::Refused => f.write_str("connection refused"),
            NetworkCause::TimedOut => f.write_str("timed out"),
            NetworkCause::Tls(detail) => write!(f, "TLS failed: {detail}"),
            NetworkCause::Other(detail) => f.write_str(detail),
        }
    }
}

/// Walks an error's sources: the SDK's own text (`dispatch failure`, or the Debug form of the
/// connector error) says nothing a person can use; the innermost I/O error does.
fn network_cause(error: &(dyn std::error::Error + 'static)) -> NetworkCause {
    let mut texts = Vec::new();
    let mut current = Some(error);
    while let Some(e) = current {
        if let Some(io) = e.downcast_ref::<std::io::Error>() {
            match io.kind() {
                std::io::ErrorKind::ConnectionRefused => return NetworkCause::Refused,
                std::io::ErrorKind::TimedOut => return NetworkCause::TimedOut,
                _ => {}
            }
        }
        texts.push(e.to_string());
        current = e.source();
    }
    let innermost = texts.last().cloned().unwrap_or_default();
    let innermost = printable(innermost.split(" (os error").next().unwrap_or(""), 160);
    let all = texts.join(": ").to_lowercase();
    if [
        "dns error",
        "failed to lookup address",
        "name or service not known",
        "no address",
    ]
    .iter()
    .any(|t| all.contains(t))
    {
        NetworkCause::Dns
    } else if [
        "certificate",
        "tls",
        "handshake",
        "corrupt message",
        "invalidcontenttype",
    ]
    .iter()
    .any(|t| all.contains(t))
    {
        NetworkCause::Tls(innermost)
    } else if all.contains("timed out") || all.contains("timeout") {
        NetworkCause::TimedOut
    } else {
        NetworkCause::Other(innermost)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_session_names_are_traceable_and_valid() {
        let name = session_name(None, Path::new("/src/my project"), Some("alice"));
        assert!(
            name.starts_with("esc-hook-") && name.ends_with("-my-project"),
            "{name}"
        );
        assert_eq!(
            session_name(Some(&"x".repeat(100)), Path::new("/"), None).len(),
            64
        );
    }
}
