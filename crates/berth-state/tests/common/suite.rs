//! The persister contract, as tests every backend must pass.
//!
//! A backend joins with one line in `tests/persister.rs`:
//! `mod zk { crate::common::suite::persister_suite!(crate::zk_fixture); }`
//! where the fixture function returns a [`Fixture`] holding an empty tree.

use std::any::Any;
use std::collections::BTreeMap;

use berth_state::{Persister, StateError, WriteOp};

use super::{err, ok};

/// An empty tree to test, plus whatever must live as long as it (a temporary directory).
pub struct Fixture {
    /// The backend under test.
    pub persister: Box<dyn Persister>,
    /// Dropped after the persister.
    pub keep: Option<Box<dyn Any>>,
}

impl Fixture {
    /// A fixture without anything to keep alive.
    pub fn new(persister: impl Persister + 'static) -> Self {
        Self {
            persister: Box::new(persister),
            keep: None,
        }
    }
}

/// Generates one `#[test]` per contract case for the backend made by `$fixture()`.
#[allow(unused_macros)] // used by tests/persister.rs only
macro_rules! persister_suite {
    ($fixture:path) => {
        $crate::common::suite::persister_suite!(@cases $fixture;
            get_missing_is_none, set_then_get, root_node, set_creates_parents,
            set_keeps_children, children_direct_and_sorted, children_of_missing_is_empty,
            subtree_sorted_with_self, subtree_excludes_lookalike_siblings, delete_is_recursive,
            delete_missing_is_ok, apply_runs_in_order, apply_is_atomic_on_invalid_path,
            apply_empty_batch, invalid_paths_are_named, binary_and_large_values,
            matches_reference_model);
    };
    (@cases $fixture:path; $($case:ident),*) => {
        $(
            #[test]
            fn $case() {
                let fixture = $fixture();
                $crate::common::suite::$case(&*fixture.persister);
            }
        )*
    };
}
#[allow(unused_imports)]
pub(crate) use persister_suite;

fn get(p: &dyn Persister, path: &str) -> Option<Vec<u8>> {
    ok(p.get(path))
}

fn paths(p: &dyn Persister, path: &str) -> Vec<String> {
    ok(p.subtree(path)).into_iter().map(|(k, _)| k).collect()
}

pub fn get_missing_is_none(p: &dyn Persister) {
    assert_eq!(get(p, "/nothing"), None);
    assert_eq!(get(p, "/nothing/below"), None);
}

pub fn set_then_get(p: &dyn Persister) {
    ok(p.set("/a", b"one"));
    assert_eq!(get(p, "/a").as_deref(), Some(&b"one"[..]));
    ok(p.set("/a", b"two"));
    assert_eq!(get(p, "/a").as_deref(), Some(&b"two"[..]));
    ok(p.set("/a", b""));
    assert_eq!(get(p, "/a").as_deref(), Some(&b""[..]));
}

pub fn root_node(p: &dyn Persister) {
    assert_eq!(get(p, "/").as_deref(), Some(&b""[..]));
    ok(p.set("/x/y", b"1"));
    assert_eq!(ok(p.children("/")), vec!["x"]);
    assert_eq!(paths(p, "/"), vec!["/", "/x", "/x/y"]);
    assert!(matches!(
        err(p.set("/", b"v")),
        StateError::InvalidPath { .. }
    ));
    assert!(matches!(err(p.delete("/")), StateError::InvalidPath { .. }));
}

pub fn set_creates_parents(p: &dyn Persister) {
    ok(p.set("/svc/Tasks/hello-0-server/TaskInfo", b"{}"));
    assert_eq!(get(p, "/svc").as_deref(), Some(&b""[..]));
    assert_eq!(get(p, "/svc/Tasks").as_deref(), Some(&b""[..]));
    assert_eq!(
        get(p, "/svc/Tasks/hello-0-server").as_deref(),
        Some(&b""[..])
    );
    assert_eq!(ok(p.children("/svc/Tasks")), vec!["hello-0-server"]);
    // An existing ancestor keeps its data.
    ok(p.set("/svc", b"root data"));
    ok(p.set("/svc/Tasks/hello-1-server/TaskInfo", b"{}"));
    assert_eq!(get(p, "/svc").as_deref(), Some(&b"root data"[..]));
}

pub fn set_keeps_children(p: &dyn Persister) {
    ok(p.set("/a/b", b"child"));
    ok(p.set("/a", b"parent"));
    assert_eq!(get(p, "/a/b").as_deref(), Some(&b"child"[..]));
    assert_eq!(ok(p.children("/a")), vec!["b"]);
}

pub fn children_direct_and_sorted(p: &dyn Persister) {
    // Names chosen around '/' in byte order: '-' and '.' sort before '/', '0' and letters after.
    for path in [
        "/p/c/x/deep",
        "/p/c-1",
        "/p/c.x",
        "/p/c0",
        "/p/b",
        "/p/c/y",
        "/p/a/1/2/3",
        "/p/Z",
        "/p/hello-0-server:task-status",
        "/pp/other",
        "/p-other/x",
    ] {
        ok(p.set(path, b"v"));
    }
    assert_eq!(
        ok(p.children("/p")),
        vec![
            "Z",
            "a",
            "b",
            "c",
            "c-1",
            "c.x",
            "c0",
            "hello-0-server:task-status"
        ]
    );
    assert_eq!(ok(p.children("/p/c")), vec!["x", "y"]);
    assert_eq!(ok(p.children("/p/c/x/deep")), Vec::<String>::new());
    assert_eq!(ok(p.children("/")), vec!["p", "p-other", "pp"]);
}

pub fn children_of_missing_is_empty(p: &dyn Persister) {
    ok(p.set("/a/b", b"v"));
    assert!(ok(p.children("/missing")).is_empty());
    assert!(ok(p.children("/a/b")).is_empty());
    assert!(ok(p.children("/a/bb")).is_empty());
}

pub fn subtree_sorted_with_self(p: &dyn Persister) {
    ok(p.set("/r/b/2", b"b2"));
    ok(p.set("/r/a", b"a"));
    ok(p.set("/r/b/1", b"b1"));
    ok(p.set("/r", b"root"));
    let tree = ok(p.subtree("/r"));
    let expected: Vec<(String, Vec<u8>)> = [
        ("/r", &b"root"[..]),
        ("/r/a", b"a"),
        ("/r/b", b""),
        ("/r/b/1", b"b1"),
        ("/r/b/2", b"b2"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_vec()))
    .collect();
    assert_eq!(tree, expected);
    assert_eq!(paths(p, "/r/b/1"), vec!["/r/b/1"]);
    assert!(ok(p.subtree("/missing")).is_empty());
}

pub fn subtree_excludes_lookalike_siblings(p: &dyn Persister) {
    for path in ["/a/b/c", "/a/b-1/c", "/a/b.x", "/a/bc", "/a/b0"] {
        ok(p.set(path, b"v"));
    }
    assert_eq!(paths(p, "/a/b"), vec!["/a/b", "/a/b/c"]);
}

pub fn delete_is_recursive(p: &dyn Persister) {
    for path in [
        "/a/b/c/d", "/a/b/e", "/a/b-1/c", "/a/b.x", "/a/bc", "/a/b0", "/a/x",
    ] {
        ok(p.set(path, b"v"));
    }
    ok(p.delete("/a/b"));
    assert_eq!(get(p, "/a/b"), None);
    assert_eq!(get(p, "/a/b/c/d"), None);
    assert_eq!(
        paths(p, "/a"),
        vec![
            "/a", "/a/b-1", "/a/b-1/c", "/a/b.x", "/a/b0", "/a/bc", "/a/x"
        ]
    );
    ok(p.delete("/a"));
    assert!(ok(p.subtree("/")).len() == 1);
}

pub fn delete_missing_is_ok(p: &dyn Persister) {
    ok(p.delete("/never/was"));
    ok(p.set("/a", b"v"));
    ok(p.delete("/a/never"));
    assert_eq!(get(p, "/a").as_deref(), Some(&b"v"[..]));
}

pub fn apply_runs_in_order(p: &dyn Persister) {
    ok(p.apply(&[
        WriteOp::set("/t/x/1", "one"),
        WriteOp::set("/t/x/2", "two"),
        WriteOp::delete("/t/x"),
        WriteOp::set("/t/x/3", "three"),
        WriteOp::set("/t/y", "first"),
        WriteOp::set("/t/y", "second"),
    ]));
    assert_eq!(paths(p, "/t"), vec!["/t", "/t/x", "/t/x/3", "/t/y"]);
    assert_eq!(get(p, "/t/y").as_deref(), Some(&b"second"[..]));
}

pub fn apply_is_atomic_on_invalid_path(p: &dyn Persister) {
    ok(p.set("/keep", b"old"));
    let e = err(p.apply(&[
        WriteOp::set("/keep", "new"),
        WriteOp::set("/fresh/node", "x"),
        WriteOp::delete("/keep"),
        WriteOp::set("/bad//path", "x"),
        WriteOp::set("/after", "x"),
    ]));
    match e {
        StateError::InvalidPath { path, .. } => assert_eq!(path, "/bad//path"),
        other => panic!("expected InvalidPath, got {other}"),
    }
    assert_eq!(get(p, "/keep").as_deref(), Some(&b"old"[..]));
    assert_eq!(get(p, "/fresh"), None);
    assert_eq!(get(p, "/after"), None);
    assert_eq!(paths(p, "/"), vec!["/", "/keep"]);
}

pub fn apply_empty_batch(p: &dyn Persister) {
    ok(p.apply(&[]));
    assert_eq!(paths(p, "/"), vec!["/"]);
}

pub fn invalid_paths_are_named(p: &dyn Persister) {
    for bad in [
        "",
        "relative",
        "/trailing/",
        "//double",
        "/a//b",
        "/a/./b",
        "/a/../b",
        "/nul\u{0}",
        "/tab\there",
        "/emoji\u{1F600}",
    ] {
        let checks: [(&str, Result<(), StateError>); 5] = [
            ("get", p.get(bad).map(|_| ())),
            ("children", p.children(bad).map(|_| ())),
            ("subtree", p.subtree(bad).map(|_| ())),
            ("set", p.set(bad, b"v")),
            ("delete", p.delete(bad)),
        ];
        for (what, result) in checks {
            match result {
                Err(StateError::InvalidPath { path, reason }) => {
                    assert_eq!(path, bad, "{what}");
                    assert!(!reason.is_empty());
                    let message = StateError::InvalidPath { path, reason }.to_string();
                    assert!(message.contains(&format!("'{bad}'")), "{message}");
                }
                other => panic!("{what}({bad:?}): expected InvalidPath, got {other:?}"),
            }
        }
    }
    assert!(matches!(
        err(p.set("/zookeeper/quota", b"v")),
        StateError::InvalidPath { .. }
    ));
    assert_eq!(paths(p, "/"), vec!["/"]);
}

pub fn binary_and_large_values(p: &dyn Persister) {
    let binary: Vec<u8> = (0..=255u8).collect();
    ok(p.set("/bin", &binary));
    assert_eq!(get(p, "/bin"), Some(binary));
    let large = vec![b'x'; 1_000_000];
    ok(p.set("/large", &large));
    assert_eq!(get(p, "/large").map(|v| v.len()), Some(1_000_000));
    ok(p.set("/unicode/héllo wörld", "ünïcode".as_bytes()));
    assert_eq!(ok(p.children("/unicode")), vec!["héllo wörld"]);
}

/// A naive model of the contract: every node listed explicitly.
#[derive(Default)]
struct Model(BTreeMap<String, Vec<u8>>);

impl Model {
    fn apply(&mut self, op: &WriteOp) {
        match op {
            WriteOp::Set { path, value } => {
                let mut at = 0;
                while let Some(i) = path[at + 1..].find('/') {
                    at += i + 1;
                    self.0.entry(path[..at].to_owned()).or_default();
                }
                self.0.insert(path.clone(), value.clone());
            }
            WriteOp::Delete { path } => {
                let below = format!("{path}/");
                self.0.retain(|k, _| k != path && !k.starts_with(&below));
            }
        }
    }

    fn children(&self, path: &str) -> Vec<String> {
        let prefix = if path == "/" {
            "/".to_owned()
        } else {
            format!("{path}/")
        };
        let mut out: Vec<String> = self
            .0
            .keys()
            .filter_map(|k| k.strip_prefix(&prefix))
            .filter(|rest| !rest.contains('/'))
            .map(str::to_owned)
            .collect();
        out.sort();
        out
    }
}

/// Random batches over a small alphabet of tricky names, compared with [`Model`].
pub fn matches_reference_model(p: &dyn Persister) {
    const NAMES: [&str; 6] = ["a", "a-b", "a.b", "b", "a0", "ab"];
    // A small deterministic generator (xorshift): reproducible without extra dependencies.
    let mut seed: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut next = move |n: usize| {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        (seed % n as u64) as usize
    };
    let mut model = Model::default();
    let mut all_paths = vec!["/".to_owned()];
    for a in NAMES {
        all_paths.push(format!("/{a}"));
        for b in NAMES {
            all_paths.push(format!("/{a}/{b}"));
            for c in NAMES {
                all_paths.push(format!("/{a}/{b}/{c}"));
            }
        }
    }
    for batch in 0..40 {
        let ops: Vec<WriteOp> = (0..1 + next(8))
            .map(|i| {
                let path = all_paths[1 + next(all_paths.len() - 1)].clone();
                if next(4) == 0 {
                    WriteOp::delete(path)
                } else {
                    WriteOp::set(path, format!("{batch}.{i}"))
                }
            })
            .collect();
        ok(p.apply(&ops));
        for op in &ops {
            model.apply(op);
        }
        let mut expected: Vec<(String, Vec<u8>)> = vec![("/".to_owned(), Vec::new())];
        expected.extend(model.0.iter().map(|(k, v)| (k.clone(), v.clone())));
        assert_eq!(ok(p.subtree("/")), expected, "after batch {batch}: {ops:?}");
        for path in &all_paths {
            assert_eq!(
                ok(p.children(path)),
                model.children(path),
                "children({path})"
            );
            if path != "/" {
                assert_eq!(ok(p.get(path)), model.0.get(path).cloned(), "get({path})");
            }
        }
    }
}
