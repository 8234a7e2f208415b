//! Text views of API replies: the pod status tree and the agents table.

use serde_json::Value;

/// A node of a text tree.
struct Node {
    label: String,
    children: Vec<Node>,
}

/// Renders `root` and its children with `├─ `/`└─ ` branches and `│  `/`   ` indents.
fn tree(root: &Node) -> String {
    fn children(out: &mut String, nodes: &[Node], prefix: &str) {
        for (i, node) in nodes.iter().enumerate() {
            let last = i + 1 == nodes.len();
            let (branch, indent) = if last {
                ("└─ ", "   ")
            } else {
                ("├─ ", "│  ")
            };
            out.push_str(prefix);
            out.push_str(branch);
            out.push_str(&node.label);
            out.push('\n');
            children(out, &node.children, &format!("{prefix}{indent}"));
        }
    }
    let mut out = format!("{}\n", root.label);
    children(&mut out, &root.children, "");
    out
}

fn str_of<'a>(v: &'a Value, key: &str) -> &'a str {
    v.get(key).and_then(Value::as_str).unwrap_or("<UNKNOWN>")
}

fn items<'a>(v: &'a Value, key: &str) -> &'a [Value] {
    v.get(key)
        .and_then(Value::as_array)
        .map_or(&[], Vec::as_slice)
}

fn task_nodes(instance: &Value) -> Vec<Node> {
    items(instance, "tasks")
        .iter()
        .map(|t| Node {
            // A task without a status was never launched (its resources are only reserved).
            label: format!(
                "{} ({})",
                str_of(t, "name"),
                t.get("status")
                    .and_then(Value::as_str)
                    .unwrap_or("NOT LAUNCHED")
            ),
            children: Vec::new(),
        })
        .collect()
}

/// The tree of `GET /v1/pods/status`: service, pod types, instances, `task (STATUS)`.
pub fn pods_tree(status: &Value) -> String {
    let root = Node {
        label: str_of(status, "service").to_owned(),
        children: items(status, "pods")
            .iter()
            .map(|pod| Node {
                label: str_of(pod, "name").to_owned(),
                children: items(pod, "instances")
                    .iter()
                    .map(|i| Node {
                        label: str_of(i, "name").to_owned(),
                        children: task_nodes(i),
                    })
                    .collect(),
            })
            .collect(),
    };
    tree(&root)
}

/// The tree of `GET /v1/pods/{pod}/status`: the instance, then its tasks.
pub fn pod_tree(status: &Value) -> String {
    tree(&Node {
        label: str_of(status, "name").to_owned(),
        children: task_nodes(status),
    })
}

/// A number without useless decimals (`4`, `1.5`, `0.25`).
fn num(v: Option<&Value>) -> String {
    match v.and_then(Value::as_f64) {
        None => "-".to_owned(),
        Some(x) => {
            let s = format!("{x:.2}");
            s.trim_end_matches('0').trim_end_matches('.').to_owned()
        }
    }
}

fn amounts(agent: &Value, resource: &str) -> String {
    let of = |kind: &str| num(agent.get(kind).and_then(|k| k.get(resource)));
    format!("{}/{}/{}", of("reserved"), of("used"), of("total"))
}

/// The table of `GET /v1/agents`.
pub fn agents_table(agents: &Value) -> String {
    let header = [
        "ID",
        "HOSTNAME",
        "ZONE",
        "STATE",
        "CPUS RES/USED/TOTAL",
        "MEM MB RES/USED/TOTAL",
        "EXECUTORS",
    ];
    let text = |a: &Value, key: &str| a.get(key).and_then(Value::as_str).unwrap_or("-").to_owned();
    let mut rows: Vec<Vec<String>> = vec![header.iter().map(|h| (*h).to_owned()).collect()];
    for a in agents.as_array().map_or(&[][..], Vec::as_slice) {
        let executors = a.get("executors").and_then(Value::as_array);
        rows.push(vec![
            text(a, "id"),
            text(a, "hostname"),
            text(a, "zone"),
            text(a, "state"),
            amounts(a, "cpus"),
            amounts(a, "mem"),
            executors.map_or_else(|| "-".to_owned(), |e| e.len().to_string()),
        ]);
    }
    columns(&rows)
}

/// Rows (the first is the header) as aligned columns, two spaces apart; the last column is
/// not padded.
pub fn columns(rows: &[Vec<String>]) -> String {
    let count = rows.first().map_or(0, Vec::len);
    let widths: Vec<usize> = (0..count)
        .map(|c| {
            rows.iter()
                .map(|r| r.get(c).map_or(0, |cell| cell.chars().count()))
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    for row in rows {
        let mut line = String::new();
        for (c, cell) in row.iter().enumerate() {
            line.push_str(cell);
            if c + 1 < row.len() {
                line.push_str(&" ".repeat(widths[c] - cell.chars().count() + 2));
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

/// The table of `GET /v1/configurations/history` (newest first): id, when, how, outcome,
/// and the lines the spec diff changed, indented.
pub fn history_table(history: &Value) -> String {
    let header = ["ID", "APPLIED (UTC)", "HOW", "OUTCOME", "CHANGES"];
    let mut rows: Vec<Vec<String>> = vec![header.iter().map(|h| (*h).to_owned()).collect()];
    for e in history.as_array().map_or(&[][..], Vec::as_slice) {
        let text = |key: &str| e.get(key).and_then(Value::as_str).unwrap_or("-").to_owned();
        let applied = e.get("applied").and_then(Value::as_f64).unwrap_or(0.0);
        let when = httpdate::fmt_http_date(
            std::time::UNIX_EPOCH + std::time::Duration::from_secs_f64(applied.max(0.0)),
        );
        let changes = e.get("diff").and_then(Value::as_str).map_or(0, |d| {
            d.lines()
                .filter(|l| {
                    (l.starts_with('+') || l.starts_with('-'))
                        && !l.starts_with("+++")
                        && !l.starts_with("---")
                })
                .count()
        });
        rows.push(vec![
            text("id"),
            when,
            text("how"),
            text("outcome"),
            if changes == 0 {
                "-".to_owned()
            } else {
                format!("{changes} line(s)")
            },
        ]);
    }
    columns(&rows)
}

/// The tree of `GET /v1/state/tree`: the requested node, then its descendants, each with the
/// size of its value (`TaskInfo (2.4 kB)`).
pub fn state_tree(listing: &Value) -> String {
    let base = str_of(listing, "path").to_owned();
    let mut nodes: Vec<(Vec<&str>, u64)> = items(listing, "nodes")
        .iter()
        .filter_map(|n| {
            let path = n.get("path")?.as_str()?;
            let rest = path.strip_prefix(base.as_str())?;
            let segments = rest.split('/').filter(|s| !s.is_empty()).collect();
            Some((segments, n.get("size").and_then(Value::as_u64).unwrap_or(0)))
        })
        .collect();
    // By segments, so that a node's children follow it (plain byte order would put
    // `b-x` between `b` and `b/c`).
    nodes.sort();
    fn build(nodes: &[(Vec<&str>, u64)], depth: usize) -> Vec<Node> {
        let mut out = Vec::new();
        let mut i = 0;
        while i < nodes.len() {
            let (segments, size) = &nodes[i];
            let mut j = i + 1;
            while j < nodes.len()
                && nodes[j].0.len() > depth + 1
                && nodes[j].0[..=depth] == segments[..=depth]
            {
                j += 1;
            }
            out.push(Node {
                label: labelled(segments[depth], *size),
                children: build(&nodes[i + 1..j], depth + 1),
            });
            i = j;
        }
        out
    }
    let root_size = nodes.first().filter(|(s, _)| s.is_empty()).map(|(_, n)| *n);
    let rest: Vec<(Vec<&str>, u64)> = nodes.into_iter().filter(|(s, _)| !s.is_empty()).collect();
    let root = Node {
        label: labelled(&base, root_size.unwrap_or(0)),
        children: build(&rest, 0),
    };
    tree(&root)
}

fn labelled(name: &str, size: u64) -> String {
    match size {
        0 => name.to_owned(),
        n if n < 1000 => format!("{name} ({n} B)"),
        n if n < 1_000_000 => format!("{name} ({:.1} kB)", n as f64 / 1000.0),
        n => format!("{name} ({:.1} MB)", n as f64 / 1_000_000.0),
    }
}

/// `berth debug offers`: counts, refusals by reason and by agent, then the last `last`
/// offers (newest first) with their PASS/FAIL lines.
pub fn offers(v: &Value, last: usize) -> String {
    let count = |k: &str| v.get(k).and_then(Value::as_u64).unwrap_or(0);
    let tally = |k: &str| -> String {
        let mut items: Vec<(String, u64)> = v
            .get(k)
            .and_then(Value::as_object)
            .map(|o| {
                o.iter()
                    .map(|(name, n)| (name.clone(), n.as_u64().unwrap_or(0)))
                    .collect()
            })
            .unwrap_or_default();
        items.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        if items.is_empty() {
            return "none".to_owned();
        }
        items
            .iter()
            .map(|(name, n)| format!("{name} ×{n}"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let mut text = format!(
        "offers accepted: {}, declined: {}\nrefused by: {}\nrefusing agents: {}\n",
        count("acceptedCount"),
        count("rejectedCount"),
        tally("failureReasons"),
        tally("rejectedAgents")
    );
    let offers = v.get("offers").and_then(Value::as_array);
    for offer in offers.into_iter().flatten().take(last) {
        text.push('\n');
        let lines = offer.get("explanation").and_then(Value::as_array);
        for line in lines.into_iter().flatten() {
            text.push_str(line.as_str().unwrap_or_default());
            text.push('\n');
        }
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn pod_trees() {
        let status = json!({"service": "hello-world", "pods": [
            {"name": "hello", "instances": [{"name": "hello-0", "tasks": [
                {"id": "x", "name": "hello-0-backup"},
                {"id": "y", "name": "hello-0-server", "status": "RUNNING"}]}]},
            {"name": "world", "instances": [
                {"name": "world-0", "tasks": [{"id": "z", "name": "world-0-server", "status": "RUNNING"}]},
                {"name": "world-1", "tasks": [{"id": "w", "name": "world-1-server", "status": "PAUSED"}]}]}]});
        assert_eq!(
            pods_tree(&status),
            "hello-world
├─ hello
│  └─ hello-0
│     ├─ hello-0-backup (NOT LAUNCHED)
│     └─ hello-0-server (RUNNING)
└─ world
   ├─ world-0
   │  └─ world-0-server (RUNNING)
   └─ world-1
      └─ world-1-server (PAUSED)
"
        );
        assert_eq!(
            pod_tree(&status["pods"][1]["instances"][0]),
            "world-0\n└─ world-0-server (RUNNING)\n"
        );
        assert_eq!(pods_tree(&json!({})), "<UNKNOWN>\n");
    }

    #[test]
    fn agents() {
        let agents = json!([
            {"id": "agent-a", "hostname": "agent-a", "zone": "a", "state": "up",
             "total": {"cpus": 4.0, "mem": 8192.0}, "reserved": {"cpus": 1.1, "mem": 1280.0},
             "used": {"cpus": 1.0, "mem": 1024.0}, "executors": [{}]},
            {"id": "agent-bb", "state": "drained"}
        ]);
        assert_eq!(
            agents_table(&agents),
            "ID        HOSTNAME  ZONE  STATE    CPUS RES/USED/TOTAL  MEM MB RES/USED/TOTAL  EXECUTORS
agent-a   agent-a   a     up       1.1/1/4              1280/1024/8192         1
agent-bb  -         -     drained  -/-/-                -/-/-                  -
"
        );
    }

    #[test]
    fn state_tree_nests_by_segments() {
        let listing = serde_json::json!({
            "path": "/dcos-service-x",
            "nodes": [
                {"path": "/dcos-service-x", "size": 0},
                {"path": "/dcos-service-x/Tasks", "size": 0},
                {"path": "/dcos-service-x/Tasks/b", "size": 0},
                {"path": "/dcos-service-x/Tasks/b-x", "size": 0},
                {"path": "/dcos-service-x/Tasks/b-x/TaskInfo", "size": 2400},
                {"path": "/dcos-service-x/Tasks/b/TaskInfo", "size": 12},
                {"path": "/dcos-service-x/servicename", "size": 1}
            ]
        });
        assert_eq!(
            state_tree(&listing),
            "/dcos-service-x\n├─ Tasks\n│  ├─ b\n│  │  └─ TaskInfo (12 B)\n│  └─ b-x\n│     └─ TaskInfo (2.4 kB)\n└─ servicename (1 B)\n"
        );
    }
}
