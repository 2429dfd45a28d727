//! Durable storage for Fleetjobs: a record store with group commit.
//!
//! The engine keeps its working state in memory and makes every change durable here before it
//! acknowledges it. The contract is deliberately small so that a PostgreSQL implementation
//! can sit beside the SQLite one without changing callers:
//!
//! - records are `(kind, key) -> JSON text`;
//! - [`Store::load`] returns every record (startup);
//! - [`Store::submit`] queues a [`Batch`] of puts/deletes and returns at once; the batch is
//!   applied atomically, batches commit in submission order, and each batch's `on_durable`
//!   runs (in order) once it is on disk. Many batches share one transaction and one fsync
//!   (group commit).
//! - a batch that fails leaves nothing behind, and every batch queued after it **with the same
//!   or an older [`Batch::epoch`]** fails too without being applied ([`StoreError::Aborted`]):
//!   the submitter built those on the failed one's changes. It re-reads the store (`load`)
//!   and submits under a newer epoch from then on.

mod sqlite;

pub use sqlite::{backup, SqliteStore};

/// One change to one record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mutation {
    Put { kind: &'static str, key: String, value: String },
    Delete { kind: &'static str, key: String },
}

impl Mutation {
    /// The kind and key of the record it changes.
    pub fn record(&self) -> (&'static str, &str) {
        match self {
            Mutation::Put { kind, key, .. } | Mutation::Delete { kind, key } => (kind, key),
        }
    }

    /// About how many bytes it writes.
    pub fn size(&self) -> usize {
        match self {
            Mutation::Put { kind, key, value } => kind.len() + key.len() + value.len(),
            Mutation::Delete { kind, key } => kind.len() + key.len(),
        }
    }
}

/// A record as loaded at startup.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    pub kind: String,
    pub key: String,
    pub value: String,
}

/// Called on the store's writer once the batch is durable (or failed).
pub type OnDurable = Box<dyn FnOnce(Result<(), StoreError>) + Send>;

/// Changes that commit together.
pub struct Batch {
    /// The submitter's view of the store these changes were derived from. After a failed
    /// commit, queued batches of that epoch (or older) are refused; see the crate docs.
    pub epoch: u64,
    pub mutations: Vec<Mutation>,
    pub on_durable: OnDurable,
}

#[derive(Debug, Clone, thiserror::Error)]
pub enum StoreError {
    #[error("database error: {0}")]
    Database(String),
    /// The disk (or the database's size limit) is full: retry once space returns.
    #[error("{0}")]
    Full(String),
    /// Not applied: an earlier batch of the same epoch failed and this one built on it.
    #[error("not applied: an earlier commit of this epoch failed")]
    Aborted,
    #[error("the store has shut down")]
    Closed,
}

pub trait Store: Send + Sync + 'static {
    /// Every record, for building the in-memory state at startup.
    fn load(&self) -> Result<Vec<Record>, StoreError>;
    /// Queue a batch. Never blocks on I/O.
    fn submit(&self, batch: Batch);
}
