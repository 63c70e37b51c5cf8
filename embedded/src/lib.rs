//! The embedded storage engine: one fjall database under `--data-dir`, shared by every embedded
//! adapter (stream, leases and checkpoints, events, subscriptions, customers, queues, limits).
//!
//! Writes go to fjall's journal in the OS page cache; [`Engine::sync`] makes them durable. Many
//! concurrent callers share one fsync (group commit): the disk manages a few thousand fsyncs a
//! second, while ingest must acknowledge tens of thousands of events a second.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use fjall::{Database, Keyspace, KeyspaceCreateOptions, PersistMode};
use tokio::sync::{mpsc, oneshot};

pub use fjall;

/// A failure of the embedded storage engine.
#[derive(Debug, Clone, thiserror::Error)]
pub enum EngineError {
    /// fjall reported an error (I/O, corruption, a lock held by another process).
    #[error("embedded storage: {0}")]
    Storage(String),
    /// The engine is shutting down and accepts no more syncs.
    #[error("embedded storage is shut down")]
    Closed,
}

impl From<fjall::Error> for EngineError {
    fn from(error: fjall::Error) -> Self {
        Self::Storage(error.to_string())
    }
}

/// The open embedded database and its group committer. Cheap to clone.
#[derive(Clone)]
pub struct Engine {
    db: Database,
    sync_requests: mpsc::UnboundedSender<oneshot::Sender<Result<(), EngineError>>>,
    stats: Arc<SyncStats>,
}

/// Counters that show group commit at work.
#[derive(Debug, Default)]
pub struct SyncStats {
    /// Calls to [`Engine::sync`].
    pub requests: AtomicU64,
    /// fsyncs actually issued.
    pub fsyncs: AtomicU64,
}

impl Engine {
    /// Opens (or creates) the database in `dir`. Fails if another process has it open.
    pub fn open(dir: &Path) -> Result<Self, EngineError> {
        std::fs::create_dir_all(dir).map_err(|e| EngineError::Storage(format!("create {}: {e}", dir.display())))?;
        // fjall persists its journal on its own schedule unless told not to; durability here is
        // exactly what `sync` promises, so nothing is gained by extra background fsyncs.
        let db = Database::builder(dir).manual_journal_persist(true).open()?;
        let (sync_requests, receiver) = mpsc::unbounded_channel();
        let stats = Arc::new(SyncStats::default());
        let committer_db = db.clone();
        let committer_stats = Arc::clone(&stats);
        std::thread::Builder::new()
            .name("triggers-group-commit".into())
            .spawn(move || run_group_commit(&committer_db, receiver, &committer_stats))
            .map_err(|e| EngineError::Storage(format!("start group commit thread: {e}")))?;
        Ok(Self { db, sync_requests, stats })
    }

    /// Opens (or creates) one keyspace: fjall's name for a column family.
    pub fn keyspace(&self, name: &str) -> Result<Keyspace, EngineError> {
        Ok(self.db.keyspace(name, KeyspaceCreateOptions::default)?)
    }

    /// A batch that writes to several keyspaces atomically.
    pub fn batch(&self) -> fjall::OwnedWriteBatch {
        self.db.batch()
    }

    /// Waits until every write made before this call is on disk.
    ///
    /// Callers that arrive while an fsync is running share the next one, so the fsync rate stays at
    /// what the disk can do however many callers wait.
    pub async fn sync(&self) -> Result<(), EngineError> {
        self.stats.requests.fetch_add(1, Ordering::Relaxed);
        let (done, wait) = oneshot::channel();
        self.sync_requests.send(done).map_err(|_| EngineError::Closed)?;
        wait.await.map_err(|_| EngineError::Closed)?
    }

    /// How many syncs were asked for and how many fsyncs they took.
    pub fn sync_stats(&self) -> &SyncStats {
        &self.stats
    }
}

/// The group-commit loop: take every waiting request, fsync once, answer them all.
///
/// A request is queued only after its writes are in the journal, so one fsync issued after the
/// requests are taken covers all of them.
fn run_group_commit(
    db: &Database,
    mut requests: mpsc::UnboundedReceiver<oneshot::Sender<Result<(), EngineError>>>,
    stats: &SyncStats,
) {
    let mut waiting = Vec::new();
    while let Some(first) = requests.blocking_recv() {
        waiting.push(first);
        while let Ok(next) = requests.try_recv() {
            waiting.push(next);
        }
        let outcome = db.persist(PersistMode::SyncAll).map_err(EngineError::from);
        stats.fsyncs.fetch_add(1, Ordering::Relaxed);
        if let Err(error) = &outcome {
            tracing::error!(%error, "fsync of the embedded journal failed");
        }
        for waiter in waiting.drain(..) {
            let _ = waiter.send(outcome.clone());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn every_concurrent_sync_is_answered_by_at_most_one_fsync_each_and_data_survives_reopen() {
        let dir = tempfile::tempdir().unwrap();
        {
            let engine = Engine::open(dir.path()).unwrap();
            let items = engine.keyspace("items").unwrap();
            let mut tasks = Vec::new();
            for i in 0..200u32 {
                let engine = engine.clone();
                let items = items.clone();
                tasks.push(tokio::spawn(async move {
                    items.insert(i.to_be_bytes(), b"v").unwrap();
                    engine.sync().await.unwrap();
                }));
            }
            for task in tasks {
                task.await.unwrap();
            }
            let stats = engine.sync_stats();
            assert_eq!(stats.requests.load(Ordering::Relaxed), 200);
            // How many requests share an fsync depends on timing; scripts/bench-ingest measures it
            // (BENCHMARKS.md). Here: never more fsyncs than requests, and at least one.
            let fsyncs = stats.fsyncs.load(Ordering::Relaxed);
            assert!((1..=200).contains(&fsyncs), "fsyncs: {fsyncs}");
        }
        let engine = Engine::open(dir.path()).unwrap();
        let items = engine.keyspace("items").unwrap();
        assert_eq!(items.len().unwrap(), 200);
    }
}
