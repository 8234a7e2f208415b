//! The embedded store's write-ahead log: every batch is appended to it and made durable (one
//! sequential write and one `fdatasync`) before it is acknowledged; the database takes the
//! batches afterwards, on a thread of its own, without waiting for the disk, and every so
//! often makes all of them durable itself (a checkpoint), after which their part of the log is
//! emptied.
//!
//! The log is two files, `<data-dir>/state.wal.0` and `state.wal.1`, used in turn: a
//! checkpoint seals the file being written (every batch in it is in the database by then)
//! and switches appends to the other, empty one, so that batches keep being acknowledged
//! while the database syncs; once synced, the sealed file is emptied.
//!
//! ```text
//! apply(batch) ──▶ append record to the active file, fdatasync ──▶ Ok
//!                        └──▶ (writer thread) database commit, not synced
//!                             every CHECKPOINT_RECORDS batches or CHECKPOINT_BYTES:
//!                             seal the active file, switch ──▶ database commit (synced)
//!                             ──▶ sealed file emptied (synced)
//! open ──▶ database (as of its last synced commit) ──▶ replay every whole record of both
//!          files, older file first ──▶ checkpoint
//! ```
//!
//! A file that holds records starts with a header, `BERTHWAL` and its generation (u64,
//! little-endian; the file written later has the higher one), written with its first record.
//! A record is `[payload length: u32][CRC-32 of the payload: u32][payload]`, little-endian;
//! the payload is the batch: `[op count: u32]` then per op `[1: set | 2: delete]
//! [path length: u32][path]` and for a set `[value length: u32][value]`. Reading stops at the
//! first record that is cut short or fails its checksum: a crash in the middle of an append,
//! whose batch was never acknowledged.
//!
//! Replaying records the database already holds (a crash between a checkpoint and emptying
//! the sealed file) is harmless: the records are replayed in the order they were written,
//! and a sequence of sets and deletes applied again over its own result gives that result.

use std::fs::{File, OpenOptions};
use std::io::{ErrorKind, Read};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use crate::persister::WriteOp;

/// File names of the log inside the data directory (used in turn).
pub const WAL_FILES: [&str; 2] = ["state.wal.0", "state.wal.1"];

/// Batches after which the database makes everything durable and the log is emptied.
const CHECKPOINT_RECORDS: u32 = 2_048;
/// Log size after which the same happens: what the database then writes and syncs at once
/// (and holds in memory until then) stays small.
const CHECKPOINT_BYTES: u64 = 8 * 1024 * 1024;
/// Batches of at least this many bytes (paths and values) skip the log: the database commits
/// them synced itself, as writing them twice costs more than a sync saves.
pub(crate) const DIRECT_BYTES: usize = 4 * 1024 * 1024;

/// The start of a file holding records.
const MAGIC: &[u8; 8] = b"BERTHWAL";
const HEADER: u64 = 16;

const SET: u8 = 1;
const DELETE: u8 = 2;

/// One of the two files.
#[derive(Debug)]
struct Segment {
    file: File,
    path: PathBuf,
    /// Bytes of the header and the whole records; 0 = empty.
    len: u64,
    /// Records in the file.
    records: u32,
}

impl Segment {
    /// Opens (creating) the file at `path`: its generation and the batches of its whole
    /// records (none when it is empty); a cut-short or damaged tail is dropped from the file.
    fn open(path: PathBuf) -> std::io::Result<(Self, u64, Vec<Vec<WriteOp>>)> {
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)?;
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes)?;
        let generation = bytes
            .strip_prefix(MAGIC.as_slice())
            .and_then(|rest| rest.get(..8))
            .and_then(|g| g.try_into().ok())
            .map_or(0, u64::from_le_bytes);
        let (batches, whole) = if generation == 0 {
            (Vec::new(), 0)
        } else {
            let (batches, whole) = decode_all(&bytes[HEADER as usize..]);
            (batches, whole + HEADER as usize)
        };
        // No record: nothing to keep, not even the header.
        let whole = if batches.is_empty() { 0 } else { whole };
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
        let segment = Self {
            file,
            path,
            len: whole as u64,
            records,
        };
        Ok((segment, generation, batches))
    }

    fn clear(&mut self) -> std::io::Result<()> {
        if self.len > 0 {
            self.file.set_len(0)?;
            self.file.sync_all()?;
        }
        self.len = 0;
        self.records = 0;
        Ok(())
    }
}

/// The open log: two files, one of them active.
#[derive(Debug)]
pub(crate) struct Wal {
    segments: [Segment; 2],
    /// The file appended to.
    active: usize,
    /// The generation the active file gets when it starts again.
    next_generation: u64,
    /// The record being written (kept to reuse its allocation).
    buf: Vec<u8>,
}

impl Wal {
    /// Opens (creating) the log's files in `dir` and reads the batches of their whole records,
    /// older file first, to be replayed.
    pub(crate) fn open(dir: &Path) -> std::io::Result<(Self, Vec<Vec<WriteOp>>)> {
        let created = WAL_FILES.iter().any(|name| !dir.join(name).exists());
        let (a, gen_a, batches_a) = Segment::open(dir.join(WAL_FILES[0]))?;
        let (b, gen_b, batches_b) = Segment::open(dir.join(WAL_FILES[1]))?;
        if created {
            // The files' names must survive a power loss as well as their records do.
            File::open(dir)?.sync_all()?;
        }
        let newer = usize::from(gen_b > gen_a);
        let mut batches = Vec::with_capacity(batches_a.len() + batches_b.len());
        if newer == 1 {
            batches.extend(batches_a);
            batches.extend(batches_b);
        } else {
            batches.extend(batches_b);
            batches.extend(batches_a);
        }
        Ok((
            Self {
                segments: [a, b],
                active: newer,
                next_generation: gen_a.max(gen_b) + 1,
                buf: Vec::new(),
            },
            batches,
        ))
    }

    /// The file being appended to.
    pub(crate) fn path(&self) -> &Path {
        &self.segments[self.active].path
    }

    /// Appends `ops` as one record and waits until it is on disk.
    pub(crate) fn append(&mut self, ops: &[WriteOp]) -> std::io::Result<()> {
        let segment = &mut self.segments[self.active];
        let header = segment.len == 0;
        self.buf.clear();
        if header {
            self.buf.extend_from_slice(MAGIC);
            self.buf
                .extend_from_slice(&self.next_generation.to_le_bytes());
        }
        encode(ops, &mut self.buf)?;
        let written = segment
            .file
            .write_all_at(&self.buf, segment.len)
            .and_then(|()| segment.file.sync_data());
        if let Err(e) = written {
            // Whatever part reached the file is not a whole record: cut it off, so that the
            // next record follows the last whole one.
            let _ = segment.file.set_len(segment.len);
            return Err(e);
        }
        if header {
            self.next_generation += 1;
        }
        segment.len += self.buf.len() as u64;
        segment.records += 1;
        Ok(())
    }

    /// Whether the database should make everything durable now (and the log start again).
    pub(crate) fn checkpoint_due(&self) -> bool {
        let active = &self.segments[self.active];
        active.records >= CHECKPOINT_RECORDS || active.len >= CHECKPOINT_BYTES
    }

    /// Whether the log holds records.
    pub(crate) fn is_empty(&self) -> bool {
        self.segments.iter().all(|s| s.len == 0)
    }

    /// Seals the active file and makes the other, empty one active; returns the sealed one,
    /// to be emptied with [`Self::clear_sealed`] once the database has made every batch
    /// appended so far durable. `None` when the active file is empty or the other one is
    /// still sealed.
    pub(crate) fn seal(&mut self) -> Option<usize> {
        let other = 1 - self.active;
        if self.segments[self.active].len == 0 || self.segments[other].len > 0 {
            return None;
        }
        let sealed = self.active;
        self.active = other;
        Some(sealed)
    }

    /// Empties a file [`Self::seal`] returned, durably.
    pub(crate) fn clear_sealed(&mut self, sealed: usize) -> std::io::Result<()> {
        self.segments[sealed].clear()
    }

    /// Empties the log, durably (call once the database made everything durable).
    pub(crate) fn clear(&mut self) -> std::io::Result<()> {
        for segment in &mut self.segments {
            segment.clear()?;
        }
        Ok(())
    }

    /// The file a failed operation on `sealed` (or the active file) names.
    pub(crate) fn segment_path(&self, index: usize) -> &Path {
        &self.segments[index].path
    }
}

/// `ops` as one record, appended to `buf`.
fn encode(ops: &[WriteOp], buf: &mut Vec<u8>) -> std::io::Result<()> {
    let too_big = || std::io::Error::new(ErrorKind::InvalidInput, "a batch larger than 4 GB");
    let len32 = |n: usize| u32::try_from(n).map_err(|_| too_big());
    let start = buf.len();
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
    let payload = len32(buf.len() - start - 8)?;
    let crc = crc32fast::hash(&buf[start + 8..]);
    buf[start..start + 4].copy_from_slice(&payload.to_le_bytes());
    buf[start + 4..start + 8].copy_from_slice(&crc.to_le_bytes());
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

    fn len(dir: &Path, file: usize) -> u64 {
        std::fs::metadata(dir.join(WAL_FILES[file])).unwrap().len()
    }

    use std::io::Write;

    #[test]
    fn records_read_back_in_order_and_a_torn_tail_is_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let (mut wal, replay) = Wal::open(dir.path()).unwrap();
        assert!(replay.is_empty() && wal.is_empty());
        for n in 0..3 {
            wal.append(&batch(n)).unwrap();
        }
        let active = wal.path().to_path_buf();
        drop(wal);
        let (_, replay) = Wal::open(dir.path()).unwrap();
        assert_eq!(replay, vec![batch(0), batch(1), batch(2)]);

        // A crash in the middle of the fourth append: its bytes are cut short.
        let whole = std::fs::metadata(&active).unwrap().len();
        let mut record = Vec::new();
        encode(&batch(3), &mut record).unwrap();
        let mut f = OpenOptions::new().append(true).open(&active).unwrap();
        f.write_all(&record[..record.len() - 2]).unwrap();
        drop(f);
        let (mut wal, replay) = Wal::open(dir.path()).unwrap();
        assert_eq!(replay.len(), 3);
        assert_eq!(
            std::fs::metadata(&active).unwrap().len(),
            whole,
            "tail dropped"
        );
        // The next record follows the last whole one.
        wal.append(&batch(4)).unwrap();
        drop(wal);
        let (mut wal, replay) = Wal::open(dir.path()).unwrap();
        assert_eq!(replay, vec![batch(0), batch(1), batch(2), batch(4)]);
        wal.clear().unwrap();
        assert!(wal.is_empty());
        let (_, replay) = Wal::open(dir.path()).unwrap();
        assert!(replay.is_empty());
        assert_eq!((len(dir.path(), 0), len(dir.path(), 1)), (0, 0));
    }

    #[test]
    fn sealed_files_replay_before_the_active_one_across_turns() {
        let dir = tempfile::tempdir().unwrap();
        let (mut wal, _) = Wal::open(dir.path()).unwrap();
        assert_eq!(wal.seal(), None, "nothing to seal");
        wal.append(&batch(0)).unwrap();
        wal.append(&batch(1)).unwrap();
        let first = wal.seal().unwrap();
        wal.append(&batch(2)).unwrap();
        assert_eq!(wal.seal(), None, "the sealed file is not emptied yet");
        drop(wal);
        // A crash before the sealed file was emptied: both, older first.
        let (mut wal, replay) = Wal::open(dir.path()).unwrap();
        assert_eq!(replay, vec![batch(0), batch(1), batch(2)]);
        wal.clear_sealed(first).unwrap();
        assert_eq!(len(dir.path(), first), 0);
        wal.append(&batch(3)).unwrap();
        let second = wal.seal().unwrap();
        assert_ne!(first, second);
        // The first file again, now the newer one.
        wal.append(&batch(4)).unwrap();
        drop(wal);
        let (mut wal, replay) = Wal::open(dir.path()).unwrap();
        assert_eq!(replay, vec![batch(2), batch(3), batch(4)]);
        assert_eq!(wal.path(), dir.path().join(WAL_FILES[first]));
        wal.clear_sealed(second).unwrap();
        drop(wal);
        let (_, replay) = Wal::open(dir.path()).unwrap();
        assert_eq!(replay, vec![batch(4)]);
    }

    #[test]
    fn a_file_without_a_whole_header_and_record_is_empty() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(WAL_FILES[0]), b"BERTHW").unwrap();
        std::fs::write(dir.path().join(WAL_FILES[1]), b"something else entirely").unwrap();
        let (wal, replay) = Wal::open(dir.path()).unwrap();
        assert!(replay.is_empty() && wal.is_empty());
        assert_eq!((len(dir.path(), 0), len(dir.path(), 1)), (0, 0));
    }

    #[test]
    fn a_damaged_record_ends_the_log() {
        let mut bytes = Vec::new();
        let mut record = Vec::new();
        for n in 0..3 {
            record.clear();
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
