//! Invalid specs under `tests/invalid/*.yml`, each with the exact error report it must produce
//! in the sibling `.expected` file. Set `BERTH_BLESS=1` to (re)write the `.expected` files after
//! a deliberate change, then review the diff.

use crate::common;

use std::path::PathBuf;

use berth_spec::{NoFiles, SpecInput, load_spec};
use common::env;

fn invalid_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/invalid")
}

#[test]
fn invalid_specs_report_the_expected_errors() {
    let bless = std::env::var_os("BERTH_BLESS").is_some();
    let mut names: Vec<String> = std::fs::read_dir(invalid_dir())
        .expect("tests/invalid")
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            e.file_name()
                .to_str()?
                .strip_suffix(".yml")
                .map(str::to_owned)
        })
        .collect();
    names.sort();
    assert!(names.len() >= 30, "only {} invalid specs", names.len());
    let vars = env(&[("ENABLED", "true")]);
    let mut failures = Vec::new();
    for name in &names {
        let path = invalid_dir().join(format!("{name}.yml"));
        let template = std::fs::read_to_string(&path).expect("spec");
        let file_name = format!("{name}.yml");
        let result = load_spec(&SpecInput {
            file_name: &file_name,
            template: &template,
            env: &vars,
            files: &NoFiles,
        });
        let actual = match result {
            Ok(_) => {
                failures.push(format!("{name}: loaded without errors"));
                continue;
            }
            Err(errors) => errors.to_string(),
        };
        let expected_path = invalid_dir().join(format!("{name}.expected"));
        if bless {
            std::fs::write(&expected_path, format!("{actual}\n")).expect("write");
            continue;
        }
        let expected = std::fs::read_to_string(&expected_path).unwrap_or_default();
        if expected.trim_end() != actual {
            failures.push(format!(
                "{name}:\n--- expected\n{}\n--- actual\n{actual}",
                expected.trim_end()
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

#[test]
fn several_errors_in_one_file_are_all_reported() {
    let template = std::fs::read_to_string(invalid_dir().join("many_errors.yml")).expect("spec");
    let errors = load_spec(&SpecInput {
        file_name: "svc.yml",
        template: &template,
        env: &env(&[]),
        files: &NoFiles,
    })
    .expect_err("errors");
    let fields: Vec<&str> = errors.0.iter().map(|e| e.field.as_str()).collect();
    for field in [
        "pods.hello.tasks.server.goal",
        "pods.hello.tasks.server.cpus",
        "pods.hello.tasks.server.kill-grace-period",
        "pods.hello.tasks.server.volume.path",
        "pods.world.count",
        "pods.world.tasks.server.ports.https.port",
        "plans.deploy.strategy",
        "plans.deploy.phases.hello.steps[0].default[0]",
    ] {
        assert!(fields.contains(&field), "{field} not in {fields:?}");
    }
    // Sorted by line.
    let lines: Vec<usize> = errors.0.iter().filter_map(|e| e.line).collect();
    let mut sorted = lines.clone();
    sorted.sort_unstable();
    assert_eq!(lines, sorted);
}

#[test]
fn hint_names_the_missing_template_value() {
    let template =
        std::fs::read_to_string(invalid_dir().join("missing_template_values.yml")).expect("spec");
    let errors = load_spec(&SpecInput {
        file_name: "svc.yml",
        template: &template,
        env: &env(&[("HELLO_CPUS", "0.1"), ("HELLO_MEM", "32")]),
        files: &NoFiles,
    })
    .expect_err("errors")
    .to_string();
    assert_eq!(
        errors,
        "svc.yml:1: name: has no value; expected the service name (the template value FRAMEWORK_NAME was not set)\n\
         svc.yml:4: pods.hello.count: has no value; expected an integer ≥ 0 (the template value HELLO_COUNT was not set)"
    );
}

#[test]
fn error_lines_are_template_lines_after_removed_sections() {
    // The false section removes three template lines; the bad goal is still reported on the
    // template's line 12.
    let template = "name: hello-world\n\
                    pods:\n  hello:\n    count: 1\n\
                    {{#EXTRA}}\n    placement: hostname:UNIQUE\n{{/EXTRA}}\n\
                    \x20   tasks:\n      server:\n        cmd: sleep 1\n        cpus: 0.1\n\
                    \x20       goal: FINISHED\n";
    let errors = load_spec(&SpecInput {
        file_name: "svc.yml",
        template,
        env: &env(&[("EXTRA", "false")]),
        files: &NoFiles,
    })
    .expect_err("errors")
    .to_string();
    assert_eq!(
        errors,
        "svc.yml:12: pods.hello.tasks.server.goal: \"FINISHED\" is not a goal; allowed: RUNNING, FINISH, ONCE"
    );
}
