//! The user's Pulumi login, found the way the Pulumi CLI finds it. The token is only ever sent
//! to the backend it belongs to, and never written anywhere.

use std::path::PathBuf;

use serde_json::Value as Json;

use super::{DEFAULT_BACKEND, ProviderError};

pub struct Login {
    /// Backend URL without a trailing slash, e.g. `https://api.pulumi.com`.
    pub backend: String,
    pub token: String,
    /// Where the token came from, for messages: `PULUMI_ACCESS_TOKEN`, or the credentials file.
    pub source: String,
}

impl Login {
    /// A short fingerprint of backend and token (never the token): enough to tell that the
    /// login changed since an attempt failed with it.
    pub fn fingerprint(&self) -> String {
        identity(&self.backend, &self.token)[..16].to_string()
    }

    /// Who is asking, without the token (the cache's entries are kept per identity).
    pub fn identity(&self) -> String {
        identity(&self.backend, &self.token)
    }
}

/// Who is asking, without the token: a hash of the backend and token.
pub fn identity(backend: &str, token: &str) -> String {
    crate::ground::digest::sha256_hex(&[
        b"pulumi-identity\0",
        backend.as_bytes(),
        b"\0",
        token.as_bytes(),
    ])
}

impl std::fmt::Debug for Login {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Login")
            .field("backend", &self.backend)
            .field("token", &"<redacted>")
            .finish()
    }
}

/// A token `esc-hook login --oidc-token` keeps for a backend (looked up by the caller, a floor
/// above, in the keyring).
pub enum Exchanged {
    None,
    /// The token, and when it expires (for messages).
    Valid(String, String),
    /// It expired at this time: never sent.
    Expired(String),
}

/// The backend the Pulumi CLI would use (`PULUMI_BACKEND_URL`, `PULUMI_API`, the credentials
/// file's `current`, Pulumi Cloud), checked.
pub fn backend(
    var: &dyn Fn(&str) -> Option<String>,
    home: Option<PathBuf>,
) -> Result<String, ProviderError> {
    let var = |name: &str| var(name).filter(|v| !v.is_empty());
    let credentials = read_credentials(&var, home)?;
    backend_from(&var, credentials.as_ref())
}

fn backend_from(
    var: &dyn Fn(&str) -> Option<String>,
    credentials: Option<&Credentials>,
) -> Result<String, ProviderError> {
    let backend = var("PULUMI_BACKEND_URL")
        .or_else(|| var("PULUMI_API"))
        .or_else(|| credentials.and_then(|c| c.current()))
        .unwrap_or_else(|| DEFAULT_BACKEND.to_string());
    checked_backend(&backend)
}

/// A backend URL without its trailing slash, refused unless it is http(s): a file or bucket
/// backend has no ESC.
pub fn checked_backend(backend: &str) -> Result<String, ProviderError> {
    let backend = backend.trim_end_matches('/').to_string();
    if let Some(scheme) = ["file://", "s3://", "gs://", "azblob://"]
        .iter()
        .find(|s| backend.starts_with(**s))
    {
        return Err(ProviderError::Config(format!(
            "the Pulumi backend is {scheme}…, which has no ESC: set PULUMI_BACKEND_URL to Pulumi Cloud or a self-hosted service"
        )));
    }
    if !backend.starts_with("https://") && !backend.starts_with("http://") {
        return Err(ProviderError::Config(format!(
            "the Pulumi backend `{backend}` is not an http(s) URL: check PULUMI_BACKEND_URL"
        )));
    }
    Ok(backend)
}

/// The user's login, from `PULUMI_*` settings read through `var` (the clean environment in
/// production; `home` is where `~/.pulumi` is) and the tokens `esc-hook login --oidc-token`
/// keeps (`exchanged`, by backend): `PULUMI_ACCESS_TOKEN`, then such a token, then the Pulumi
/// CLI's credentials file.
pub fn resolve_with(
    var: &dyn Fn(&str) -> Option<String>,
    home: Option<PathBuf>,
    exchanged: &dyn Fn(&str) -> Exchanged,
) -> Result<Login, ProviderError> {
    let var = |name: &str| var(name).filter(|v| !v.is_empty());
    let credentials = read_credentials(&var, home)?;
    let backend = backend_from(&var, credentials.as_ref())?;
    if let Some(token) = var("PULUMI_ACCESS_TOKEN") {
        return Ok(Login {
            backend,
            token,
            source: "PULUMI_ACCESS_TOKEN".into(),
        });
    }
    match exchanged(&backend) {
        Exchanged::Valid(token, until) => {
            return Ok(Login {
                backend,
                token,
                source: format!("`esc-hook login --oidc-token` (until {until})"),
            });
        }
        Exchanged::Expired(at) => {
            return Err(ProviderError::Config(format!(
                "the token `esc-hook login --oidc-token` got for {backend} expired at {at}: log in again"
            )));
        }
        Exchanged::None => {}
    }
    match credentials {
        Some(c) if c.encrypted && c.token_for(&backend).is_none() => Err(ProviderError::Config(
            format!(
                "{} is encrypted, which esc-hook cannot read: set PULUMI_ACCESS_TOKEN",
                c.path.display()
            ),
        )),
        Some(c) => c.token_for(&backend).map(|token| Login {
            backend: backend.clone(),
            token,
            source: crate::ground::fs::home_relative(&c.path),
        }).ok_or_else(
            || {
                ProviderError::Config(format!(
                    "not logged in to {backend}: run `pulumi login {backend}` or set PULUMI_ACCESS_TOKEN"
                ))
            },
        ),
        None => Err(ProviderError::Config(format!(
            "not logged in to {backend}: run `pulumi login` or set PULUMI_ACCESS_TOKEN"
        ))),
    }
}

struct Credentials {
    path: PathBuf,
    json: Json,
    encrypted: bool,
}

impl Credentials {
    fn current(&self) -> Option<String> {
        self.json
            .get("current")
            .and_then(Json::as_str)
            .map(String::from)
    }

    fn token_for(&self, backend: &str) -> Option<String> {
        let lookup = |map: &str, tail: &str| {
            let entries = self.json.get(map)?.as_object()?;
            entries
                .iter()
                .find(|(url, _)| url.trim_end_matches('/') == backend)
                .and_then(|(_, entry)| {
                    if tail.is_empty() {
                        Some(entry)
                    } else {
                        entry.get(tail)
                    }
                })
                .and_then(Json::as_str)
                .filter(|t| !t.is_empty())
                .map(String::from)
        };
        lookup("accounts", "accessToken").or_else(|| lookup("accessTokens", ""))
    }
}

/// Where the Pulumi CLI keeps its logins: `$PULUMI_CREDENTIALS_PATH/credentials.json`, else
/// `$PULUMI_HOME/credentials.json`, else `~/.pulumi/credentials.json`.
pub fn credentials_file(
    var: &dyn Fn(&str) -> Option<String>,
    home: Option<PathBuf>,
) -> Option<PathBuf> {
    let var = |name: &str| var(name).filter(|v| !v.is_empty());
    var("PULUMI_CREDENTIALS_PATH")
        .or_else(|| var("PULUMI_HOME"))
        .map(PathBuf::from)
        .or_else(|| home.map(|home| home.join(".pulumi")))
        .map(|dir| dir.join("credentials.json"))
}

/// The Pulumi CLI's credentials file (see [`credentials_file`]). A missing file is no error;
/// an unreadable one is.
fn read_credentials(
    var: &dyn Fn(&str) -> Option<String>,
    home: Option<PathBuf>,
) -> Result<Option<Credentials>, ProviderError> {
    let Some(path) = credentials_file(var, home) else {
        return Ok(None);
    };
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => {
            return Err(ProviderError::Config(format!(
                "could not read {}: {}",
                path.display(),
                crate::ground::fs::io_reason(&e)
            )));
        }
    };
    let json: Json = serde_json::from_str(&text).map_err(|_| {
        ProviderError::Config(format!(
            "{} is not valid JSON: run `pulumi login` again or set PULUMI_ACCESS_TOKEN",
            path.display()
        ))
    })?;
    let encrypted = text.contains("$pulumiSecureStore");
    Ok(Some(Credentials {
        path,
        json,
        encrypted,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn resolve_with(vars: &[(&str, &str)]) -> Result<Login, ProviderError> {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        super::resolve_with(&|name| map.get(name).cloned(), None, &|_| Exchanged::None)
    }

    fn credentials_dir(json: &str) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("credentials.json"), json).unwrap();
        dir
    }

    #[test]
    fn environment_variables_win() {
        let dir = credentials_dir(r#"{"current":"https://other.example","accounts":{}}"#);
        let login = resolve_with(&[
            ("PULUMI_HOME", dir.path().to_str().unwrap()),
            ("PULUMI_BACKEND_URL", "http://127.0.0.1:9/"),
            ("PULUMI_ACCESS_TOKEN", "pul-env"),
        ])
        .unwrap();
        assert_eq!(login.backend, "http://127.0.0.1:9");
        assert_eq!(login.token, "pul-env");
    }

    #[test]
    fn reads_accounts_then_legacy_tokens_for_the_current_backend() {
        let dir = credentials_dir(
            r#"{"current":"https://api.example/","accounts":{"https://api.example":{"accessToken":"pul-acct"}},
                "accessTokens":{"https://legacy.example":"pul-legacy"}}"#,
        );
        let home = dir.path().to_str().unwrap();
        let login = resolve_with(&[("PULUMI_HOME", home)]).unwrap();
        assert_eq!(
            (login.backend.as_str(), login.token.as_str()),
            ("https://api.example", "pul-acct")
        );
        let legacy = resolve_with(&[
            ("PULUMI_HOME", home),
            ("PULUMI_API", "https://legacy.example"),
        ])
        .unwrap();
        assert_eq!(legacy.token, "pul-legacy");
    }

    #[test]
    fn a_token_is_never_borrowed_from_another_backend() {
        let dir = credentials_dir(
            r#"{"accounts":{"https://api.pulumi.com":{"accessToken":"pul-cloud"}}}"#,
        );
        let err = resolve_with(&[
            ("PULUMI_HOME", dir.path().to_str().unwrap()),
            ("PULUMI_BACKEND_URL", "https://self-hosted.example"),
        ])
        .unwrap_err();
        assert!(
            err.to_string()
                .contains("not logged in to https://self-hosted.example"),
            "{err}"
        );
    }

    #[test]
    fn diy_backends_and_encrypted_files_are_explained() {
        let err = resolve_with(&[("PULUMI_BACKEND_URL", "s3://bucket")]).unwrap_err();
        assert!(err.to_string().contains("no ESC"), "{err}");
        let dir = credentials_dir(r#"{"$pulumiSecureStore":{"ciphertext":"x"}}"#);
        let err = resolve_with(&[("PULUMI_HOME", dir.path().to_str().unwrap())]).unwrap_err();
        assert!(err.to_string().contains("encrypted"), "{err}");
    }
}
