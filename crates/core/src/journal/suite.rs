//! The test suite every user of [`Journaled`] passes: reopen with and
//! without a snapshot, a snapshot ahead of its journal, a torn tail,
//! truncation of the prefix a snapshot covers, bounded replay, refusal of
//! what cannot be read back, and no snapshot after a failed append. A user
//! implements [`Fixture`] for its state machine and invokes
//! [`journaled_suite!`] in its test module.

use std::fmt::Debug;
use std::path::Path;
use std::sync::Arc;

use conveyor_log::Durability;
use conveyor_log::clock::{Clock, ManualClock};

use super::{JournalConfig, JournalError, Journaled, StateMachine};

/// A state machine the suite can drive.
pub(crate) trait Fixture: StateMachine + Clone + PartialEq + Debug {
    /// `count` events that are valid in this order and each change the
    /// state, so a lost or doubled one shows.
    fn events(count: usize) -> Vec<Self::Event>;
}

fn config(snapshot_every_events: u64) -> JournalConfig {
    JournalConfig {
        durability: Durability::Always,
        // Small, so a few events fill several segments.
        segment_bytes: 512,
        snapshot_every_events,
        reserve_bytes: 0,
    }
}

fn clock() -> Arc<dyn Clock> {
    ManualClock::new(1)
}

fn open<M: Fixture>(dir: &Path) -> (Journaled<M>, M, u64) {
    let (journal, replayed) = Journaled::<M>::open(dir, config(1_000), clock()).expect("open the journal");
    (journal, replayed.state, replayed.events)
}

fn fold<M: Fixture>(events: &[M::Event]) -> M {
    let mut state = M::default();
    events.iter().for_each(|event| state.apply(event));
    state
}

/// Appends each event as its own batch and waits until it is durable.
fn append_each<M: Fixture>(journal: &Journaled<M>, events: &[M::Event]) {
    for event in events {
        journal
            .append(std::slice::from_ref(event))
            .expect("enqueue")
            .wait()
            .expect("durable");
    }
}

fn segment_files(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut files: Vec<_> = std::fs::read_dir(dir.join("log"))
        .expect("read the log dir")
        .flatten()
        .map(|entry| entry.path())
        .filter(|path| path.extension().is_some_and(|extension| extension == "log"))
        .collect();
    files.sort();
    files
}

pub(crate) fn reopen_without_a_snapshot_replays_every_event<M: Fixture>() {
    let dir = tempfile::tempdir().expect("tempdir");
    let events = M::events(6);
    {
        let (journal, state, _) = open::<M>(dir.path());
        assert_eq!(state, M::default());
        append_each(&journal, &events);
        // Dropped without a snapshot.
    }
    let (journal, state, replayed) = open::<M>(dir.path());
    assert_eq!(state, fold::<M>(&events));
    assert_eq!(replayed, 6);
    assert_eq!(journal.end(), 6);
}

pub(crate) fn reopen_with_a_snapshot_replays_only_the_events_after_it<M: Fixture>() {
    let dir = tempfile::tempdir().expect("tempdir");
    let events = M::events(8);
    {
        let (journal, _, _) = open::<M>(dir.path());
        append_each(&journal, &events[..5]);
        journal
            .write_snapshot(&fold::<M>(&events[..5]).snapshot(), journal.end())
            .expect("snapshot");
        append_each(&journal, &events[5..]);
    }
    let (journal, state, replayed) = open::<M>(dir.path());
    assert_eq!(state, fold::<M>(&events));
    assert_eq!(replayed, 3, "only the events after the snapshot are replayed");
    assert_eq!(journal.log().start_offset(), 5, "the prefix the snapshot covers is dropped");
}

pub(crate) fn a_snapshot_drops_the_segments_it_covers<M: Fixture>() {
    let dir = tempfile::tempdir().expect("tempdir");
    let events = M::events(40);
    let (journal, _, _) = open::<M>(dir.path());
    append_each(&journal, &events);
    let before = segment_files(dir.path()).len();
    assert!(before > 2, "the events fill several segments ({before})");
    journal
        .write_snapshot(&fold::<M>(&events).snapshot(), journal.end())
        .expect("snapshot");
    assert_eq!(segment_files(dir.path()).len(), 1, "only the active segment is left");
    drop(journal);
    let (_, state, replayed) = open::<M>(dir.path());
    assert_eq!((state, replayed), (fold::<M>(&events), 0));
}

pub(crate) fn a_snapshot_ahead_of_its_journal_is_moved_back_so_later_events_count<M: Fixture>() {
    let dir = tempfile::tempdir().expect("tempdir");
    let events = M::events(7);
    {
        let (journal, _, _) = open::<M>(dir.path());
        append_each(&journal, &events[..5]);
        journal
            .write_snapshot(&fold::<M>(&events[..5]).snapshot(), journal.end())
            .expect("snapshot");
    }
    // The journal loses everything (as its tail can under `never`): the
    // snapshot now covers offsets the journal no longer has.
    std::fs::remove_dir_all(dir.path().join("log")).expect("remove the journal");
    {
        let (journal, state, _) = open::<M>(dir.path());
        assert_eq!(state, fold::<M>(&events[..5]), "the snapshot's state is kept");
        assert_eq!(journal.end(), 0);
        append_each(&journal, &events[5..]);
    }
    let (_, state, replayed) = open::<M>(dir.path());
    assert_eq!(
        state,
        fold::<M>(&events),
        "events after the repair are not mistaken for covered ones"
    );
    assert_eq!(replayed, 2);
}

pub(crate) fn a_torn_tail_loses_only_the_torn_event<M: Fixture>() {
    let dir = tempfile::tempdir().expect("tempdir");
    let events = M::events(4);
    {
        let (journal, _, _) = open::<M>(dir.path());
        append_each(&journal, &events[..3]);
    }
    // The last batch was half written when the power went.
    let last = segment_files(dir.path()).pop().expect("a segment");
    let length = std::fs::metadata(&last).expect("metadata").len();
    let file = std::fs::OpenOptions::new().write(true).open(&last).expect("open segment");
    file.set_len(length - 3).expect("tear the tail");
    drop(file);
    {
        let (journal, state, _) = open::<M>(dir.path());
        assert_eq!(state, fold::<M>(&events[..2]));
        assert_eq!(journal.end(), 2);
        append_each(&journal, &events[3..]);
    }
    let (_, state, _) = open::<M>(dir.path());
    let mut expected = fold::<M>(&events[..2]);
    expected.apply(&events[3]);
    assert_eq!(state, expected);
}

pub(crate) fn replay_is_bounded_by_the_snapshot_cadence<M: Fixture>() {
    let dir = tempfile::tempdir().expect("tempdir");
    let events = M::events(30);
    {
        let (journal, _) = Journaled::<M>::open(dir.path(), config(4), clock()).expect("open");
        for (index, event) in events.iter().enumerate() {
            append_each(&journal, std::slice::from_ref(event));
            if journal.claim_snapshot() {
                journal
                    .write_snapshot(&fold::<M>(&events[..=index]).snapshot(), journal.end())
                    .expect("snapshot");
            }
        }
    }
    let (journal, replayed) = Journaled::<M>::open(dir.path(), config(4), clock()).expect("reopen");
    assert_eq!(replayed.state, fold::<M>(&events));
    assert!(replayed.events < 4, "replayed {} events past the snapshot", replayed.events);
    assert!(journal.log().start_offset() >= 26, "the covered prefix is gone");
}

pub(crate) fn what_cannot_be_read_back_is_refused_not_forgotten<M: Fixture>() {
    let dir = tempfile::tempdir().expect("tempdir");
    let events = M::events(5);
    {
        let (journal, _, _) = open::<M>(dir.path());
        append_each(&journal, &events);
        journal
            .write_snapshot(&fold::<M>(&events).snapshot(), journal.end())
            .expect("snapshot");
    }
    let snapshot = dir.path().join("snapshot.json");
    let good = std::fs::read(&snapshot).expect("read snapshot");
    std::fs::write(&snapshot, b"{\"offset\": 5, \"trunc").expect("garble");
    assert!(matches!(
        Journaled::<M>::open(dir.path(), config(1_000), clock()),
        Err(JournalError::Corrupt { .. })
    ));
    // Without its snapshot, the journal's dropped prefix is gone for good.
    std::fs::remove_file(&snapshot).expect("remove snapshot");
    assert!(matches!(
        Journaled::<M>::open(dir.path(), config(1_000), clock()),
        Err(JournalError::Corrupt { .. })
    ));
    std::fs::write(&snapshot, good).expect("restore");
    let (_, state, _) = open::<M>(dir.path());
    assert_eq!(state, fold::<M>(&events));
}

pub(crate) fn no_snapshot_is_written_after_a_failed_append<M: Fixture>() {
    let dir = tempfile::tempdir().expect("tempdir");
    let events = M::events(3);
    {
        let (journal, _, _) = open::<M>(dir.path());
        append_each(&journal, &events[..1]);
        journal.log().close().expect("close the log");
        assert!(journal.append(&events[1..2]).is_err(), "a closed journal refuses appends");
        // The caller's state may now hold the refused event: it must not
        // reach a snapshot.
        assert!(matches!(
            journal.write_snapshot(&fold::<M>(&events[..2]).snapshot(), 2),
            Err(JournalError::Diverged { .. })
        ));
    }
    let (_, state, _) = open::<M>(dir.path());
    assert_eq!(state, fold::<M>(&events[..1]));
}

/// The suite's tests for one state machine, in a `journaled_suite` module.
macro_rules! journaled_suite {
    ($machine:ty) => {
        mod journaled_suite {
            use super::*;

            #[test]
            fn reopen_without_a_snapshot_replays_every_event() {
                $crate::journal::suite::reopen_without_a_snapshot_replays_every_event::<$machine>();
            }

            #[test]
            fn reopen_with_a_snapshot_replays_only_the_events_after_it() {
                $crate::journal::suite::reopen_with_a_snapshot_replays_only_the_events_after_it::<$machine>();
            }

            #[test]
            fn a_snapshot_drops_the_segments_it_covers() {
                $crate::journal::suite::a_snapshot_drops_the_segments_it_covers::<$machine>();
            }

            #[test]
            fn a_snapshot_ahead_of_its_journal_is_moved_back_so_later_events_count() {
                $crate::journal::suite::a_snapshot_ahead_of_its_journal_is_moved_back_so_later_events_count::<$machine>();
            }

            #[test]
            fn a_torn_tail_loses_only_the_torn_event() {
                $crate::journal::suite::a_torn_tail_loses_only_the_torn_event::<$machine>();
            }

            #[test]
            fn replay_is_bounded_by_the_snapshot_cadence() {
                $crate::journal::suite::replay_is_bounded_by_the_snapshot_cadence::<$machine>();
            }

            #[test]
            fn what_cannot_be_read_back_is_refused_not_forgotten() {
                $crate::journal::suite::what_cannot_be_read_back_is_refused_not_forgotten::<$machine>();
            }

            #[test]
            fn no_snapshot_is_written_after_a_failed_append() {
                $crate::journal::suite::no_snapshot_is_written_after_a_failed_append::<$machine>();
            }
        }
    };
}
pub(crate) use journaled_suite;
