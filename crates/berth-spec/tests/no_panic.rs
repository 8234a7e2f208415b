//! Nothing a user can write makes the spec pipeline panic: random bytes, and random mutations
//! of the valid and invalid spec corpora, go through rendering, parsing, conversion, the update
//! validators, the diff and the feature check.

use crate::common;

use std::sync::OnceLock;

use berth_spec::{
    Env, NoFiles, Package, ServiceSpec, SpecInput, load_spec, parse_placement, parse_spec,
    pod_specs_equivalent_for_update, render_env, render_json, spec_diff, unsupported_features,
    validate_update,
};
use common::{DirSource, helloworld_dir, helloworld_specs};
use proptest::prelude::*;

struct Corpus {
    env: Env,
    templates: Vec<String>,
    base: ServiceSpec,
}

fn corpus() -> &'static Corpus {
    static CORPUS: OnceLock<Corpus> = OnceLock::new();
    CORPUS.get_or_init(|| {
        let pkg = Package::load("hello-world", &DirSource(helloworld_dir())).expect("package");
        let options = pkg.resolve_options(None).expect("options");
        let mut env = pkg.environment(&options).expect("env");
        env.insert("PORT_API".to_owned(), "8080".to_owned());
        env.insert("DEPLOY_STRATEGY".to_owned(), "serial".to_owned());
        env.insert(
            "DEPLOY_STEPS".to_owned(),
            "[[first, second], [third]]".to_owned(),
        );
        let mut templates: Vec<String> = helloworld_specs()
            .iter()
            .map(|n| {
                std::fs::read_to_string(helloworld_dir().join(format!("dist/{n}.yml")))
                    .expect("spec")
            })
            .collect();
        let invalid = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/invalid");
        let mut names: Vec<_> = std::fs::read_dir(&invalid)
            .expect("invalid")
            .filter_map(|e| e.ok())
            .map(|e| e.path())
            .collect();
        names.sort();
        for path in names {
            if path.extension().is_some_and(|e| e == "yml") {
                templates.push(std::fs::read_to_string(path).expect("spec"));
            }
        }
        let base = load_spec(&SpecInput {
            file_name: "dist/svc.yml",
            template: &templates[helloworld_specs()
                .iter()
                .position(|n| n == "svc")
                .unwrap_or(0)],
            env: &env,
            files: &NoFiles,
        })
        .expect("svc")
        .spec;
        Corpus {
            env,
            templates,
            base,
        }
    })
}

/// Everything downstream of a spec, exercised on it.
fn exercise(spec: &ServiceSpec, base: &ServiceSpec) {
    let _ = validate_update(None, spec);
    let _ = validate_update(Some(base), spec);
    let _ = validate_update(Some(spec), base);
    let _ = spec_diff(base, spec);
    let _ = unsupported_features(spec);
    for (a, b) in spec.pod_specs.iter().zip(&base.pod_specs) {
        let _ = pod_specs_equivalent_for_update(a, b);
    }
    let json = serde_json::to_string(spec).expect("serialize");
    let back: ServiceSpec = serde_json::from_str(&json).expect("deserialize");
    assert_eq!(&back, spec);
}

fn run_template(template: &str) {
    let c = corpus();
    let _ = render_env(template, &c.env);
    let _ = render_json(
        template,
        &serde_json::json!({"a": {"b": [1, "x", null]}, "s": "v"}),
    );
    if let Ok(loaded) = load_spec(&SpecInput {
        file_name: "svc.yml",
        template,
        env: &c.env,
        files: &NoFiles,
    }) {
        exercise(&loaded.spec, &c.base);
    }
    if let Ok(spec) = parse_spec("svc.yml", template, &c.env, &NoFiles) {
        exercise(&spec, &c.base);
    }
    let _ = parse_placement(template);
}

#[derive(Debug, Clone)]
enum Mutation {
    Delete(usize),
    Duplicate(usize),
    Swap(usize, usize),
    Replace(usize, char),
    Insert(usize, String),
    Indent(usize, usize),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        any::<usize>().prop_map(Mutation::Delete),
        any::<usize>().prop_map(Mutation::Duplicate),
        (any::<usize>(), any::<usize>()).prop_map(|(a, b)| Mutation::Swap(a, b)),
        (
            any::<usize>(),
            prop::sample::select(vec![
                ':', ' ', '-', '{', '}', '[', ']', '#', '&', '*', '!', '|', '>', '"', '\'', '\n',
                '\t', '0', '9', 'x', '\\', '%', '@', '~'
            ])
        )
            .prop_map(|(a, c)| Mutation::Replace(a, c)),
        (
            any::<usize>(),
            prop::sample::select(vec![
                "{{#X}}",
                "{{/X}}",
                "{{^Y}}",
                "{{",
                "}}",
                "{{{Z}}}",
                "&a",
                "*a",
                "<<: *a",
                "- ",
                ": ",
                "? ",
                "count: -1",
                "port: 0",
                "goal: ONCE",
                "volume:",
                "steps: [[]]",
                "---",
                "...",
                "\u{0}",
                "é",
                "%YAML 1.2",
            ])
            .prop_map(str::to_owned)
        )
            .prop_map(|(a, s)| Mutation::Insert(a, s)),
        (any::<usize>(), 0usize..12).prop_map(|(a, n)| Mutation::Indent(a, n)),
    ]
}

fn apply(text: &str, mutations: &[Mutation]) -> String {
    let mut lines: Vec<String> = text.lines().map(str::to_owned).collect();
    for m in mutations {
        if lines.is_empty() {
            lines.push(String::new());
        }
        let n = lines.len();
        match m {
            Mutation::Delete(i) => {
                lines.remove(i % n);
            }
            Mutation::Duplicate(i) => {
                let line = lines[i % n].clone();
                lines.insert(i % n, line);
            }
            Mutation::Swap(a, b) => lines.swap(a % n, b % n),
            Mutation::Replace(i, c) => {
                let line = &mut lines[i % n];
                let chars: Vec<char> = line.chars().collect();
                if !chars.is_empty() {
                    let at = i / n.max(1) % chars.len();
                    *line = chars
                        .iter()
                        .enumerate()
                        .map(|(j, x)| if j == at { *c } else { *x })
                        .collect();
                }
            }
            Mutation::Insert(i, s) => {
                let line = &mut lines[i % n];
                let at = line
                    .char_indices()
                    .map(|(j, _)| j)
                    .nth(i / n.max(1) % (line.chars().count() + 1))
                    .unwrap_or(line.len());
                line.insert_str(at, s);
            }
            Mutation::Indent(i, k) => {
                let line = &mut lines[i % n];
                *line = format!("{}{}", " ".repeat(*k), line.trim_start());
            }
        }
    }
    lines.join("\n")
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]

    #[test]
    fn random_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..1500)) {
        run_template(&String::from_utf8_lossy(&bytes));
    }

    #[test]
    fn random_yamlish_text_never_panics(parts in prop::collection::vec(prop::sample::select(vec![
        "name: x\n", "pods:\n", "  p:\n", "    count: 1\n", "    tasks:\n", "      t:\n", "        goal: RUNNING\n",
        "        cmd: c\n", "        cpus: 1\n", "{{#A}}", "{{/A}}", "{{B}}", "  ", "- ", "[", "]", "{", "}", ": ", "\n",
        "&x ", "*x", "<<: *x\n", "plans:\n", "  deploy:\n", "    phases:\n", "      ph:\n", "        pod: p\n",
        "        steps:\n", "          - default: [[t]]\n", "          - 0: [[]]\n", "ports:\n", "  a: {port: 1}\n",
    ]), 0..60)) {
        run_template(&parts.concat());
    }

    #[test]
    fn mutated_corpus_never_panics(index in any::<usize>(), mutations in prop::collection::vec(mutation(), 1..6)) {
        let c = corpus();
        let template = &c.templates[index % c.templates.len()];
        run_template(&apply(template, &mutations));
    }
}

#[test]
fn hostile_inputs_are_errors_not_crashes() {
    let deep_yaml = format!("name: {}", "[".repeat(10_000));
    run_template(&deep_yaml);
    let deep_sections = "{{#A}}".repeat(10_000);
    run_template(&deep_sections);
    let laughs = "a: &a [x,x,x,x,x,x,x,x,x,x]\nb: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a,*a]\nc: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b,*b]\nd: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c,*c]\ne: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d,*d]\nf: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e,*e]\n";
    run_template(laughs);
    run_template("\u{feff}name: x\r\npods: {}\r\n");
    run_template("{{#a}}{{/a}}{{^a}}{{/a}}{{!}}{{& }}");
    let _ = parse_placement("[[[[[[[[[[[[[[[[[[[[\"a\"]]]]]]]]]]]]]]]]]]]");
    let _ = parse_placement("\\\\\\:,,::\\");
}
