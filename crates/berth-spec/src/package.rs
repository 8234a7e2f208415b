//! Packages: a spec template plus a schema of install options, turned into an environment.
//!
//! Two layouts are understood:
//!
//! * **berth's own**: a directory with `svc.yml`, `config.json` (a JSON Schema of the install
//!   options, with `default`s and `description`s) and `env.yml`, which maps environment
//!   variables to dotted option paths (`HELLO_COUNT: hello.count`).
//! * **a DC/OS Universe package as it is**: `config.json` and `marathon.json.mustache` (at the
//!   package root or under `universe/`), optionally `package.json` (name, version) and
//!   `resource.json` next to them, and the specs under `dist/` (or at the root). The Marathon
//!   template is rendered over the options (plus `package-name`, `package-version` and
//!   `resource`), the result is parsed as JSON, and its `env` object is the environment. The
//!   spec is `dist/<service.yaml>.yml` (option `service.yaml`, default `svc`).
//!
//! ```text
//! options.json ──parse, fill defaults, check schema──▶ options
//!      options ──env.yml mapping | marathon.json.mustache──▶ environment (+ extra env below it)
//! environment + spec template ──render, parse, convert──▶ ServiceSpec
//! ```
//!
//! [`Package::load`] reads every file it may need up front (the candidate specs and the
//! `configs` templates they name), so a loaded package is a plain value.

use std::collections::{BTreeMap, HashMap};

use indexmap::IndexMap;
use serde_json::Value;

use crate::error::{Error, OptionsError};
use crate::render::{self, Env};
use crate::spec::{self, LoadedSpec, SpecInput};
use crate::yaml::{self, NodeKind};

/// Read access to the files of a package (or of the directory a spec lives in).
pub trait FileSource {
    /// Reads a file by path relative to the package directory (`/`-separated).
    ///
    /// # Errors
    /// The file exists but cannot be read; `Ok(None)` means it does not exist.
    fn read(&self, path: &str) -> Result<Option<String>, String>;
}

/// A file source with no files.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoFiles;

impl FileSource for NoFiles {
    fn read(&self, _path: &str) -> Result<Option<String>, String> {
        Ok(None)
    }
}

/// The files of a package directory on disk (`svc.yml`, `config.json`, templates, …): the one
/// place this crate reads files, so that package loading stays a function of what is read.
#[derive(Debug, Clone)]
pub struct DirFiles(pub std::path::PathBuf);

impl FileSource for DirFiles {
    fn read(&self, path: &str) -> Result<Option<String>, String> {
        match std::fs::read_to_string(self.0.join(path)) {
            Ok(text) => Ok(Some(text)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e.to_string()),
        }
    }
}

impl FileSource for IndexMap<String, String> {
    fn read(&self, path: &str) -> Result<Option<String>, String> {
        Ok(self.get(path).cloned())
    }
}

impl FileSource for HashMap<String, String> {
    fn read(&self, path: &str) -> Result<Option<String>, String> {
        Ok(self.get(path).cloned())
    }
}

impl FileSource for BTreeMap<String, String> {
    fn read(&self, path: &str) -> Result<Option<String>, String> {
        Ok(self.get(path).cloned())
    }
}

/// Files from a cache first, then from another source.
struct Layered<'a> {
    first: &'a IndexMap<String, String>,
    then: &'a dyn FileSource,
}

impl FileSource for Layered<'_> {
    fn read(&self, path: &str) -> Result<Option<String>, String> {
        match self.first.get(path) {
            Some(content) => Ok(Some(content.clone())),
            None => self.then.read(path),
        }
    }
}

/// The layout a package was written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PackageKind {
    /// `svc.yml` + `config.json` + `env.yml`.
    Berth,
    /// A DC/OS Universe package (`marathon.json.mustache`, specs under `dist/`).
    Universe,
}

/// One `env.yml` entry: environment variable ← dotted option path.
#[derive(Debug, Clone, PartialEq, Eq)]
struct EnvMapping {
    var: String,
    option: String,
}

/// A loaded package.
#[derive(Debug, Clone)]
pub struct Package {
    /// The layout.
    pub kind: PackageKind,
    /// Package name (`package.json` `name`, else the directory name).
    pub name: String,
    /// Package version (`package.json` `version`, else `0.0.0`).
    pub version: String,
    /// The options schema (`config.json`; an empty object schema when there is none).
    pub schema: Value,
    /// Directory of the package metadata (`""` or `universe/`).
    meta_dir: String,
    /// Directory of the specs (`""` or `dist/`).
    spec_dir: String,
    marathon_template: Option<String>,
    resource: Option<Value>,
    env_map: Vec<EnvMapping>,
    /// Spec templates and config templates read at load time, by path.
    files: IndexMap<String, String>,
}

fn read(files: &dyn FileSource, path: &str) -> Result<Option<String>, Error> {
    files.read(path).map_err(|e| Error::Package {
        file: path.to_owned(),
        message: format!("could not be read: {e}"),
    })
}

fn parse_json(file: &str, text: &str) -> Result<Value, Error> {
    serde_json::from_str(text).map_err(|e| Error::Package {
        file: file.to_owned(),
        message: format!(
            "invalid JSON at line {} column {}: {e}",
            e.line(),
            e.column()
        ),
    })
}

impl Package {
    /// Loads a package from its files. `dir_name` is the package directory's name (used as the
    /// package name when there is no `package.json`).
    ///
    /// # Errors
    /// Not a package, unreadable or malformed metadata files, an invalid schema, or no spec.
    pub fn load(dir_name: &str, files: &dyn FileSource) -> Result<Package, Error> {
        let (kind, meta_dir, marathon_template) = if read(files, "env.yml")?.is_some() {
            (PackageKind::Berth, String::new(), None)
        } else if let Some(t) = read(files, "marathon.json.mustache")? {
            (PackageKind::Universe, String::new(), Some(t))
        } else if let Some(t) = read(files, "universe/marathon.json.mustache")? {
            (PackageKind::Universe, "universe/".to_owned(), Some(t))
        } else {
            return Err(Error::Package {
                file: dir_name.to_owned(),
                message: "is not a package: expected env.yml and svc.yml (berth layout) or \
                          marathon.json.mustache at the top or under universe/ (DC/OS Universe \
                          layout)"
                    .to_owned(),
            });
        };

        let config_file = format!("{meta_dir}config.json");
        let schema = match read(files, &config_file)? {
            Some(text) => parse_json(&config_file, &text)?,
            None => serde_json::json!({"type": "object", "properties": {}}),
        };
        if !schema.is_object() {
            return Err(Error::Package {
                file: config_file,
                message: "must be a JSON object (a JSON Schema of the install options)".to_owned(),
            });
        }
        if let Err(e) = compile_schema(&schema) {
            return Err(Error::Package {
                file: config_file,
                message: format!("is not a valid JSON Schema: {e}"),
            });
        }

        let package_file = format!("{meta_dir}package.json");
        let (mut name, mut version) = (dir_name.to_owned(), "0.0.0".to_owned());
        if let Some(text) = read(files, &package_file)? {
            let meta = parse_json(&package_file, &text)?;
            if let Some(n) = meta.get("name").and_then(Value::as_str) {
                name = n.to_owned();
            }
            if let Some(v) = meta.get("version").and_then(Value::as_str) {
                version = v.to_owned();
            }
        }
        let resource_file = format!("{meta_dir}resource.json");
        let resource = match read(files, &resource_file)? {
            Some(text) => Some(parse_json(&resource_file, &text)?),
            None => None,
        };

        let mut cache = IndexMap::new();
        let (spec_dir, env_map) = match kind {
            PackageKind::Berth => {
                let env_text = read(files, "env.yml")?.unwrap_or_default();
                let env_map = parse_env_map(&env_text)?;
                match read(files, "svc.yml")? {
                    Some(text) => {
                        cache.insert("svc.yml".to_owned(), text);
                    }
                    None => {
                        return Err(Error::Package {
                            file: "svc.yml".to_owned(),
                            message: "was not found; a berth package has svc.yml, config.json \
                                      and env.yml"
                                .to_owned(),
                        });
                    }
                }
                (String::new(), env_map)
            }
            PackageKind::Universe => {
                let names = spec_candidates(&schema);
                let default = default_yaml(&schema);
                let spec_dir = if read(files, &format!("dist/{default}.yml"))?.is_some() {
                    "dist/".to_owned()
                } else if read(files, &format!("{default}.yml"))?.is_some() {
                    String::new()
                } else {
                    return Err(Error::Package {
                        file: dir_name.to_owned(),
                        message: format!(
                            "has no service spec: looked for dist/{default}.yml and {default}.yml"
                        ),
                    });
                };
                for n in names {
                    let path = format!("{spec_dir}{n}.yml");
                    if let Some(text) = read(files, &path)? {
                        cache.insert(path, text);
                    }
                }
                (spec_dir, Vec::new())
            }
        };
        // Config templates named by the specs (`template: <path>`), relative to the spec dir.
        let mut templates = Vec::new();
        for text in cache.values() {
            for line in text.lines() {
                let Some(rest) = line.trim_start().strip_prefix("template:") else {
                    continue;
                };
                let value = rest.trim().trim_matches(|c| c == '"' || c == '\'').trim();
                if value.is_empty() || value.contains("{{") {
                    continue;
                }
                let path = if value.starts_with('/') {
                    value.to_owned()
                } else {
                    format!("{spec_dir}{}", value.trim_start_matches("./"))
                };
                templates.push(path);
            }
        }
        for path in templates {
            if cache.contains_key(&path) {
                continue;
            }
            if let Ok(Some(text)) = files.read(&path) {
                cache.insert(path, text);
            }
        }

        Ok(Package {
            kind,
            name,
            version,
            schema,
            meta_dir,
            spec_dir,
            marathon_template,
            resource,
            env_map,
            files: cache,
        })
    }

    /// Parses `options.json` (none = `{}`), fills in the schema's defaults, and checks the
    /// result against the schema.
    ///
    /// # Errors
    /// Invalid JSON (with line and column), or every schema violation with its JSON pointer.
    pub fn resolve_options(&self, options_json: Option<&str>) -> Result<Value, Error> {
        let mut options = match options_json {
            None => Value::Object(serde_json::Map::new()),
            Some(text) => {
                serde_json::from_str::<Value>(text).map_err(|e| Error::OptionsSyntax {
                    line: e.line(),
                    column: e.column(),
                    message: e.to_string(),
                })?
            }
        };
        if !options.is_object() {
            return Err(Error::Options(vec![OptionsError {
                pointer: "/".to_owned(),
                message: "must be a JSON object of options".to_owned(),
            }]));
        }
        fill_defaults(&self.schema, &mut options);
        let validator = compile_schema(&self.schema).map_err(|e| Error::Package {
            file: format!("{}config.json", self.meta_dir),
            message: format!("is not a valid JSON Schema: {e}"),
        })?;
        let errors: Vec<OptionsError> = validator
            .iter_errors(&options)
            .map(|e| {
                let pointer = e.instance_path().to_string();
                OptionsError {
                    pointer: if pointer.is_empty() {
                        "/".to_owned()
                    } else {
                        pointer
                    },
                    message: e.to_string(),
                }
            })
            .collect();
        if errors.is_empty() {
            Ok(options)
        } else {
            Err(Error::Options(errors))
        }
    }

    /// The environment the spec is rendered with, from resolved options.
    ///
    /// # Errors
    /// The Marathon template is malformed or renders to invalid JSON.
    pub fn environment(&self, options: &Value) -> Result<Env, Error> {
        match self.kind {
            PackageKind::Berth => Ok(self
                .env_map
                .iter()
                .filter_map(|m| {
                    let value = lookup(options, &m.option)?;
                    let text = match value {
                        Value::Null => return None,
                        Value::String(s) => s.clone(),
                        Value::Bool(b) => b.to_string(),
                        Value::Number(n) => n.to_string(),
                        Value::Array(_) | Value::Object(_) => value.to_string(),
                    };
                    Some((m.var.clone(), text))
                })
                .collect()),
            PackageKind::Universe => self.marathon_env(options),
        }
    }

    fn marathon_env(&self, options: &Value) -> Result<Env, Error> {
        let file = format!("{}marathon.json.mustache", self.meta_dir);
        let template = self.marathon_template.as_deref().unwrap_or_default();
        let mut data = match options {
            Value::Object(map) => map.clone(),
            _ => serde_json::Map::new(),
        };
        data.entry("package-name")
            .or_insert_with(|| Value::String(self.name.clone()));
        data.entry("package-version")
            .or_insert_with(|| Value::String(self.version.clone()));
        if let Some(resource) = &self.resource {
            data.entry("resource").or_insert_with(|| resource.clone());
        }
        let rendered = render::render_json(template, &Value::Object(data)).map_err(|error| {
            Error::Template {
                file: file.clone(),
                error,
            }
        })?;
        let app: Value = serde_json::from_str(&rendered.text).map_err(|e| {
            let near = rendered
                .text
                .lines()
                .nth(e.line().saturating_sub(1))
                .unwrap_or_default()
                .trim();
            Error::Package {
                file: file.clone(),
                message: format!(
                    "rendered to invalid JSON at line {} column {}: {e} (rendered line: {near})",
                    e.line(),
                    e.column()
                ),
            }
        })?;
        let mut env = Env::new();
        if let Some(Value::Object(vars)) = app.get("env") {
            for (k, v) in vars {
                let text = match v {
                    Value::String(s) => s.clone(),
                    Value::Bool(b) => b.to_string(),
                    Value::Number(n) => n.to_string(),
                    // Secret references and other structured values are not plain variables.
                    Value::Null | Value::Array(_) | Value::Object(_) => continue,
                };
                env.insert(k.clone(), text);
            }
        }
        Ok(env)
    }

    /// The spec file the options select, relative to the package: `svc.yml` (berth layout) or
    /// `dist/<service.yaml>.yml` (Universe layout).
    #[must_use]
    pub fn spec_file(&self, options: &Value) -> String {
        match self.kind {
            PackageKind::Berth => "svc.yml".to_owned(),
            PackageKind::Universe => {
                let yaml = lookup(options, "service.yaml")
                    .and_then(Value::as_str)
                    .map_or_else(|| default_yaml(&self.schema), str::to_owned);
                format!("{}{yaml}.yml", self.spec_dir)
            }
        }
    }

    /// The whole pipeline: options → environment (with `extra_env` added below the package's
    /// own variables, e.g. `PORT_API` or `TASKCFG_*`) → rendered and validated spec.
    ///
    /// # Errors
    /// Any error of [`Package::resolve_options`], [`Package::environment`], a missing spec
    /// file, or the spec's problems.
    pub fn load_spec(
        &self,
        options_json: Option<&str>,
        extra_env: &Env,
    ) -> Result<(Env, LoadedSpec), Error> {
        self.load_spec_with_files(options_json, extra_env, &crate::package::NoFiles)
    }

    /// Like [`Package::load_spec`], but `configs` templates (and spec files) not read at load
    /// time are read from `files`.
    ///
    /// # Errors
    /// As [`Package::load_spec`].
    pub fn load_spec_with_files(
        &self,
        options_json: Option<&str>,
        extra_env: &Env,
        files: &dyn FileSource,
    ) -> Result<(Env, LoadedSpec), Error> {
        let options = self.resolve_options(options_json)?;
        self.load_spec_from_options(&options, extra_env, files)
    }

    /// The pipeline from already resolved options (see [`Package::resolve_options`]; they are
    /// not checked against the schema again): environment, spec file, rendered and validated
    /// spec. Files not read at load time are read from `files`.
    ///
    /// # Errors
    /// As [`Package::load_spec`], except options errors.
    pub fn load_spec_from_options(
        &self,
        options: &Value,
        extra_env: &Env,
        files: &dyn FileSource,
    ) -> Result<(Env, LoadedSpec), Error> {
        let mut env = self.environment(options)?;
        for (k, v) in extra_env {
            env.entry(k.clone()).or_insert_with(|| v.clone());
        }
        let file = self.spec_file(options);
        let source = Layered {
            first: &self.files,
            then: files,
        };
        let template = match source.read(&file) {
            Ok(Some(text)) => text,
            Ok(None) => {
                return Err(Error::Package {
                    file,
                    message: "was not found in the package".to_owned(),
                });
            }
            Err(e) => {
                return Err(Error::Package {
                    file,
                    message: format!("could not be read: {e}"),
                });
            }
        };
        let loaded = spec::load_spec(&SpecInput {
            file_name: &file,
            template: &template,
            env: &env,
            files: &source,
        })?;
        Ok((env, loaded))
    }

    /// The options schema, as `dcos package describe --config` prints it: the `properties`
    /// tree with types, defaults and descriptions.
    #[must_use]
    pub fn describe_config(&self) -> Value {
        self.schema.clone()
    }
}

fn compile_schema(schema: &Value) -> Result<jsonschema::Validator, String> {
    let result = if schema.get("$schema").is_some() {
        jsonschema::validator_for(schema)
    } else {
        // DC/OS package schemas are draft 4 documents without a `$schema` key.
        jsonschema::draft4::new(schema)
    };
    result.map_err(|e| e.to_string())
}

/// Fills in the schema's defaults: missing properties get their `default`; objects without a
/// default are created when they have defaulted properties.
fn fill_defaults(schema: &Value, value: &mut Value) {
    let Some(properties) = schema.get("properties").and_then(Value::as_object) else {
        return;
    };
    let Value::Object(object) = value else {
        return;
    };
    for (key, property) in properties {
        match object.get_mut(key) {
            Some(child) => fill_defaults(property, child),
            None => {
                if let Some(default) = property.get("default") {
                    let mut default = default.clone();
                    fill_defaults(property, &mut default);
                    object.insert(key.clone(), default);
                } else if property.get("properties").is_some() {
                    let mut child = Value::Object(serde_json::Map::new());
                    fill_defaults(property, &mut child);
                    if child.as_object().is_some_and(|o| !o.is_empty()) {
                        object.insert(key.clone(), child);
                    }
                }
            }
        }
    }
}

/// Looks up a dotted option path (`hello.count`).
fn lookup<'v>(options: &'v Value, path: &str) -> Option<&'v Value> {
    path.split('.').try_fold(options, |v, part| v.get(part))
}

/// The spec names a Universe package may select: `service.yaml`'s enum plus its default.
fn spec_candidates(schema: &Value) -> Vec<String> {
    let yaml = schema.pointer("/properties/service/properties/yaml");
    let mut names: Vec<String> = yaml
        .and_then(|y| y.get("enum"))
        .and_then(Value::as_array)
        .map(|items| {
            items
                .iter()
                .filter_map(Value::as_str)
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default();
    let default = default_yaml(schema);
    if !names.contains(&default) {
        names.insert(0, default);
    }
    names
}

fn default_yaml(schema: &Value) -> String {
    schema
        .pointer("/properties/service/properties/yaml/default")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .unwrap_or("svc")
        .to_owned()
}

fn parse_env_map(text: &str) -> Result<Vec<EnvMapping>, Error> {
    let fail = |line: usize, message: String| Error::Package {
        file: "env.yml".to_owned(),
        message: format!("line {line}: {message}"),
    };
    let root =
        yaml::parse_yaml(text).map_err(|e| fail(e.line, format!("invalid YAML: {}", e.message)))?;
    let entries = match &root.kind {
        NodeKind::Null => return Ok(Vec::new()),
        NodeKind::Map(entries) => entries,
        _ => {
            return Err(fail(
                root.line,
                "expected a mapping of environment variable to option path, e.g. \
                 `HELLO_COUNT: hello.count`"
                    .to_owned(),
            ));
        }
    };
    let mut out: Vec<EnvMapping> = Vec::new();
    for (k, v) in entries {
        let (Some(var), Some(option)) = (k.as_scalar(), v.as_scalar()) else {
            return Err(fail(
                k.line,
                "each entry maps an environment variable to a dotted option path, e.g. \
                 `HELLO_COUNT: hello.count`"
                    .to_owned(),
            ));
        };
        if out.iter().any(|m| m.var == var) {
            return Err(fail(k.line, format!("{var} is mapped twice")));
        }
        out.push(EnvMapping {
            var: var.to_owned(),
            option: option.trim().to_owned(),
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_filled_recursively() {
        let schema = serde_json::json!({
            "type": "object",
            "properties": {
                "a": {"type": "object", "properties": {
                    "x": {"type": "integer", "default": 1},
                    "y": {"type": "string"},
                    "deep": {"type": "object", "properties": {"z": {"type": "boolean", "default": true}}}
                }},
                "b": {"type": "object", "properties": {"q": {"type": "string"}}},
                "c": {"type": "string", "default": "c"}
            }
        });
        let mut v = serde_json::json!({"a": {"x": 5}});
        fill_defaults(&schema, &mut v);
        assert_eq!(
            v,
            serde_json::json!({"a": {"x": 5, "deep": {"z": true}}, "c": "c"})
        );
    }

    #[test]
    fn lookup_dotted() {
        let v = serde_json::json!({"a": {"b": {"c": 3}}});
        assert_eq!(lookup(&v, "a.b.c"), Some(&serde_json::json!(3)));
        assert_eq!(lookup(&v, "a.x"), None);
    }
}
