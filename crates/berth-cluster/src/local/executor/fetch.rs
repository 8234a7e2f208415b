//! Fetching a task's URIs into its sandbox.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use berth_mesos::CommandUri;

/// Where a URI without `output_file` lands inside the sandbox (relative path).
///
/// Config templates served by the scheduler (`…/v1/artifacts/template/…/<name>`) land in
/// `config-templates/<name>`, where `CONFIG_TEMPLATE_*` variables point; anything else under
/// its last path segment.
pub(crate) fn output_name(uri: &str) -> Result<PathBuf, String> {
    let path = match uri.find("://") {
        Some(i) => {
            let rest = &uri[i + 3..];
            let rest = if uri.starts_with("file://") {
                rest
            } else {
                rest.find('/').map_or("", |j| &rest[j..])
            };
            rest.split(['?', '#']).next().unwrap_or("")
        }
        None => uri,
    };
    let last = path
        .trim_end_matches('/')
        .rsplit('/')
        .next()
        .filter(|s| !s.is_empty() && *s != "." && *s != "..")
        .ok_or_else(|| "the URI names no file".to_owned())?;
    if path.contains("/v1/artifacts/template/") {
        Ok(Path::new("config-templates").join(last))
    } else {
        Ok(PathBuf::from(last))
    }
}

/// Fetches every URI; the error names the URI.
pub(super) async fn fetch_all(uris: &[CommandUri], sandbox: &Path) -> Result<(), String> {
    for u in uris {
        fetch_one(u, sandbox)
            .await
            .map_err(|e| format!("fetch of URI `{}` failed: {e}", u.value))?;
        super::task::tlog(sandbox, &format!("fetched {}", u.value));
    }
    Ok(())
}

async fn fetch_one(u: &CommandUri, sandbox: &Path) -> Result<(), String> {
    let rel = match &u.output_file {
        Some(f) => {
            let f = f.trim_start_matches('/');
            if f.is_empty() || f.split('/').any(|c| c == "..") {
                return Err(format!(
                    "output_file `{f}` must be a path inside the sandbox"
                ));
            }
            PathBuf::from(f)
        }
        None => output_name(&u.value)?,
    };
    let dest = sandbox.join(rel);
    if let Some(parent) = dest.parent() {
        std::fs::create_dir_all(parent).map_err(|e| format!("{}: {e}", parent.display()))?;
    }
    let v = u.value.as_str();
    if v.starts_with("http://") {
        let client = reqwest::Client::builder()
            .no_proxy()
            .timeout(Duration::from_secs(120))
            .build()
            .map_err(|e| e.to_string())?;
        let resp = client.get(v).send().await.map_err(|e| e.to_string())?;
        let status = resp.status();
        if !status.is_success() {
            return Err(format!("HTTP {status}"));
        }
        let body = resp.bytes().await.map_err(|e| e.to_string())?;
        std::fs::write(&dest, &body).map_err(|e| format!("{}: {e}", dest.display()))?;
    } else if let Some(path) = v.strip_prefix("file://") {
        std::fs::copy(path, &dest).map_err(|e| format!("cannot copy {path}: {e}"))?;
    } else if v.contains("://") {
        return Err("only http://, file:// and plain paths are supported".to_owned());
    } else {
        std::fs::copy(v, &dest).map_err(|e| format!("cannot copy {v}: {e}"))?;
    }
    if u.executable {
        std::fs::set_permissions(&dest, std::fs::Permissions::from_mode(0o755))
            .map_err(|e| format!("chmod {}: {e}", dest.display()))?;
    }
    let name = dest.to_string_lossy().to_string();
    let is_tar = [
        ".tar", ".tar.gz", ".tgz", ".tar.bz2", ".tbz2", ".tar.xz", ".txz",
    ]
    .iter()
    .any(|s| name.ends_with(s));
    if u.extract && is_tar {
        let st = tokio::process::Command::new("tar")
            .arg("-xf")
            .arg(&dest)
            .arg("-C")
            .arg(sandbox)
            .status()
            .await
            .map_err(|e| format!("cannot run tar: {e}"))?;
        if !st.success() {
            return Err(format!("tar could not extract {} ({st})", dest.display()));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn output_names() {
        assert_eq!(
            output_name("http://127.0.0.1:8080/v1/artifacts/template/c1/hello/server/cfg").unwrap(),
            PathBuf::from("config-templates/cfg")
        );
        assert_eq!(
            output_name("file:///tmp/a/b.tgz").unwrap(),
            PathBuf::from("b.tgz")
        );
        assert_eq!(output_name("/opt/x").unwrap(), PathBuf::from("x"));
        assert_eq!(
            output_name("http://h/d/bootstrap.zip?x=1").unwrap(),
            PathBuf::from("bootstrap.zip")
        );
        assert!(output_name("http://h/").is_err());
    }
}
