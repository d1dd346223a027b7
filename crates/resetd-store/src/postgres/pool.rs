//! A small connection pool: at most `size` connections, opened on demand, reused while healthy.
//!
//! Deliberately minimal (no background reaper, no health queries): a connection that the server
//! or the network closed is noticed on checkout (`is_closed`) and replaced, and a connection whose
//! transaction did not finish cleanly (its caller's future was dropped midway, or the commit
//! failed) is discarded instead of being handed to the next caller in an unknown state.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use resetd_core::store::StoreError;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_postgres::types::ToSql;
use tokio_postgres::{Client, GenericClient, NoTls, Row, Statement, Transaction};
use tracing::Instrument;

use super::db;

/// How long a caller waits for a free connection before giving up with an error.
const CHECKOUT_TIMEOUT: Duration = Duration::from_secs(30);

/// Prepared statements kept per connection (resetd uses a few dozen distinct statements).
const STATEMENT_CACHE: usize = 128;

/// Query parameters.
pub(crate) type Params<'a> = &'a [&'a (dyn ToSql + Sync)];

/// The pool. Cheap to share behind an `Arc`.
pub(crate) struct Pool {
    config: tokio_postgres::Config,
    idle: Mutex<Vec<Conn>>,
    permits: Arc<Semaphore>,
    size: usize,
}

/// One connection and its prepared statements.
pub(crate) struct Conn {
    client: Client,
    statements: Mutex<HashMap<String, Statement>>,
    /// Set while a transaction is open; a connection returned in that state is discarded.
    in_transaction: bool,
}

/// A checked-out connection; goes back to the pool when dropped (if it is still usable).
pub(crate) struct Pooled {
    conn: Option<Conn>,
    pool: Arc<Pool>,
    _permit: OwnedSemaphorePermit,
}

impl Pool {
    /// A pool of at most `size` connections made with `config`; nothing is connected yet.
    pub(crate) fn new(config: tokio_postgres::Config, size: usize) -> Arc<Pool> {
        Arc::new(Pool {
            config,
            idle: Mutex::new(Vec::new()),
            permits: Arc::new(Semaphore::new(size.max(1))),
            size: size.max(1),
        })
    }

    /// The most connections this pool opens.
    pub(crate) fn size(&self) -> usize {
        self.size
    }

    /// A connection: an idle healthy one, or a new one.
    pub(crate) async fn get(self: &Arc<Self>) -> Result<Pooled, StoreError> {
        let permit = tokio::time::timeout(CHECKOUT_TIMEOUT, self.permits.clone().acquire_owned())
            .await
            .map_err(|_| {
                StoreError::Unavailable(format!(
                    "no PostgreSQL connection became free within {} s (pool size {})",
                    CHECKOUT_TIMEOUT.as_secs(),
                    self.size
                ))
            })?
            .map_err(|_| StoreError::Backend("the connection pool is closed".into()))?;
        let idle = loop {
            let next = self.idle.lock().unwrap_or_else(|p| p.into_inner()).pop();
            match next {
                Some(c) if c.client.is_closed() => continue,
                other => break other,
            }
        };
        let conn = match idle {
            Some(c) => c,
            None => self.connect().await?,
        };
        Ok(Pooled {
            conn: Some(conn),
            pool: Arc::clone(self),
            _permit: permit,
        })
    }

    async fn connect(&self) -> Result<Conn, StoreError> {
        let (client, connection) =
            self.config
                .connect(NoTls)
                .await
                .map_err(|e| match super::db(e) {
                    StoreError::Unavailable(m) => {
                        StoreError::Unavailable(format!("cannot connect to PostgreSQL: {m}"))
                    }
                    StoreError::Backend(m) => {
                        StoreError::Backend(format!("cannot connect to PostgreSQL: {m}"))
                    }
                    other => other,
                })?;
        // The connection object does the actual I/O; it ends when the client is dropped or the
        // link breaks, which the client then reports on its next use (and `is_closed`).
        tokio::spawn(async move {
            let _ = connection.await;
        });
        Ok(Conn {
            client,
            statements: Mutex::new(HashMap::new()),
            in_transaction: false,
        })
    }
}

impl Drop for Pooled {
    fn drop(&mut self) {
        if let Some(conn) = self.conn.take() {
            if !conn.in_transaction && !conn.client.is_closed() {
                self.pool
                    .idle
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .push(conn);
            }
        }
    }
}

impl Pooled {
    #[allow(
        clippy::expect_used,
        reason = "conn is Some from checkout until Drop takes it"
    )]
    fn conn(&mut self) -> &mut Conn {
        self.conn
            .as_mut()
            .expect("a pooled connection is present until dropped")
    }

    /// Statements on the connection outside a transaction (each one commits on its own).
    pub(crate) fn db(&mut self) -> Db<'_, Client> {
        let conn = self.conn();
        Db {
            client: &conn.client,
            statements: &conn.statements,
        }
    }

    /// Opens a transaction (READ COMMITTED, PostgreSQL's default).
    pub(crate) async fn begin(&mut self) -> Result<Tx<'_>, StoreError> {
        let Conn {
            client,
            statements,
            in_transaction,
        } = self.conn();
        *in_transaction = true;
        let tx = client.transaction().await.map_err(db)?;
        Ok(Tx {
            tx,
            statements,
            in_transaction,
        })
    }
}

/// An open transaction. Finish it with [`Tx::finish`] (or `commit`/`rollback`); if it is
/// dropped instead, the connection is not reused.
pub(crate) struct Tx<'a> {
    tx: Transaction<'a>,
    statements: &'a Mutex<HashMap<String, Statement>>,
    in_transaction: &'a mut bool,
}

impl<'a> Tx<'a> {
    /// Statements inside the transaction.
    pub(crate) fn db(&self) -> Db<'_, Transaction<'a>> {
        Db {
            client: &self.tx,
            statements: self.statements,
        }
    }

    /// Commits.
    pub(crate) async fn commit(self) -> Result<(), StoreError> {
        let Tx {
            tx, in_transaction, ..
        } = self;
        tx.commit().await.map_err(db)?;
        *in_transaction = false;
        Ok(())
    }

    /// Rolls back.
    pub(crate) async fn rollback(self) -> Result<(), StoreError> {
        let Tx {
            tx, in_transaction, ..
        } = self;
        tx.rollback().await.map_err(db)?;
        *in_transaction = false;
        Ok(())
    }

    /// Commits when `result` is `Ok`, rolls back otherwise, and returns `result` (or the
    /// commit's error).
    pub(crate) async fn finish<T>(self, result: Result<T, StoreError>) -> Result<T, StoreError> {
        match result {
            Ok(v) => {
                self.commit().await?;
                Ok(v)
            }
            Err(e) => {
                // The original error matters more than a failed rollback (which discards the
                // connection anyway).
                let _ = self.rollback().await;
                Err(e)
            }
        }
    }
}

/// The SQL verb of `sql`, for its span (never the text: it says nothing more a trace needs).
fn verb(sql: &str) -> &'static str {
    const VERBS: [(&str, &str); 5] = [
        ("SELECT", "select"),
        ("INSERT", "insert"),
        ("UPDATE", "update"),
        ("DELETE", "delete"),
        ("WITH", "with"),
    ];
    let first = sql.split_whitespace().next().unwrap_or("");
    VERBS
        .iter()
        .find(|(verb, _)| first.eq_ignore_ascii_case(verb))
        .map_or("statement", |(_, name)| name)
}

/// Runs statements on a connection or in a transaction, preparing each SQL text once per
/// connection.
pub(crate) struct Db<'a, C> {
    client: &'a C,
    statements: &'a Mutex<HashMap<String, Statement>>,
}

impl<C: GenericClient + Sync> Db<'_, C> {
    async fn statement(&self, sql: &str) -> Result<Statement, StoreError> {
        let cached = self
            .statements
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(sql)
            .cloned();
        if let Some(s) = cached {
            return Ok(s);
        }
        let s = self.client.prepare(sql).await.map_err(db)?;
        let mut cache = self.statements.lock().unwrap_or_else(|p| p.into_inner());
        if cache.len() >= STATEMENT_CACHE {
            cache.clear();
        }
        cache.insert(sql.to_owned(), s.clone());
        Ok(s)
    }

    /// Every row.
    pub(crate) async fn all(&self, sql: &str, params: Params<'_>) -> Result<Vec<Row>, StoreError> {
        let run = async {
            let s = self.statement(sql).await?;
            self.client.query(&s, params).await.map_err(db)
        };
        run.instrument(crate::common::span("postgresql", verb(sql)))
            .await
    }

    /// The first row, if any (more rows are an error).
    pub(crate) async fn opt(
        &self,
        sql: &str,
        params: Params<'_>,
    ) -> Result<Option<Row>, StoreError> {
        let run = async {
            let s = self.statement(sql).await?;
            self.client.query_opt(&s, params).await.map_err(db)
        };
        run.instrument(crate::common::span("postgresql", verb(sql)))
            .await
    }

    /// Exactly one row.
    pub(crate) async fn one(&self, sql: &str, params: Params<'_>) -> Result<Row, StoreError> {
        let run = async {
            let s = self.statement(sql).await?;
            self.client.query_one(&s, params).await.map_err(db)
        };
        run.instrument(crate::common::span("postgresql", verb(sql)))
            .await
    }

    /// The number of rows changed.
    pub(crate) async fn exec(&self, sql: &str, params: Params<'_>) -> Result<u64, StoreError> {
        let run = async {
            let s = self.statement(sql).await?;
            self.client.execute(&s, params).await.map_err(db)
        };
        run.instrument(crate::common::span("postgresql", verb(sql)))
            .await
    }

    /// Runs SQL text without parameters or a prepared statement (DDL, several statements).
    pub(crate) async fn batch(&self, sql: &str) -> Result<(), StoreError> {
        self.client.batch_execute(sql).await.map_err(db)
    }
}
