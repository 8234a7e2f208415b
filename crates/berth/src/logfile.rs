//! The scheduler's own log in its data directory: `berth.log`, rotated by size into
//! `berth.log.1` … (the oldest dropped), served at `GET /v1/debug/log` and read with
//! `berth log [--follow]`.
//!
//! Size and count: `BERTH_LOG_MAX_MB` (default 10) and `BERTH_LOG_FILES` (files kept besides
//! the current one, default 5). Lines logged before the data directory is known go to stderr
//! only.

use std::fs::File;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard, OnceLock};

use tracing_subscriber::fmt::MakeWriter;

/// The log file's name in the data directory.
pub const LOG_FILE: &str = "berth.log";

static LOG: OnceLock<Mutex<Rotating>> = OnceLock::new();

/// A file that moves itself aside once it would grow past `max` bytes.
#[derive(Debug)]
struct Rotating {
    path: PathBuf,
    file: File,
    size: u64,
    max: u64,
    keep: usize,
}

impl Rotating {
    fn open(path: &Path, max: u64, keep: usize) -> io::Result<Self> {
        let file = File::options().create(true).append(true).open(path)?;
        let size = file.metadata()?.len();
        Ok(Self {
            path: path.to_path_buf(),
            file,
            size,
            max,
            keep,
        })
    }

    fn numbered(&self, n: usize) -> PathBuf {
        let mut name = self.path.clone().into_os_string();
        name.push(format!(".{n}"));
        PathBuf::from(name)
    }

    fn rotate(&mut self) -> io::Result<()> {
        if self.keep == 0 {
            self.file.set_len(0)?;
            self.size = 0;
            return Ok(());
        }
        let _ = std::fs::remove_file(self.numbered(self.keep));
        for n in (1..self.keep).rev() {
            let _ = std::fs::rename(self.numbered(n), self.numbered(n + 1));
        }
        std::fs::rename(&self.path, self.numbered(1))?;
        self.file = File::options().create(true).append(true).open(&self.path)?;
        self.size = 0;
        Ok(())
    }
}

impl Write for Rotating {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if self.size > 0 && self.size + buf.len() as u64 > self.max {
            self.rotate()?;
        }
        let n = self.file.write(buf)?;
        self.size += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.file.flush()
    }
}

/// Starts writing the log to `dir/berth.log` (once per process).
///
/// # Errors
/// The file cannot be opened, or a setting is not a number.
pub fn start(dir: &Path) -> Result<PathBuf, String> {
    let number = |name: &str, default: u64| -> Result<u64, String> {
        match std::env::var(name) {
            Ok(v) => v
                .trim()
                .parse()
                .map_err(|_| format!("{name}: '{v}' is not a whole number")),
            Err(_) => Ok(default),
        }
    };
    let max = number("BERTH_LOG_MAX_MB", 10)?.max(1) << 20;
    let keep = usize::try_from(number("BERTH_LOG_FILES", 5)?).unwrap_or(5);
    let path = dir.join(LOG_FILE);
    let file = Rotating::open(&path, max, keep)
        .map_err(|e| format!("cannot open the log file {}: {e}", path.display()))?;
    let _ = LOG.set(Mutex::new(file));
    Ok(path)
}

/// The file layer's writer: the log file once [`start`]ed, nothing before.
#[derive(Debug, Clone, Copy, Default)]
pub struct FileLog;

/// One write to the log file.
pub struct FileLogWriter(Option<MutexGuard<'static, Rotating>>);

impl Write for FileLogWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match &mut self.0 {
            Some(f) => f.write(buf),
            None => Ok(buf.len()),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match &mut self.0 {
            Some(f) => f.flush(),
            None => Ok(()),
        }
    }
}

impl<'a> MakeWriter<'a> for FileLog {
    type Writer = FileLogWriter;

    fn make_writer(&'a self) -> Self::Writer {
        FileLogWriter(
            LOG.get()
                .map(|m| m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_file_rotates_by_size_and_keeps_a_bounded_number() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(LOG_FILE);
        let mut log = Rotating::open(&path, 100, 2).unwrap();
        for i in 0..10 {
            log.write_all(format!("line {i:02} {}\n", "x".repeat(30)).as_bytes())
                .unwrap();
        }
        let current = std::fs::read_to_string(&path).unwrap();
        assert!(current.len() <= 100, "{current}");
        assert!(current.contains("line 09"));
        assert!(log.numbered(1).exists());
        assert!(log.numbered(2).exists());
        assert!(!log.numbered(3).exists());
        let older = std::fs::read_to_string(log.numbered(1)).unwrap();
        assert!(
            older.contains("line 06") || older.contains("line 07"),
            "{older}"
        );
    }
}
