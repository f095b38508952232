//! Where values come from. The [`Provider`] trait is the seam: the Pulumi ESC API client is
//! one implementation, AWS STS wraps it (or stands alone), and the keyring cache decorates
//! whichever results.

pub mod console;
pub mod esc;
pub mod login;
pub mod network;
pub mod oidc;
pub mod projection;
pub mod sts;
mod token;

/// Pulumi Cloud, the backend when the user names none.
pub const DEFAULT_BACKEND: &str = "https://api.pulumi.com";

use std::fmt;
use std::time::{Duration, SystemTime};

use std::path::Path;

use crate::ground::fs::FileId;
use crate::inputs::escrc::{AwsSettings, EnvRef, Escrc};

/// What a provider needs to know: the environment to open (if any) and the STS steps (if any).
#[derive(Clone, Debug)]
pub struct OpenRequest<'a> {
    /// The environments to open, in import order: one is opened by name, several together
    /// in one anonymous open that imports them. Empty for STS alone.
    pub envs: &'a [EnvRef],
    /// How long the open session may be read; at least the ttl.
    pub open_duration: Duration,
    /// The `.escrc`'s ttl, which wins over anything the environment says.
    pub ttl: Option<Duration>,
    pub aws: Option<&'a AwsSettings>,
    /// The `.escrc`'s directory: token files and commands are relative to it.
    pub project_dir: &'a Path,
    /// The `.escrc` read there (whose trust was checked): the directory must still hold it.
    pub escrc_file: Option<FileId>,
}

impl<'a> OpenRequest<'a> {
    /// What an `.escrc` asks of the network; none when it only has local values.
    pub fn for_escrc(escrc: &'a Escrc) -> Option<OpenRequest<'a>> {
        let aws = escrc.aws.as_ref().filter(|aws| aws.uses_sts());
        if escrc.environments.is_empty() && aws.is_none() {
            return None;
        }
        Some(OpenRequest {
            envs: &escrc.environments,
            open_duration: escrc
                .open_duration
                .unwrap_or(DEFAULT_OPEN_DURATION)
                .max(escrc.ttl.unwrap_or_default()),
            ttl: escrc.ttl,
            aws,
            project_dir: escrc.path.parent().unwrap_or(Path::new("/")),
            escrc_file: escrc.file_id,
        })
    }

    /// What messages and listings call it.
    pub fn label(&self) -> String {
        match (self.envs, self.aws) {
            ([_, ..], _) => crate::inputs::escrc::environments_label(self.envs),
            ([], Some(aws)) => {
                let role = aws.web_identity.as_ref().map(|w| w.role_arn.as_str());
                format!("aws:{}", role.unwrap_or("session"))
            }
            ([], None) => crate::ground::fs::home_relative(self.project_dir),
        }
    }
}

/// The open session's default lifetime, as the Pulumi CLI sends it.
pub const DEFAULT_OPEN_DURATION: Duration = Duration::from_secs(2 * 3600);

/// Used when neither the `.escrc` nor an `fn::open::aws-login` says how long credentials live:
/// AWS roles allow one hour by default.
pub const DEFAULT_TTL: Duration = Duration::from_secs(3600);

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Value {
    Text(String),
    /// The content of one of the environment's `files`; the variable gets the file's path.
    File(String),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResolvedVar {
    pub name: String,
    pub value: Value,
    pub secret: bool,
    /// Which of the request's environments defined it (an index into `envs`), when known:
    /// for `status` to say where each variable came from.
    pub origin: Option<u8>,
}

/// An opened environment, projected to variables exactly as `esc run` does.
#[derive(Clone, Debug)]
pub struct Resolved {
    pub vars: Vec<ResolvedVar>,
    pub opened_at: SystemTime,
    pub expires_at: SystemTime,
    /// Served from the credential cache rather than a new open.
    pub from_cache: bool,
    /// Something the user should hear about once (a keyring that does not answer).
    pub warning: Option<String>,
    /// The read response, for STS to find a token property in; never cached.
    pub raw: Option<serde_json::Value>,
}

pub trait Provider {
    fn resolve(&self, request: &OpenRequest) -> Result<Resolved, ProviderError>;

    /// What a cache holds for `request` that is still before its refresh point, without
    /// opening or waiting for anything; `None` without a cache.
    fn cached(&self, _request: &OpenRequest) -> Option<Resolved> {
        None
    }

    /// The cache entry `request` is stored under, naming it for background refreshes.
    fn cache_account(&self, _request: &OpenRequest) -> Option<String> {
        None
    }
}

/// Every way an open can fail, each rendered as one line that says what to do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ProviderError {
    /// The Pulumi login or a setting is unusable; no request was sent.
    Config(String),
    /// 400 with evaluation diagnostics, already formatted as `env:line:col: summary`.
    Evaluation {
        env: String,
        diagnostics: Vec<String>,
    },
    Unauthorized {
        backend: String,
        env: String,
        /// Where the refused token came from.
        source: String,
        /// The login's fingerprint, so that a later prompt can retry once it changes.
        login: String,
    },
    Forbidden {
        env: String,
        message: String,
    },
    NotFound {
        env: String,
        backend: String,
    },
    RateLimited {
        backend: String,
    },
    Server {
        status: u16,
        request_id: Option<String>,
        backend: String,
    },
    /// Any other unexpected status, with the server's message.
    Http {
        status: u16,
        message: String,
    },
    /// A body that is not the JSON the API speaks (a proxy's HTML page, a cut-off body).
    BadResponse {
        status: u16,
        snippet: String,
    },
    Connect {
        backend: String,
        reason: String,
    },
    /// The connection closed before the whole body arrived.
    CutOff {
        backend: String,
        reason: String,
    },
    /// A body larger than any answer of the API: not read to its end.
    TooLarge {
        backend: String,
        limit: usize,
    },
    Timeout {
        env: String,
        after: Duration,
    },
    /// The user pressed Ctrl-C during the open.
    Interrupted {
        env: String,
    },
    /// An STS call failed; the line says which class and what to do.
    Sts(String),
}

impl fmt::Display for ProviderError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ProviderError::Config(message) => f.write_str(message),
            ProviderError::Evaluation { env, diagnostics } => {
                let first = diagnostics.first().map_or("(no details)", String::as_str);
                write!(f, "{env} failed to evaluate: {first}")?;
                if diagnostics.len() > 1 {
                    write!(f, " (and {} more)", diagnostics.len() - 1)?;
                }
                Ok(())
            }
            ProviderError::Unauthorized {
                backend,
                env,
                source,
                ..
            } => {
                write!(
                    f,
                    "{backend} refused the access token from {source} for {env} (401): "
                )?;
                match source.as_str() {
                    "PULUMI_ACCESS_TOKEN" => f.write_str(
                        "set a valid PULUMI_ACCESS_TOKEN (or unset it to use `pulumi login`); the next prompt tries again",
                    ),
                    _ => write!(
                        f,
                        "run `pulumi login {backend}`; the next prompt tries again"
                    ),
                }
            }
            ProviderError::Forbidden { env, message } => {
                write!(f, "no access to {env} (403): {message}")
            }
            ProviderError::NotFound { env, backend } => {
                write!(
                    f,
                    "environment {env} not found at {backend} (404): check its name, and that your login can see it"
                )
            }
            ProviderError::RateLimited { backend } => {
                write!(f, "{backend} is rate limiting requests (429): {NEXT_STEP}")
            }
            ProviderError::Server {
                status,
                request_id,
                backend,
            } => {
                // "Pulumi Cloud" only for Pulumi Cloud; a self-hosted service by its host.
                let who = match backend.as_str() {
                    DEFAULT_BACKEND => "Pulumi Cloud",
                    other => other
                        .split_once("://")
                        .map_or(other, |(_, rest)| rest.split('/').next().unwrap_or(rest)),
                };
                write!(f, "{who} failed with {status}")?;
                match request_id {
                    Some(id) => write!(f, " (request id {id}): {NEXT_STEP}"),
                    None => write!(f, ": {NEXT_STEP}"),
                }
            }
            ProviderError::Http { status, message } => {
                write!(f, "unexpected response {status}: {message}")
            }
            ProviderError::BadResponse { status, snippet } => {
                write!(
                    f,
                    "the backend answered {status} with something other than JSON: {snippet}; {NEXT_STEP}"
                )
            }
            ProviderError::Connect { backend, reason } => {
                write!(f, "could not connect to {backend}: {reason}; {NEXT_STEP}")
            }
            ProviderError::CutOff { backend, reason } => {
                write!(
                    f,
                    "the response from {backend} was cut off: {reason}; {NEXT_STEP}"
                )
            }
            ProviderError::TooLarge { backend, limit } => write!(
                f,
                "the response from {backend} is larger than {} MiB: refused unread",
                limit / (1024 * 1024)
            ),
            ProviderError::Timeout { env, after } => write!(
                f,
                "opening {env} timed out after {}s (set ESC_HOOK_TIMEOUT to wait longer); {NEXT_STEP}",
                after.as_secs()
            ),
            ProviderError::Sts(line) => f.write_str(line),
            ProviderError::Interrupted { env } => write!(
                f,
                "stopped opening {env} (Ctrl-C): `esc-hook reload`, or leave and re-enter, to try again"
            ),
        }
    }
}

impl std::error::Error for ProviderError {}

impl ProviderError {
    /// A failure of the backend or the way to it, which passes by itself (a refused
    /// connection, 429, 5xx, a timeout, a cut-off or non-JSON answer): worth trying again
    /// later without anything changed here.
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            ProviderError::RateLimited { .. }
                | ProviderError::Server { .. }
                | ProviderError::Connect { .. }
                | ProviderError::CutOff { .. }
                | ProviderError::BadResponse { .. }
                | ProviderError::Timeout { .. }
        )
    }
}

/// What a transient failure's line ends with: the hook tries again by itself.
const NEXT_STEP: &str = "a prompt a minute from now tries again, or `esc-hook reload`";
