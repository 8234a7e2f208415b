//! `berth run --master …`: the Mesos backend's settings from the command line, checked before
//! anything is written.

use anyhow::{Result, anyhow, bail};
use berth_cluster::mesos::{Masters, MesosConfig};
use berth_spec::ServiceSpec;

use crate::run::MesosArgs;

/// What `--master` and its flags set.
#[derive(Debug)]
pub struct Settings {
    /// The backend's configuration.
    pub config: MesosConfig,
    /// Host and port of the scheduler API as agents reach it (`--advertise-url`): tasks get
    /// them (`SCHEDULER_API_HOSTNAME`, `SCHEDULER_API_PORT`) and fetch their config templates
    /// from there.
    pub advertised: Option<(String, u16)>,
}

/// The backend's settings (`None` without `--master`); `--role`, `--principal` and the web
/// UI link are applied to `spec`, so reservations carry them. Tasks reach the scheduler at
/// `--advertise-url`, else at the API's `listen` address.
///
/// # Errors
/// A malformed master URL, role, advertised URL, or an unreadable secret file.
pub fn settings(
    args: &MesosArgs,
    spec: &mut ServiceSpec,
    listen: std::net::SocketAddr,
) -> Result<Option<Settings>> {
    let Some(master) = &args.master else {
        return Ok(None);
    };
    let masters = Masters::parse(master).map_err(|e| anyhow!("{e}"))?;
    if let Some(role) = &args.role {
        let bad = role.is_empty()
            || role == "*"
            || role.starts_with(['-', '.', '/'])
            || role.contains(['\\', ' ', '\t', '\n'])
            || role
                .split('/')
                .any(|p| p.is_empty() || p == "." || p == "..");
        if bad {
            bail!(
                "--role {role:?}: a role is a name such as hello-world-role or a/b (not '*', no \
                 spaces, backslashes or empty, '.' or '..' parts, not starting with '-', '.' or '/')"
            );
        }
        spec.role.clone_from(role);
    }
    if let Some(principal) = &args.principal {
        if principal.trim().is_empty() {
            bail!("--principal: empty; give the principal the master knows the scheduler by");
        }
        spec.principal.clone_from(principal);
    }
    let credentials = match &args.secret_file {
        None => None,
        Some(file) => {
            let secret = std::fs::read_to_string(file)
                .map_err(|e| anyhow!("--secret-file {}: {e}", file.display()))?;
            let secret = secret.trim().to_owned();
            if secret.is_empty() {
                bail!("--secret-file {}: the file is empty", file.display());
            }
            Some((spec.principal.clone(), secret))
        }
    };
    let advertised = match &args.advertise_url {
        Some(url) => Some(check_url("--advertise-url", url)?),
        None => None,
    };
    if let Some(url) = &args.webui_url {
        spec.web_url = Some(check_url("--webui-url", url)?.0);
    } else if let Some((url, _, _)) = &advertised {
        spec.web_url = Some(url.clone());
    }
    let api = advertised
        .as_ref()
        .map(|(_, host, port)| (host.clone(), *port));
    let hostname = advertised.map(|(_, host, _)| host).or_else(|| {
        std::fs::read_to_string("/proc/sys/kernel/hostname")
            .ok()
            .map(|h| h.trim().to_owned())
            .filter(|h| !h.is_empty())
    });
    let mut config = MesosConfig::new(masters);
    config.credentials = credentials;
    config.hostname = hostname;
    config.artifacts_url = Some(args.advertise_url.as_ref().map_or_else(
        || format!("http://{listen}"),
        |u| u.trim_end_matches('/').to_owned(),
    ));
    if let Some(file) = &args.master_ca_file {
        let pem =
            std::fs::read(file).map_err(|e| anyhow!("--master-ca-file {}: {e}", file.display()))?;
        if !String::from_utf8_lossy(&pem).contains("-----BEGIN CERTIFICATE-----") {
            bail!(
                "--master-ca-file {}: no PEM certificate in it (expected -----BEGIN CERTIFICATE-----)",
                file.display()
            );
        }
        config.ca_pem = Some(pem);
    }
    if args.maintenance == "accept" {
        config.maintenance = berth_cluster::mesos::Maintenance::Accept;
    }
    Ok(Some(Settings {
        config,
        advertised: api,
    }))
}

/// `http(s)://HOST[:PORT][/PATH]`: the URL (without a trailing slash), its host and port.
fn check_url(flag: &str, url: &str) -> Result<(String, String, u16)> {
    let rest = url
        .strip_prefix("http://")
        .or_else(|| url.strip_prefix("https://"))
        .ok_or_else(|| anyhow!("{flag} {url:?}: expected http://HOST:PORT or https://HOST:PORT"))?;
    let authority = rest.split('/').next().unwrap_or_default();
    let default_port = if url.starts_with("https://") { 443 } else { 80 };
    let (host, port) = match authority.rsplit_once(':') {
        Some((h, port)) => match port.parse::<u16>() {
            Ok(p) if p > 0 => (h, p),
            _ => bail!("{flag} {url:?}: port {port:?} is not a number between 1 and 65535"),
        },
        None => (authority, default_port),
    };
    if host.is_empty() {
        bail!("{flag} {url:?}: no host");
    }
    Ok((url.trim_end_matches('/').to_owned(), host.to_owned(), port))
}
