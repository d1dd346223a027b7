//! Argon2id on a bounded blocking pool. At most `workers` hashes run at once and at most `queue`
//! more wait; past that the caller gets `Overloaded` at once (503 + Retry-After) instead of a
//! growing queue, so a flood of resets costs bounded memory.

use std::sync::Arc;

use async_trait::async_trait;
use resetd_core::hash::{Argon2id, HashError, PasswordHasher, Verified};
use resetd_core::types::Password;
use tokio::sync::Semaphore;

/// The server's [`PasswordHasher`].
pub struct PooledHasher {
    argon: Arc<Argon2id>,
    admission: Arc<Semaphore>,
    running: Arc<Semaphore>,
}

impl PooledHasher {
    /// A pool running `workers` hashes at once with `queue` more waiting.
    pub fn new(argon: Argon2id, workers: usize, queue: usize) -> Self {
        let workers = workers.max(1);
        Self {
            argon: Arc::new(argon),
            admission: Arc::new(Semaphore::new(workers + queue)),
            running: Arc::new(Semaphore::new(workers)),
        }
    }

    async fn run<T: Send + 'static>(
        &self,
        job: impl FnOnce(&Argon2id) -> T + Send + 'static,
    ) -> Result<T, HashError> {
        let _admitted = self
            .admission
            .clone()
            .try_acquire_owned()
            .map_err(|_| HashError::Overloaded)?;
        let _running = self
            .running
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| HashError::Overloaded)?;
        let argon = self.argon.clone();
        tokio::task::spawn_blocking(move || job(&argon))
            .await
            .map_err(|e| HashError::Argon2(format!("hashing task failed: {e}")))
    }
}

#[async_trait]
impl PasswordHasher for PooledHasher {
    async fn hash(&self, password: &Password) -> Result<String, HashError> {
        let pw = password.clone();
        self.run(move |a| a.hash(&pw)).await?
    }

    async fn verify(&self, password: &Password, phc: &str) -> Result<Verified, HashError> {
        let (pw, phc) = (password.clone(), phc.to_owned());
        self.run(move |a| a.verify(&pw, &phc)).await
    }

    async fn verify_dummy(&self, password: &Password) -> Result<(), HashError> {
        let pw = password.clone();
        self.run(move |a| a.verify_dummy(&pw)).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use resetd_core::hash::HashParams;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_full_queue_sheds_load_instead_of_waiting() {
        let argon = Argon2id::new(HashParams {
            m_cost: 8192,
            t_cost: 3,
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
        assert!(ok >= 3, "the running one and the queued ones finish: {ok}");
        assert!(shed >= 10, "the rest are refused at once: {shed}");
        assert_eq!(ok + shed, 20);
    }
}
