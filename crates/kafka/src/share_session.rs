//! KIP-932 share sessions: which partitions a share consumer fetches from,
//! per (group, member), built up by ShareFetch's added and forgotten topics
//! (epoch 0 starts one, -1 ends it). Kept in memory: a client whose session
//! is gone starts a new one. Knows nothing of records or delivery state.

use std::collections::{BTreeSet, HashMap};

use parking_lot::Mutex;
use uuid::Uuid;

/// The epoch that opens a share session.
pub const OPEN_EPOCH: i32 = 0;
/// The epoch that closes one.
pub const CLOSE_EPOCH: i32 = -1;

/// The partitions a session fetches from, by topic id and index.
type SessionPartitions = BTreeSet<(Uuid, i32)>;

/// Every open share session, by group and member id.
#[derive(Debug, Default)]
pub struct ShareSessions {
    sessions: Mutex<HashMap<(String, String), SessionPartitions>>,
}

impl ShareSessions {
    /// Applies one ShareFetch's session changes and returns the partitions
    /// the session now fetches from (empty once closed).
    pub fn update(
        &self,
        group: &str,
        member_id: &str,
        epoch: i32,
        added: impl IntoIterator<Item = (Uuid, i32)>,
        forgotten: impl IntoIterator<Item = (Uuid, i32)>,
    ) -> SessionPartitions {
        let key = (group.to_owned(), member_id.to_owned());
        let mut sessions = self.sessions.lock();
        if epoch == CLOSE_EPOCH {
            sessions.remove(&key);
            return SessionPartitions::new();
        }
        let session = sessions.entry(key).or_default();
        if epoch == OPEN_EPOCH {
            session.clear();
        }
        session.extend(added);
        for partition in forgotten {
            session.remove(&partition);
        }
        session.clone()
    }
}
