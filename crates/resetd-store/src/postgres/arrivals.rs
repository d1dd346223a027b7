//! Group insert of reset requests: the anonymous "forgot password" endpoints store one row per
//! request, and on PostgreSQL one `INSERT` and its commit per request made the server's work per
//! request, not the network, the limit. Requests arriving together are inserted together, in one
//! statement and one commit, by a task of the store's own (like SQLite's writer thread); each
//! caller is answered only after that commit, so an `Ok` still means the row is durable.

use std::sync::{Arc, Mutex};

use resetd_core::model::NewResetRequest;
use resetd_core::store::StoreError;
use resetd_core::types::ClientName;
use tokio::sync::{mpsc, oneshot, Semaphore};

use super::pool::Pool;
use super::rows::get;
use crate::common::to_json;

/// The most requests inserted by one statement.
const MAX_BATCH: usize = 256;
/// Statements in flight at once (each on its own pooled connection).
const IN_FLIGHT: usize = 4;

struct Arrival {
    request: NewResetRequest,
    reply: oneshot::Sender<Result<i64, StoreError>>,
}

/// The queue to the inserting task, started on first use in the caller's runtime (and again if
/// that runtime has ended since).
#[derive(Default)]
pub(crate) struct Arrivals {
    queue: Mutex<Option<mpsc::UnboundedSender<Arrival>>>,
}

impl Arrivals {
    /// Inserts `request` with whatever else arrives meanwhile; returns its id once committed.
    pub(crate) async fn insert(
        &self,
        pool: &Arc<Pool>,
        request: &NewResetRequest,
    ) -> Result<i64, StoreError> {
        let (reply, answer) = oneshot::channel();
        let mut arrival = Arrival {
            request: request.clone(),
            reply,
        };
        // Twice at most: the second time after starting a task in place of one whose runtime
        // has ended.
        for _ in 0..2 {
            let queue = self.queue(pool, false);
            match queue.send(arrival) {
                Ok(()) => {
                    return answer.await.unwrap_or_else(|_| {
                        Err(StoreError::Unavailable(
                            "the request's insert was interrupted".into(),
                        ))
                    })
                }
                Err(mpsc::error::SendError(back)) => {
                    arrival = back;
                    self.queue(pool, true);
                }
            }
        }
        Err(StoreError::Unavailable(
            "the reset request queue is not running".into(),
        ))
    }

    fn queue(&self, pool: &Arc<Pool>, restart: bool) -> mpsc::UnboundedSender<Arrival> {
        let mut queue = self.queue.lock().unwrap_or_else(|p| p.into_inner());
        if restart {
            *queue = None;
        }
        queue
            .get_or_insert_with(|| {
                let (tx, rx) = mpsc::unbounded_channel();
                tokio::spawn(run(Arc::clone(pool), rx));
                tx
            })
            .clone()
    }
}

/// Takes every waiting arrival (up to [`MAX_BATCH`]) and inserts them together, up to
/// [`IN_FLIGHT`] batches at once. Ends when the store is dropped.
async fn run(pool: Arc<Pool>, mut arrivals: mpsc::UnboundedReceiver<Arrival>) {
    let slots = Arc::new(Semaphore::new(IN_FLIGHT));
    while let Some(first) = arrivals.recv().await {
        let Ok(slot) = Arc::clone(&slots).acquire_owned().await else {
            return;
        };
        let mut batch = Vec::with_capacity(16);
        batch.push(first);
        while batch.len() < MAX_BATCH {
            match arrivals.try_recv() {
                Ok(a) => batch.push(a),
                Err(_) => break,
            }
        }
        let pool = Arc::clone(&pool);
        tokio::spawn(async move {
            let _slot = slot;
            match insert_batch(&pool, &batch).await {
                Ok(ids) => {
                    for (a, id) in batch.into_iter().zip(ids) {
                        let _ = a.reply.send(Ok(id));
                    }
                }
                Err(e) => {
                    for a in batch {
                        let _ = a.reply.send(Err(e.clone()));
                    }
                }
            }
        });
    }
}

/// One statement for the whole batch; the ids in the batch's order.
async fn insert_batch(pool: &Arc<Pool>, batch: &[Arrival]) -> Result<Vec<i64>, StoreError> {
    let mut tenants = Vec::with_capacity(batch.len());
    let mut lookups = Vec::with_capacity(batch.len());
    let mut clients = Vec::with_capacity(batch.len());
    let mut locales = Vec::with_capacity(batch.len());
    let mut ips = Vec::with_capacity(batch.len());
    let mut created = Vec::with_capacity(batch.len());
    for a in batch {
        let r = &a.request;
        tenants.push(r.tenant.as_str());
        lookups.push(to_json(&r.lookup)?);
        clients.push(r.client.as_ref().map(ClientName::as_str));
        locales.push(r.locale.as_ref().map(|l| l.as_str()));
        ips.push(r.ip.as_deref());
        created.push(r.created_at.0);
    }
    let rows = pool
        .get()
        .await?
        .db()
        .all(
            "INSERT INTO reset_request (tenant, lookup, client, locale, ip, created_at) \
             SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], \
             $6::bigint[]) RETURNING id",
            &[&tenants, &lookups, &clients, &locales, &ips, &created],
        )
        .await?;
    let mut ids = rows
        .iter()
        .map(|r| get::<i64>(r, 0))
        .collect::<Result<Vec<_>, _>>()?;
    if ids.len() != batch.len() {
        return Err(StoreError::Backend(format!(
            "{} reset requests inserted, {} expected",
            ids.len(),
            batch.len()
        )));
    }
    // The identity column numbers the rows in the order unnest yields them, the batch's order.
    ids.sort_unstable();
    Ok(ids)
}
