//! How esc-hook reaches the network: the proxies and CA certificates of the user's own
//! environment ([`Network`], taken from the settings), handed to each HTTP client explicitly.
//!
//! The HTTP libraries would read them from the process environment by themselves, and that
//! environment holds whatever the current project exported: a project's `HTTPS_PROXY` or
//! `SSL_CERT_FILE` must never see the user's Pulumi token or OIDC token. So every client is
//! built from a [`Network`] taken from the settings (the user's own values), with the libraries'
//! own environment lookups switched off; nothing writes the process environment to make them
//! look right.

use std::path::Path;

pub use crate::settings::Network;

impl Network {
    /// A reqwest client builder for requests to `url`, with exactly these proxies and trust
    /// roots.
    pub fn http_client(&self, url: &str) -> Result<reqwest::ClientBuilder, String> {
        // The one TLS stack (rustls with ring); installing it twice is harmless.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let mut builder = reqwest::Client::builder().no_proxy();
        let no_proxy = || {
            self.no_proxy
                .as_deref()
                .and_then(reqwest::NoProxy::from_string)
        };
        let proxies: [(&str, Option<&str>, ProxyFor); 3] = [
            ("HTTP_PROXY", self.http_proxy.as_deref(), |u| {
                reqwest::Proxy::http(u)
            }),
            ("HTTPS_PROXY", self.https_proxy.as_deref(), |u| {
                reqwest::Proxy::https(u)
            }),
            ("ALL_PROXY", self.all_proxy.as_deref(), |u| {
                reqwest::Proxy::all(u)
            }),
        ];
        // reqwest tries proxies in order: a scheme's own before ALL_PROXY.
        for (name, proxy_url, kind) in proxies {
            if let Some(proxy_url) = proxy_url {
                // Named, never shown: a proxy's URL may hold its password.
                let proxy = kind(proxy_url)
                    .map_err(|_| format!("{name} (or its lower-case form) is not a proxy URL"))?;
                builder = builder.proxy(proxy.no_proxy(no_proxy()));
            }
        }
        if let Some(roots) = self.roots_for(url)? {
            let certificates: Vec<reqwest::Certificate> = roots
                .iter()
                .filter_map(|der| reqwest::Certificate::from_der(der).ok())
                .collect();
            builder = builder.tls_certs_only(certificates);
        }
        Ok(builder)
    }

    /// The AWS SDK's HTTP client for `url` (none: AWS's own endpoint) with these trust roots (it
    /// reads no proxy from the environment, and esc-hook configures none for it).
    pub fn sts_http_client(
        &self,
        url: Option<&str>,
    ) -> Result<aws_sdk_sts::config::SharedHttpClient, String> {
        use aws_smithy_http_client::tls;
        let builder = aws_smithy_http_client::Builder::new().tls_provider(tls::Provider::Rustls(
            tls::rustls_provider::CryptoMode::Ring,
        ));
        let builder = match self.roots_for(url.unwrap_or("https://"))? {
            None => builder,
            Some(roots) => {
                let mut store = tls::TrustStore::empty().with_native_roots(false);
                for der in &roots {
                    store.add_pem_certificate(pem(der));
                }
                let context = tls::TlsContext::builder()
                    .with_trust_store(store)
                    .build()
                    .map_err(|e| format!("the CA certificates: {e}"))?;
                builder.tls_context(context)
            }
        };
        Ok(builder.build_https())
    }

    /// The CA certificates for requests to `url`: none at all for plain HTTP (loading them costs
    /// a millisecond, and a redirect to HTTPS then fails closed) unless a proxy is reached over
    /// TLS, else [`Network::roots`].
    fn roots_for(&self, url: &str) -> Result<Option<Vec<Vec<u8>>>, String> {
        let tls = |url: &str| {
            url.get(..8)
                .is_some_and(|s| s.eq_ignore_ascii_case("https://"))
        };
        let proxies = [&self.http_proxy, &self.https_proxy, &self.all_proxy];
        match cfg!(target_os = "linux")
            && !tls(url)
            && !proxies.iter().any(|p| p.as_deref().is_some_and(tls))
        {
            true => Ok(Some(Vec::new())),
            false => self.roots(),
        }
    }

    /// The CA certificates to trust, in DER: the user's `SSL_CERT_FILE`/`SSL_CERT_DIR`, else the
    /// system's bundle and directories. `None` where the platform's own verifier reads no
    /// environment (macOS, Windows) and is used as it is.
    fn roots(&self) -> Result<Option<Vec<Vec<u8>>>, String> {
        if !cfg!(target_os = "linux") {
            return Ok(None);
        }
        let (file, dirs): (Option<&Path>, Vec<&Path>) =
            match (self.cert_file.as_deref(), self.cert_dir.as_deref()) {
                (None, None) => (
                    SYSTEM_BUNDLES.iter().map(Path::new).find(|p| p.exists()),
                    SYSTEM_DIRS
                        .iter()
                        .map(Path::new)
                        .filter(|p| p.exists())
                        .collect(),
                ),
                (file, dir) => (file, dir.into_iter().collect()),
            };
        // The bundle and the directories hold the same certificates, most of them twice.
        let mut roots: Vec<Vec<u8>> = Vec::new();
        let mut seen = std::collections::HashSet::new();
        let mut add = |result: rustls_native_certs::CertificateResult| {
            for certificate in result.certs {
                if seen.insert(certificate.as_ref().to_vec()) {
                    roots.push(certificate.as_ref().to_vec());
                }
            }
        };
        add(rustls_native_certs::load_certs_from_paths(file, None));
        for dir in dirs {
            add(rustls_native_certs::load_certs_from_paths(None, Some(dir)));
        }
        match roots.is_empty() {
            true => Err(match &self.cert_file {
                Some(file) => format!("no CA certificate could be read from {}", file.display()),
                None => "no CA certificates found: install the system's bundle (ca-certificates) or set SSL_CERT_FILE".into(),
            }),
            false => Ok(Some(roots)),
        }
    }
}

type ProxyFor = fn(&str) -> reqwest::Result<reqwest::Proxy>;

/// Where Linux distributions keep the CA bundle, and the directories of single certificates (as
/// OpenSSL and rustls' native roots look for them).
const SYSTEM_BUNDLES: &[&str] = &[
    "/etc/ssl/certs/ca-certificates.crt",
    "/etc/pki/ca-trust/extracted/pem/tls-ca-bundle.pem",
    "/etc/pki/tls/certs/ca-bundle.crt",
    "/etc/ssl/ca-bundle.pem",
    "/etc/pki/tls/cacert.pem",
    "/etc/ssl/cert.pem",
    "/opt/etc/ssl/certs/ca-certificates.crt",
    "/etc/ssl/certs/cacert.pem",
];
const SYSTEM_DIRS: &[&str] = &["/etc/ssl/certs", "/etc/pki/tls/certs"];

/// A DER certificate as PEM, which the AWS SDK's trust store takes.
fn pem(der: &[u8]) -> Vec<u8> {
    use base64::Engine;
    let encoded = base64::engine::general_purpose::STANDARD.encode(der);
    let mut text = String::from("-----BEGIN CERTIFICATE-----\n");
    for line in encoded.as_bytes().chunks(64) {
        text.push_str(&String::from_utf8_lossy(line));
        text.push('\n');
    }
    text.push_str("-----END CERTIFICATE-----\n");
    text.into_bytes()
}

/// A response's whole body, at most `limit` bytes: refused as it arrives past that, never
/// held. The error is a reason, for a line that names the endpoint.
pub async fn bounded_body(
    mut response: reqwest::Response,
    limit: usize,
) -> Result<Vec<u8>, String> {
    let mut body = Vec::new();
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|e| crate::ground::names::printable(&e.without_url().to_string(), 160))?
    {
        if body.len() + chunk.len() > limit {
            return Err(format!("the answer is larger than {} KiB", limit / 1024));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_system_roots_are_found_without_the_environment() {
        if !cfg!(target_os = "linux") {
            return;
        }
        let roots = Network::default().roots().unwrap().unwrap();
        assert!(roots.len() > 10, "{} roots", roots.len());
        let pem = pem(&roots[0]);
        assert!(pem.starts_with(b"-----BEGIN CERTIFICATE-----\n"));
    }

    #[test]
    fn a_bad_proxy_is_named_and_its_password_never_shown() {
        let network = Network {
            https_proxy: Some("http://user:s3cret@[bad".into()),
            ..Network::default()
        };
        let error = network.http_client("https://api.pulumi.com").unwrap_err();
        assert!(error.starts_with("HTTPS_PROXY"), "{error}");
        assert!(!error.contains("s3cret"), "{error}");
    }

    #[test]
    fn plain_http_loads_no_roots_and_tls_anywhere_does() {
        if !cfg!(target_os = "linux") {
            return;
        }
        let plain = Network::default();
        assert_eq!(
            plain.roots_for("http://127.0.0.1:8080").unwrap(),
            Some(Vec::new())
        );
        assert!(
            plain
                .roots_for("https://api.pulumi.com")
                .unwrap()
                .unwrap()
                .len()
                > 10
        );
        assert!(
            plain
                .roots_for("HTTPS://api.pulumi.com")
                .unwrap()
                .unwrap()
                .len()
                > 10
        );
        let through_a_tls_proxy = Network {
            https_proxy: Some("https://proxy.corp:3128".into()),
            ..Network::default()
        };
        assert!(
            !through_a_tls_proxy
                .roots_for("http://127.0.0.1:8080")
                .unwrap()
                .unwrap()
                .is_empty()
        );
    }

    #[test]
    fn a_users_bundle_replaces_the_systems() {
        if !cfg!(target_os = "linux") {
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let bundle = dir.path().join("one.pem");
        let system = Network::default().roots().unwrap().unwrap();
        std::fs::write(&bundle, pem(&system[0])).unwrap();
        let network = Network {
            cert_file: Some(bundle),
            ..Network::default()
        };
        assert_eq!(network.roots().unwrap().unwrap(), vec![system[0].clone()]);
        let empty = dir.path().join("empty.pem");
        std::fs::write(&empty, "").unwrap();
        let error = Network {
            cert_file: Some(empty),
            ..Network::default()
        }
        .roots()
        .unwrap_err();
        assert!(error.contains("empty.pem"), "{error}");
    }
}
