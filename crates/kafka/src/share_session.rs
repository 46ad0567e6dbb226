//! KIP-932 share sessions: which partitions a share consumer fetches from,
//! per (group, member), built up by ShareFetch's added and forgotten topics,
//! and the session epoch each next request must carry (epoch 0 starts a
//! session, each request after it carries the next epoch, -1 ends it), as
//! Kafka's ShareSessionCache checks them. Kept in memory: a client whose
//! session is gone gets SHARE_SESSION_NOT_FOUND and starts a new one. Knows
//! nothing of records or delivery state.

use std::collections::{BTreeSet, HashMap};

use parking_lot::Mutex;
use uuid::Uuid;

/// The epoch that opens a share session.
pub const OPEN_EPOCH: i32 = 0;
/// The epoch that closes one.
pub const CLOSE_EPOCH: i32 = -1;

/// The partitions a session fetches from, by topic id and index.
type SessionPartitions = BTreeSet<(Uuid, i32)>;

/// Why a request's session epoch was refused; the session is unchanged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ShareSessionError {
    /// No session for this member (never opened, closed, or lost at a restart).
    #[error("the share session was not found")]
    NotFound,
    /// Not the epoch the session expects next.
    #[error("the share session epoch is invalid")]
    InvalidEpoch,
}

#[derive(Debug, Default)]
struct Session {
    partitions: SessionPartitions,
    /// The epoch the next request must carry.
    next_epoch: i32,
}

/// Every open share session, by group and member id.
#[derive(Debug, Default)]
pub struct ShareSessions {
    sessions: Mutex<HashMap<(String, String), Session>>,
}

/// The epoch after `epoch`: 1 follows `i32::MAX`, as Kafka's nextEpoch.
fn next_epoch(epoch: i32) -> i32 {
    if epoch == i32::MAX { 1 } else { epoch + 1 }
}

impl ShareSessions {
    /// Applies one ShareFetch's session changes and returns the partitions
    /// the session now fetches from (empty once closed). Epoch 0 replaces
    /// the member's session; -1 closes it; any other must be the epoch
    /// the session expects.
    pub fn update(
        &self,
        group: &str,
        member_id: &str,
        epoch: i32,
        added: impl IntoIterator<Item = (Uuid, i32)>,
        forgotten: impl IntoIterator<Item = (Uuid, i32)>,
    ) -> Result<SessionPartitions, ShareSessionError> {
        let key = (group.to_owned(), member_id.to_owned());
        let mut sessions = self.sessions.lock();
        if epoch == CLOSE_EPOCH {
            return match sessions.remove(&key) {
                Some(_) => Ok(SessionPartitions::new()),
                None => Err(ShareSessionError::NotFound),
            };
        }
        if epoch == OPEN_EPOCH {
            sessions.insert(key.clone(), Session::default());
        }
        let session = sessions.get_mut(&key).ok_or(ShareSessionError::NotFound)?;
        let expected = if epoch == OPEN_EPOCH { OPEN_EPOCH } else { session.next_epoch };
        if epoch != expected {
            return Err(ShareSessionError::InvalidEpoch);
        }
        session.next_epoch = next_epoch(epoch);
        session.partitions.extend(added);
        for partition in forgotten {
            session.partitions.remove(&partition);
        }
        Ok(session.partitions.clone())
    }

    /// Checks and moves the session epoch of one ShareAcknowledge: 0 is
    /// refused (an acknowledgement cannot open a session), -1 closes the
    /// session, any other must be the epoch the session expects.
    pub fn acknowledge(&self, group: &str, member_id: &str, epoch: i32) -> Result<(), ShareSessionError> {
        if epoch == OPEN_EPOCH {
            return Err(ShareSessionError::InvalidEpoch);
        }
        let key = (group.to_owned(), member_id.to_owned());
        let mut sessions = self.sessions.lock();
        if epoch == CLOSE_EPOCH {
            return sessions.remove(&key).map(|_| ()).ok_or(ShareSessionError::NotFound);
        }
        let session = sessions.get_mut(&key).ok_or(ShareSessionError::NotFound)?;
        if epoch != session.next_epoch {
            return Err(ShareSessionError::InvalidEpoch);
        }
        session.next_epoch = next_epoch(epoch);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PARTITION: (Uuid, i32) = (Uuid::from_u128(7), 0);

    #[test]
    fn epochs_follow_one_another_from_zero_and_a_closed_session_is_gone() {
        let sessions = ShareSessions::default();
        assert_eq!(sessions.update("g", "m", 1, [], []), Err(ShareSessionError::NotFound));
        assert_eq!(sessions.update("g", "m", 0, [PARTITION], []).map(|p| p.len()), Ok(1));
        assert_eq!(sessions.update("g", "m", 1, [], []).map(|p| p.len()), Ok(1));
        assert_eq!(sessions.update("g", "m", 1, [], []), Err(ShareSessionError::InvalidEpoch));
        assert_eq!(sessions.update("g", "m", 3, [], []), Err(ShareSessionError::InvalidEpoch));
        assert_eq!(sessions.acknowledge("g", "m", 2), Ok(()));
        assert_eq!(sessions.acknowledge("g", "m", 0), Err(ShareSessionError::InvalidEpoch));
        assert_eq!(sessions.update("g", "m", 3, [], [PARTITION]).map(|p| p.len()), Ok(0));
        assert_eq!(sessions.update("g", "m", CLOSE_EPOCH, [], []), Ok(SessionPartitions::new()));
        assert_eq!(sessions.update("g", "m", CLOSE_EPOCH, [], []), Err(ShareSessionError::NotFound));
        assert_eq!(sessions.acknowledge("g", "m", 4), Err(ShareSessionError::NotFound));
        // Epoch 0 starts over, whatever the old session expected.
        assert!(sessions.update("g", "m", 0, [], []).is_ok());
        assert!(sessions.update("g", "m", 0, [], []).is_ok());
        assert_eq!(sessions.update("g", "m", 1, [], []).map(|p| p.len()), Ok(0));
        assert_eq!(next_epoch(i32::MAX), 1);
    }
}
