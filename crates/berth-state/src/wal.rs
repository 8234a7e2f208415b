//! The embedded store's write-ahead log, `<data-dir>/state.wal`: every batch is appended to
//! it and made durable (one sequential write and one `fdatasync`) before the database takes
//! it without waiting for the disk; every so often the database makes all of it durable
//! itself (a checkpoint) and the log starts again empty.
//!
//! ```text
//! apply(batch) ──▶ append record, fdatasync ──▶ database commit (not synced) ──▶ Ok
//!                        every CHECKPOINT_RECORDS batches or CHECKPOINT_BYTES:
//!                        database commit (synced) ──▶ log emptied (synced)
//! apply(large batch) ──▶ checkpoint (if the log holds records) ──▶ database commit (synced)
//! open ──▶ database (as of its last synced commit) ──▶ replay every whole record ──▶ checkpoint
//! ```
//!
//! A record is `[payload length: u32][CRC-32 of the payload: u32][payload]`, little-endian;
//! the payload is the batch: `[op count: u32]` then per op `[1: set | 2: delete]
//! [path length: u32][path]` and for a set `[value length: u32][value]`. Reading stops at the
//! first record that is cut short or fails its checksum: a crash in the middle of an append,
//! whose batch was never acknowledged.
//!
//! Replaying records the database already holds (a crash between a checkpoint and emptying
//! the log) is harmless: the log holds every batch since the checkpoint before last, in order,
//! and a sequence of sets and deletes applied again over its own result gives that result.

use std::fs::{File, OpenOptions};
use std::io::{ErrorKind, Read};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use crate::persister::WriteOp;

/// File name of the log inside the data directory.
pub const WAL_FILE: &str = "state.wal";

/// Batches after which the database makes everything durable and the log is emptied.
const CHECKPOINT_RECORDS: u32 = 2_048;
/// Log size after which the same happens: what the database then writes and syncs at once
/// (and holds in memory until then) stays small, so a checkpoint is a short stop.
const CHECKPOINT_BYTES: u64 = 8 * 1024 * 1024;
/// Batches of at least this many bytes (paths and values) skip the log: the database commits
/// them synced itself, as writing them twice costs more than a sync saves.
pub(crate) const DIRECT_BYTES: usize = 4 * 1024 * 1024;

const SET: u8 = 1;
const DELETE: u8 = 2;

/// The open log.
#[derive(Debug)]
pub(crate) struct Wal {
    file: File,
    path: PathBuf,
    /// Bytes of whole records in the file.
    len: u64,
    /// Records since the last checkpoint.
    records: u32,
    /// The record being written (kept to reuse its allocation).
    buf: Vec<u8>,
}

impl Wal {
    /// Opens (creating) the log at `path` and reads the batches of its whole records, to be
    /// replayed; a cut-short or damaged tail is dropped from the file.
    pub(crate) fn open(path: &Path) -> std::io::Result<(Self, Vec<Vec<WriteOp>>)> {
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)?;
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes)?;
        let (batches, whole) = decode_all(&bytes);
        if whole < bytes.len() {
            tracing::warn!(
                path = %path.display(),
                "dropping {} bytes of an unfinished write at the end of the write-ahead log",
                bytes.len() - whole
            );
            file.set_len(whole as u64)?;
            file.sync_all()?;
        }
        let records = u32::try_from(batches.len()).unwrap_or(u32::MAX);
        Ok((
            Self {
                file,
                path: path.to_path_buf(),
                len: whole as u64,
                records,
                buf: Vec::new(),
            },
            batches,
        ))
    }

    /// The log file.
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// Appends `ops` as one record and waits until it is on disk.
    pub(crate) fn append(&mut self, ops: &[WriteOp]) -> std::io::Result<()> {
        encode(ops, &mut self.buf)?;
        let written = self
            .file
            .write_all_at(&self.buf, self.len)
            .and_then(|()| self.file.sync_data());
        if let Err(e) = written {
            // Whatever part reached the file is not a whole record: cut it off, so that the
            // next record follows the last whole one.
            let _ = self.file.set_len(self.len);
            return Err(e);
        }
        self.len += self.buf.len() as u64;
        self.records += 1;
        Ok(())
    }

    /// Removes the last record appended (its batch did not reach the database).
    pub(crate) fn undo_last(&mut self) -> std::io::Result<()> {
        self.len = self.len.saturating_sub(self.buf.len() as u64);
        self.records = self.records.saturating_sub(1);
        self.file.set_len(self.len)?;
        self.file.sync_data()
    }

    /// Whether the database should make everything durable now (and the log start again).
    pub(crate) fn checkpoint_due(&self) -> bool {
        self.records >= CHECKPOINT_RECORDS || self.len >= CHECKPOINT_BYTES
    }

    /// Whether the log holds records.
    pub(crate) fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Empties the log, durably (call once the database made everything durable).
    pub(crate) fn clear(&mut self) -> std::io::Result<()> {
        self.file.set_len(0)?;
        self.file.sync_all()?;
        self.len = 0;
        self.records = 0;
        Ok(())
    }
}

/// `ops` as one record in `buf`.
fn encode(ops: &[WriteOp], buf: &mut Vec<u8>) -> std::io::Result<()> {
    let too_big = || std::io::Error::new(ErrorKind::InvalidInput, "a batch larger than 4 GB");
    let len32 = |n: usize| u32::try_from(n).map_err(|_| too_big());
    buf.clear();
    buf.extend_from_slice(&[0; 8]);
    buf.extend_from_slice(&len32(ops.len())?.to_le_bytes());
    for op in ops {
        match op {
            WriteOp::Set { path, value } => {
                buf.push(SET);
                buf.extend_from_slice(&len32(path.len())?.to_le_bytes());
                buf.extend_from_slice(path.as_bytes());
                buf.extend_from_slice(&len32(value.len())?.to_le_bytes());
                buf.extend_from_slice(value);
            }
            WriteOp::Delete { path } => {
                buf.push(DELETE);
                buf.extend_from_slice(&len32(path.len())?.to_le_bytes());
                buf.extend_from_slice(path.as_bytes());
            }
        }
    }
    let payload = len32(buf.len() - 8)?;
    let crc = crc32fast::hash(&buf[8..]);
    buf[..4].copy_from_slice(&payload.to_le_bytes());
    buf[4..8].copy_from_slice(&crc.to_le_bytes());
    Ok(())
}

/// The batches of the whole records at the start of `bytes`, and how many bytes they span.
fn decode_all(bytes: &[u8]) -> (Vec<Vec<WriteOp>>, usize) {
    let mut batches = Vec::new();
    let mut at = 0;
    while let Some((ops, next)) = decode_one(bytes, at) {
        batches.push(ops);
        at = next;
    }
    (batches, at)
}

/// The record at `at`, if whole and intact, and where the next one starts.
fn decode_one(bytes: &[u8], at: usize) -> Option<(Vec<WriteOp>, usize)> {
    let mut r = Reader { bytes, at };
    let len = r.u32()? as usize;
    let crc = r.u32()?;
    let payload = r.take(len)?;
    if crc32fast::hash(payload) != crc {
        return None;
    }
    let next = r.at;
    let mut p = Reader {
        bytes: payload,
        at: 0,
    };
    let count = p.u32()? as usize;
    let mut ops = Vec::with_capacity(count.min(payload.len()));
    for _ in 0..count {
        let tag = p.take(1)?[0];
        let path_len = p.u32()? as usize;
        let path = std::str::from_utf8(p.take(path_len)?).ok()?.to_owned();
        ops.push(match tag {
            SET => {
                let value_len = p.u32()? as usize;
                WriteOp::Set {
                    path,
                    value: p.take(value_len)?.to_vec(),
                }
            }
            DELETE => WriteOp::Delete { path },
            _ => return None,
        });
    }
    (p.at == payload.len()).then_some((ops, next))
}

struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let end = self.at.checked_add(n)?;
        let slice = self.bytes.get(self.at..end)?;
        self.at = end;
        Some(slice)
    }

    fn u32(&mut self) -> Option<u32> {
        self.take(4)
            .and_then(|b| b.try_into().ok())
            .map(u32::from_le_bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn batch(n: u8) -> Vec<WriteOp> {
        vec![
            WriteOp::set(format!("/a/{n}"), vec![n; 3]),
            WriteOp::delete(format!("/b/{n}")),
            WriteOp::set("/empty", Vec::new()),
        ]
    }

    use std::io::Write;

    #[test]
    fn records_read_back_in_order_and_a_torn_tail_is_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(WAL_FILE);
        let (mut wal, replay) = Wal::open(&path).unwrap();
        assert!(replay.is_empty() && wal.is_empty());
        for n in 0..3 {
            wal.append(&batch(n)).unwrap();
        }
        drop(wal);
        let (_, replay) = Wal::open(&path).unwrap();
        assert_eq!(replay, vec![batch(0), batch(1), batch(2)]);

        // A crash in the middle of the fourth append: its bytes are cut short.
        let whole = std::fs::metadata(&path).unwrap().len();
        let mut record = Vec::new();
        encode(&batch(3), &mut record).unwrap();
        let mut f = OpenOptions::new().append(true).open(&path).unwrap();
        f.write_all(&record[..record.len() - 2]).unwrap();
        drop(f);
        let (mut wal, replay) = Wal::open(&path).unwrap();
        assert_eq!(replay.len(), 3);
        assert_eq!(
            std::fs::metadata(&path).unwrap().len(),
            whole,
            "tail dropped"
        );
        // The next record follows the last whole one.
        wal.append(&batch(4)).unwrap();
        drop(wal);
        let (mut wal, replay) = Wal::open(&path).unwrap();
        assert_eq!(replay, vec![batch(0), batch(1), batch(2), batch(4)]);
        wal.clear().unwrap();
        let (_, replay) = Wal::open(&path).unwrap();
        assert!(replay.is_empty());
    }

    #[test]
    fn a_damaged_record_ends_the_log() {
        let mut bytes = Vec::new();
        let mut record = Vec::new();
        for n in 0..3 {
            encode(&batch(n), &mut record).unwrap();
            bytes.extend_from_slice(&record);
        }
        let second = record.len() + 12;
        bytes[second] ^= 0xff;
        let (batches, whole) = decode_all(&bytes);
        assert_eq!(batches, vec![batch(0)]);
        assert_eq!(whole, record.len());
        // Garbage (zeros) is no record.
        assert!(decode_all(&[0; 64]).0.is_empty());
    }
}
