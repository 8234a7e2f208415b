//! Packages: options validation with JSON pointers, defaults, describe_config, the berth
//! layout's env.yml mapping, and the Universe layout.

use crate::common;

use berth_spec::{Env, Error, Package, PackageKind};
use common::{DirSource, env, helloworld_dir};
use indexmap::IndexMap;
use serde_json::json;

fn helloworld() -> Package {
    Package::load("hello-world", &DirSource(helloworld_dir())).unwrap_or_else(|e| panic!("{e}"))
}

fn files(pairs: &[(&str, &str)]) -> IndexMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

#[test]
fn options_are_checked_against_the_schema_with_pointers() {
    let pkg = helloworld();
    let err = pkg
        .resolve_options(Some(r#"{"hello": {"count": "three"}}"#))
        .err()
        .map(|e| e.to_string());
    assert_eq!(
        err.as_deref(),
        Some(r#"options.json: /hello/count: "three" is not of type "integer""#)
    );

    // Every violation is listed.
    let err = pkg.resolve_options(Some(
        r#"{"hello": {"count": "three"}, "world": {"cpus": "x"}, "service": {"log_level": "LOUD"}}"#,
    ));
    match err {
        Err(Error::Options(errors)) => {
            let pointers: Vec<&str> = errors.iter().map(|e| e.pointer.as_str()).collect();
            assert!(pointers.contains(&"/hello/count"), "{pointers:?}");
            assert!(pointers.contains(&"/world/cpus"), "{pointers:?}");
            assert!(pointers.contains(&"/service/log_level"), "{pointers:?}");
            assert_eq!(errors.len(), 3, "{errors:?}");
        }
        other => panic!("{other:?}"),
    }
    // Minimums of the schema.
    let err = pkg
        .resolve_options(Some(r#"{"world": {"readiness_check": {"interval": 1}}}"#))
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert_eq!(
        err,
        "options.json: /world/readiness_check/interval: 1 is less than the minimum of 5"
    );
}

#[test]
fn options_json_syntax_and_shape() {
    let pkg = helloworld();
    let err = pkg
        .resolve_options(Some("{\n  \"hello\": {\"count\": 3,}\n}"))
        .err();
    match err {
        Some(Error::OptionsSyntax { line, column, .. }) => assert_eq!((line, column), (2, 24)),
        other => panic!("{other:?}"),
    }
    let shown = pkg
        .resolve_options(Some("{\n  \"hello\": {\"count\": 3,}\n}"))
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(
        shown.starts_with("options.json:2:24: invalid JSON: "),
        "{shown}"
    );
    let err = pkg
        .resolve_options(Some("[1, 2]"))
        .err()
        .map(|e| e.to_string());
    assert_eq!(
        err.as_deref(),
        Some("options.json: /: must be a JSON object of options")
    );
}

#[test]
fn defaults_are_filled_recursively() {
    let pkg = helloworld();
    let options = pkg
        .resolve_options(Some(
            r#"{"hello": {"count": 3}, "service": {"name": "hello-prod"}}"#,
        ))
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(options["hello"]["count"], json!(3));
    assert_eq!(options["hello"]["cpus"], json!(0.1));
    assert_eq!(
        options["hello"]["placement"],
        json!("[[\"hostname\", \"UNIQUE\"]]")
    );
    assert_eq!(
        options["hello"]["rlimits"]["rlimit_nofile"]["soft"],
        json!(128_000)
    );
    assert_eq!(options["service"]["name"], json!("hello-prod"));
    assert_eq!(options["service"]["user"], json!("nobody"));
    assert_eq!(
        options["service"]["task_failure_backoff"]["backoff_factor"],
        json!(1.15)
    );
    // An object without a default is created because it has defaulted children …
    assert_eq!(options["debug"], json!({"suspend": "n"}));
    // … and options without defaults stay absent.
    assert!(options["debug"].get("address").is_none());
    // Unknown options are allowed (the schema does not forbid them).
    assert!(
        pkg.resolve_options(Some(r#"{"extra": {"thing": 1}}"#))
            .is_ok()
    );
    let defaults = pkg.resolve_options(None).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(defaults["world"]["count"], json!(2));
    assert_eq!(defaults["service"]["yaml"], json!("svc"));
}

#[test]
fn describe_config_is_the_schema_with_defaults_and_descriptions() {
    let pkg = helloworld();
    let described = pkg.describe_config();
    let count = &described["properties"]["hello"]["properties"]["count"];
    assert_eq!(count["default"], json!(1));
    assert_eq!(count["description"], json!("Number of Hello pods to run"));
    assert_eq!(count["type"], json!("integer"));
    assert_eq!(
        described["properties"]["service"]["properties"]["name"]["default"],
        json!("hello-world")
    );
}

#[test]
fn universe_environment_from_the_marathon_template() {
    let pkg = helloworld();
    let options = pkg
        .resolve_options(Some(r#"{"service": {"name": "/folder/hello", "region": "us-east"}, "hello": {"kill_grace_period": 30}}"#))
        .unwrap_or_else(|e| panic!("{e}"));
    let vars = pkg.environment(&options).unwrap_or_else(|e| panic!("{e}"));
    let get = |k: &str| vars.get(k).map(String::as_str);
    assert_eq!(get("FRAMEWORK_NAME"), Some("/folder/hello"));
    assert_eq!(get("HELLO_PLACEMENT"), Some("[[\"hostname\", \"UNIQUE\"]]"));
    assert_eq!(get("HELLO_CPUS"), Some("0.1"));
    assert_eq!(get("SLEEP_DURATION"), Some("1000"));
    assert_eq!(get("FRAMEWORK_BACKOFF_FACTOR"), Some("1.15"));
    assert_eq!(get("ENABLE_BACKOFF"), Some("true"));
    assert_eq!(get("HELLO_KILL_GRACE_PERIOD"), Some("30"));
    assert_eq!(get("SERVICE_REGION"), Some("us-east"));
    assert_eq!(get("PACKAGE_NAME"), Some("hello-world"));
    assert_eq!(
        get("TASKCFG_ALL_PACKAGE_VERSION_TO_FORCE_UPDATE"),
        Some("0.0.0")
    );
    // Sections that are false by default (and hold broken JSON) are left out.
    assert_eq!(get("HELLO_EXTERNAL_VOLUME_NAME"), None);
    assert_eq!(get("HELLO_SECRET1"), None);
    // The same package through load_spec.
    let (vars, loaded) = pkg
        .load_spec(
            Some(r#"{"service": {"name": "/folder/hello"}}"#),
            &env(&[("PORT_API", "1"), ("FRAMEWORK_NAME", "ignored")]),
        )
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(vars.get("PORT_API").map(String::as_str), Some("1"));
    // The extra environment sits below the package's own variables.
    assert_eq!(
        vars.get("FRAMEWORK_NAME").map(String::as_str),
        Some("/folder/hello")
    );
    assert_eq!(loaded.spec.name, "/folder/hello");
    assert_eq!(loaded.spec.role, "folder__hello-role");
}

#[test]
fn universe_package_at_the_root_with_package_json() {
    let f = files(&[
        ("package.json", r#"{"name": "tiny", "version": "1.2.3"}"#),
        (
            "config.json",
            r#"{"type": "object", "properties": {"service": {"type": "object", "properties": {
                 "name": {"type": "string", "default": "tiny"},
                 "yaml": {"type": "string", "default": "main"}}}},
               "additionalProperties": false}"#,
        ),
        (
            "marathon.json.mustache",
            r#"{"id": "{{service.name}}", "env": {"NAME": "{{service.name}}", "VERSION": "{{package-version}}", "PKG": "{{package-name}}", "N": 3, "ON": true}}"#,
        ),
        (
            "main.yml",
            "name: {{NAME}}\npods:\n  p:\n    count: 1\n    tasks:\n      t:\n        goal: ONCE\n        cmd: echo {{VERSION}} {{N}} {{ON}}\n        cpus: 0.1\n        memory: 16\n",
        ),
    ]);
    let pkg = Package::load("dir-name", &f).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        (pkg.kind, pkg.name.as_str(), pkg.version.as_str()),
        (PackageKind::Universe, "tiny", "1.2.3")
    );
    let options = pkg.resolve_options(None).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(pkg.spec_file(&options), "main.yml");
    let (vars, loaded) = pkg
        .load_spec(None, &Env::new())
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(vars.get("PKG").map(String::as_str), Some("tiny"));
    assert_eq!(
        loaded.spec.pod_specs[0].task_specs[0].command_spec.value,
        "echo 1.2.3 3 true"
    );
    // additionalProperties: false forbids unknown options.
    let err = pkg
        .resolve_options(Some(r#"{"colour": "red"}"#))
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(
        err.starts_with(
            "options.json: /: Additional properties are not allowed ('colour' was unexpected)"
        ),
        "{err}"
    );
}

#[test]
fn universe_template_rendering_to_invalid_json() {
    let f = files(&[
        (
            "universe/config.json",
            r#"{"type": "object", "properties": {"x": {"type": "string", "default": ""}}}"#,
        ),
        (
            "universe/marathon.json.mustache",
            "{\n  \"env\": {\n    {{^x}}\"A\": 1,{{/x}}\n  }\n}\n",
        ),
        ("dist/svc.yml", "name: a\n"),
    ]);
    let pkg = Package::load("p", &f).unwrap_or_else(|e| panic!("{e}"));
    let err = pkg
        .load_spec(None, &Env::new())
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(
        err.starts_with(
            "universe/marathon.json.mustache: rendered to invalid JSON at line 4 column 3"
        ),
        "{err}"
    );
    assert!(err.ends_with("(rendered line: })"), "{err}");
    let f = files(&[
        ("universe/marathon.json.mustache", "{{#x}}\n"),
        ("dist/svc.yml", "name: a\n"),
    ]);
    let pkg = Package::load("p", &f).unwrap_or_else(|e| panic!("{e}"));
    let err = pkg
        .load_spec(None, &Env::new())
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert_eq!(
        err,
        "universe/marathon.json.mustache:1: {{#x}} is never closed; expected {{/x}}"
    );
}

const BERTH_SVC: &str = "\
name: {{SERVICE_NAME}}
scheduler:
  user: {{SERVICE_USER}}
pods:
  node:
    count: {{NODE_COUNT}}
    placement: '{{{NODE_PLACEMENT}}}'
    tasks:
      server:
        goal: RUNNING
        cmd: ./server --debug={{DEBUG}} --peers='{{{PEERS}}}'
        cpus: {{NODE_CPUS}}
        memory: {{NODE_MEM}}
        configs:
          app:
            template: templates/app.conf
            dest: conf/app.conf
        env:
          OPTIONAL: '{{OPTIONAL}}'
";

const BERTH_CONFIG: &str = r#"{
  "type": "object",
  "properties": {
    "service": {"type": "object", "description": "Service", "properties": {
      "name": {"type": "string", "default": "store", "description": "Service name"},
      "user": {"type": "string", "default": "nobody"},
      "debug": {"type": "boolean", "default": false},
      "optional": {"type": "string"}
    }},
    "node": {"type": "object", "properties": {
      "count": {"type": "integer", "default": 3, "minimum": 1},
      "cpus": {"type": "number", "default": 0.5},
      "mem": {"type": "integer", "default": 1024},
      "placement": {"type": "string", "default": "[[\"hostname\", \"UNIQUE\"]]"},
      "peers": {"type": "array", "default": ["a", "b"]}
    }}
  }
}"#;

const BERTH_ENV: &str = "\
SERVICE_NAME: service.name
SERVICE_USER: service.user
DEBUG: service.debug
OPTIONAL: service.optional
NODE_COUNT: node.count
NODE_CPUS: node.cpus
NODE_MEM: node.mem
NODE_PLACEMENT: node.placement
PEERS: node.peers
";

fn berth_package() -> Package {
    let f = files(&[
        ("svc.yml", BERTH_SVC),
        ("config.json", BERTH_CONFIG),
        ("env.yml", BERTH_ENV),
        ("templates/app.conf", "listen={{PORT_HTTP}}\n"),
    ]);
    Package::load("store", &f).unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn berth_layout_maps_options_to_environment() {
    let pkg = berth_package();
    assert_eq!(
        (pkg.kind, pkg.name.as_str(), pkg.version.as_str()),
        (PackageKind::Berth, "store", "0.0.0")
    );
    let options = pkg
        .resolve_options(Some(
            r#"{"service": {"debug": true}, "node": {"cpus": 1.5}}"#,
        ))
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(pkg.spec_file(&options), "svc.yml");
    let vars = pkg.environment(&options).unwrap_or_else(|e| panic!("{e}"));
    let pairs: Vec<(&str, &str)> = vars.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    assert_eq!(
        pairs,
        [
            ("SERVICE_NAME", "store"),
            ("SERVICE_USER", "nobody"),
            ("DEBUG", "true"),
            ("NODE_COUNT", "3"),
            ("NODE_CPUS", "1.5"),
            ("NODE_MEM", "1024"),
            ("NODE_PLACEMENT", "[[\"hostname\", \"UNIQUE\"]]"),
            ("PEERS", "[\"a\",\"b\"]"),
        ],
        "OPTIONAL has no value and is left out"
    );
    let (_, loaded) = pkg
        .load_spec(
            Some(r#"{"service": {"debug": true}}"#),
            &env(&[("PORT_API", "8080")]),
        )
        .unwrap_or_else(|e| panic!("{e}"));
    let spec = loaded.spec;
    assert_eq!(spec.user, "nobody");
    assert_eq!(spec.pod_specs[0].count, 3);
    let task = &spec.pod_specs[0].task_specs[0];
    assert_eq!(
        task.command_spec.value,
        "./server --debug=true --peers='[\"a\",\"b\"]'"
    );
    assert_eq!(task.config_files.len(), 1);
    assert_eq!(task.config_files[0].relative_path, "conf/app.conf");
    assert_eq!(
        task.config_files[0].template_content,
        "listen={{PORT_HTTP}}\n"
    );
    assert_eq!(
        task.command_spec
            .environment
            .get("OPTIONAL")
            .map(String::as_str),
        Some("")
    );
    assert_eq!(
        loaded
            .missing
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>(),
        ["OPTIONAL@L19"]
    );
    // Schema checks apply to berth packages too.
    let err = pkg
        .load_spec(Some(r#"{"node": {"count": 0}}"#), &Env::new())
        .err()
        .map(|e| e.to_string());
    assert_eq!(
        err.as_deref(),
        Some("options.json: /node/count: 0 is less than the minimum of 1")
    );
}

#[test]
fn package_errors() {
    let err = Package::load("nothing", &files(&[("README.md", "hi")]))
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(err.starts_with("nothing: is not a package"), "{err}");
    let err = Package::load(
        "p",
        &files(&[
            ("env.yml", "A: a"),
            ("svc.yml", "name: x"),
            ("config.json", "{oops"),
        ]),
    )
    .err()
    .map(|e| e.to_string())
    .unwrap_or_default();
    assert!(
        err.starts_with("config.json: invalid JSON at line 1 column 2"),
        "{err}"
    );
    let err = Package::load(
        "p",
        &files(&[("env.yml", "A: [a]"), ("svc.yml", "name: x")]),
    )
    .err()
    .map(|e| e.to_string())
    .unwrap_or_default();
    assert!(
        err.starts_with("env.yml: line 1: each entry maps an environment variable"),
        "{err}"
    );
    let err = Package::load("p", &files(&[("env.yml", "A: a")]))
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(err.starts_with("svc.yml: was not found"), "{err}");
    let err = Package::load("p", &files(&[("marathon.json.mustache", "{}")]))
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert_eq!(
        err,
        "p: has no service spec: looked for dist/svc.yml and svc.yml"
    );
    let err = Package::load(
        "p",
        &files(&[
            ("env.yml", "A: a"),
            ("svc.yml", "name: x"),
            ("config.json", r#"{"type": 5}"#),
        ]),
    )
    .err()
    .map(|e| e.to_string())
    .unwrap_or_default();
    assert!(
        err.starts_with("config.json: is not a valid JSON Schema"),
        "{err}"
    );
    // Spec problems come back as spec errors, naming the spec file.
    let f = files(&[("env.yml", ""), ("svc.yml", "name: x\npods: []\n")]);
    let pkg = Package::load("p", &f).unwrap_or_else(|e| panic!("{e}"));
    let err = pkg.load_spec(None, &Env::new()).err();
    match err {
        Some(Error::Spec(errors)) => assert_eq!(
            errors.to_string(),
            "svc.yml:2: pods: is a list, not a mapping"
        ),
        other => panic!("{other:?}"),
    }
}
