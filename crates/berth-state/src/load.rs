//! Reading a whole service's state at startup: the stored nodes stream out of the persister
//! while other threads decode the task records (TaskInfo and TaskStatus, the bulk of a
//! restart) in chunks, so that reading and parsing overlap. The bytes of a chunk are freed
//! once it is parsed; as reading is faster than parsing, the chunks still waiting when the
//! reading ends hold the rest of the stored records.

use std::collections::VecDeque;
use std::num::NonZeroUsize;
use std::ops::Range;
use std::sync::{Condvar, Mutex, PoisonError};

use berth_mesos::{TaskInfo, TaskStatus};

use crate::StateError;
use crate::layout::{TASK_INFO, TASK_STATUS, TASKS};
use crate::persister::Persister;
use crate::record;

/// A parsed task record.
pub(crate) enum Record {
    Info(Box<TaskInfo>),
    Status(TaskStatus),
}

/// One task record read from the store: the task's name and the record, or why its value
/// cannot be used.
pub(crate) struct Parsed {
    pub(crate) name: String,
    pub(crate) record: Result<Record, StateError>,
}

/// Records handed to a parser at a time (about half a megabyte).
const CHUNK_RECORDS: usize = 256;

/// Parser threads at most (the reading thread parses too once the reading is done).
const MAX_THREADS: usize = 8;

/// Task records read and not yet parsed, their paths and values each in one buffer.
#[derive(Default)]
struct Chunk {
    paths: String,
    values: Vec<u8>,
    jobs: Vec<Job>,
}

/// Where one record lies in its [`Chunk`].
struct Job {
    path: Range<usize>,
    name: Range<usize>,
    value: Range<usize>,
    is_info: bool,
}

impl Chunk {
    fn push(&mut self, path: &str, name: Range<usize>, value: &[u8], is_info: bool) {
        let at = self.paths.len();
        self.paths.push_str(path);
        let value_at = self.values.len();
        self.values.extend_from_slice(value);
        self.jobs.push(Job {
            path: at..self.paths.len(),
            name: at + name.start..at + name.end,
            value: value_at..self.values.len(),
            is_info,
        });
    }

    fn parse(&self) -> Vec<Parsed> {
        self.jobs
            .iter()
            .map(|job| {
                let path = &self.paths[job.path.clone()];
                let name = &self.paths[job.name.clone()];
                Parsed {
                    name: name.to_owned(),
                    record: parse_record(path, name, &self.values[job.value.clone()], job.is_info),
                }
            })
            .collect()
    }
}

fn parse_record(path: &str, name: &str, value: &[u8], is_info: bool) -> Result<Record, StateError> {
    if is_info {
        let info = record::decode_info(path, value)?;
        if info.name != name {
            return Err(StateError::corrupt(
                path,
                format!("it holds the TaskInfo of task '{}'", info.name),
            ));
        }
        Ok(Record::Info(Box::new(info)))
    } else {
        Ok(Record::Status(record::decode_status(path, value)?))
    }
}

/// Where the task name lies in `rel` (a path below the root) and whether it is the TaskInfo,
/// when `rel` is a task record (`Tasks/<name>/TaskInfo` or `Tasks/<name>/TaskStatus`).
fn task_record(rel: &str) -> Option<(Range<usize>, bool)> {
    let rest = rel.strip_prefix(TASKS)?.strip_prefix('/')?;
    let (name, kind) = rest.split_once('/')?;
    let is_info = match kind {
        TASK_INFO => true,
        TASK_STATUS => false,
        _ => return None,
    };
    let start = TASKS.len() + 1;
    Some((start..start + name.len(), is_info))
}

/// What [`load_subtree`] hands every node that is not a task record: its path, its path
/// below the root, and its data.
pub(crate) type OtherNode<'a> = dyn FnMut(&str, &str, &[u8]) -> Result<(), StateError> + 'a;

/// Chunks waiting for a parser, and the parsed ones by sequence number.
#[derive(Default)]
struct Work {
    queue: Mutex<(VecDeque<(usize, Chunk)>, bool)>,
    ready: Condvar,
    parsed: Mutex<Vec<(usize, Vec<Parsed>)>>,
}

impl Work {
    fn submit(&self, seq: usize, chunk: Chunk) {
        lock(&self.queue).0.push_back((seq, chunk));
        self.ready.notify_one();
    }

    /// No more chunks will come.
    fn close(&self) {
        lock(&self.queue).1 = true;
        self.ready.notify_all();
    }

    /// Parses chunks until the queue is closed and empty.
    fn run(&self) {
        loop {
            let next = {
                let mut queue = lock(&self.queue);
                loop {
                    if let Some(next) = queue.0.pop_front() {
                        break Some(next);
                    }
                    if queue.1 {
                        break None;
                    }
                    queue = self
                        .ready
                        .wait(queue)
                        .unwrap_or_else(PoisonError::into_inner);
                }
            };
            let Some((seq, chunk)) = next else { return };
            let parsed = chunk.parse();
            drop(chunk);
            lock(&self.parsed).push((seq, parsed));
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Reads every node at and below `root`: task records come back parsed, in path order (in
/// chunks);
/// every other node below the root is handed to `other` with its path below the root.
///
/// Parser threads start once the first chunk of records is full (a small store is parsed on
/// the calling thread) and the calling thread joins them when the reading is done.
pub(crate) fn load_subtree<P: Persister + ?Sized>(
    persister: &P,
    root: &str,
    other: &mut OtherNode<'_>,
) -> Result<Vec<Vec<Parsed>>, StateError> {
    let prefix = format!("{root}/");
    let threads = std::thread::available_parallelism()
        .map_or(1, NonZeroUsize::get)
        .min(MAX_THREADS);
    let work = Work::default();
    let read = std::thread::scope(|scope| {
        let mut helpers = 0;
        let mut chunk = Chunk::default();
        let mut seq = 0;
        let read = persister.visit_subtree(root, &mut |path, value| {
            let Some(rel) = path.strip_prefix(&prefix) else {
                return Ok(());
            };
            let Some((name, is_info)) = task_record(rel) else {
                return other(path, rel, value);
            };
            let name = prefix.len() + name.start..prefix.len() + name.end;
            chunk.push(path, name, value, is_info);
            if chunk.jobs.len() == CHUNK_RECORDS {
                while helpers + 1 < threads {
                    let spawned = std::thread::Builder::new()
                        .name("berth-state-load".to_owned())
                        .spawn_scoped(scope, || work.run());
                    if spawned.is_err() {
                        break;
                    }
                    helpers += 1;
                }
                work.submit(seq, std::mem::take(&mut chunk));
                seq += 1;
            }
            Ok(())
        });
        work.submit(seq, chunk);
        work.close();
        work.run();
        read
    });
    read?;
    let mut parsed = work
        .parsed
        .into_inner()
        .unwrap_or_else(PoisonError::into_inner);
    parsed.sort_unstable_by_key(|(seq, _)| *seq);
    Ok(parsed.into_iter().map(|(_, records)| records).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn task_records_are_told_from_other_nodes() {
        assert_eq!(task_record("Tasks/a-0-b/TaskInfo"), Some((6..11, true)));
        assert_eq!(task_record("Tasks/a-0-b/TaskStatus"), Some((6..11, false)));
        assert_eq!(task_record("Tasks/a-0-b"), None);
        assert_eq!(task_record("Tasks/a-0-b/Metadata/override-status"), None);
        assert_eq!(task_record("Tasks/a-0-b/TaskInfo/x"), None);
        assert_eq!(task_record("Properties/TaskInfo"), None);
        assert_eq!(task_record("TasksX/a/TaskInfo"), None);
    }
}
