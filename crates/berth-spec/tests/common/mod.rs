//! Test helpers: reading fixture files from disk (tests may do I/O; the crate may not).

#![allow(dead_code)]

use std::path::{Path, PathBuf};

use berth_spec::{Env, FileSource};

/// A file source over a directory on disk.
pub struct DirSource(pub PathBuf);

impl FileSource for DirSource {
    fn read(&self, path: &str) -> Result<Option<String>, String> {
        let full = self.0.join(path);
        match std::fs::read_to_string(&full) {
            Ok(text) => Ok(Some(text)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e.to_string()),
        }
    }
}

/// The helloworld package of the peer specs.
pub fn helloworld_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/peer-specs/helloworld")
}

/// Names of all helloworld specs (`dist/*.yml` without the extension), sorted.
pub fn helloworld_specs() -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(helloworld_dir().join("dist"))
        .expect("helloworld dist directory")
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            name.strip_suffix(".yml").map(str::to_owned)
        })
        .collect();
    names.sort();
    names
}

/// An environment from pairs.
pub fn env(pairs: &[(&str, &str)]) -> Env {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}
