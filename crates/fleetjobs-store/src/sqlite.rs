//! The embedded store: one SQLite file in WAL mode, written by one dedicated thread that
//! drains every queued batch into a single transaction (group commit, `synchronous=FULL`).
//!
//! Checkpoints (copying the WAL back into the database file, and its fsync) run on a thread of
//! their own with its own connection: left to SQLite's auto-checkpoint they would run inside
//! the commit that crosses the WAL threshold, and every caller waiting on that group commit
//! (a create-job behind a wave of device updates) would wait for the database file's fsync too.
//! The WAL starts again from its beginning only at a commit that finds *every* frame copied,
//! which under a steady stream of commits never happens by itself (each checkpoint ends behind
//! the commits made while it ran: the WAL grew to 155 MB in one 10,000-device run, and every
//! commit that grows the file writes file-system metadata too). So once the checkpointer is
//! done, the writer copies the few frames committed meanwhile itself, between two commits.

use std::path::Path;
use std::sync::mpsc;
use std::sync::Mutex;
use std::thread;

use rusqlite::{params, Connection};

use crate::{Batch, Mutation, Record, Store, StoreError};

/// Most batches folded into one transaction.
const MAX_GROUP: usize = 4096;

/// Pages in the WAL at which the writer asks for a checkpoint: SQLite's own auto-checkpoint
/// threshold, about 4 MB. (Counting the records' bytes instead missed most of the WAL: a
/// commit writes whole pages, 10–20 times the bytes of the records it changes.)
const CHECKPOINT_PAGES: i32 = 1000;

/// The WAL file is cut back to this many bytes when it starts again (it grows past it only
/// while commits outpace a checkpoint, such as CreateJob's chunks on a big group).
const WAL_SIZE_LIMIT: usize = 16 << 20;

thread_local! {
    /// Pages in the WAL after this thread's last commit, from SQLite's WAL hook (which runs on
    /// the committing thread: the writer's).
    static WAL_PAGES: std::cell::Cell<i32> = const { std::cell::Cell::new(0) };
}

fn note_wal_pages(_: &rusqlite::hooks::Wal, pages: std::ffi::c_int) -> rusqlite::Result<()> {
    WAL_PAGES.set(pages);
    Ok(())
}

pub struct SqliteStore {
    tx: Mutex<Option<mpsc::Sender<Batch>>>,
    path: std::path::PathBuf,
    writer: Mutex<Option<thread::JoinHandle<()>>>,
    checkpointer: Mutex<Option<thread::JoinHandle<()>>>,
}

fn db_err(e: rusqlite::Error) -> StoreError {
    let full = matches!(e.sqlite_error_code(), Some(rusqlite::ErrorCode::DiskFull));
    if full {
        StoreError::Full(e.to_string())
    } else {
        StoreError::Database(e.to_string())
    }
}

fn open(path: &Path) -> Result<Connection, StoreError> {
    let conn = Connection::open(path).map_err(db_err)?;
    conn.execute_batch(&format!(
        "PRAGMA journal_mode=WAL;
         PRAGMA synchronous=FULL;
         PRAGMA busy_timeout=5000;
         PRAGMA journal_size_limit={WAL_SIZE_LIMIT};
         CREATE TABLE IF NOT EXISTS records (
             kind TEXT NOT NULL,
             key TEXT NOT NULL,
             value TEXT NOT NULL,
             PRIMARY KEY (kind, key)
         ) WITHOUT ROWID;"
    ))
    .map_err(db_err)?;
    Ok(conn)
}

impl SqliteStore {
    /// Open (or create) the database file and start the writer and checkpointer threads.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        Self::open_with_writer_start(path, || {})
    }

    /// As [`SqliteStore::open`], and the writer thread runs `on_writer_start` first: the server
    /// raises that thread's scheduling priority there, because every write a client waits for
    /// (create-job's commit, a device's update) passes through it.
    pub fn open_with_writer_start(
        path: &Path,
        on_writer_start: impl FnOnce() + Send + 'static,
    ) -> Result<Self, StoreError> {
        let conn = open(path)?;
        // No auto-checkpoint: the checkpointer does it, when asked (see the module docs). The
        // pragma sets SQLite's own WAL hook, so ours comes after it.
        conn.execute_batch("PRAGMA wal_autocheckpoint=0;").map_err(db_err)?;
        conn.wal_hook(Some(note_wal_pages));
        let checkpoint_conn = open(path)?;
        let (ask, asked) = mpsc::sync_channel::<()>(1);
        let (done, finished) = mpsc::sync_channel::<()>(1);
        let checkpointer = thread::Builder::new()
            .name("fleetjobs-checkpoint".into())
            .spawn(move || checkpoint_loop(checkpoint_conn, asked, done))
            .map_err(|e| StoreError::Database(e.to_string()))?;
        let (tx, rx) = mpsc::channel::<Batch>();
        let writer = thread::Builder::new()
            .name("fleetjobs-store".into())
            .spawn(move || {
                on_writer_start();
                writer_loop(conn, rx, Some(Checkpoints { ask, finished }))
            })
            .map_err(|e| StoreError::Database(e.to_string()))?;
        Ok(SqliteStore {
            tx: Mutex::new(Some(tx)),
            path: path.to_path_buf(),
            writer: Mutex::new(Some(writer)),
            checkpointer: Mutex::new(Some(checkpointer)),
        })
    }

    /// Whether the database holds no record at all (a fresh one, or one whose data is lost).
    pub fn is_empty(&self) -> Result<bool, StoreError> {
        let conn = open(&self.path)?;
        let any: bool = conn.query_row("SELECT EXISTS (SELECT 1 FROM records)", [], |r| r.get(0)).map_err(db_err)?;
        Ok(!any)
    }

    /// Stop accepting batches, let the writer commit what is queued, and wait for it.
    pub fn close(&self) {
        self.tx.lock().expect("store lock").take();
        if let Some(handle) = self.writer.lock().expect("store lock").take() {
            let _ = handle.join();
        }
        // The writer is gone, and with it the checkpointer's channel: it finishes its last one.
        if let Some(handle) = self.checkpointer.lock().expect("store lock").take() {
            let _ = handle.join();
        }
    }
}

impl Drop for SqliteStore {
    fn drop(&mut self) {
        self.close();
    }
}

/// The writer's ends of the checkpointer's two channels.
struct Checkpoints {
    /// Ask for a checkpoint (holds one request).
    ask: mpsc::SyncSender<()>,
    /// A checkpoint ended: the writer copies what was committed meanwhile.
    finished: mpsc::Receiver<()>,
}

/// Checkpoint each time the writer asks, until the writer is gone, and tell it when each one
/// ended. PASSIVE: it copies what no reader still needs and never blocks the writer.
fn checkpoint_loop(conn: Connection, asked: mpsc::Receiver<()>, done: mpsc::SyncSender<()>) {
    metrics::describe_histogram!(
        "fleetjobs_store_checkpoint_seconds",
        metrics::Unit::Seconds,
        "time to copy the WAL into the database file and fsync it (beside the commits)"
    );
    let seconds = metrics::histogram!("fleetjobs_store_checkpoint_seconds");
    while asked.recv().is_ok() {
        checkpoint(&conn, &seconds);
        let _ = done.try_send(());
    }
}

/// One PASSIVE checkpoint on `conn`, timed into `seconds`. A failure is logged only: the WAL
/// keeps everything meanwhile, and the next checkpoint tries again.
fn checkpoint(conn: &Connection, seconds: &metrics::Histogram) {
    let started = std::time::Instant::now();
    if let Err(e) = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(())) {
        tracing::warn!(error = %e, "WAL checkpoint failed");
    }
    seconds.record(started.elapsed().as_secs_f64());
}

fn writer_loop(mut conn: Connection, rx: mpsc::Receiver<Batch>, checkpoints: Option<Checkpoints>) {
    metrics::describe_histogram!("fleetjobs_store_commit_batches", "batches folded into one transaction");
    metrics::describe_histogram!(
        "fleetjobs_store_commit_seconds",
        metrics::Unit::Seconds,
        "time to write and fsync one transaction"
    );
    metrics::describe_counter!("fleetjobs_store_commit_failures_total", "transactions the database refused");
    metrics::describe_histogram!(
        "fleetjobs_store_checkpoint_tail_seconds",
        metrics::Unit::Seconds,
        "time the writer took, between two commits, to copy what was committed during a checkpoint"
    );
    let tail_seconds = metrics::histogram!("fleetjobs_store_checkpoint_tail_seconds");
    let batches = metrics::histogram!("fleetjobs_store_commit_batches");
    let seconds = metrics::histogram!("fleetjobs_store_commit_seconds");
    let failures = metrics::counter!("fleetjobs_store_commit_failures_total");
    // Batches of this epoch or older are refused: one of them failed, later ones built on it.
    let mut failed_epoch: Option<u64> = None;
    // From asking for a checkpoint until the writer has copied what the checkpointer left.
    let mut checkpointing = false;
    while let Ok(first) = rx.recv() {
        let mut group = vec![first];
        while group.len() < MAX_GROUP {
            match rx.try_recv() {
                Ok(b) => group.push(b),
                Err(_) => break,
            }
        }
        // Only after a failure is there anything to sort out; the healthy path keeps its group.
        if let Some(failed) = failed_epoch {
            let (aborted, kept): (Vec<_>, Vec<_>) = group.into_iter().partition(|b| b.epoch <= failed);
            for batch in aborted {
                (batch.on_durable)(Err(StoreError::Aborted));
            }
            if kept.is_empty() {
                continue;
            }
            group = kept;
        }
        let started = std::time::Instant::now();
        let result = commit(&mut conn, &group);
        seconds.record(started.elapsed().as_secs_f64());
        batches.record(group.len() as f64);
        if result.is_err() {
            failures.increment(1);
            failed_epoch = group.iter().map(|b| b.epoch).max().max(failed_epoch);
        } else if let Some(checkpoints) = &checkpoints {
            if !checkpointing && WAL_PAGES.get() >= CHECKPOINT_PAGES {
                checkpointing = checkpoints.ask.try_send(()).is_ok();
            }
        }
        for batch in group {
            (batch.on_durable)(result.clone());
        }
        // After the callers are answered, before the next group: once this copy leaves no frame
        // behind, the next commit starts the WAL again from its beginning.
        if checkpoints.as_ref().is_some_and(|c| c.finished.try_recv().is_ok()) {
            checkpoint(&conn, &tail_seconds);
            checkpointing = false;
        }
    }
}

fn commit(conn: &mut Connection, group: &[Batch]) -> Result<(), StoreError> {
    let tx = conn.transaction().map_err(db_err)?;
    {
        // REPLACE, not an upsert (`ON CONFLICT DO UPDATE`): with the key the table's only index
        // and no triggers, both leave the same row, and REPLACE seeks once where the upsert
        // seeks again for its UPDATE (callgrind: 12.0k -> 6.3k instructions per put).
        let mut put =
            tx.prepare_cached("REPLACE INTO records (kind, key, value) VALUES (?1, ?2, ?3)").map_err(db_err)?;
        let mut delete = tx.prepare_cached("DELETE FROM records WHERE kind = ?1 AND key = ?2").map_err(db_err)?;
        for m in group.iter().flat_map(|b| &b.mutations) {
            match m {
                Mutation::Put { kind, key, value } => put.execute(params![kind, key, value]).map_err(db_err)?,
                Mutation::Delete { kind, key } => delete.execute(params![kind, key]).map_err(db_err)?,
            };
        }
    }
    tx.commit().map_err(db_err)
}

/// Copy the database at `source` to `dest` (a new file) with SQLite's online backup: one
/// consistent snapshot, while another process may be writing to `source`.
pub fn backup(source: &Path, dest: &Path) -> Result<(), StoreError> {
    let src = Connection::open_with_flags(source, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY).map_err(db_err)?;
    src.busy_timeout(std::time::Duration::from_secs(5)).map_err(db_err)?;
    let mut dst = Connection::open(dest).map_err(db_err)?;
    {
        let copy = rusqlite::backup::Backup::new(&src, &mut dst).map_err(db_err)?;
        // All pages in one step: one read transaction, so one snapshot of the source.
        copy.step(-1).map_err(db_err)?;
    }
    dst.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(())).map_err(db_err)?;
    Ok(())
}

impl Store for SqliteStore {
    fn load(&self) -> Result<Vec<Record>, StoreError> {
        let conn = open(&self.path)?;
        let mut stmt = conn.prepare("SELECT kind, key, value FROM records ORDER BY kind, key").map_err(db_err)?;
        let rows =
            stmt.query_map([], |r| Ok(Record { kind: r.get(0)?, key: r.get(1)?, value: r.get(2)? })).map_err(db_err)?;
        rows.collect::<Result<Vec<_>, _>>().map_err(db_err)
    }

    fn submit(&self, batch: Batch) {
        let sender = self.tx.lock().expect("store lock").clone();
        match sender {
            Some(tx) => {
                if let Err(mpsc::SendError(batch)) = tx.send(batch) {
                    (batch.on_durable)(Err(StoreError::Closed));
                }
            }
            None => (batch.on_durable)(Err(StoreError::Closed)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    fn put(key: &str, value: &str) -> Mutation {
        Mutation::Put { kind: "job", key: key.into(), value: value.into() }
    }

    fn submit_wait(store: &SqliteStore, mutations: Vec<Mutation>) -> Result<(), StoreError> {
        let (tx, rx) = mpsc::channel();
        store.submit(Batch { epoch: 1, mutations, on_durable: Box::new(move |r| tx.send(r).unwrap()) });
        rx.recv().unwrap()
    }

    #[test]
    fn puts_deletes_and_reload() {
        let dir = tempdir();
        let path = dir.join("db.sqlite");
        {
            let store = SqliteStore::open(&path).unwrap();
            submit_wait(&store, vec![put("a", "1"), put("b", "2")]).unwrap();
            submit_wait(&store, vec![put("a", "3"), Mutation::Delete { kind: "job", key: "b".into() }]).unwrap();
        }
        let store = SqliteStore::open(&path).unwrap();
        let records = store.load().unwrap();
        assert_eq!(records, vec![Record { kind: "job".into(), key: "a".into(), value: "3".into() }]);
    }

    #[test]
    fn the_writer_start_hook_runs_on_the_writer_thread() {
        let dir = tempdir();
        let (tx, rx) = mpsc::channel();
        let store = SqliteStore::open_with_writer_start(&dir.join("db.sqlite"), move || {
            tx.send(thread::current().name().map(str::to_string)).unwrap();
        })
        .unwrap();
        assert_eq!(rx.recv().unwrap().as_deref(), Some("fleetjobs-store"));
        submit_wait(&store, vec![put("a", "1")]).unwrap();
    }

    #[test]
    fn batches_complete_in_submission_order() {
        let dir = tempdir();
        let store = SqliteStore::open(&dir.join("db.sqlite")).unwrap();
        let order = Arc::new(Mutex::new(Vec::new()));
        let (done_tx, done_rx) = mpsc::channel();
        for i in 0..500 {
            let order = order.clone();
            let done_tx = done_tx.clone();
            store.submit(Batch {
                epoch: 1,
                mutations: vec![put(&format!("k{i}"), &i.to_string())],
                on_durable: Box::new(move |r| {
                    r.unwrap();
                    order.lock().unwrap().push(i);
                    done_tx.send(()).unwrap();
                }),
            });
        }
        for _ in 0..500 {
            done_rx.recv().unwrap();
        }
        assert_eq!(*order.lock().unwrap(), (0..500).collect::<Vec<_>>());
        assert_eq!(store.load().unwrap().len(), 500);
    }

    #[test]
    fn a_full_database_refuses_the_batch_and_what_built_on_it_then_recovers() {
        let dir = tempdir();
        let path = dir.join("db.sqlite");
        let conn = open(&path).unwrap();
        // A size cap makes SQLite answer SQLITE_FULL, as a full disk does.
        let pages: i64 = conn.query_row("PRAGMA page_count", [], |r| r.get(0)).unwrap();
        conn.query_row(&format!("PRAGMA max_page_count = {}", pages + 8), [], |_| Ok(())).unwrap();
        let (tx, rx) = mpsc::channel::<Batch>();
        let writer = thread::spawn(move || writer_loop(conn, rx, None));
        let submit = |epoch: u64, mutations: Vec<Mutation>| {
            let (done_tx, done_rx) = mpsc::channel();
            tx.send(Batch { epoch, mutations, on_durable: Box::new(move |r| done_tx.send(r).unwrap()) }).unwrap();
            done_rx
        };
        submit(1, vec![put("a", "1")]).recv().unwrap().unwrap();
        let big = submit(1, vec![put("big", &"x".repeat(1 << 20))]);
        let after = submit(1, vec![put("c", "3")]);
        assert!(matches!(big.recv().unwrap(), Err(StoreError::Full(_))));
        assert!(after.recv().unwrap().is_err(), "a batch of the failed epoch built on it");
        submit(2, vec![put("d", "4")]).recv().unwrap().expect("the next epoch commits");
        drop(tx);
        writer.join().unwrap();
        let keys: Vec<String> = SqliteStore::open(&path).unwrap().load().unwrap().into_iter().map(|r| r.key).collect();
        assert_eq!(keys, ["a", "d"]);
    }

    #[test]
    fn backup_copies_a_snapshot_while_the_store_serves() {
        let dir = tempdir();
        let store = SqliteStore::open(&dir.join("db.sqlite")).unwrap();
        assert!(store.is_empty().unwrap());
        submit_wait(&store, vec![put("a", "1"), put("b", "2")]).unwrap();
        assert!(!store.is_empty().unwrap());
        backup(&dir.join("db.sqlite"), &dir.join("copy.sqlite")).unwrap();
        submit_wait(&store, vec![put("c", "3")]).unwrap();
        let copy = SqliteStore::open(&dir.join("copy.sqlite")).unwrap();
        let keys: Vec<String> = copy.load().unwrap().into_iter().map(|r| r.key).collect();
        assert_eq!(keys, ["a", "b"]);
    }

    /// About the bytes of WAL at which the writer asks for a checkpoint (4 KiB pages).
    const CHECKPOINT_BYTES: usize = CHECKPOINT_PAGES as usize * 4096;

    #[test]
    fn the_checkpointer_copies_the_wal_into_the_database_file() {
        let dir = tempdir();
        let path = dir.join("db.sqlite");
        let store = SqliteStore::open(&path).unwrap();
        // SQLite's auto-checkpoint is off: the database file grows only by our checkpoints.
        let value = "x".repeat(64 << 10);
        for i in 0..2 * CHECKPOINT_BYTES / value.len() {
            submit_wait(&store, vec![put(&format!("k{i}"), &value)]).unwrap();
        }
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        while std::fs::metadata(&path).unwrap().len() < CHECKPOINT_BYTES as u64 {
            assert!(std::time::Instant::now() < deadline, "no checkpoint copied the WAL");
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        store.close();
        assert_eq!(SqliteStore::open(&path).unwrap().load().unwrap().len(), 2 * CHECKPOINT_BYTES / value.len());
    }

    /// Many small commits, as devices make them (a record of a few hundred bytes, and a few
    /// whole pages of WAL for it): checkpoints still come every ~1,000 pages of WAL and the WAL
    /// starts again after each, so its file stays within the size limit. (Asking for them by
    /// the records' bytes, the store let the WAL grow to 155 MB in one 10,000-device run.)
    #[test]
    fn the_wal_stays_bounded_under_many_small_commits() {
        let dir = tempdir();
        let path = dir.join("db.sqlite");
        let store = SqliteStore::open(&path).unwrap();
        let value = "z".repeat(512);
        let commits = 8000;
        for i in 0..commits {
            // Keys spread over the table, so that commits touch different pages.
            let key = format!("k{:04}", (i * 7919) % 4096);
            submit_wait(&store, vec![put(&key, &value)]).unwrap();
        }
        let wal = std::fs::metadata(dir.join("db.sqlite-wal")).unwrap().len();
        assert!(wal <= WAL_SIZE_LIMIT as u64, "the WAL is {wal} bytes after {commits} commits");
        store.close();
        assert_eq!(SqliteStore::open(&path).unwrap().load().unwrap().len(), 4096);
    }

    #[test]
    fn closed_store_reports_closed() {
        let dir = tempdir();
        let store = SqliteStore::open(&dir.join("db.sqlite")).unwrap();
        store.close();
        assert!(matches!(submit_wait(&store, vec![put("a", "1")]), Err(StoreError::Closed)));
    }

    fn tempdir() -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("fleetjobs-store-test-{}", uuid_like()));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    fn uuid_like() -> String {
        use std::time::{SystemTime, UNIX_EPOCH};
        let nanos = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_nanos();
        format!("{}-{nanos}", std::process::id())
    }
}
