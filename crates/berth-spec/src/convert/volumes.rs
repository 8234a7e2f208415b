//! Volumes: the `volume` / `volumes` of a pod, task or resource set (reserved disk, ROOT or
//! MOUNT, with profiles), and a pod's `host-volumes` and `external-volumes`.

use super::Converter;
use super::fields::{Fields, join};
use super::resources::Roles;
use super::values::Choice;
use crate::model::{ExternalVolumeSpec, HostVolumeSpec, VolumeSpec, VolumeType};
use crate::yaml::{Node, NodeKind};

/// Keys of a volume.
const VOLUME_KEYS: &[&str] = &["path", "type", "size", "profiles"];
/// Keys of a host volume.
const HOST_VOLUME_KEYS: &[&str] = &["host-path", "container-path", "mode"];
/// Keys of an external volume.
const EXTERNAL_VOLUME_KEYS: &[&str] = &[
    "type",
    "volume-name",
    "volume-mode",
    "driver-name",
    "driver-options",
    "container-path",
];

/// The types of a volume.
const VOLUME_TYPES: Choice<VolumeType> = Choice {
    what: "a volume type",
    options: &[("ROOT", VolumeType::Root), ("MOUNT", VolumeType::Mount)],
    extra: "",
};
/// The access modes of host and external volumes.
const ACCESS_MODES: Choice<&str> = Choice {
    what: "an access mode",
    options: &[("RW", "RW"), ("RO", "RO")],
    extra: "",
};
/// The types of an external volume.
const EXTERNAL_VOLUME_TYPES: Choice<&str> = Choice {
    what: "an external volume type",
    options: &[("DOCKER", "DOCKER")],
    extra: "",
};

impl Converter<'_> {
    /// `volume` (one) or `volumes` (by name), not both; container paths are unique.
    pub(super) fn volumes(&mut self, f: &Fields<'_>, roles: &Roles) -> Vec<VolumeSpec> {
        let mut out: Vec<VolumeSpec> = Vec::new();
        if f.get("volume").is_some() && f.get("volumes").is_some() {
            self.err_at(
                f,
                "volumes",
                None,
                "may not be combined with volume; use either one volume or a map of volumes",
            );
            return out;
        }
        let mut found: Vec<(VolumeSpec, usize, String)> = Vec::new();
        if let Some(node) = f.get("volume") {
            let path = f.path("volume");
            if let Some(v) = self.volume(node, &path, f.key_line("volume"), roles) {
                found.push((v, f.key_line("volume"), path));
            }
        }
        if let Some((path, entries)) = self.sub_entries(f, "volumes") {
            for (name, k, v) in entries {
                let vpath = join(&path, name);
                if let Some(spec) = self.volume(v, &vpath, k.line, roles) {
                    found.push((spec, k.line, vpath));
                }
            }
        }
        for (spec, line, path) in found {
            if out.iter().any(|o| o.container_path == spec.container_path) {
                self.err(
                    line,
                    &format!("{path}.path"),
                    Some(&spec.container_path),
                    "is already the path of another volume here; volume paths must be unique",
                );
                continue;
            }
            out.push(spec);
        }
        out
    }

    /// One volume at `path` (its key on `line`).
    fn volume(
        &mut self,
        node: &Node,
        path: &str,
        line: usize,
        roles: &Roles,
    ) -> Option<VolumeSpec> {
        let vf = self.fields(node, path, line, VOLUME_KEYS, true)?;
        let container_path = self.req_string(&vf, "path", "a sandbox-relative directory name");
        if let Some(p) = &container_path
            && !valid_volume_path(p)
        {
            self.err_at(
                &vf,
                "path",
                Some(p),
                "is not a valid volume path; expected a sandbox-relative name matching \
                     [a-zA-Z0-9]+([a-zA-Z0-9_-]*)*",
            );
        }
        let volume_type = self.req_choice(&vf, "type", "ROOT or MOUNT", &VOLUME_TYPES);
        let size = self
            .req_int(&vf, "size", 1, i64::MAX, "a size in MB ≥ 1")
            .and_then(|n| u64::try_from(n).ok());
        let (profiles, mut profiles_ok) = self.profiles(&vf);
        if !profiles.is_empty() && volume_type == Some(VolumeType::Root) {
            self.err_at(
                &vf,
                "profiles",
                None,
                "are only allowed on MOUNT volumes; this volume is ROOT",
            );
            profiles_ok = false;
        }
        let container_path = container_path.filter(|p| valid_volume_path(p))?;
        if !profiles_ok {
            return None;
        }
        Some(VolumeSpec {
            volume_type: volume_type?,
            container_path,
            size: size?,
            profiles,
            role: roles.role.clone(),
            pre_reserved_role: roles.pre_reserved_role.clone(),
            principal: roles.principal.clone(),
        })
    }

    /// A volume's `profiles`: the valid, distinct names, and whether every entry was valid.
    fn profiles(&mut self, vf: &Fields<'_>) -> (Vec<String>, bool) {
        let mut profiles: Vec<String> = Vec::new();
        let Some(pnode) = vf.get("profiles") else {
            return (profiles, true);
        };
        let ppath = vf.path("profiles");
        let NodeKind::Seq(items) = &pnode.kind else {
            self.wrong_kind(pnode, &ppath, "a list of profile names");
            return (profiles, false);
        };
        let mut ok = true;
        for (i, item) in items.iter().enumerate() {
            let ipath = format!("{ppath}[{i}]");
            match &item.kind {
                NodeKind::Null => {}
                NodeKind::Scalar { text, .. } => {
                    if !valid_profile(text) {
                        self.err(
                            item.line,
                            &ipath,
                            Some(text),
                            "is not a valid profile name; expected 1 to 128 of a-z, A-Z, 0-9, \
                             '_', '.', '-'",
                        );
                        ok = false;
                    } else if profiles.contains(text) {
                        self.err(
                            item.line,
                            &ipath,
                            Some(text),
                            "is listed twice; profiles must be unique",
                        );
                        ok = false;
                    } else {
                        profiles.push(text.clone());
                    }
                }
                _ => {
                    self.wrong_kind(item, &ipath, "a profile name");
                    ok = false;
                }
            }
        }
        (profiles, ok)
    }

    /// A pod's `host-volumes`: agent paths mounted into the sandbox.
    pub(super) fn host_volumes(&mut self, f: &Fields<'_>) -> Vec<HostVolumeSpec> {
        let mut out = Vec::new();
        let Some((path, entries)) = self.sub_entries(f, "host-volumes") else {
            return out;
        };
        for (name, k, v) in entries {
            let hpath = join(&path, name);
            let Some(hf) = self.fields(v, &hpath, k.line, HOST_VOLUME_KEYS, true) else {
                continue;
            };
            let host_path = self.req_string(&hf, "host-path", "a path on the agent");
            let container_path = self.req_string(&hf, "container-path", "a path in the sandbox");
            let mode = self.access_mode(&hf, "mode");
            if let (Some(host_path), Some(container_path), Some(mode)) =
                (host_path, container_path, mode)
            {
                out.push(HostVolumeSpec {
                    name: name.to_owned(),
                    host_path,
                    container_path,
                    mode,
                });
            }
        }
        out
    }

    /// An access mode under `key`: RW (the default) or RO.
    fn access_mode(&mut self, f: &Fields<'_>, key: &str) -> Option<String> {
        self.choice_or(f, key, &ACCESS_MODES, "RW")
            .map(str::to_owned)
    }

    /// A pod's `external-volumes`: Docker volumes mounted into the sandbox.
    pub(super) fn external_volumes(&mut self, f: &Fields<'_>) -> Vec<ExternalVolumeSpec> {
        let mut out = Vec::new();
        let Some((path, entries)) = self.sub_entries(f, "external-volumes") else {
            return out;
        };
        for (name, k, v) in entries {
            let epath = join(&path, name);
            let Some(ef) = self.fields(v, &epath, k.line, EXTERNAL_VOLUME_KEYS, true) else {
                continue;
            };
            let volume_type = self.req_choice(&ef, "type", "DOCKER", &EXTERNAL_VOLUME_TYPES);
            let container_path = self.req_string(&ef, "container-path", "a path in the sandbox");
            let driver_name = self.req_string(&ef, "driver-name", "a Docker volume driver name");
            let volume_mode = self.access_mode(&ef, "volume-mode");
            let volume_name = self
                .opt_string(&ef, "volume-name")
                .filter(|s| !s.is_empty());
            let driver_options = self
                .opt_string(&ef, "driver-options")
                .filter(|s| !s.is_empty());
            if let (Some(volume_type), Some(container_path), Some(driver_name), Some(volume_mode)) =
                (volume_type, container_path, driver_name, volume_mode)
            {
                out.push(ExternalVolumeSpec {
                    name: name.to_owned(),
                    volume_type: volume_type.to_owned(),
                    volume_name,
                    volume_mode,
                    driver_name,
                    driver_options,
                    container_path,
                });
            }
        }
        out
    }
}

/// A sandbox-relative directory name: `[a-zA-Z0-9][a-zA-Z0-9_-]*`.
fn valid_volume_path(p: &str) -> bool {
    let mut chars = p.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphanumeric())
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

/// A profile name: 1 to 128 of `a-z A-Z 0-9 _ . -`.
fn valid_profile(p: &str) -> bool {
    (1..=128).contains(&p.len())
        && p.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.' || c == '-')
}
