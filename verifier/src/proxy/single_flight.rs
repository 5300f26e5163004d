//! One piece of work for every request that wants it at the same time (single flight):
//! a tarball fetched and verified once however many downloads ask for it, an index file
//! asked of upstream once however many clients ask for it.

use std::collections::HashMap;
use std::future::Future;
use std::hash::Hash;
use std::sync::{Arc, Mutex};

use tokio::sync::OnceCell;

/// The flights in progress, by key.
pub(super) struct SingleFlights<K, V> {
    flights: Mutex<HashMap<K, Arc<OnceCell<V>>>>,
}

impl<K, V> Default for SingleFlights<K, V> {
    fn default() -> Self {
        Self {
            flights: Mutex::new(HashMap::new()),
        }
    }
}

impl<K: Eq + Hash + Clone, V: Clone> SingleFlights<K, V> {
    /// The result of `work` for `key`: run here if no flight for `key` is in progress,
    /// else the result of the one in progress. The flight is forgotten once it lands, so
    /// a later request runs the work again. Also says whether this request joined a
    /// flight another one started.
    pub(super) async fn run<F, Fut>(&self, key: K, work: F) -> (V, bool)
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = V>,
    {
        let (flight, joined) = {
            let mut flights = self.flights.lock().unwrap_or_else(|e| e.into_inner());
            match flights.get(&key) {
                Some(flight) => (Arc::clone(flight), true),
                None => {
                    let flight = Arc::new(OnceCell::new());
                    flights.insert(key.clone(), Arc::clone(&flight));
                    (flight, false)
                }
            }
        };
        let result = flight.get_or_init(work).await.clone();
        let mut flights = self.flights.lock().unwrap_or_else(|e| e.into_inner());
        if flights
            .get(&key)
            .is_some_and(|current| Arc::ptr_eq(current, &flight))
        {
            flights.remove(&key);
        }
        (result, joined)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[tokio::test]
    async fn requests_at_the_same_time_share_one_run_and_later_ones_run_again() {
        let flights = Arc::new(SingleFlights::<&str, usize>::default());
        let runs = Arc::new(AtomicUsize::new(0));
        let (release, wait) = tokio::sync::watch::channel(false);
        let start = |flights: Arc<SingleFlights<&'static str, usize>>| {
            let (runs, mut wait) = (Arc::clone(&runs), wait.clone());
            tokio::spawn(async move {
                flights
                    .run("a", || async move {
                        let _ = wait.wait_for(|go| *go).await;
                        runs.fetch_add(1, Ordering::SeqCst) + 1
                    })
                    .await
            })
        };
        let first = start(Arc::clone(&flights));
        tokio::task::yield_now().await;
        let second = start(Arc::clone(&flights));
        tokio::task::yield_now().await;
        release.send(true).unwrap();
        assert_eq!(first.await.unwrap(), (1, false));
        assert_eq!(second.await.unwrap(), (1, true));
        // Landed: a new request runs the work again, and another key never waited.
        assert_eq!(start(Arc::clone(&flights)).await.unwrap(), (2, false));
        let other = flights.run("b", || async { 7 }).await;
        assert_eq!(other, (7, false));
        assert!(flights.flights.lock().unwrap().is_empty());
    }
}
