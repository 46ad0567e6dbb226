//! Something opened at most once, on its first use, by whoever gets there
//! first: a queue's logs or a partition's after a clean restart. Two first
//! uses open it once; sealing it (at close or deletion) keeps it from
//! opening after. Knows nothing of what is opened or how.

use std::sync::OnceLock;

/// A `T` that is open, or the opener `O` that opens it on first use.
pub struct OpenOnce<T, O> {
    opened: OnceLock<T>,
    /// Taken by whoever opens it, so two first uses open it once; taken
    /// by sealing, so nothing opens it after.
    opening: parking_lot::Mutex<Option<O>>,
}

impl<T, O> OpenOnce<T, O> {
    /// Already open.
    pub fn open(value: T) -> OpenOnce<T, O> {
        OpenOnce {
            opened: OnceLock::from(value),
            opening: parking_lot::Mutex::new(None),
        }
    }

    /// To be opened by `opener` on first use (never, with `None`).
    pub fn later(opener: Option<O>) -> OpenOnce<T, O> {
        OpenOnce {
            opened: OnceLock::new(),
            opening: parking_lot::Mutex::new(opener),
        }
    }

    /// The value if it is open; never opens it.
    pub fn opened(&self) -> Option<&T> {
        self.opened.get()
    }

    /// The value, opened now with `open` (under the opening lock, so once)
    /// if this is its first use: with `true` when this call opened it.
    /// `Ok(None)` once sealed; a failed open leaves the opener for the next
    /// use to try again.
    pub fn get<E>(&self, open: impl FnOnce(&O) -> Result<T, E>) -> Result<Option<(&T, bool)>, E> {
        if let Some(value) = self.opened.get() {
            return Ok(Some((value, false)));
        }
        let mut opening = self.opening.lock();
        if let Some(value) = self.opened.get() {
            return Ok(Some((value, false)));
        }
        let Some(opener) = opening.as_ref() else {
            return Ok(None);
        };
        let value = open(opener)?;
        let value = self.opened.get_or_init(|| value);
        *opening = None;
        Ok(Some((value, true)))
    }

    /// Keeps it from opening from now on (an open in progress finishes
    /// first); the value if it is open, for the caller to close.
    pub fn seal(&self) -> Option<&T> {
        let mut opening = self.opening.lock();
        *opening = None;
        self.opened.get()
    }
}

impl<T, O> std::fmt::Debug for OpenOnce<T, O> {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("OpenOnce")
            .field("opened", &self.opened.get().is_some())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    #[test]
    fn two_first_uses_open_once_a_failed_open_is_tried_again_and_a_sealed_one_never_opens() {
        let opens = AtomicUsize::new(0);
        let once: OpenOnce<u32, u32> = OpenOnce::later(Some(7));
        assert_eq!(once.get(|_| Err::<u32, &str>("disk")), Err("disk"));
        assert!(once.opened().is_none(), "a failed open leaves it unopened");
        std::thread::scope(|scope| {
            for _ in 0..2 {
                scope.spawn(|| {
                    let (value, _) = once
                        .get(|opener| {
                            opens.fetch_add(1, Ordering::SeqCst);
                            Ok::<u32, ()>(*opener * 6)
                        })
                        .expect("opens")
                        .expect("not sealed");
                    assert_eq!(*value, 42);
                });
            }
        });
        assert_eq!(opens.load(Ordering::SeqCst), 1, "opened once");
        assert_eq!(once.get(|_| Err::<u32, ()>(())), Ok(Some((&42, false))));
        assert_eq!(once.seal(), Some(&42));

        let sealed: OpenOnce<u32, u32> = OpenOnce::later(Some(1));
        assert_eq!(sealed.seal(), None);
        assert_eq!(sealed.get(|_| -> Result<u32, ()> { unreachable!("sealed") }), Ok(None));
    }
}
