//! What the owner loop measures as it runs, shared (cheap clones of the same atomics) with the
//! API's metrics routes: offer cycle time, store commit time and batch size, the operations
//! sent by type, the task statuses received by state, rescinded offers, and how long each
//! stretch of work held the loop.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use std::sync::atomic::AtomicU64;

/// A label of one name and value (`type="RESERVE"`, `state="TASK_RUNNING"`).
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct Kind {
    /// The operation type or task state.
    pub kind: &'static str,
}

/// The loop's measures.
#[derive(Debug, Clone)]
pub struct LoopMetrics {
    /// Wall time of each offer cycle (one `OFFERS` event or part of one), seconds.
    pub offer_cycle_seconds: Histogram,
    /// Time the loop waited for each store commit, seconds (most of an early submission's
    /// commit overlaps the loop's work).
    pub store_commit_seconds: Histogram,
    /// Writes in each store commit.
    pub store_batch_writes: Histogram,
    /// Operations sent in ACCEPT calls, by type.
    pub operations: Family<Kind, Counter>,
    /// Task status updates received, by state.
    pub task_statuses: Family<Kind, Counter>,
    /// Offers the cluster rescinded.
    pub offers_rescinded: Counter,
    /// Wall time of each stretch of work on the loop (a batch of events, a request, a
    /// tick, with its store commit), seconds: nothing else is served meanwhile.
    pub loop_batch_seconds: Histogram,
    /// The longest such stretch since the start, seconds.
    pub loop_longest_batch_seconds: Gauge<f64, AtomicU64>,
}

impl Default for LoopMetrics {
    fn default() -> Self {
        Self {
            offer_cycle_seconds: Histogram::new(exponential_buckets(0.000_1, 2.0, 16)),
            store_commit_seconds: Histogram::new(exponential_buckets(0.000_1, 2.0, 16)),
            store_batch_writes: Histogram::new(exponential_buckets(1.0, 2.0, 14)),
            operations: Family::default(),
            task_statuses: Family::default(),
            offers_rescinded: Counter::default(),
            loop_batch_seconds: Histogram::new(exponential_buckets(0.000_1, 2.0, 16)),
            loop_longest_batch_seconds: Gauge::default(),
        }
    }
}

impl LoopMetrics {
    /// Counts the operations of the ACCEPT calls among `calls`.
    pub(crate) fn count_calls(&self, calls: &[berth_cluster::Call]) {
        for call in calls {
            if let berth_cluster::Call::Accept { operations, .. } = call {
                for op in operations {
                    self.operations
                        .get_or_create(&Kind {
                            kind: operation_kind(op),
                        })
                        .inc();
                }
            }
        }
    }
}

/// The Mesos name of an operation's type.
fn operation_kind(op: &berth_mesos::Operation) -> &'static str {
    use berth_mesos::Operation as O;
    match op {
        O::Reserve { .. } => "RESERVE",
        O::Unreserve { .. } => "UNRESERVE",
        O::Create { .. } => "CREATE",
        O::Destroy { .. } => "DESTROY",
        O::LaunchGroup { .. } => "LAUNCH_GROUP",
    }
}
