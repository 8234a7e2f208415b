//! The integration tests of berth-testing, linked into one test binary: one link and one file
//! on disk instead of one per test file. Each module is one former test file.

mod chaos;
mod config_update;
mod day2;
mod deploy;
mod faults;
mod hold;
mod runner;
mod uninstall;

/// The JSON body of a reply (a plan's view included); panics on any other body.
fn json(reply: berth_scheduler::Reply) -> serde_json::Value {
    let body = format!("{:?}", reply.body);
    reply
        .body
        .into_json()
        .unwrap_or_else(|| panic!("not JSON: {body}"))
}

/// The service of a `svc.yml` text (no options, no files); panics when it does not load.
fn spec(yaml: &str) -> berth_spec::ServiceSpec {
    berth_spec::load_spec(&berth_spec::SpecInput {
        file_name: "svc.yml",
        template: yaml,
        env: &berth_spec::Env::default(),
        files: &berth_spec::NoFiles,
    })
    .unwrap_or_else(|e| panic!("{e}"))
    .spec
}
