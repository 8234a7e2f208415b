//! Config-template rendering for the executor (`CONFIG_TEMPLATE_<NAME>=config-templates/<name>,<dest>`).
//!
//! Delegates to berth-spec's mustache renderer ([`berth_spec::render::render_env`]), so config
//! templates render exactly as `svc.yml` does: `{{VAR}}` HTML-escaped, `{{{VAR}}}` and
//! `{{&VAR}}` raw, `{{#VAR}}`/`{{^VAR}}` sections (`true`/`false` values are booleans, the
//! empty string is false), standalone section lines removed. Missing variables render empty
//! and are reported.

use std::path::Path;

use indexmap::IndexMap;

/// A rendered template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rendered {
    /// The output text.
    pub text: String,
    /// Variables used but not set, as `NAME@L<line>`.
    pub missing: Vec<String>,
}

/// Renders `template` with `env`.
///
/// # Errors
/// A message naming the line and tag of a malformed template.
pub fn render_template(template: &str, env: &IndexMap<String, String>) -> Result<Rendered, String> {
    let r = berth_spec::render::render_env(template, env).map_err(|e| e.to_string())?;
    Ok(Rendered {
        text: r.text,
        missing: r.missing.iter().map(ToString::to_string).collect(),
    })
}

/// Renders every `CONFIG_TEMPLATE_<NAME>=<template>,<dest>` of `env`: the template file
/// (fetched into the sandbox) is rendered with `env` and written to the destination, both
/// relative to `sandbox`. Each rendering and each variable without a value goes to `log`.
/// The local executor runs it before a task starts; on Mesos, `berth bootstrap` does, as the
/// first command of the task.
///
/// # Errors
/// A malformed entry, a template that cannot be read or rendered, a destination that cannot
/// be written.
pub fn render_config_templates(
    env: &IndexMap<String, String>,
    sandbox: &Path,
    log: &mut dyn FnMut(&str),
) -> Result<(), String> {
    for (k, v) in env {
        if !k.starts_with("CONFIG_TEMPLATE_") {
            continue;
        }
        let Some((src, dest)) = v.split_once(',') else {
            return Err(format!("{k}=`{v}` is not `<template>,<destination>`"));
        };
        let src_path = sandbox.join(src.trim());
        let dest_path = sandbox.join(dest.trim());
        let text = std::fs::read_to_string(&src_path).map_err(|e| {
            format!(
                "config template {k}: cannot read {}: {e}",
                src_path.display()
            )
        })?;
        let rendered = render_template(&text, env)
            .map_err(|e| format!("config template {k} ({}): {e}", src_path.display()))?;
        if !rendered.missing.is_empty() {
            log(&format!(
                "config template {k}: no value for {}",
                rendered.missing.join(", ")
            ));
        }
        if let Some(parent) = dest_path.parent() {
            std::fs::create_dir_all(parent).map_err(|e| {
                format!(
                    "config template {k}: cannot create {}: {e}",
                    parent.display()
                )
            })?;
        }
        std::fs::write(&dest_path, rendered.text).map_err(|e| {
            format!(
                "config template {k}: cannot write {}: {e}",
                dest_path.display()
            )
        })?;
        log(&format!("rendered {} into {}", src.trim(), dest.trim()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> IndexMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn renders_variables_and_sections() {
        let e = env(&[("PORT", "8080"), ("TLS", "false"), ("NAME", "a<b")]);
        let t = "port={{PORT}}\n{{#TLS}}\ntls=on\n{{/TLS}}\n{{^TLS}}\ntls=off\n{{/TLS}}\nname={{NAME}} raw={{{NAME}}} {{&NAME}}\nx={{MISSING}}\n";
        let r = render_template(t, &e).unwrap();
        assert_eq!(r.text, "port=8080\ntls=off\nname=a&lt;b raw=a<b a<b\nx=\n");
        assert_eq!(r.missing, vec!["MISSING@L9".to_owned()]);
    }

    #[test]
    fn reports_bad_templates() {
        assert!(render_template("{{#A}}x", &env(&[])).is_err());
        assert!(render_template("{{/A}}", &env(&[])).is_err());
        assert!(render_template("{{A", &env(&[])).is_err());
    }
}
