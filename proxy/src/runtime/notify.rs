//! A single-threaded notification primitive for tasks of one worker.
//!
//! `LocalNotify` wakes every task waiting on it; a waiter registered before a
//! `notify_all` can never miss it (generation counter). Waiters remove
//! themselves when dropped, so a `select!` that loses does not leak wakers.

use std::cell::{Cell, RefCell};
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};

use slab::Slab;

#[derive(Default)]
pub struct LocalNotify {
    generation: Cell<u64>,
    waiters: RefCell<Slab<Waker>>,
}

impl LocalNotify {
    pub fn new() -> Self {
        Self::default()
    }

    /// Wake every current waiter.
    pub fn notify_all(&self) {
        self.generation.set(self.generation.get() + 1);
        let wakers: Vec<Waker> = self.waiters.borrow_mut().drain().collect();
        for w in wakers {
            w.wake();
        }
    }

    /// A future that completes at the next `notify_all`.
    pub fn notified(&self) -> Notified<'_> {
        Notified {
            notify: self,
            generation: self.generation.get(),
            key: None,
        }
    }
}

pub struct Notified<'a> {
    notify: &'a LocalNotify,
    generation: u64,
    key: Option<usize>,
}

impl Future for Notified<'_> {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.notify.generation.get() != self.generation {
            self.key = None;
            return Poll::Ready(());
        }
        // Our slot can only have gone with a notify_all, which the
        // generation check above already turned into Ready.
        let mut waiters = self.notify.waiters.borrow_mut();
        match self.key.and_then(|key| waiters.get_mut(key)) {
            Some(w) => w.clone_from(cx.waker()),
            None => {
                let key = waiters.insert(cx.waker().clone());
                drop(waiters);
                self.key = Some(key);
            }
        }
        Poll::Pending
    }
}

impl Drop for Notified<'_> {
    fn drop(&mut self) {
        if let Some(key) = self.key {
            if self.notify.generation.get() == self.generation {
                let mut waiters = self.notify.waiters.borrow_mut();
                if waiters.contains(key) {
                    waiters.remove(key);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::rc::Rc;

    #[test]
    fn waiters_wake_and_clean_up() {
        let mut rt = monoio::RuntimeBuilder::<monoio::LegacyDriver>::new()
            .enable_timer()
            .build()
            .expect("runtime");
        rt.block_on(async {
            let n = Rc::new(LocalNotify::new());
            let n2 = n.clone();
            let waiter = monoio::spawn(async move { n2.notified().await });
            monoio::time::sleep(std::time::Duration::from_millis(5)).await;
            assert_eq!(n.waiters.borrow().len(), 1);
            n.notify_all();
            waiter.await;
            // A waiter dropped before notification leaves nothing behind.
            {
                let fut = n.notified();
                let mut fut = std::pin::pin!(fut);
                let waker = futures_waker();
                let mut cx = Context::from_waker(&waker);
                assert!(fut.as_mut().poll(&mut cx).is_pending());
                assert_eq!(n.waiters.borrow().len(), 1);
            }
            assert_eq!(n.waiters.borrow().len(), 0);
        });
    }

    fn futures_waker() -> Waker {
        Waker::noop().clone()
    }
}
