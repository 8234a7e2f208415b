//! Loading a service: a package directory (rendered with its options) or a plain `svc.yml`
//! (rendered with the process environment).

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use berth_spec::DirFiles;
use berth_spec::{
    Backend, Env, Missing, Package, ServiceSpec, SpecInput, load_spec, unsupported_on,
};

/// A rendered, parsed and checked service.
#[derive(Debug)]
pub struct LoadedService {
    /// The spec.
    pub spec: ServiceSpec,
    /// The scheduler environment: the package's (options mapped to variables), or the process
    /// environment for a plain svc.yml.
    pub env: Env,
    /// The rendered YAML.
    pub rendered: String,
    /// Template values that were not set (`NAME@L<line>`).
    pub missing: Vec<Missing>,
    /// What was loaded, for messages (`examples/hello-world (package)`).
    pub source: String,
}

/// The process environment as an [`Env`] (variables that are not UTF-8 are skipped).
#[must_use]
pub fn process_env() -> Env {
    std::env::vars_os()
        .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)))
        .collect()
}

/// Loads `path` (package directory or svc.yml). `extra` is added to the environment the spec
/// is rendered with (package variables win over it).
///
/// # Errors
/// Unreadable files, bad options, template or spec errors — every error listed.
pub fn load(path: &Path, options: Option<&Path>, extra: &Env) -> Result<LoadedService> {
    if !path.exists() {
        bail!(
            "{} does not exist; give a svc.yml or a package directory (svc.yml, config.json)",
            path.display()
        );
    }
    if path.is_dir() {
        let name = path
            .canonicalize()
            .ok()
            .and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
            .unwrap_or_else(|| "package".to_owned());
        let files = DirFiles(path.to_path_buf());
        let package =
            Package::load(&name, &files).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
        let options_text = match options {
            Some(o) => Some(
                std::fs::read_to_string(o)
                    .with_context(|| format!("cannot read the options file {}", o.display()))?,
            ),
            None => None,
        };
        // Config templates whose names are built from options (`jvm_{{GC_KIND}}.options`)
        // are known only once the spec is rendered: they are read from the package then.
        let (env, loaded) = package
            .load_spec_with_files(options_text.as_deref(), extra, &files)
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        Ok(LoadedService {
            spec: loaded.spec,
            env,
            rendered: loaded.rendered,
            missing: loaded.missing,
            source: format!("{} (package)", path.display()),
        })
    } else {
        if options.is_some() {
            bail!(
                "--options applies to package directories; {} is a single svc.yml, rendered with \
                 the process environment",
                path.display()
            );
        }
        let template = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read {}", path.display()))?;
        let mut env = extra.clone();
        env.extend(process_env());
        let dir: PathBuf = path
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_else(|| PathBuf::from("."));
        let file_name = path.display().to_string();
        let loaded = load_spec(&SpecInput {
            file_name: &file_name,
            template: &template,
            env: &env,
            files: &DirFiles(dir),
        })
        .map_err(|e| anyhow::anyhow!("{e}"))?;
        Ok(LoadedService {
            spec: loaded.spec,
            env,
            rendered: loaded.rendered,
            missing: loaded.missing,
            source: path.display().to_string(),
        })
    }
}

/// Features of the spec that berth cannot run on `backend`, one line each.
#[must_use]
pub fn unsupported(spec: &ServiceSpec, backend: Backend) -> Vec<String> {
    unsupported_on(spec, backend)
        .into_iter()
        .map(|u| u.to_string())
        .collect()
}

/// Renders updates (`POST /v1/update`) the way `berth run` loads `path`: a package's options
/// are checked against its schema and rendered with its templates; a spec text is rendered
/// with the environment the service was started with (a package's options as variables, or
/// the process environment for a plain svc.yml) and its config templates are read from
/// beside `path`. Features `backend` cannot run are errors too.
#[must_use]
pub fn renderer(
    path: &Path,
    started_env: Env,
    extra: Env,
    backend: Backend,
) -> berth_api::Renderer {
    let path = path.to_path_buf();
    std::sync::Arc::new(move |source: berth_api::UpdateSource| {
        let lines = |e: &dyn std::fmt::Display| -> Vec<String> {
            e.to_string()
                .lines()
                .map(str::trim_end)
                .filter(|l| !l.trim().is_empty())
                .map(str::to_owned)
                .collect()
        };
        let dir = if path.is_dir() {
            path.clone()
        } else {
            path.parent()
                .map(Path::to_path_buf)
                .unwrap_or_else(|| PathBuf::from("."))
        };
        let files = DirFiles(dir);
        let spec = match source {
            berth_api::UpdateSource::Options { options, .. } => {
                if !path.is_dir() {
                    return Err(vec![format!(
                        "options apply to package directories; {} is a single svc.yml: send \
                         {{\"spec\": …}} instead",
                        path.display()
                    )]);
                }
                let name = path
                    .canonicalize()
                    .ok()
                    .and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
                    .unwrap_or_else(|| "package".to_owned());
                let package = Package::load(&name, &files).map_err(|e| lines(&e))?;
                let (_, loaded) = package
                    .load_spec_with_files(Some(&options.to_string()), &extra, &files)
                    .map_err(|e| lines(&e))?;
                loaded.spec
            }
            berth_api::UpdateSource::Spec(text) => {
                load_spec(&SpecInput {
                    file_name: "svc.yml",
                    template: &text,
                    env: &started_env,
                    files: &files,
                })
                .map_err(|e| lines(&e))?
                .spec
            }
        };
        let unsupported = unsupported(&spec, backend);
        if unsupported.is_empty() {
            Ok(spec)
        } else {
            Err(unsupported)
        }
    })
}
