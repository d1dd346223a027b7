//! The group-commit writer: one thread owns the only read-write connection of this process.
//!
//! It blocks for the first job, drains whatever else is queued (up to [`MAX_BATCH`]), and runs
//! them all in one `BEGIN IMMEDIATE` transaction, each job inside its own `SAVEPOINT` so that a
//! failing job is rolled back alone. It then commits once (one fsync for the whole batch) and only
//! after the commit succeeded tells each job its result; if the commit fails, every job of the
//! batch gets that error. A caller that gets `Ok` therefore knows its change is durable.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::mpsc::{Receiver, TryRecvError};

use resetd_core::store::StoreError;
use rusqlite::Connection;
use tokio::sync::oneshot;

use super::db;

/// The most jobs committed together.
pub(crate) const MAX_BATCH: usize = 512;

/// A unit of work for the writer, type-erased so jobs with different results share one queue.
pub(crate) trait Job: Send {
    /// Runs the job inside the open transaction, within its own savepoint. Returns `false` when
    /// the transaction as a whole can no longer be trusted (it must then be rolled back).
    fn run(&mut self, conn: &Connection) -> bool;
    /// Delivers the outcome once the batch's fate is known: `commit` is the commit's result.
    fn finish(self: Box<Self>, commit: Result<(), StoreError>);
}

/// A job computing a `T`.
pub(crate) struct Task<T, F> {
    work: Option<F>,
    /// Whether the work runs inside a savepoint of its own (see [`Task::statement`]).
    savepoint: bool,
    outcome: Option<Result<T, StoreError>>,
    reply: oneshot::Sender<Result<T, StoreError>>,
}

impl<T, F> Task<T, F>
where
    T: Send + 'static,
    F: FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
{
    /// A job running `work`, whose result is sent on `reply`.
    pub(crate) fn new(work: F, reply: oneshot::Sender<Result<T, StoreError>>) -> Self {
        Self {
            work: Some(work),
            savepoint: true,
            outcome: None,
            reply,
        }
    }

    /// A job whose `work` runs exactly one SQL statement and fails only when that statement
    /// does. It needs no savepoint: SQLite undoes a failed statement by itself and keeps the
    /// transaction, so the job costs one statement instead of three (the hot path of a flood of
    /// "forgot password" requests is one insert each).
    pub(crate) fn statement(work: F, reply: oneshot::Sender<Result<T, StoreError>>) -> Self {
        Self {
            savepoint: false,
            ..Self::new(work, reply)
        }
    }
}

impl<T, F> Job for Task<T, F>
where
    T: Send + 'static,
    F: FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
{
    fn run(&mut self, conn: &Connection) -> bool {
        let Some(work) = self.work.take() else {
            return true;
        };
        if !self.savepoint {
            let result = catch_unwind(AssertUnwindSafe(|| work(conn)))
                .unwrap_or_else(|_| Err(StoreError::Backend("a store operation panicked".into())));
            self.outcome = Some(result);
            // A full disk or an I/O error can end the whole transaction even here.
            return !conn.is_autocommit();
        }
        if let Err(e) = conn
            .prepare_cached("SAVEPOINT job")
            .and_then(|mut s| s.execute([]))
        {
            self.outcome = Some(Err(db(e)));
            return false;
        }
        let result = catch_unwind(AssertUnwindSafe(|| work(conn)))
            .unwrap_or_else(|_| Err(StoreError::Backend("a store operation panicked".into())));
        let mut healthy = true;
        if result.is_err() {
            healthy = conn
                .prepare_cached("ROLLBACK TO job")
                .and_then(|mut s| s.execute([]))
                .is_ok();
        }
        healthy = healthy
            && conn
                .prepare_cached("RELEASE job")
                .and_then(|mut s| s.execute([]))
                .is_ok();
        // Some errors (disk full, I/O) make SQLite roll back the whole transaction by itself.
        healthy = healthy && !conn.is_autocommit();
        self.outcome = Some(result);
        healthy
    }

    fn finish(self: Box<Self>, commit: Result<(), StoreError>) {
        let this = *self;
        let outcome = match commit {
            Ok(()) => this
                .outcome
                .unwrap_or_else(|| Err(StoreError::Backend("the job did not run".into()))),
            Err(e) => Err(e),
        };
        // The caller may have gone away; its change is committed (or not) either way.
        let _ = this.reply.send(outcome);
    }
}

/// The writer thread's loop; returns when every sender is gone.
pub(crate) fn run(conn: Connection, jobs: Receiver<Box<dyn Job>>) {
    while let Ok(first) = jobs.recv() {
        let mut batch = Vec::with_capacity(64);
        batch.push(first);
        while batch.len() < MAX_BATCH {
            match jobs.try_recv() {
                Ok(job) => batch.push(job),
                Err(TryRecvError::Empty | TryRecvError::Disconnected) => break,
            }
        }
        let result = run_batch(&conn, &mut batch);
        for job in batch {
            job.finish(result.clone());
        }
    }
}

/// Runs `batch` in one transaction and commits it.
fn run_batch(conn: &Connection, batch: &mut [Box<dyn Job>]) -> Result<(), StoreError> {
    conn.prepare_cached("BEGIN IMMEDIATE")
        .and_then(|mut s| s.execute([]))
        .map_err(db)?;
    for job in batch.iter_mut() {
        if !job.run(conn) {
            rollback(conn);
            // SQLite aborts a whole transaction only for a full disk or an I/O failure.
            return Err(StoreError::Unavailable(
                "the transaction was aborted; the batch was rolled back".into(),
            ));
        }
    }
    match conn
        .prepare_cached("COMMIT")
        .and_then(|mut s| s.execute([]))
    {
        Ok(_) => Ok(()),
        Err(e) => {
            rollback(conn);
            Err(db(e))
        }
    }
}

fn rollback(conn: &Connection) {
    if !conn.is_autocommit() {
        let _ = conn.execute_batch("ROLLBACK");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn insert(name: &'static str) -> impl FnOnce(&Connection) -> Result<usize, StoreError> {
        move |c| {
            c.execute("INSERT INTO t (name) VALUES (?1)", [name])
                .map_err(db)
        }
    }

    /// A failing job is undone alone, with or without a savepoint: its neighbours in the batch
    /// commit, and its own partial work (the first of two inserts) does not.
    #[test]
    fn a_failing_job_is_undone_alone_and_the_batch_commits() {
        let conn = Connection::open_in_memory().unwrap();
        conn.execute_batch("CREATE TABLE t (name TEXT PRIMARY KEY)")
            .unwrap();
        let mut replies = Vec::new();
        let mut batch: Vec<Box<dyn Job>> = Vec::new();
        let two_then_duplicate = |c: &Connection| {
            insert("kept-if-committed")(c)?;
            insert("a")(c)
        };
        for job in [0, 1, 2, 3] {
            let (tx, rx) = oneshot::channel();
            replies.push(rx);
            batch.push(match job {
                0 => Box::new(Task::statement(insert("a"), tx)),
                1 => Box::new(Task::statement(insert("a"), tx)), // duplicate: fails
                2 => Box::new(Task::new(two_then_duplicate, tx)), // second insert fails
                _ => Box::new(Task::statement(insert("b"), tx)),
            });
        }
        let commit = run_batch(&conn, &mut batch);
        assert_eq!(commit, Ok(()));
        for job in batch {
            job.finish(commit.clone());
        }
        let outcomes: Vec<bool> = replies
            .into_iter()
            .map(|mut rx| rx.try_recv().unwrap().is_ok())
            .collect();
        assert_eq!(outcomes, [true, false, false, true]);
        let names: Vec<String> = conn
            .prepare("SELECT name FROM t ORDER BY name")
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .map(Result::unwrap)
            .collect();
        assert_eq!(names, ["a", "b"]);
    }
}
