//! The controller's decision-log writer: a bounded queue drained by one background
//! thread, which serializes, compresses (gzip) and writes the lines into size-rotated
//! files under a total-size bound. [`DecisionLog::record`] never blocks and never fails:
//! when the queue is full (the disk is slower than the evaluations) the line is dropped
//! and counted, which `/metrics` exports.

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, SyncSender, TrySendError};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use flate2::Compression;
use flate2::write::GzEncoder;

use super::schema::Record;

/// File names: `decisions-<ms since epoch, 13 digits>-<sequence>.jsonl.gz`, so that the
/// name order is the time order, across restarts too.
pub const FILE_PREFIX: &str = "decisions-";
pub const FILE_SUFFIX: &str = ".jsonl.gz";

/// How long written lines may sit in the compressor before a sync flush makes them
/// readable (a reader of the active file sees everything older than this).
const FLUSH_EVERY: Duration = Duration::from_secs(1);

#[derive(Debug, Clone)]
pub struct WriterSettings {
    pub dir: PathBuf,
    /// A file is closed and a new one started once it reaches this many (compressed)
    /// bytes; lines are never split across files. The compressor holds back up to a
    /// block (tens of KiB) between the writer's flushes (every second), by which a file
    /// may pass the bound.
    pub max_file_bytes: u64,
    /// The oldest files are deleted so that all files together, the one being written
    /// counted at `max_file_bytes`, stay under this.
    pub max_total_bytes: u64,
    /// Lines waiting for the writer; more are dropped (and counted).
    pub queue: usize,
}

impl WriterSettings {
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self {
            dir: dir.into(),
            max_file_bytes: 64 << 20,
            max_total_bytes: 1 << 30,
            queue: 4096,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum WriterError {
    #[error("decision log {0}: {1}")]
    Dir(String, String),
    #[error("decision log: the total size bound ({total} bytes) is below one file ({file} bytes)")]
    Bounds { total: u64, file: u64 },
    #[error("decision log: cannot start the writer thread: {0}")]
    Thread(String),
}

enum Msg {
    Line(Box<Record>),
    /// Make everything written so far readable, then answer.
    Flush(SyncSender<()>),
    /// Finish the file (gzip trailer) and stop.
    Close(SyncSender<()>),
}

/// Counters of the writer, shared with its thread.
#[derive(Debug, Default)]
pub struct Counters {
    /// Lines queued.
    pub accepted: AtomicU64,
    /// Lines that never reached a file: queue full, writer closed, or a write failed.
    pub dropped: AtomicU64,
    /// Lines written, and the compressed bytes of the files finished or being written.
    pub written: AtomicU64,
    pub bytes: AtomicU64,
}

pub struct DecisionLog {
    tx: SyncSender<Msg>,
    counters: Arc<Counters>,
    thread: Mutex<Option<std::thread::JoinHandle<()>>>,
    dir: PathBuf,
}

impl std::fmt::Debug for DecisionLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DecisionLog").field("dir", &self.dir).finish()
    }
}

impl DecisionLog {
    /// Create the directory if needed and start the writer thread.
    pub fn open(settings: WriterSettings) -> Result<Self, WriterError> {
        if settings.max_total_bytes < settings.max_file_bytes {
            return Err(WriterError::Bounds {
                total: settings.max_total_bytes,
                file: settings.max_file_bytes,
            });
        }
        let shown = settings.dir.display().to_string();
        std::fs::create_dir_all(&settings.dir).map_err(|e| WriterError::Dir(shown.clone(), e.to_string()))?;
        // Fail at start, not at the first evaluation, on a directory we cannot write.
        let probe = settings.dir.join(".wasmscaler-write-test");
        File::create(&probe)
            .and_then(|_| std::fs::remove_file(&probe))
            .map_err(|e| WriterError::Dir(shown.clone(), format!("not writable: {e}")))?;
        let (tx, rx) = mpsc::sync_channel(settings.queue.max(1));
        let counters = Arc::new(Counters::default());
        let files = Files::new(settings.clone(), counters.clone());
        let thread = std::thread::Builder::new()
            .name("decision-log".into())
            .spawn(move || drain(rx, files))
            .map_err(|e| WriterError::Thread(e.to_string()))?;
        Ok(Self {
            tx,
            counters,
            thread: Mutex::new(Some(thread)),
            dir: settings.dir,
        })
    }

    /// Queue one line; never blocks. A full queue drops the line (counted).
    pub fn record(&self, record: Record) {
        match self.tx.try_send(Msg::Line(Box::new(record))) {
            Ok(()) => {
                self.counters.accepted.fetch_add(1, Ordering::Relaxed);
            }
            Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => {
                self.counters.dropped.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// Lines that never reached a file.
    pub fn dropped(&self) -> u64 {
        self.counters.dropped.load(Ordering::Relaxed)
    }

    pub fn counters(&self) -> &Counters {
        &self.counters
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Wait until every line queued so far is readable in the files (tests, shutdown).
    pub fn flush(&self) {
        let (ack, done) = mpsc::sync_channel(1);
        if self.tx.send(Msg::Flush(ack)).is_ok() {
            let _ = done.recv_timeout(Duration::from_secs(10));
        }
    }

    /// Write what is queued, finish the file, stop the thread. Later lines are dropped.
    pub fn close(&self) {
        let (ack, done) = mpsc::sync_channel(1);
        if self.tx.send(Msg::Close(ack)).is_ok() {
            let _ = done.recv_timeout(Duration::from_secs(10));
        }
        if let Some(t) = self.thread.lock().unwrap_or_else(|p| p.into_inner()).take() {
            let _ = t.join();
        }
    }
}

impl Drop for DecisionLog {
    fn drop(&mut self) {
        self.close();
    }
}

fn drain(rx: Receiver<Msg>, mut files: Files) {
    loop {
        match rx.recv_timeout(FLUSH_EVERY) {
            Ok(Msg::Line(r)) => {
                let mut line = r.to_line();
                line.push(b'\n');
                files.write_line(&line);
            }
            Ok(Msg::Flush(ack)) => {
                files.flush();
                let _ = ack.send(());
            }
            Ok(Msg::Close(ack)) => {
                files.finish();
                let _ = ack.send(());
                return;
            }
            Err(RecvTimeoutError::Timeout) => files.flush(),
            Err(RecvTimeoutError::Disconnected) => {
                files.finish();
                return;
            }
        }
    }
}

/// Counts the compressed bytes going to a file.
struct Counted {
    inner: BufWriter<File>,
    bytes: u64,
}

impl Write for Counted {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.bytes += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// The rotating files, owned by the writer thread.
struct Files {
    settings: WriterSettings,
    counters: Arc<Counters>,
    current: Option<(PathBuf, GzEncoder<Counted>)>,
    dirty: bool,
    seq: u64,
    /// Write errors in a row: the first is logged, then every 1000th.
    failing: u64,
}

impl Files {
    fn new(settings: WriterSettings, counters: Arc<Counters>) -> Self {
        Self {
            settings,
            counters,
            current: None,
            dirty: false,
            seq: 0,
            failing: 0,
        }
    }

    fn write_line(&mut self, line: &[u8]) {
        match self.try_write(line) {
            Ok(()) => {
                self.failing = 0;
                self.counters.written.fetch_add(1, Ordering::Relaxed);
            }
            Err(e) => {
                self.counters.dropped.fetch_add(1, Ordering::Relaxed);
                if self.failing.is_multiple_of(1000) {
                    tracing::warn!(dir = %self.settings.dir.display(), error = %e, "decision log: cannot write; lines are dropped");
                }
                self.failing += 1;
                // Start a fresh file next time (the broken one stays readable up to its
                // last flush).
                self.current = None;
            }
        }
    }

    fn try_write(&mut self, line: &[u8]) -> io::Result<()> {
        if self.current.is_none() {
            self.start()?;
        }
        let Some((_, enc)) = self.current.as_mut() else {
            return Err(io::Error::other("no file"));
        };
        enc.write_all(line)?;
        self.dirty = true;
        if enc.get_ref().bytes >= self.settings.max_file_bytes {
            self.finish();
        }
        Ok(())
    }

    fn start(&mut self) -> io::Result<()> {
        self.prune(
            self.settings
                .max_total_bytes
                .saturating_sub(self.settings.max_file_bytes),
        );
        let ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis())
            .unwrap_or(0);
        self.seq += 1;
        let path = self
            .settings
            .dir
            .join(format!("{FILE_PREFIX}{ms:013}-{:06}{FILE_SUFFIX}", self.seq));
        let file = File::options().write(true).create_new(true).open(&path)?;
        let enc = GzEncoder::new(
            Counted {
                inner: BufWriter::with_capacity(64 << 10, file),
                bytes: 0,
            },
            Compression::default(),
        );
        self.current = Some((path, enc));
        Ok(())
    }

    /// Make the lines written so far readable (a sync flush: the file stays one gzip
    /// member, a reader sees whole lines up to here).
    fn flush(&mut self) {
        if !self.dirty {
            return;
        }
        if let Some((_, enc)) = self.current.as_mut() {
            if let Err(e) = enc.flush() {
                tracing::warn!(error = %e, "decision log: flush failed");
            }
            // The flush pushed out what the compressor held back: the size is exact now.
            if enc.get_ref().bytes >= self.settings.max_file_bytes {
                self.finish();
            }
        }
        self.dirty = false;
    }

    fn finish(&mut self) {
        if let Some((path, enc)) = self.current.take() {
            match enc.finish().and_then(|mut c| c.flush().map(|()| c.bytes)) {
                Ok(bytes) => {
                    self.counters.bytes.fetch_add(bytes, Ordering::Relaxed);
                }
                Err(e) => {
                    tracing::warn!(file = %path.display(), error = %e, "decision log: cannot finish file")
                }
            }
        }
        self.dirty = false;
    }

    /// Delete the oldest log files until the rest total at most `budget` bytes.
    fn prune(&self, budget: u64) {
        let mut files = match log_files(&self.settings.dir) {
            Ok(f) => f,
            Err(e) => {
                tracing::warn!(error = %e, "decision log: cannot list the directory");
                return;
            }
        };
        let mut total: u64 = files.iter().map(|(_, n)| n).sum();
        files.reverse();
        while total > budget {
            let Some((oldest, size)) = files.pop() else { break };
            match std::fs::remove_file(&oldest) {
                Ok(()) => total = total.saturating_sub(size),
                Err(e) => {
                    tracing::warn!(file = %oldest.display(), error = %e, "decision log: cannot delete");
                    break;
                }
            }
        }
    }
}

/// The log files of a directory, oldest first, with their sizes.
pub fn log_files(dir: &Path) -> io::Result<Vec<(PathBuf, u64)>> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if name.starts_with(FILE_PREFIX) && name.ends_with(FILE_SUFFIX) {
            out.push((entry.path(), entry.metadata()?.len()));
        }
    }
    out.sort();
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::super::reader;
    use super::super::schema::tests_support::record_with;
    use super::*;

    /// Incompressible text, so each line weighs on the files (the compressor holds back
    /// what compresses well until it has a block's worth, which is what rotation counts).
    fn noise(seed: u64, n: usize) -> String {
        let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
        (0..n)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                char::from(b'a' + (x % 26) as u8)
            })
            .collect()
    }

    fn read_all(dir: &Path) -> Vec<Record> {
        let files: Vec<PathBuf> = log_files(dir).unwrap().into_iter().map(|(p, _)| p).collect();
        let mut out = Vec::new();
        for f in files {
            for r in reader::read(&f).unwrap() {
                out.push(r.unwrap().record);
            }
        }
        out
    }

    #[test]
    fn lines_round_trip_through_rotated_gzip_files_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = WriterSettings::new(dir.path());
        s.max_file_bytes = 2_000;
        s.max_total_bytes = 1 << 30;
        let log = DecisionLog::open(s).unwrap();
        for i in 0..300 {
            log.record(record_with(i, &noise(i as u64, 60)));
            // As the writer does every second: what the compressor held back goes out.
            if i % 10 == 0 {
                log.flush();
            }
        }
        log.close();
        let files = log_files(dir.path()).unwrap();
        assert!(files.len() > 3, "rotated: {files:?}");
        // A file ends at the first line past the bound: never much more than it.
        for (p, n) in &files {
            assert!(*n < 2_000 + 70_000, "{}: {n}", p.display());
        }
        let back = read_all(dir.path());
        assert_eq!(back.len(), 300);
        assert!(back.iter().enumerate().all(|(i, r)| r.at_ms == i as i64));
        assert_eq!(log.dropped(), 0);
        assert_eq!(log.counters().written.load(Ordering::Relaxed), 300);
    }

    #[test]
    fn the_total_size_stays_bounded_by_deleting_the_oldest_files() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = WriterSettings::new(dir.path());
        s.max_file_bytes = 1_000;
        s.max_total_bytes = 5_000;
        let log = DecisionLog::open(s).unwrap();
        for i in 0..400 {
            log.record(record_with(i, &noise(i as u64, 120)));
            if i % 50 == 0 {
                log.flush();
            }
        }
        log.close();
        let files = log_files(dir.path()).unwrap();
        let total: u64 = files.iter().map(|(_, n)| n).sum();
        // The bound holds up to the last file's overshoot (one line past its bound).
        assert!(total <= 5_000 + 1_000, "{total} bytes in {files:?}");
        let back = read_all(dir.path());
        assert!(
            !back.is_empty() && back.len() < 400,
            "oldest deleted: {}",
            back.len()
        );
        assert_eq!(back.last().map(|r| r.at_ms), Some(399), "the newest are kept");
    }

    #[test]
    fn a_full_queue_drops_and_counts_instead_of_blocking() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = WriterSettings::new(dir.path());
        s.queue = 4;
        let log = DecisionLog::open(s).unwrap();
        let started = std::time::Instant::now();
        for i in 0..20_000 {
            log.record(record_with(i, "r"));
        }
        let took = started.elapsed();
        log.close();
        let c = log.counters();
        let (accepted, dropped) = (
            c.accepted.load(Ordering::Relaxed),
            c.dropped.load(Ordering::Relaxed),
        );
        assert_eq!(accepted + dropped, 20_000);
        assert!(dropped > 0, "a queue of 4 cannot take 20000 lines at once");
        assert_eq!(read_all(dir.path()).len() as u64, accepted);
        assert!(took < Duration::from_secs(5), "record never waits: {took:?}");
        // After close, lines are dropped, not lost silently.
        log.record(record_with(0, "late"));
        assert_eq!(log.dropped(), dropped + 1);
    }

    #[test]
    fn the_active_file_is_readable_after_a_flush() {
        let dir = tempfile::tempdir().unwrap();
        let log = DecisionLog::open(WriterSettings::new(dir.path())).unwrap();
        for i in 0..5 {
            log.record(record_with(i, "r"));
        }
        log.flush();
        assert_eq!(
            read_all(dir.path()).len(),
            5,
            "no trailer yet, every line readable"
        );
        log.close();
    }

    #[test]
    fn an_unwritable_directory_or_inverted_bounds_fail_at_open() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("f");
        std::fs::write(&file, b"").unwrap();
        assert!(DecisionLog::open(WriterSettings::new(file.join("sub"))).is_err());
        let mut s = WriterSettings::new(dir.path());
        s.max_total_bytes = 10;
        assert!(matches!(DecisionLog::open(s), Err(WriterError::Bounds { .. })));
    }
}

#[cfg(test)]
mod overhead {
    use std::time::{Duration, Instant};

    use wasmscaler_sdk::{Context, Decision, Sample, Signal, Workload};

    use super::super::schema::{Record, Source, WorkloadId};
    use super::*;
    use crate::core::evaluate::{Action, Outcome, PolicyRun};

    /// What a Knative evaluation hands over: 120 one-second samples.
    fn knative_outcome() -> Outcome {
        let ctx = Context {
            now_ms: 1_733_150_000_000,
            workload: Workload::default(),
            config: r#"{"target":20}"#.into(),
            signals: vec![Signal {
                name: "concurrency".into(),
                samples: (0..120)
                    .map(|i| Sample::new(1_733_150_000_000 - (120 - i) * 1000, 70.0 + i as f64 / 7.0))
                    .collect(),
            }],
            state: Some(br#"{"panicUntil":0,"lastScale":1733149990000}"#.to_vec()),
        };
        Outcome {
            runs: vec![PolicyRun {
                policy: "knative-concurrency".into(),
                digest: "ab".repeat(32),
                name: "knative-concurrency".into(),
                version: "0.1.0".into(),
                context: ctx,
                called: true,
                history: Vec::new(),
                result: Ok(Decision::new(4).reason("stable 71.2 / 20 -> 4")),
                latency: Duration::from_micros(80),
                fuel: 100_000,
            }],
            proposal: Some(4),
            desired: 4,
            action: Action::Hold,
            jobs: None,
            placement: Vec::new(),
            metrics: Vec::new(),
            recheck_after_ms: Some(2000),
            reason: "knative-concurrency: stable".into(),
            failed: false,
            error: None,
        }
    }

    /// The reconcile's share (build the line's record, queue it) and the writer thread's
    /// (serialize, compress, write), per evaluation; printed with `--nocapture`.
    #[test]
    fn recording_an_evaluation_costs_microseconds_on_the_reconcile_path() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = WriterSettings::new(dir.path());
        s.queue = 1 << 16;
        let log = DecisionLog::open(s).unwrap();
        let outcome = knative_outcome();
        let n = 20_000;
        let started = Instant::now();
        for i in 0..n {
            let id = WorkloadId {
                kind: "Deployment".into(),
                namespace: "default".into(),
                name: format!("w{}", i % 100),
                uid: Some("6c1f0e4e-0000-4000-8000-000000000000".into()),
            };
            log.record(Record::of(
                Source::Controller,
                id,
                false,
                &[],
                &outcome,
                4,
                1_733_150_000_000 + i,
            ));
        }
        let queued = started.elapsed();
        log.close();
        let total = started.elapsed();
        let bytes: u64 = log_files(dir.path()).unwrap().iter().map(|(_, n)| n).sum();
        let per = |d: Duration| d.as_secs_f64() * 1e6 / n as f64;
        println!(
            "decision log: {:.2} us per evaluation on the reconcile path, {:.2} us in all; {} bytes compressed per evaluation ({} dropped)",
            per(queued),
            per(total),
            bytes / n as u64,
            log.dropped()
        );
        assert!(per(queued) < 1_000.0, "{} us", per(queued));
    }
}
