//! `esc-hook console`: the AWS console for this project, signed in with its current session
//! (the same credentials the hook exports: cached, refreshed if needed).

use std::path::PathBuf;

use anyhow::{anyhow, bail};

use crate::ground::log;
use crate::provider::console;
use crate::provider::sts::Session;
use crate::provider::{OpenRequest, Provider, Value};
use crate::settings::Settings;

pub struct Options {
    pub env: Option<String>,
    pub dir: Option<PathBuf>,
    /// Print the URL instead of opening it.
    pub print: bool,
    pub destination: Option<String>,
}

/// The setting (config key `aws-signin-url`) that names another federation endpoint: the
/// user's only, never a project's (`ESC_HOOK_*` is reserved) or an environment's.
const SIGNIN_URL: &str = "ESC_HOOK_AWS_SIGNIN_URL";

pub fn run(settings: &'static Settings, options: Options) -> anyhow::Result<()> {
    let escrc = super::project_escrc(settings, options.env, options.dir)?;
    let request = OpenRequest::for_escrc(&escrc).ok_or_else(|| {
        anyhow!(
            "{} opens no environment: it has no AWS session",
            escrc.label()
        )
    })?;
    let provider = crate::project::sources::provider_for(settings, &request)?;
    let resolved = provider.resolve(&request)?;
    let session = Session::from_vars(&resolved.vars)
        .ok_or_else(|| anyhow!("{} has no AWS credentials", request.label()))?;
    // The console's region: the project's, when it is a region at all.
    let text = |name: &str| {
        resolved
            .vars
            .iter()
            .find_map(|v| match (&v.value, v.name == name) {
                (Value::Text(text), true) => Some(text.clone()),
                _ => None,
            })
    };
    let region = escrc
        .aws
        .as_ref()
        .and_then(|aws| aws.region.clone())
        .or_else(|| text("AWS_REGION"))
        .or_else(|| text("AWS_DEFAULT_REGION"))
        .filter(|r| crate::ground::names::is_region(r));
    let endpoint = match settings.setting(SIGNIN_URL) {
        Some(url) if url.value.starts_with("https://") || url.value.starts_with("http://") => {
            url.value
        }
        Some(url) => bail!("{} must be an http(s) URL", url.origin),
        None => console::endpoint_for(region.as_deref()).to_string(),
    };
    let destination = options
        .destination
        .unwrap_or_else(|| console::console_for(region.as_deref()));
    let network = settings.network().map_err(|e| anyhow!(e))?;
    let timeouts = settings.timeouts().map_err(|e| anyhow!(e))?;
    let url = console::signin_url(&session, &endpoint, &destination, &network, timeouts)?;
    if options.print {
        return super::print(&format!("{url}\n"));
    }
    open_in_browser(settings, &url)?;
    log::info(format!("opened the AWS console for {}", request.label()));
    Ok(())
}

/// `$BROWSER`, else the desktop's opener.
fn open_in_browser(settings: &Settings, url: &str) -> anyhow::Result<()> {
    let browser = settings.var("BROWSER").map(String::from);
    let command: Vec<String> = match browser {
        Some(browser) => shell_words::split(&browser).map_err(|e| anyhow!("BROWSER: {e}"))?,
        None if cfg!(target_os = "macos") => vec!["open".into()],
        None => vec!["xdg-open".into()],
    };
    let (program, args) = command
        .split_first()
        .ok_or_else(|| anyhow!("BROWSER is empty"))?;
    let status = std::process::Command::new(program)
        .args(args)
        .arg(url)
        .env_clear()
        .envs(settings.clean_env())
        .stdin(std::process::Stdio::null())
        .status()
        .map_err(|e| {
            anyhow!(
                "could not start {program} to open the console ({}): use --print",
                crate::ground::fs::io_reason(&e)
            )
        })?;
    if !status.success() {
        bail!("{program} could not open the console ({status}): use --print");
    }
    Ok(())
}
