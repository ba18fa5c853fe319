//! Single flight: callers that miss the same entry at the same time share
//! one call to the key service.
//!
//! A [`SingleFlight`] keeps a store (the decrypt cache, or the reusable
//! keys) and, under the same lock, the calls in flight that will fill it.
//! A caller that finds nothing in the store joins the call in flight for
//! its key or, when there is none, leads one: it makes the call and hands
//! the result to everyone who joined. The rules:
//!
//! - Every waiter gets the leader's result, success or error.
//! - An error is handed out, never stored: the next caller calls again.
//! - A leader whose future is dropped before its call returns takes the
//!   call off the table; its waiters wake, look again, and one of them
//!   leads a new call. Nobody waits on a call that can no longer finish.
//! - A call forgotten by [`SingleFlight::clear`] still answers its waiters,
//!   but what it returns is not stored.

use std::collections::HashMap;
use std::future::Future;
use std::hash::Hash;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};

use tokio::sync::watch;

use crate::Error;

/// What calls in flight are told apart by (a blob, a key context), looked
/// up borrowed and stored owned.
pub(super) trait FlightKey: Hash + Eq + ToOwned<Owned: Hash + Eq> {}

impl<Q: ?Sized + Hash + Eq + ToOwned<Owned: Hash + Eq>> FlightKey for Q {}

/// A store of type `S`, filled by calls for keys of type `Q` whose results
/// (of type `T`) every waiting caller shares.
pub(super) struct SingleFlight<S, Q: ?Sized + FlightKey, T> {
    state: Mutex<State<S, Q, T>>,
    counters: FlightCounters,
}

struct State<S, Q: ?Sized + FlightKey, T> {
    store: S,
    calls: HashMap<Q::Owned, Call<T>>,
    /// The id of the last call started; ids are never reused, so a leader
    /// only ever ends its own call.
    last_id: u64,
}

/// A call's result as its waiters see it: `None` while it runs.
type Outcome<T> = Option<Result<T, Error>>;

struct Call<T> {
    id: u64,
    outcome: watch::Receiver<Outcome<T>>,
}

/// How the callers of one [`SingleFlight`] were answered.
#[derive(Debug, Default)]
pub(super) struct FlightCounters {
    /// From the store.
    pub(super) ready: AtomicU64,
    /// With another caller's call.
    pub(super) joined: AtomicU64,
    /// By making the call.
    pub(super) led: AtomicU64,
}

/// Adds one to a counter read only for statistics.
pub(super) fn bump(counter: &AtomicU64) {
    counter.fetch_add(1, Ordering::Relaxed);
}

/// What a caller found under the lock.
enum Found<'a, R, S, Q: ?Sized + FlightKey, T> {
    Ready(R),
    Joined(watch::Receiver<Outcome<T>>),
    Leading(Leader<'a, S, Q, T>),
}

impl<S, Q: ?Sized + FlightKey, T: Clone> SingleFlight<S, Q, T> {
    pub(super) fn new(store: S) -> Self {
        SingleFlight {
            state: Mutex::new(State {
                store,
                calls: HashMap::new(),
                last_id: 0,
            }),
            counters: FlightCounters::default(),
        }
    }

    pub(super) fn counters(&self) -> &FlightCounters {
        &self.counters
    }

    /// Runs `f` on the store, under the lock.
    pub(super) fn with_store<R>(&self, f: impl FnOnce(&mut S) -> R) -> R {
        f(&mut lock(&self.state).store)
    }

    /// Empties the store with `empty` and forgets every call in flight:
    /// they still answer their waiters, but their results are not stored.
    pub(super) fn clear(&self, empty: impl FnOnce(&mut S)) {
        let mut state = lock(&self.state);
        empty(&mut state.store);
        state.calls.clear();
    }

    /// Answers a caller of `key`.
    ///
    /// 1. `ready` looks in the store (under the lock); an answer there is
    ///    returned.
    /// 2. Else, with a call in flight for `key`, the caller waits for it:
    ///    an error is returned; a value goes through `joined`, which
    ///    answers with it or says (`None`) to look in the store again.
    /// 3. Else the caller leads: `lead` makes the call and ends it with
    ///    [`Leader::finish`].
    ///
    /// A waiter whose leader was dropped looks again from step 1.
    pub(super) async fn get<'a, R, F>(
        &'a self,
        key: &'a Q,
        mut ready: impl FnMut(&mut S) -> Option<R>,
        mut joined: impl FnMut(T) -> Option<R>,
        lead: impl FnOnce(Leader<'a, S, Q, T>) -> F,
    ) -> Result<R, Error>
    where
        F: Future<Output = Result<R, Error>>,
    {
        loop {
            let mut outcome = match self.find(key, &mut ready) {
                Found::Ready(answer) => {
                    bump(&self.counters.ready);
                    return Ok(answer);
                }
                Found::Leading(leader) => {
                    bump(&self.counters.led);
                    return lead(leader).await;
                }
                Found::Joined(outcome) => outcome,
            };
            bump(&self.counters.joined);
            match wait(&mut outcome).await {
                Some(Ok(value)) => {
                    if let Some(answer) = joined(value) {
                        return Ok(answer);
                    }
                }
                Some(Err(error)) => return Err(error),
                // The leader was dropped mid-call: look again.
                None => {}
            }
        }
    }

    /// Looks in the store, then at the calls in flight, and starts a call
    /// if there is none: all under one lock, so a caller either sees what
    /// a finished call stored or joins the call that will store it.
    fn find<'a, R>(
        &'a self,
        key: &'a Q,
        ready: impl FnOnce(&mut S) -> Option<R>,
    ) -> Found<'a, R, S, Q, T> {
        let mut state = lock(&self.state);
        if let Some(answer) = ready(&mut state.store) {
            return Found::Ready(answer);
        }
        if let Some(call) = state.calls.get(key) {
            // A call whose leader is gone cannot finish: replace it.
            if call.outcome.has_changed().is_ok() {
                return Found::Joined(call.outcome.clone());
            }
        }
        state.last_id += 1;
        let id = state.last_id;
        let (sender, outcome) = watch::channel(None);
        state.calls.insert(key.to_owned(), Call { id, outcome });
        Found::Leading(Leader {
            flight: self,
            key,
            id,
            sender: Some(sender),
        })
    }
}

impl<S, Q: ?Sized + FlightKey, T> State<S, Q, T> {
    /// Takes call `id` off the table if it is still the call for `key`;
    /// says whether it was.
    fn end_call(&mut self, key: &Q, id: u64) -> bool {
        let current = self.calls.get(key).is_some_and(|call| call.id == id);
        if current {
            self.calls.remove(key);
        }
        current
    }
}

/// The caller that makes the call for a key, for itself and its waiters.
///
/// Dropped before [`Leader::finish`] (its caller's future was dropped
/// mid-call), it takes the call off the table and then closes the channel,
/// so its waiters wake to find no call and one of them leads the next.
pub(super) struct Leader<'a, S, Q: ?Sized + FlightKey, T> {
    flight: &'a SingleFlight<S, Q, T>,
    key: &'a Q,
    id: u64,
    /// `None` once finished.
    sender: Option<watch::Sender<Outcome<T>>>,
}

impl<S, Q: ?Sized + FlightKey, T: Clone> Leader<'_, S, Q, T> {
    /// Ends the call with `result`. On success, and if the call is still
    /// the one for its key (no `clear` since it started), `keep` stores the
    /// value under the lock. Then every waiter gets `result`.
    pub(super) fn finish(
        mut self,
        result: Result<T, Error>,
        keep: impl FnOnce(&mut S, &T),
    ) -> Result<T, Error> {
        {
            let mut state = lock(&self.flight.state);
            if state.end_call(self.key, self.id) {
                if let Ok(value) = &result {
                    keep(&mut state.store, value);
                }
            }
        }
        if let Some(sender) = self.sender.take() {
            sender.send_replace(Some(result.clone()));
        }
        result
    }
}

impl<S, Q: ?Sized + FlightKey, T> Drop for Leader<'_, S, Q, T> {
    fn drop(&mut self) {
        if let Some(sender) = self.sender.take() {
            lock(&self.flight.state).end_call(self.key, self.id);
            // Waiters wake only now, when no call is left to join.
            drop(sender);
        }
    }
}

/// Waits for a call's result; `None` if its leader was dropped first.
async fn wait<T: Clone>(outcome: &mut watch::Receiver<Outcome<T>>) -> Outcome<T> {
    match outcome.wait_for(Option::is_some).await {
        Ok(value) => value.clone(),
        Err(_) => None,
    }
}

/// Locks a store whether or not a caller panicked while holding it.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}
