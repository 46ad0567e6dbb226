//! What a journaled state machine brings: its events, how each is stored
//! as one record, its pure `apply`, and what its snapshot holds. Knows no
//! files: `journaled.rs` does the I/O.

use conveyor_log::record::Record;
use serde::Serialize;
use serde::de::DeserializeOwned;

/// The key and value of the record one event is stored as.
pub type EncodedEvent = (Option<Vec<u8>>, Option<Vec<u8>>);

/// A state that is a pure function of its events: `apply` does no I/O,
/// reads no clock and never fails (events are checked before they are
/// appended; one about something absent changes nothing), and it is the
/// same code live and on replay. This is the shape openraft replicates
/// (`RaftStateMachine`: apply entries, build and install snapshots).
pub trait StateMachine: Default + Send + 'static {
    type Event: Send;
    /// What the snapshot file holds besides the journal offset it covers.
    type Snapshot: Serialize + DeserializeOwned;

    fn apply(&mut self, event: &Self::Event);

    fn encode(event: &Self::Event) -> Result<EncodedEvent, String>;

    fn decode(record: &Record) -> Result<Self::Event, String>;

    fn snapshot(&self) -> Self::Snapshot;

    fn restore(snapshot: Self::Snapshot) -> Self;
}
