//! The spec pipeline: render a `svc.yml` template, parse the YAML, convert it into a
//! [`ServiceSpec`], and report every problem with the template line it came from.

use crate::convert::Converter;
use crate::error::{SpecError, SpecErrors};
use crate::model::ServiceSpec;
use crate::package::FileSource;
use crate::render::{self, Data, Env, Escape, Missing};
use crate::yaml;

/// Everything needed to load a spec.
pub struct SpecInput<'a> {
    /// The spec's file name relative to the package (or spec) directory, e.g. `svc.yml` or
    /// `dist/svc.yml`; used in messages and to resolve `configs` templates.
    pub file_name: &'a str,
    /// The `svc.yml` template text.
    pub template: &'a str,
    /// The environment the template is rendered with (and `TASKCFG_*` / `SERVICE_REGION` are
    /// read from).
    pub env: &'a Env,
    /// Where `configs` templates are read from (paths relative to the package directory).
    pub files: &'a dyn FileSource,
}

/// A loaded spec with what rendering produced.
#[derive(Debug, Clone, PartialEq)]
pub struct LoadedSpec {
    /// The validated spec.
    pub spec: ServiceSpec,
    /// The rendered YAML text.
    pub rendered: String,
    /// Template values that were not set (rendered as empty).
    pub missing: Vec<Missing>,
}

/// Renders, parses and converts a spec template.
///
/// Line numbers in the errors are template lines; an error on a line where a template value was
/// missing says so, e.g. `(the template value HELLO_COUNT was not set)`.
///
/// # Errors
/// Every problem found: malformed template, YAML syntax, unknown or missing fields, bad values.
pub fn load_spec(input: &SpecInput<'_>) -> Result<LoadedSpec, SpecErrors> {
    let (rendered, line_map) =
        match render::render_mapped(input.template, &Data::from_env(input.env), Escape::Html) {
            Ok(result) => result,
            Err(e) => {
                return Err(SpecErrors(vec![SpecError {
                    file: input.file_name.to_owned(),
                    line: Some(e.line),
                    field: String::new(),
                    value: Some(e.tag),
                    message: e.message,
                }]));
            }
        };
    let spec = parse_mapped(
        input.file_name,
        &rendered.text,
        input.env,
        input.files,
        Some(&line_map),
        &rendered.missing,
    )?;
    Ok(LoadedSpec {
        spec,
        rendered: rendered.text,
        missing: rendered.missing,
    })
}

/// Parses and converts an already rendered spec (lines in errors are lines of `yaml`).
///
/// # Errors
/// Every problem found: YAML syntax, unknown or missing fields, bad values.
pub fn parse_spec(
    file_name: &str,
    yaml: &str,
    env: &Env,
    files: &dyn FileSource,
) -> Result<ServiceSpec, SpecErrors> {
    parse_mapped(file_name, yaml, env, files, None, &[])
}

fn parse_mapped(
    file_name: &str,
    text: &str,
    env: &Env,
    files: &dyn FileSource,
    line_map: Option<&[usize]>,
    missing: &[Missing],
) -> Result<ServiceSpec, SpecErrors> {
    let root = match yaml::parse_yaml(text) {
        Ok(root) => root,
        Err(e) => {
            let error = SpecError {
                file: file_name.to_owned(),
                line: Some(e.line),
                field: String::new(),
                value: None,
                message: format!("invalid YAML (column {}): {}", e.col, e.message),
            };
            return Err(finish(vec![error], line_map, missing));
        }
    };
    let mut converter = Converter::new(file_name, env, files);
    let spec = converter.convert(&root);
    let errors = std::mem::take(&mut converter.errors);
    match spec {
        Some(spec) if errors.is_empty() => Ok(spec),
        _ => {
            let mut errors = errors;
            if errors.is_empty() {
                errors.push(SpecError {
                    file: file_name.to_owned(),
                    line: None,
                    field: String::new(),
                    value: None,
                    message: "the spec could not be converted".to_owned(),
                });
            }
            Err(finish(errors, line_map, missing))
        }
    }
}

/// Maps rendered lines to template lines, adds hints about missing template values, and sorts
/// the errors by line.
fn finish(
    mut errors: Vec<SpecError>,
    line_map: Option<&[usize]>,
    missing: &[Missing],
) -> SpecErrors {
    for e in &mut errors {
        let Some(line) = e.line else {
            continue;
        };
        let line = match line_map {
            Some(map) => render::template_line(map, line),
            None => line,
        };
        e.line = Some(line);
        let names: Vec<&str> = missing
            .iter()
            .filter(|m| m.line == line)
            .map(|m| m.name.as_str())
            .collect();
        match names.as_slice() {
            [] => {}
            [one] => e
                .message
                .push_str(&format!(" (the template value {one} was not set)")),
            many => e.message.push_str(&format!(
                " (the template values {} were not set)",
                many.join(", ")
            )),
        }
    }
    errors.sort_by_key(|e| e.line.unwrap_or(usize::MAX));
    SpecErrors(errors)
}
