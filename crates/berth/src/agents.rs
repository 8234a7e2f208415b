//! The local cluster's agent controls and task sandboxes, offered to the HTTP API
//! (`/v1/agents`, `/v1/tasks`).

use berth_api::exec::ExecTarget;
use berth_api::tasks::TaskSandbox;
use berth_api::{AgentControl, AgentError};
use berth_cluster::ClusterError;
use berth_cluster::local::LocalControl;
use serde_json::{Value, json};

/// [`LocalControl`] behind the API's [`AgentControl`].
pub struct LocalAgents(pub LocalControl);

fn error(e: ClusterError) -> AgentError {
    match e {
        ClusterError::UnknownAgent { id, known } => AgentError::UnknownAgent { id, known },
        ClusterError::Agent { .. } => AgentError::Conflict(e.to_string()),
        other => AgentError::Failed(other.to_string()),
    }
}

impl AgentControl for LocalAgents {
    fn list(&self) -> Result<Value, AgentError> {
        serde_json::to_value(self.0.agents()).map_err(|e| AgentError::Failed(e.to_string()))
    }

    fn stop(&self, id: &str) -> Result<Value, AgentError> {
        self.0.stop_agent(id).map_err(error)?;
        Ok(
            json!({ "agent": id, "state": "DOWN", "message": format!("agent {id} stopped: its executors and tasks were killed") }),
        )
    }

    fn start(&self, id: &str) -> Result<Value, AgentError> {
        self.0.start_agent(id).map_err(error)?;
        Ok(
            json!({ "agent": id, "state": "UP", "message": format!("agent {id} started with its reservations and volumes") }),
        )
    }

    fn tasks(&self) -> Result<Vec<TaskSandbox>, AgentError> {
        Ok(self
            .0
            .task_runs()
            .into_iter()
            .map(|run| TaskSandbox {
                active: !run.state.is_terminal(),
                state: run.state.as_str().to_owned(),
                id: run.task_id,
                name: run.name,
                agent: run.agent,
                host: run.hostname,
                user: run.user,
                updated: run.updated,
                framework_id: run.framework_id,
                sandbox: run.sandbox,
                volume_dirs: run.volume_dirs,
            })
            .collect())
    }

    fn exec_target(&self, task_id: &str) -> Result<ExecTarget, AgentError> {
        match self.0.exec_target(task_id) {
            Ok(t) => Ok(ExecTarget {
                dir: t.sandbox,
                env: t.env,
                user: t.user,
            }),
            Err(ClusterError::InvalidCall(m)) if m.ends_with("not found") => {
                Err(AgentError::NotFound(m))
            }
            Err(ClusterError::InvalidCall(m)) => Err(AgentError::Conflict(m)),
            Err(e) => Err(error(e)),
        }
    }

    fn drain(&self, id: &str) -> Result<Value, AgentError> {
        self.0.drain_agent(id).map_err(error)?;
        Ok(
            json!({ "agent": id, "state": "DRAINED", "message": format!("agent {id} drained: its tasks are gone and it is never offered again") }),
        )
    }
}
