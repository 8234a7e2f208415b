//! One copy of the parts many TaskInfos hold alike: the readiness check, the health check and
//! the container of the tasks of one pod type are the same value in every instance, so the
//! store keeps one of each and lets every TaskInfo point at it (a service of 100,000 tasks
//! holds a handful instead of 100,000).

use std::sync::Arc;

use berth_mesos::{CheckInfo, ContainerInfo, HealthCheck, TaskInfo};

/// Most distinct values of one kind kept for sharing: a service has a few task types, so a
/// longer list only means values nobody shares (each lookup walks it).
const MOST_KEPT: usize = 64;

/// The values TaskInfos of the store share.
#[derive(Debug, Default)]
pub(crate) struct SharedParts {
    checks: Vec<Arc<CheckInfo>>,
    health_checks: Vec<Arc<HealthCheck>>,
    containers: Vec<Arc<ContainerInfo>>,
}

impl SharedParts {
    /// Points `info`'s parts at the copies kept already, or keeps them for the next.
    pub(crate) fn share(&mut self, info: &mut TaskInfo) {
        share(&mut self.checks, &mut info.check);
        share(&mut self.health_checks, &mut info.health_check);
        share(&mut self.containers, &mut info.container);
    }
}

fn share<T: PartialEq>(kept: &mut Vec<Arc<T>>, part: &mut Option<Arc<T>>) {
    let Some(part) = part else {
        return;
    };
    if let Some(same) = kept.iter().find(|k| Arc::ptr_eq(k, part) || ***k == **part) {
        *part = Arc::clone(same);
        return;
    }
    // Values no TaskInfo holds any more make room.
    kept.retain(|k| Arc::strong_count(k) > 1);
    if kept.len() < MOST_KEPT {
        kept.push(Arc::clone(part));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(command: &str) -> Option<Arc<CheckInfo>> {
        Some(Arc::new(CheckInfo::shell(command, 0.0, 5.0, 5.0)))
    }

    fn task(name: &str, command: &str) -> TaskInfo {
        TaskInfo {
            name: name.to_owned(),
            task_id: berth_mesos::TaskId::new(format!("{name}-id")),
            agent_id: berth_mesos::AgentId::new("agent"),
            resources: Vec::new(),
            executor: None,
            command: None,
            health_check: None,
            check: check(command),
            kill_policy: None,
            labels: berth_mesos::Labels::default(),
            discovery: None,
            container: None,
        }
    }

    #[test]
    fn equal_parts_become_one_copy_and_others_stay_apart() {
        let mut shared = SharedParts::default();
        let mut a = task("a", "./ready");
        let mut b = task("b", "./ready");
        let mut c = task("c", "./other");
        shared.share(&mut a);
        shared.share(&mut b);
        shared.share(&mut c);
        let (a, b, c) = (a.check.unwrap(), b.check.unwrap(), c.check.unwrap());
        assert!(Arc::ptr_eq(&a, &b), "equal checks are one copy");
        assert!(!Arc::ptr_eq(&a, &c));
        assert_eq!(c.command.command.value, "./other");
    }

    #[test]
    fn a_value_nobody_holds_any_more_is_forgotten() {
        let mut shared = SharedParts::default();
        let mut a = task("a", "./ready");
        shared.share(&mut a);
        drop(a);
        let mut b = task("b", "./new");
        shared.share(&mut b);
        assert_eq!(
            shared.checks.len(),
            1,
            "the dropped task's check was let go"
        );
        assert_eq!(shared.checks[0].command.command.value, "./new");
    }
}
