//! Operator controls of the cluster's agents (`/v1/agents`), behind a small trait so that the
//! API does not depend on any cluster backend.

use serde_json::Value;

/// What an agent control can fail with; each maps to an HTTP status.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AgentError {
    /// No agent has this id (`404`).
    #[error("Agent {id} not found; known agents: {}", known_list(.known))]
    UnknownAgent {
        /// The id asked for.
        id: String,
        /// The ids that exist.
        known: Vec<String>,
    },
    /// The agent cannot do that in its state, e.g. starting a drained agent (`409`).
    #[error("{0}")]
    Conflict(String),
    /// Something else asked for does not exist, e.g. a task (`404`).
    #[error("{0}")]
    NotFound(String),
    /// Anything else, e.g. a state write that failed (`500`).
    #[error("{0}")]
    Failed(String),
}

fn known_list(known: &[String]) -> String {
    if known.is_empty() {
        "none".to_owned()
    } else {
        known.join(", ")
    }
}

impl AgentError {
    /// The HTTP status of the error.
    #[must_use]
    pub fn status(&self) -> u16 {
        match self {
            AgentError::UnknownAgent { .. } => 404,
            AgentError::Conflict(_) => 409,
            AgentError::NotFound(_) => 404,
            AgentError::Failed(_) => 500,
        }
    }
}

/// Lists, stops, starts and drains the agents of the cluster the scheduler runs on.
///
/// The methods may block (stopping an agent waits for its processes to be killed): the API
/// calls them on the blocking thread pool. Each returns the JSON the API sends back with
/// `200`: for [`AgentControl::list`] an array of agent objects, for the others an object that
/// should carry a human `message` (the CLI prints it), e.g.
/// `{"message": "Agent agent-a has been stopped.", "agent": {…}}`.
///
/// The CLI's `berth agents list` table reads these keys of each agent object, all
/// optional: `id`, `hostname`, `zone`, `state`, `total`/`reserved`/`used` (objects with
/// `cpus` and `mem`) and `executors` (an array).
pub trait AgentControl: Send + Sync {
    /// Every agent.
    ///
    /// # Errors
    /// When the agents cannot be read.
    fn list(&self) -> Result<Value, AgentError>;

    /// Stops an agent ("the machine goes down").
    ///
    /// # Errors
    /// Unknown agent, a state that does not allow it, or a failure.
    fn stop(&self, id: &str) -> Result<Value, AgentError>;

    /// Starts a stopped agent again.
    ///
    /// # Errors
    /// Unknown agent, a state that does not allow it, or a failure.
    fn start(&self, id: &str) -> Result<Value, AgentError>;

    /// Drains an agent: its tasks are killed and it is never offered again.
    ///
    /// # Errors
    /// Unknown agent, a state that does not allow it, or a failure.
    fn drain(&self, id: &str) -> Result<Value, AgentError>;

    /// Every task run the cluster remembers, active and finished, with its sandbox (for
    /// `GET /v1/tasks` and the files routes). None by default.
    ///
    /// # Errors
    /// When the tasks cannot be read.
    fn tasks(&self) -> Result<Vec<crate::tasks::TaskSandbox>, AgentError> {
        Ok(Vec::new())
    }

    /// Where a command runs inside the running task `task_id` (for `POST
    /// /v1/tasks/{id}/exec`).
    ///
    /// # Errors
    /// Unknown task (404), a task that is not running (409), or no support (the default).
    fn exec_target(&self, task_id: &str) -> Result<crate::exec::ExecTarget, AgentError> {
        Err(AgentError::Conflict(format!(
            "Commands cannot be run inside tasks of this cluster (task {task_id})"
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_and_messages() {
        let e = AgentError::UnknownAgent {
            id: "x".to_owned(),
            known: vec!["agent-a".to_owned(), "agent-b".to_owned()],
        };
        assert_eq!(e.status(), 404);
        assert_eq!(
            e.to_string(),
            "Agent x not found; known agents: agent-a, agent-b"
        );
        let none = AgentError::UnknownAgent {
            id: "x".to_owned(),
            known: vec![],
        };
        assert_eq!(none.to_string(), "Agent x not found; known agents: none");
        assert_eq!(AgentError::Conflict("down".to_owned()).status(), 409);
        assert_eq!(AgentError::Failed("disk".to_owned()).status(), 500);
    }
}
