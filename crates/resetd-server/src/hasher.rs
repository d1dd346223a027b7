//! Argon2id on a fixed set of hashing threads. `workers` threads each own their Argon2 working
//! memory (reused for every hash, so memory stays at workers × m_cost however many requests come),
//! and at most `queue` jobs wait; past that the caller gets `Overloaded` at once (503 +
//! Retry-After) instead of a growing queue. The password policy's zxcvbn check (milliseconds of
//! CPU, reachable anonymously through `password/check`) runs on the same threads and queue, so
//! all of a request's password work is bounded together and none of it stalls the async runtime.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender, TrySendError};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use resetd_core::hash::{Argon2id, HashError, PasswordHasher, Scratch, Verified};
use resetd_core::policy::{PasswordPolicy, PersonalContext, Verdict};
use resetd_core::types::Password;
use tokio::sync::oneshot;
use tracing::Instrument;

type Job = Box<dyn FnOnce(&Argon2id, &mut Scratch) + Send>;

/// The server's [`PasswordHasher`].
pub struct PooledHasher {
    jobs: SyncSender<Job>,
    /// Jobs refused because the queue was full (each a 503 to some caller).
    shed: AtomicU64,
}

impl PooledHasher {
    /// A pool running `workers` hashes at once with `queue` more waiting; an error when the OS
    /// refuses a thread.
    pub fn try_new(argon: Argon2id, workers: usize, queue: usize) -> std::io::Result<Self> {
        let (jobs, inbox) = sync_channel::<Job>(queue);
        let inbox = Arc::new(Mutex::new(inbox));
        let argon = Arc::new(argon);
        for i in 0..workers.max(1) {
            let (inbox, argon) = (inbox.clone(), argon.clone());
            std::thread::Builder::new()
                .name(format!("resetd-argon2-{i}"))
                .spawn(move || work(&inbox, &argon))?;
        }
        Ok(Self {
            jobs,
            shed: AtomicU64::new(0),
        })
    }

    /// [`PooledHasher::try_new`] for tests and tools, which have no use for the error.
    #[allow(
        clippy::expect_used,
        reason = "tests and tools; the binary starts its pool with try_new"
    )]
    pub fn new(argon: Argon2id, workers: usize, queue: usize) -> Self {
        Self::try_new(argon, workers, queue).expect("spawning a hashing thread")
    }

    /// How many jobs the full queue refused since start, as metric lines.
    pub fn render_metrics(&self) -> String {
        format!(
            "# HELP resetd_hash_overloaded_total Requests answered 503 because password hashing was saturated.\n\
             # TYPE resetd_hash_overloaded_total counter\nresetd_hash_overloaded_total {}\n",
            self.shed.load(Ordering::Relaxed)
        )
    }

    /// Runs `job` on a hashing thread, as the span `hash` (with `op`: what it computes) when
    /// traces are on.
    async fn run<T: Send + 'static>(
        &self,
        op: &'static str,
        job: impl FnOnce(&Argon2id, &mut Scratch) -> T + Send + 'static,
    ) -> Result<T, HashError> {
        self.queue(job)
            .instrument(tracing::debug_span!("hash", hash.op = op))
            .await
    }

    async fn queue<T: Send + 'static>(
        &self,
        job: impl FnOnce(&Argon2id, &mut Scratch) -> T + Send + 'static,
    ) -> Result<T, HashError> {
        let (tx, rx) = oneshot::channel();
        let job: Job = Box::new(move |argon, scratch| {
            let _ = tx.send(job(argon, scratch));
        });
        match self.jobs.try_send(job) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) => {
                self.shed.fetch_add(1, Ordering::Relaxed);
                return Err(HashError::Overloaded);
            }
            Err(TrySendError::Disconnected(_)) => {
                return Err(HashError::Argon2("the hashing threads are gone".into()));
            }
        }
        rx.await
            .map_err(|_| HashError::Argon2("a hashing job was dropped".into()))
    }
}

/// One hashing thread: takes jobs until the pool is dropped.
fn work(inbox: &Mutex<Receiver<Job>>, argon: &Argon2id) {
    let mut scratch = Scratch::default();
    loop {
        let job = match inbox.lock() {
            Ok(rx) => rx.recv(),
            Err(_) => return,
        };
        match job {
            Ok(job) => job(argon, &mut scratch),
            Err(_) => return,
        }
    }
}

#[async_trait]
impl PasswordHasher for PooledHasher {
    async fn hash(&self, password: &Password) -> Result<String, HashError> {
        let pw = password.clone();
        self.run("hash", move |a, s| a.hash_with(&pw, s)).await?
    }

    async fn verify(&self, password: &Password, phc: &str) -> Result<Verified, HashError> {
        let (pw, phc) = (password.clone(), phc.to_owned());
        self.run("verify", move |a, s| a.verify_with(&pw, &phc, s))
            .await
    }

    async fn verify_dummy(&self, password: &Password) -> Result<(), HashError> {
        let pw = password.clone();
        self.run("verify_dummy", move |a, s| a.verify_dummy_with(&pw, s))
            .await
    }

    async fn check_policy(
        &self,
        policy: &PasswordPolicy,
        password: &Password,
        words: &[&str],
    ) -> Result<Verdict, HashError> {
        let (policy, pw) = (policy.clone(), password.clone());
        let words: Vec<String> = words.iter().map(|w| (*w).to_owned()).collect();
        self.run("policy", move |_, _| {
            let words = words.iter().map(String::as_str).collect();
            policy.check(&pw, &PersonalContext { words })
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use resetd_core::hash::HashParams;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_full_queue_sheds_load_instead_of_waiting() {
        let argon = Argon2id::new(HashParams {
            m_cost: 65536,
            t_cost: 8,
            p_cost: 1,
        })
        .unwrap();
        let pool = Arc::new(PooledHasher::new(argon, 1, 2));
        let pw = Password::parse("some password").unwrap();
        let mut tasks = Vec::new();
        for _ in 0..20 {
            let (pool, pw) = (pool.clone(), pw.clone());
            tasks.push(tokio::spawn(async move { pool.hash(&pw).await }));
        }
        let mut ok = 0;
        let mut shed = 0;
        for t in tasks {
            match t.await.unwrap() {
                Ok(_) => ok += 1,
                Err(HashError::Overloaded) => shed += 1,
                Err(e) => panic!("{e}"),
            }
        }
        // One running and two queued at most (two when the worker had not yet taken the first);
        // a hash takes far longer than submitting all twenty, so the rest are refused at once.
        assert!(
            (2..=3).contains(&ok),
            "the running one and the queued ones finish: {ok}"
        );
        assert_eq!(ok + shed, 20);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn policy_checks_share_the_pool_and_are_shed_when_it_is_full() {
        let argon = Argon2id::new(HashParams {
            m_cost: 65536,
            t_cost: 8,
            p_cost: 1,
        })
        .unwrap();
        let pool = Arc::new(PooledHasher::new(argon, 1, 1));
        let pw = Password::parse("some password").unwrap();
        let policy = PasswordPolicy::default();
        // Idle: the same verdict as on the calling thread.
        assert_eq!(
            pool.check_policy(&policy, &pw, &["some"]).await.unwrap(),
            policy.check(
                &pw,
                &PersonalContext {
                    words: vec!["some"]
                }
            )
        );
        // One hash running and one waiting (each takes far longer than the pauses here): the
        // check is refused at once instead of queueing behind them.
        let mut busy = Vec::new();
        for _ in 0..2 {
            let (pool, pw) = (pool.clone(), pw.clone());
            busy.push(tokio::spawn(async move { pool.hash(&pw).await }));
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        assert_eq!(
            pool.check_policy(&policy, &pw, &[]).await,
            Err(HashError::Overloaded)
        );
        for t in busy {
            t.await.unwrap().unwrap();
        }
    }
}
