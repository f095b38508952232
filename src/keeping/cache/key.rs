//! Cache keys: SHA-256 over everything that changes what an open returns.

use std::time::Duration;

use crate::ground::digest::sha256_hex;
use crate::provider::OpenRequest;

/// Bumped when the entry format or the key's parts change; older entries are then misses.
const SCHEMA: u32 = 1;

/// The account name an entry is stored under: backend, environment (with version), the
/// `.escrc` settings that shape the result (ttl, open duration, the `aws:` STS steps and the
/// directory their token files are relative to), the identity, the schema.
pub fn account(backend: &str, identity: &str, request: &OpenRequest) -> String {
    let seconds =
        |d: Option<Duration>| d.map_or_else(|| "-".to_string(), |d| d.as_secs().to_string());
    // The whole ordered list; a single environment reads as it always did.
    let environment = match request.envs {
        [] => "-".to_string(),
        envs => crate::inputs::escrc::environments_label(envs),
    };
    let aws = match request.aws {
        Some(aws) => format!(
            "{}@{}",
            serde_json::to_string(aws).unwrap_or_default(),
            request.project_dir.display()
        ),
        None => "-".into(),
    };
    let canonical = format!(
        "esc-hook-cache\nschema={SCHEMA}\nbackend={backend}\nenvironment={environment}\nttl={}\nopen-duration={}\naws={aws}\nidentity={identity}\n",
        seconds(request.ttl),
        seconds(Some(request.open_duration)),
    );
    sha256_hex(&[canonical.as_bytes()])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inputs::escrc::EnvRef;
    use crate::provider::login::identity;

    #[test]
    fn every_part_changes_the_key() {
        let env = [EnvRef::parse("acme/payments/dev").unwrap()];
        let other_env = [EnvRef::parse("acme/payments/dev@3").unwrap()];
        let pair = [
            EnvRef::parse("acme/aws/dev").unwrap(),
            EnvRef::parse("acme/payments/dev").unwrap(),
        ];
        let swapped = [pair[1].clone(), pair[0].clone()];
        fn request(envs: &[EnvRef], ttl: Option<Duration>) -> OpenRequest<'_> {
            OpenRequest {
                envs,
                open_duration: Duration::from_secs(7200),
                ttl,
                aws: None,
                project_dir: std::path::Path::new("/p"),
                escrc_file: None,
            }
        }
        let id = identity("https://api.pulumi.com", "pul-1");
        let base = account("https://api.pulumi.com", &id, &request(&env, None));
        assert_eq!(
            base,
            account("https://api.pulumi.com", &id, &request(&env, None))
        );
        for other in [
            account("https://other", &id, &request(&env, None)),
            account(
                "https://api.pulumi.com",
                &identity("https://api.pulumi.com", "pul-2"),
                &request(&env, None),
            ),
            account("https://api.pulumi.com", &id, &request(&other_env, None)),
            account("https://api.pulumi.com", &id, &request(&pair, None)),
            account("https://api.pulumi.com", &id, &request(&swapped, None)),
            account(
                "https://api.pulumi.com",
                &id,
                &request(&env, Some(Duration::from_secs(60))),
            ),
        ] {
            assert_ne!(base, other);
        }
        assert!(!base.contains("pul-1"));
    }
}
