//! Builders for specs, offers and resources used by the integration tests and the benchmark.
#![allow(dead_code, missing_docs)]

use berth_mesos::{
    AgentId, Attribute, DiskInfo, DiskRoot, DiskSource, DiskSourceType, DomainInfo, ExecutorId,
    FaultDomain, FrameworkId, NamedInfo, Offer, OfferId, Operation, Range, ReservationInfo,
    ReservationType, Resource,
};
use berth_spec::placement::PlacementRule;
use berth_spec::{
    CommandSpec, Goal, PodSpec, PortRange, PortSpec, ResourceSet, ResourceSpec, ScalarSpec,
    ServiceSpec, StringMap, TaskSpec, Visibility, VolumeSpec, VolumeType,
};

pub const SVC: &str = "hello-world";
pub const ROLE: &str = "hello-world-role";
pub const PRINCIPAL: &str = "hello-world-principal";

pub fn service(pods: Vec<PodSpec>) -> ServiceSpec {
    ServiceSpec {
        name: SVC.into(),
        role: ROLE.into(),
        principal: PRINCIPAL.into(),
        web_url: None,
        zookeeper: "master.mesos:2181".into(),
        user: "root".into(),
        goal: Goal::Running,
        region: None,
        replacement_failure_policy: None,
        pod_specs: pods,
        plans: vec![],
    }
}

pub fn pod(pod_type: &str, tasks: Vec<TaskSpec>) -> PodSpec {
    PodSpec {
        pod_type: pod_type.into(),
        user: "nobody".into(),
        count: 1,
        allow_decommission: false,
        image: None,
        networks: vec![],
        rlimits: vec![],
        uris: vec![],
        volumes: vec![],
        pre_reserved_role: "*".into(),
        secrets: vec![],
        placement_rule: None,
        task_specs: tasks,
        share_pid_namespace: false,
        host_volumes: vec![],
        external_volumes: vec![],
        seccomp_unconfined: false,
        seccomp_profile_name: None,
        ipc_mode: None,
        shm_size: None,
    }
}

pub fn with_placement(mut p: PodSpec, rule: PlacementRule) -> PodSpec {
    p.placement_rule = Some(rule);
    p
}

pub fn task(name: &str, set: ResourceSet) -> TaskSpec {
    TaskSpec {
        name: name.into(),
        goal: Goal::Running,
        essential: true,
        resource_set: set,
        command_spec: CommandSpec {
            value: format!("./{name}"),
            environment: StringMap::new(),
        },
        health_check_spec: None,
        readiness_check_spec: None,
        config_files: vec![],
        discovery_spec: None,
        task_labels: StringMap::new(),
        kill_grace_period: 0,
        transport_encryption: vec![],
        ipc_mode: None,
        shm_size: None,
    }
}

pub fn scalar_pre(name: &str, value: f64, pre: &str) -> ResourceSpec {
    ResourceSpec::Scalar(ScalarSpec {
        name: name.into(),
        value,
        role: ROLE.into(),
        pre_reserved_role: pre.into(),
        principal: PRINCIPAL.into(),
    })
}

pub fn scalar(name: &str, value: f64) -> ResourceSpec {
    scalar_pre(name, value, "*")
}

pub fn port_spec(name: &str, port: u32, env_key: Option<&str>) -> PortSpec {
    PortSpec {
        port_name: name.into(),
        port,
        env_key: env_key.map(str::to_owned),
        visibility: Visibility::Cluster,
        ranges: vec![],
        vip: None,
        role: ROLE.into(),
        pre_reserved_role: "*".into(),
        principal: PRINCIPAL.into(),
    }
}

pub fn port(name: &str, port: u32, env_key: Option<&str>) -> ResourceSpec {
    ResourceSpec::Port(port_spec(name, port, env_key))
}

pub fn ranged_port(name: &str, begin: Option<u32>, end: Option<u32>) -> ResourceSpec {
    let mut p = port_spec(name, 0, None);
    p.ranges = vec![PortRange { begin, end }];
    ResourceSpec::Port(p)
}

pub fn volume_pre(kind: VolumeType, path: &str, size: u64, pre: &str) -> VolumeSpec {
    VolumeSpec {
        volume_type: kind,
        container_path: path.into(),
        size,
        profiles: vec![],
        role: ROLE.into(),
        pre_reserved_role: pre.into(),
        principal: PRINCIPAL.into(),
    }
}

pub fn volume(kind: VolumeType, path: &str, size: u64) -> VolumeSpec {
    volume_pre(kind, path, size, "*")
}

pub fn set(id: &str, resources: Vec<ResourceSpec>, volumes: Vec<VolumeSpec>) -> ResourceSet {
    ResourceSet {
        id: id.into(),
        resource_specifications: resources,
        volume_specifications: volumes,
        resource_limits: None,
    }
}

pub fn r(begin: u64, end: u64) -> Range {
    Range { begin, end }
}

pub fn offer(id: &str, host: &str, resources: Vec<Resource>) -> Offer {
    Offer {
        id: OfferId::new(id),
        framework_id: FrameworkId::new("fw-1"),
        agent_id: AgentId::new(format!("agent-{host}")),
        hostname: host.into(),
        domain: None,
        attributes: vec![],
        resources,
        executor_ids: vec![],
    }
}

pub fn with_domain(mut o: Offer, region: &str, zone: &str) -> Offer {
    o.domain = Some(DomainInfo {
        fault_domain: Some(FaultDomain {
            region: NamedInfo {
                name: region.into(),
            },
            zone: NamedInfo { name: zone.into() },
        }),
    });
    o
}

pub fn with_attributes(mut o: Offer, attrs: Vec<Attribute>) -> Offer {
    o.attributes = attrs;
    o
}

pub fn with_executor(mut o: Offer, id: &ExecutorId) -> Offer {
    o.executor_ids.push(id.clone());
    o
}

/// A roomy unreserved agent: 8 cpus, 16 GB, 100 GB disk, ports 31000-32000.
pub fn big_agent() -> Vec<Resource> {
    vec![
        Resource::scalar("cpus", 8.0),
        Resource::scalar("mem", 16384.0),
        Resource::scalar("disk", 100_000.0),
        Resource::ranges("ports", vec![r(31000, 32000)]),
    ]
}

pub fn mount_disk(size: f64, root: &str, profile: Option<&str>) -> Resource {
    let mut d = Resource::scalar("disk", size);
    d.disk = Some(Box::new(DiskInfo {
        persistence: None,
        volume: None,
        source: Some(DiskSource {
            kind: DiskSourceType::Mount,
            mount: Some(DiskRoot { root: root.into() }),
            path: None,
            profile: profile.map(str::to_owned),
        }),
    }));
    d
}

pub fn statically_reserved(mut res: Resource, role: &str) -> Resource {
    res.reservations.push(ReservationInfo {
        kind: ReservationType::Static,
        role: role.into(),
        principal: None,
        labels: None,
    });
    res
}

/// The operation type names, in order.
pub fn op_types(ops: &[Operation]) -> Vec<&'static str> {
    ops.iter()
        .map(|o| match o {
            Operation::Reserve { .. } => "RESERVE",
            Operation::Unreserve { .. } => "UNRESERVE",
            Operation::Create { .. } => "CREATE",
            Operation::Destroy { .. } => "DESTROY",
            Operation::LaunchGroup { .. } => "LAUNCH_GROUP",
        })
        .collect()
}

pub fn reserved_in(ops: &[Operation]) -> Vec<Resource> {
    ops.iter()
        .filter_map(|o| match o {
            Operation::Reserve { reserve } => Some(reserve.resources.clone()),
            _ => None,
        })
        .flatten()
        .collect()
}

pub fn unreserved_in(ops: &[Operation]) -> Vec<Resource> {
    ops.iter()
        .filter_map(|o| match o {
            Operation::Unreserve { unreserve } => Some(unreserve.resources.clone()),
            _ => None,
        })
        .flatten()
        .collect()
}

pub fn created_in(ops: &[Operation]) -> Vec<Resource> {
    ops.iter()
        .filter_map(|o| match o {
            Operation::Create { create } => Some(create.volumes.clone()),
            _ => None,
        })
        .flatten()
        .collect()
}

/// What an agent offers back after the given accepted evaluation: all the reserved resources
/// of the stored TaskInfos (and their executors), plus `extra` unreserved ones.
pub fn reoffer(
    id: &str,
    host: &str,
    tasks: &[berth_mesos::TaskInfo],
    extra: Vec<Resource>,
) -> Offer {
    let mut resources: Vec<Resource> = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for t in tasks {
        let exec = t.executor.iter().flat_map(|e| e.resources.iter());
        for res in t.resources.iter().chain(exec) {
            if let Some(rid) = res.resource_id()
                && seen.insert(rid.to_owned())
            {
                resources.push(res.clone());
            }
        }
    }
    resources.extend(extra);
    offer(id, host, resources)
}

/// Heap allocations (and reallocations) made by a [`Counting`] global allocator.
pub static ALLOCATIONS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// A global allocator that counts into [`ALLOCATIONS`] (one relaxed add per call) and
/// forwards every call unchanged to `A`. For binaries that measure allocations.
pub struct Counting<A>(pub A);

// SAFETY: every call is forwarded unchanged to the inner allocator.
unsafe impl<A: std::alloc::GlobalAlloc> std::alloc::GlobalAlloc for Counting<A> {
    unsafe fn alloc(&self, layout: std::alloc::Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        // SAFETY: forwarded with the caller's guarantees.
        unsafe { self.0.alloc(layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: std::alloc::Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        // SAFETY: forwarded with the caller's guarantees.
        unsafe { self.0.alloc_zeroed(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: std::alloc::Layout) {
        // SAFETY: forwarded with the caller's guarantees.
        unsafe { self.0.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: std::alloc::Layout, new_size: usize) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        // SAFETY: forwarded with the caller's guarantees.
        unsafe { self.0.realloc(ptr, layout, new_size) }
    }
}

/// Allocations counted by [`Counting`] so far.
pub fn allocations() -> u64 {
    ALLOCATIONS.load(std::sync::atomic::Ordering::Relaxed)
}
