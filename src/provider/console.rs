//! The AWS console for a project's session, as aws-vault's `login` does: a sign-in token from
//! the AWS federation endpoint (`Action=getSigninToken`, the session as JSON), then the
//! `Action=login` URL. The secret key and session token go to that endpoint only: never into
//! the URL, a log line or an error.

use serde_json::{Value as Json, json};

use super::ProviderError;
use super::network::Network;
use super::sts::Session;
use crate::ground::names::printable;
use crate::settings::Timeouts;

/// The federation endpoint of a region's partition.
pub fn endpoint_for(region: Option<&str>) -> &'static str {
    match region {
        Some(r) if r.starts_with("us-gov-") => "https://signin.amazonaws-us-gov.com/federation",
        Some(r) if r.starts_with("cn-") => "https://signin.amazonaws.cn/federation",
        _ => "https://signin.aws.amazon.com/federation",
    }
}

/// The console's home page for a region (a validated one), in its partition.
pub fn console_for(region: Option<&str>) -> String {
    match region {
        Some(r) if r.starts_with("us-gov-") => {
            format!("https://console.amazonaws-us-gov.com/console/home?region={r}")
        }
        Some(r) if r.starts_with("cn-") => {
            format!("https://console.amazonaws.cn/console/home?region={r}")
        }
        Some(r) => format!("https://{r}.console.aws.amazon.com/console/home?region={r}"),
        None => "https://console.aws.amazon.com/console/home".to_string(),
    }
}

fn encode(text: &str) -> String {
    let mut out = String::new();
    for byte in text.bytes() {
        match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(byte as char)
            }
            _ => out.push_str(&format!("%{byte:02X}")),
        }
    }
    out
}

/// The sign-in URL for `session`, opening `destination`.
pub fn signin_url(
    session: &Session,
    endpoint: &str,
    destination: &str,
    network: &Network,
    timeouts: Timeouts,
) -> Result<String, ProviderError> {
    let Some(session_token) = &session.session_token else {
        return Err(ProviderError::Config(
            "the console needs a session (temporary credentials with a session token), and these are long-lived keys: esc-hook does not turn them into a federation token".into(),
        ));
    };
    let session_json = json!({
        "sessionId": session.access_key_id,
        "sessionKey": session.secret_access_key,
        "sessionToken": session_token,
    })
    .to_string();
    let url = format!(
        "{endpoint}?Action=getSigninToken&Session={}",
        encode(&session_json)
    );
    let fail = |reason: String| {
        ProviderError::Config(format!("the AWS sign-in endpoint {endpoint}: {reason}"))
    };
    // The endpoint only: the request's query holds the session.
    crate::ground::log::debug(format!("GET {endpoint}?Action=getSigninToken"));
    let http = network
        .http_client(endpoint)
        .map_err(ProviderError::Config)?
        .connect_timeout(timeouts.connect)
        .timeout(timeouts.total)
        .build()
        .map_err(|e| fail(e.to_string()))?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| fail(format!("could not start the network runtime: {e}")))?;
    let (status, body) = runtime.block_on(async {
        // Errors without the URL: it holds the session.
        let response = http
            .get(&url)
            .send()
            .await
            .map_err(|e| fail(printable(&e.without_url().to_string(), 160)))?;
        let status = response.status();
        let body = super::network::bounded_body(response, 64 * 1024)
            .await
            .map_err(fail)?;
        Ok((status, body))
    })?;
    let token = serde_json::from_slice::<Json>(&body)
        .ok()
        .and_then(|j| {
            j.get("SigninToken")
                .and_then(Json::as_str)
                .map(String::from)
        })
        .filter(|t| status.is_success() && !t.is_empty());
    let Some(token) = token else {
        return Err(fail(format!(
            "no sign-in token ({}): the session may have expired, or may not be allowed to sign in to the console",
            status.as_u16()
        )));
    };
    Ok(format!(
        "{endpoint}?Action=login&Issuer=esc-hook&Destination={}&SigninToken={}",
        encode(destination),
        encode(&token)
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partitions_choose_the_endpoint_and_console() {
        assert_eq!(
            endpoint_for(Some("eu-west-1")),
            "https://signin.aws.amazon.com/federation"
        );
        assert_eq!(
            endpoint_for(Some("us-gov-west-1")),
            "https://signin.amazonaws-us-gov.com/federation"
        );
        assert_eq!(
            endpoint_for(Some("cn-north-1")),
            "https://signin.amazonaws.cn/federation"
        );
        assert_eq!(
            console_for(Some("eu-west-1")),
            "https://eu-west-1.console.aws.amazon.com/console/home?region=eu-west-1"
        );
        assert_eq!(encode("a b/{\"x\"}"), "a%20b%2F%7B%22x%22%7D");
    }
}
