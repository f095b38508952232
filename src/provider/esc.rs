//! The Pulumi ESC REST API client: exactly two requests per open (POST open, GET read), with
//! the headers, token and backend the Pulumi CLI uses. The async runtime and the TLS stack are
//! built here, on the network path only.

use std::pin::{Pin, pin};
use std::task::Poll;
use std::time::{Duration, SystemTime};

use reqwest::{Method, StatusCode};
use serde_json::Value as Json;

use super::login::Login;
use super::network::Network;
use super::projection;
use super::{DEFAULT_TTL, OpenRequest, Provider, ProviderError, Resolved};
use crate::ground::names::printable;
use crate::inputs::escrc::EnvRef;
pub use crate::settings::Timeouts;

/// What error messages name: the environment (or list), and the name diagnostics default to.
struct Subject {
    label: String,
    short: String,
}

pub struct EscClient {
    login: Login,
    timeouts: Timeouts,
    /// The user's own proxies and trust roots (never the process environment's).
    network: Network,
}

/// The largest body esc-hook reads: an open's answer, values, files and trace included, is far
/// smaller (the values a project may export are bounded at 512 KiB in all).
const MAX_BODY: usize = 16 * 1024 * 1024;

/// GETs are retried like the Pulumi CLI does (the open POST never is): 1 s apart, 4 tries.
const READ_TRIES: u32 = 4;
const RETRY_DELAY: Duration = Duration::from_secs(1);

impl EscClient {
    pub fn new(login: Login, timeouts: Timeouts, network: Network) -> EscClient {
        EscClient {
            login,
            timeouts,
            network,
        }
    }

    /// Where the open goes: one environment by name, or several (of one organization) imported
    /// by an anonymous environment whose definition is the request body, so ESC merges them
    /// with its own import semantics (later wins, objects merged deeply). Either way, two
    /// requests. Every name part was validated as [A-Za-z0-9._-]+: no escaping or quoting.
    fn open_target(&self, envs: &[EnvRef]) -> (String, String, Option<String>) {
        match envs {
            [env] => {
                let base = format!(
                    "{}/api/esc/environments/{}/{}/{}",
                    self.login.backend, env.org, env.project, env.env
                );
                let open = match &env.version {
                    Some(version) => format!("{base}/versions/{version}/open"),
                    None => format!("{base}/open"),
                };
                (open, format!("{base}/open"), None)
            }
            _ => {
                let org = envs.first().map_or("-", |e| e.org.as_str());
                let base = format!("{}/api/esc/environments/{org}/yaml", self.login.backend);
                let mut definition = String::from("imports:\n");
                for env in envs {
                    definition.push_str(&format!("  - {}/{}", env.project, env.env));
                    if let Some(version) = &env.version {
                        definition.push_str(&format!("@{version}"));
                    }
                    definition.push('\n');
                }
                (
                    format!("{base}/open"),
                    format!("{base}/open"),
                    Some(definition),
                )
            }
        }
    }

    async fn open_and_read(
        &self,
        http: &reqwest::Client,
        request: &OpenRequest<'_>,
        env: &Subject,
    ) -> Result<Json, ProviderError> {
        let (open_url, read_base, definition) = self.open_target(request.envs);
        let open_url = format!(
            "{open_url}?duration={}",
            crate::ground::duration::to_go(request.open_duration)
        );
        let opened = self
            .send(http, Method::POST, &open_url, definition, env)
            .await?;
        let id = opened
            .get("id")
            .and_then(Json::as_str)
            .filter(|id| {
                !id.is_empty() && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
            })
            .ok_or_else(|| ProviderError::BadResponse {
                status: 200,
                snippet: "the open response has no session id".into(),
            })?;
        let read_url = format!("{read_base}/{id}");
        let mut tries = 0;
        loop {
            tries += 1;
            match self.send(http, Method::GET, &read_url, None, env).await {
                Err(e) if tries < READ_TRIES && is_transient(&e) => {
                    tokio::time::sleep(RETRY_DELAY).await;
                }
                result => return result,
            }
        }
    }

    async fn send(
        &self,
        http: &reqwest::Client,
        method: Method,
        url: &str,
        body: Option<String>,
        env: &Subject,
    ) -> Result<Json, ProviderError> {
        crate::ground::log::debug(format!("{method} {url}"));
        let mut request = http
            .request(method, url)
            .header("Authorization", format!("token {}", self.login.token))
            .header("Accept", "application/vnd.pulumi+8")
            .header("Content-Type", "application/json");
        if let Some(body) = body {
            request = request.body(body);
        }
        let response = request
            .send()
            .await
            .map_err(|e| self.transport_error(&e, env))?;
        let status = response.status();
        let request_id = response
            .headers()
            .get("X-Pulumi-Request-ID")
            .and_then(|v| v.to_str().ok())
            .map(|v| printable(v, 80));
        let body = self.bounded_body(response, env).await?;
        let json: Option<Json> = serde_json::from_slice(&body).ok();
        if status.is_success() {
            return json
                .filter(Json::is_object)
                .ok_or_else(|| bad_response(status, &body));
        }
        Err(self.status_error(status, request_id, json, &body, env))
    }

    /// The whole body, at most [`MAX_BODY`] bytes: a backend's endless or huge answer is refused
    /// as it arrives, never held.
    async fn bounded_body(
        &self,
        mut response: reqwest::Response,
        env: &Subject,
    ) -> Result<Vec<u8>, ProviderError> {
        let too_large = || ProviderError::TooLarge {
            backend: self.login.backend.clone(),
            limit: MAX_BODY,
        };
        if response
            .content_length()
            .is_some_and(|length| length > MAX_BODY as u64)
        {
            return Err(too_large());
        }
        let mut body = Vec::new();
        loop {
            let chunk =
                response
                    .chunk()
                    .await
                    .map_err(|e| match self.transport_error(&e, env) {
                        ProviderError::Connect { backend, reason } => {
                            ProviderError::CutOff { backend, reason }
                        }
                        other => other,
                    })?;
            let Some(chunk) = chunk else {
                return Ok(body);
            };
            if body.len() + chunk.len() > MAX_BODY {
                return Err(too_large());
            }
            body.extend_from_slice(&chunk);
        }
    }

    fn status_error(
        &self,
        status: StatusCode,
        request_id: Option<String>,
        json: Option<Json>,
        body: &[u8],
        env: &Subject,
    ) -> ProviderError {
        let backend = self.login.backend.clone();
        let message = json
            .as_ref()
            .and_then(|j| j.get("message"))
            .and_then(Json::as_str)
            .map(|m| printable(m, 200));
        match status.as_u16() {
            400 if json
                .as_ref()
                .is_some_and(|j| j.get("diagnostics").is_some()) =>
            {
                ProviderError::Evaluation {
                    env: env.label.clone(),
                    diagnostics: diagnostics(json.as_ref(), &env.short),
                }
            }
            401 => ProviderError::Unauthorized {
                backend,
                env: env.label.clone(),
                source: self.login.source.clone(),
                login: self.login.fingerprint(),
            },
            403 => ProviderError::Forbidden {
                env: env.label.clone(),
                message: message.unwrap_or_else(|| "forbidden".into()),
            },
            404 => ProviderError::NotFound {
                env: env.label.clone(),
                backend,
            },
            429 => ProviderError::RateLimited { backend },
            // A gateway's HTML page says more than its status does.
            500..=599 if json.is_none() && !body.is_empty() => bad_response(status, body),
            500..=599 => ProviderError::Server {
                status: status.as_u16(),
                request_id,
                backend,
            },
            _ => match message {
                Some(message) => ProviderError::Http {
                    status: status.as_u16(),
                    message,
                },
                None => bad_response(status, body),
            },
        }
    }

    fn transport_error(&self, error: &reqwest::Error, env: &Subject) -> ProviderError {
        if error.is_timeout() {
            return ProviderError::Timeout {
                env: env.label.clone(),
                after: self.timeouts.total,
            };
        }
        ProviderError::Connect {
            backend: self.login.backend.clone(),
            reason: root_cause(error),
        }
    }
}

impl EscClient {
    /// The client could not be set up (a proxy that is no URL, no CA certificates).
    fn connect_error(&self, reason: String) -> ProviderError {
        ProviderError::Connect {
            backend: self.login.backend.clone(),
            reason,
        }
    }

    /// Asks the backend who the token belongs to (`GET /api/user`): the user's login name, or
    /// the error it answered with. For `esc-hook doctor`.
    pub fn whoami(&self) -> Result<String, ProviderError> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| {
                ProviderError::Config(format!("could not start the network runtime: {e}"))
            })?;
        // Errors name an environment; this request has none.
        let env = Subject {
            label: "-".into(),
            short: "-".into(),
        };
        let http = self
            .network
            .http_client(&self.login.backend)
            .map_err(|reason| self.connect_error(reason))?
            .connect_timeout(self.timeouts.connect)
            .timeout(self.timeouts.total)
            .build()
            .map_err(|e| self.transport_error(&e, &env))?;
        let url = format!("{}/api/user", self.login.backend);
        let user = runtime.block_on(self.send(&http, Method::GET, &url, None, &env))?;
        Ok(["githubLogin", "name"]
            .iter()
            .find_map(|key| user.get(key).and_then(Json::as_str))
            .unwrap_or("?")
            .to_string())
    }
}

impl Provider for EscClient {
    fn resolve(&self, request: &OpenRequest) -> Result<Resolved, ProviderError> {
        let subject = match request.envs {
            [] => return Err(ProviderError::Config("no ESC environment to open".into())),
            [env] => Subject {
                label: env.to_string(),
                short: env.env.clone(),
            },
            envs => Subject {
                label: crate::inputs::escrc::environments_label(envs),
                short: crate::inputs::escrc::environments_label(envs),
            },
        };
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| ProviderError::Connect {
                backend: self.login.backend.clone(),
                reason: format!("could not start the network runtime: {e}"),
            })?;
        let http = self
            .network
            .http_client(&self.login.backend)
            .map_err(|reason| self.connect_error(reason))?
            .user_agent(format!(
                "esc-hook/{} ({}; {})",
                env!("CARGO_PKG_VERSION"),
                std::env::consts::OS,
                std::env::consts::ARCH
            ))
            .connect_timeout(self.timeouts.connect)
            .build()
            .map_err(|e| ProviderError::Connect {
                backend: self.login.backend.clone(),
                reason: root_cause(&e),
            })?;
        let opened_at = SystemTime::now();
        let env = subject.label.clone();
        let read = runtime.block_on(async {
            // Ctrl-C ends the open but not esc-hook: it still prints a state recording the
            // interruption, so the next prompt does not hang on the same open again.
            let open = pin!(tokio::time::timeout(
                self.timeouts.total,
                self.open_and_read(&http, request, &subject)
            ));
            let interrupt = pin!(tokio::signal::ctrl_c());
            race(open, interrupt).await
        });
        let read = match read {
            Either::Left(Ok(result)) => result?,
            Either::Left(Err(_elapsed)) => {
                return Err(ProviderError::Timeout {
                    env,
                    after: self.timeouts.total,
                });
            }
            Either::Right(_) => return Err(ProviderError::Interrupted { env }),
        };
        let mut projection = projection::project(&read);
        for var in &mut projection.vars {
            var.origin = projection::origin(&read, &var.name, request.envs);
        }
        let ttl = request
            .ttl
            .or_else(|| projection::aws_login_duration(&read))
            .unwrap_or(DEFAULT_TTL);
        Ok(Resolved {
            vars: projection.vars,
            opened_at,
            expires_at: crate::ground::time::after(opened_at, ttl),
            from_cache: false,
            warning: None,
            raw: Some(read),
        })
    }
}

enum Either<L, R> {
    Left(L),
    Right(R),
}

/// Whichever of two futures finishes first (the left one wins a tie).
async fn race<L: Future, R: Future>(
    mut left: Pin<&mut L>,
    mut right: Pin<&mut R>,
) -> Either<L::Output, R::Output> {
    std::future::poll_fn(|cx| {
        if let Poll::Ready(value) = left.as_mut().poll(cx) {
            return Poll::Ready(Either::Left(value));
        }
        if let Poll::Ready(value) = right.as_mut().poll(cx) {
            return Poll::Ready(Either::Right(value));
        }
        Poll::Pending
    })
    .await
}

fn is_transient(error: &ProviderError) -> bool {
    matches!(
        error,
        ProviderError::Server { .. }
            | ProviderError::RateLimited { .. }
            | ProviderError::Connect { .. }
    )
}

fn bad_response(status: StatusCode, body: &[u8]) -> ProviderError {
    let text = String::from_utf8_lossy(body);
    let text = text.split_whitespace().collect::<Vec<_>>().join(" ");
    ProviderError::BadResponse {
        status: status.as_u16(),
        snippet: if text.is_empty() {
            "an empty body".into()
        } else {
            printable(&text, 80)
        },
    }
}

/// `env:line:col: summary` for each diagnostic.
fn diagnostics(json: Option<&Json>, default_env: &str) -> Vec<String> {
    let Some(list) = json
        .and_then(|j| j.get("diagnostics"))
        .and_then(Json::as_array)
    else {
        return Vec::new();
    };
    list.iter()
        .map(|d| {
            let summary = d.get("summary").and_then(Json::as_str).unwrap_or("error");
            let range = d.get("range");
            let env = range
                .and_then(|r| r.get("environment"))
                .and_then(Json::as_str)
                .unwrap_or(default_env);
            let begin = range.and_then(|r| r.get("begin"));
            let at = |key| begin.and_then(|b| b.get(key)).and_then(Json::as_u64);
            let text = match (at("line"), at("column")) {
                (Some(line), Some(column)) => format!("{env}:{line}:{column}: {summary}"),
                _ => format!("{env}: {summary}"),
            };
            printable(&text, 200)
        })
        .collect()
}

/// The innermost error's text ("Connection refused", "failed to lookup address…"), which is
/// what a person can act on.
fn root_cause(error: &(dyn std::error::Error + 'static)) -> String {
    let mut cause = error;
    while let Some(next) = cause.source() {
        cause = next;
    }
    let text = cause.to_string();
    let text = text.split(" (os error").next().unwrap_or(&text);
    printable(text, 120)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn diagnostics_read_like_compiler_errors() {
        let json: Json = serde_json::from_str(include_str!(
            "../../tests/fixtures/open-400-diagnostics.json"
        ))
        .unwrap();
        assert_eq!(
            diagnostics(Some(&json), "x"),
            ["dev:7:12: unknown property \"lgin\""]
        );
    }

    #[test]
    fn html_bodies_are_shortened_to_one_line() {
        let body = b"<html>\n<body>\n  Bad Gateway\n</body></html>";
        let err = bad_response(StatusCode::BAD_GATEWAY, body);
        assert_eq!(
            err.to_string(),
            "the backend answered 502 with something other than JSON: <html> <body> Bad Gateway </body></html>; a prompt a minute from now tries again, or `esc-hook reload`"
        );
    }
}
