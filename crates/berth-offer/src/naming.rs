//! Names berth derives from a service name: task names and ids, executor ids, DNS domains,
//! config-template variables. Shared with the scheduler and the API so they agree.

/// `<pod>-<index>-<task>`, e.g. `hello-0-server`.
#[must_use]
pub fn task_name(pod_type: &str, index: u32, task: &str) -> String {
    let mut s = pod_instance_name_with(pod_type, index, task.len() + 1);
    s.push('-');
    s.push_str(task);
    s
}

/// `<pod>-<index>`, e.g. `hello-0`.
#[must_use]
pub fn pod_instance_name(pod_type: &str, index: u32) -> String {
    pod_instance_name_with(pod_type, index, 0)
}

/// `<pod>-<index>` in a string with room for `extra` more bytes (names are made per launch:
/// one allocation each).
fn pod_instance_name_with(pod_type: &str, index: u32, extra: usize) -> String {
    use std::fmt::Write as _;
    let mut s = String::with_capacity(pod_type.len() + 11 + extra);
    s.push_str(pod_type);
    s.push('-');
    let _ = write!(s, "{index}");
    s
}

/// The service name as used inside ids: leading `/` removed, other `/` replaced by `.`
/// (`/test/hello-world` → `test.hello-world`).
#[must_use]
pub fn id_service_name(service: &str) -> String {
    let mut s = String::with_capacity(service.len());
    push_id_service_name(&mut s, service);
    s
}

/// Appends [`id_service_name`] of `service` to `out`.
fn push_id_service_name(out: &mut String, service: &str) {
    out.extend(
        service
            .trim_start_matches('/')
            .chars()
            .map(|c| if c == '/' { '.' } else { c }),
    );
}

/// Task id `<svc>__<task-name>__<uuid>` (see [`id_service_name`]).
#[must_use]
pub fn task_id(service: &str, task_name: &str, uuid: &str) -> String {
    joined_id(service, task_name, uuid)
}

/// Executor id `<svc>__<pod-type>__<uuid>` (see [`id_service_name`]).
#[must_use]
pub fn executor_id(service: &str, pod_type: &str, uuid: &str) -> String {
    joined_id(service, pod_type, uuid)
}

/// `<svc>__<middle>__<uuid>`, allocated once at its final size (ids are made per launch).
fn joined_id(service: &str, middle: &str, uuid: &str) -> String {
    let mut s = String::with_capacity(service.len() + middle.len() + uuid.len() + 4);
    push_id_service_name(&mut s, service);
    s.push_str("__");
    s.push_str(middle);
    s.push_str("__");
    s.push_str(uuid);
    s
}

/// The task name inside a task id: the part between the first and the last `__`.
#[must_use]
pub fn task_name_of_id(task_id: &str) -> Option<&str> {
    let (_, rest) = task_id.split_once("__")?;
    let (name, _) = rest.rsplit_once("__")?;
    Some(name)
}

/// `<svc>.autoip.dcos.thisdcos.directory` with `/` removed and `.` replaced by `-`
/// (`FRAMEWORK_HOST`; tasks are `<task>.<this>`).
#[must_use]
pub fn autoip_domain(service: &str) -> String {
    let mut s: String = service
        .chars()
        .filter(|c| *c != '/')
        .map(|c| if c == '.' { '-' } else { c })
        .collect();
    s.push_str(".autoip.dcos.thisdcos.directory");
    s
}

/// `<svc>.l4lb.thisdcos.directory` with `/` removed (`FRAMEWORK_VIP_HOST`; VIPs are
/// `<prefix>.<this>:<port>`).
#[must_use]
pub fn vip_domain(service: &str) -> String {
    let mut s: String = service.chars().filter(|c| *c != '/').collect();
    s.push_str(".l4lb.thisdcos.directory");
    s
}

/// `CONFIG_TEMPLATE_<NAME>`: the config name upper-cased, every non-alphanumeric character
/// replaced by `_`.
#[must_use]
pub fn config_template_env(name: &str) -> String {
    let mut s = String::with_capacity(16 + name.len());
    s.push_str("CONFIG_TEMPLATE_");
    s.extend(name.chars().map(|c| {
        if c.is_ascii_alphanumeric() {
            c.to_ascii_uppercase()
        } else {
            '_'
        }
    }));
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_and_domains() {
        assert_eq!(task_name("hello", 0, "server"), "hello-0-server");
        assert_eq!(id_service_name("/test/hello-world"), "test.hello-world");
        assert_eq!(
            task_id("/test/hello-world", "hello-0-server", "u1"),
            "test.hello-world__hello-0-server__u1"
        );
        assert_eq!(
            executor_id("hello-world", "hello", "u2"),
            "hello-world__hello__u2"
        );
        assert_eq!(
            task_name_of_id("test.hello-world__hello-0-server__u1"),
            Some("hello-0-server")
        );
        assert_eq!(task_name_of_id("nounderscores"), None);
        assert_eq!(
            autoip_domain("/test/hello.world"),
            "testhello-world.autoip.dcos.thisdcos.directory"
        );
        assert_eq!(
            vip_domain("/test/hello.world"),
            "testhello.world.l4lb.thisdcos.directory"
        );
        assert_eq!(
            config_template_env("server.xml"),
            "CONFIG_TEMPLATE_SERVER_XML"
        );
    }
}
