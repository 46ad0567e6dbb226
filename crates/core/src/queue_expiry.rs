//! Queue timers. Queue expiry (`x-expires`): deletes queues left unused —
//! no consumers, no gets or receives, not declared again — for their expiry
//! time, as RabbitMQ does; deleting is the ordinary [`Broker::delete_queue`].
//! Message expiry: dead-letters messages whose TTL ran out while they
//! waited, so a queue without consumers still empties on time; the rule is
//! the one consumers apply ([`Broker::expire_waiting_messages`]).

use std::sync::Arc;
use std::time::Duration;

use tracing::{info, warn};

use crate::broker::Broker;
use crate::queue::DeclaredQueue;

/// How often the timer looks; expiry happens within this of its due time.
const SWEEP_INTERVAL: Duration = Duration::from_millis(100);

impl Broker {
    /// Deletes every queue whose `x-expires` ran out; returns their names.
    pub async fn expire_unused_queues(&self) -> Vec<String> {
        let now_ms = self.clock().now_ms();
        let mut expired = Vec::new();
        // Only queues with `x-expires`: this runs every sweep, and with
        // thousands of queues a copy of them all each time was most of an
        // idle broker's work.
        for declared in self.queues_where(DeclaredQueue::may_expire) {
            if declared.consumer_count() > 0 {
                // In use: its idle time starts when the last consumer leaves.
                declared.touch(now_ms);
                continue;
            }
            if !declared.expired(now_ms) {
                continue;
            }
            // Still the same queue (not deleted and declared again meanwhile).
            if self.queue(&declared.name).is_some_and(|current| current.id == declared.id) {
                match self.delete_queue(&declared.name, false).await {
                    Ok(_) => {
                        info!(queue = declared.name, "queue expired (x-expires)");
                        expired.push(declared.name.clone());
                    }
                    Err(error) => warn!(queue = declared.name, %error, "deleting an expired queue failed"),
                }
            }
        }
        expired
    }

    /// Expires the waiting messages of every queue that may hold expiring
    /// ones; returns how many expired, once their dead letters are stored.
    pub async fn expire_waiting_messages_everywhere(self: &Arc<Self>) -> u64 {
        let queues = self.queues_where(|declared| declared.may_expire_messages());
        if queues.is_empty() {
            return 0;
        }
        let broker = Arc::clone(self);
        // Peeking reads the log: off the reactor.
        let swept = tokio::task::spawn_blocking(move || {
            let mut expired = 0;
            let mut appends = Vec::new();
            for declared in queues {
                if declared.available_count() == 0 && declared.acquired_count() == 0 {
                    declared.set_may_hold_own_ttls(false);
                    continue;
                }
                let (count, stored) = broker.expire_waiting_messages(&declared);
                expired += count;
                appends.extend(stored);
            }
            (expired, appends)
        })
        .await;
        let Ok((expired, appends)) = swept else { return 0 };
        for append in appends {
            if let Err(error) = append.await {
                warn!(%error, "storing an expired message failed");
            }
        }
        expired
    }

    /// Runs the queue timers until `shutdown` turns true.
    pub async fn run_queue_timers(self: Arc<Self>, mut shutdown: tokio::sync::watch::Receiver<bool>) {
        let mut interval = tokio::time::interval(SWEEP_INTERVAL);
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = interval.tick() => {
                    self.expire_unused_queues().await;
                    self.expire_waiting_messages_everywhere().await;
                }
                changed = shutdown.changed() => {
                    if changed.is_err() || *shutdown.borrow() {
                        return;
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {

    use conveyor_log::clock::ManualClock;
    use conveyor_log::record::Record;

    use crate::BrokerConfig;
    use crate::catalog::QueueDefinition;

    use super::*;

    fn expiring(ms: i64) -> QueueDefinition {
        let policy = crate::queue::QueuePolicy {
            expires_ms: Some(ms),
            ..Default::default()
        };
        QueueDefinition::of_policy(true, policy)
    }

    #[tokio::test]
    async fn unused_queues_expire_and_used_ones_do_not() {
        let dir = tempfile::tempdir().expect("tempdir");
        let clock = ManualClock::new(1_000_000);
        let broker = Arc::new(Broker::open_with_clock(BrokerConfig::new(dir.path()), clock.clone()).expect("open"));
        broker.declare_queue("idle", expiring(1000)).await.expect("declare");
        let (read, _) = broker.declare_queue("read", expiring(1000)).await.expect("declare");
        let (consumed, _) = broker.declare_queue("consumed", expiring(1000)).await.expect("declare");
        broker.declare_queue("forever", QueueDefinition::default()).await.expect("declare");
        let consumer = consumed.new_consumer();
        consumed.add_consumer(consumer, 0, false).expect("consumer");

        clock.advance_ms(999);
        assert!(broker.expire_unused_queues().await.is_empty(), "nothing is due yet");
        let reader = read.new_consumer();
        broker
            .acquire_live(&read, reader, 1, 1000, crate::queue::Visibility::Durable)
            .expect("a get counts as a use");
        clock.advance_ms(1);
        assert_eq!(broker.expire_unused_queues().await, ["idle"]);
        assert!(broker.queue("idle").is_none());

        // The consumer leaves: the queue's idle time starts then.
        clock.advance_ms(5000);
        assert_eq!(broker.expire_unused_queues().await, ["read"]);
        consumed.remove_consumer(consumer);
        clock.advance_ms(999);
        assert!(broker.expire_unused_queues().await.is_empty());
        broker
            .declare_queue("consumed", expiring(1000))
            .await
            .expect("declaring again is a use");
        clock.advance_ms(999);
        assert!(broker.expire_unused_queues().await.is_empty());
        clock.advance_ms(1);
        assert_eq!(broker.expire_unused_queues().await, ["consumed"]);
        assert!(broker.queue("forever").is_some(), "a queue without x-expires stays");
    }

    /// The sweeps' cheap flags follow the queue's arguments when they change
    /// (SQS SetQueueAttributes), not only its declaration.
    #[tokio::test]
    async fn an_expiry_or_ttl_set_after_declaration_is_swept_for() {
        let dir = tempfile::tempdir().expect("tempdir");
        let clock = ManualClock::new(1_000_000);
        let broker = Arc::new(Broker::open_with_clock(BrokerConfig::new(dir.path()), clock.clone()).expect("open"));
        let (queue, _) = broker.declare_queue("later", QueueDefinition::default()).await.expect("declare");
        assert!(!queue.may_expire() && !queue.may_expire_messages());
        broker
            .redefine_queue("later", |_| {
                let policy = crate::queue::QueuePolicy {
                    expires_ms: Some(1000),
                    message_ttl_ms: Some(500),
                    ..Default::default()
                };
                Ok::<_, crate::CoreError>(QueueDefinition::of_policy(false, policy))
            })
            .await
            .expect("updated")
            .expect("accepted");
        assert!(queue.may_expire() && queue.may_expire_messages());
        clock.advance_ms(1000);
        assert_eq!(broker.expire_unused_queues().await, ["later"]);
    }

    async fn publish(broker: &Arc<Broker>, declared: &Arc<crate::queue::DeclaredQueue>, record: Record) {
        for append in broker.publish_to_queue(declared, record).appends {
            append.await.expect("stored");
        }
    }

    /// The message sweep reads a queue only while it may hold a message
    /// with a TTL of its own: not a new one, not one whose every message it
    /// saw without one (a queue reopened after a crash is looked at once;
    /// after a clean shutdown its stored flag says), and again after a
    /// publish with one, which then expires on time.
    #[tokio::test]
    async fn the_message_sweep_reads_only_queues_that_may_hold_messages_with_their_own_ttl() {
        let dir = tempfile::tempdir().expect("tempdir");
        let clock = ManualClock::new(1_000_000);
        {
            let broker = Arc::new(Broker::open_with_clock(BrokerConfig::new(dir.path()), clock.clone()).expect("open"));
            let (plain, _) = broker
                .declare_queue(
                    "plain",
                    QueueDefinition {
                        durable: true,
                        ..QueueDefinition::default()
                    },
                )
                .await
                .expect("declare");
            assert!(!plain.may_expire_messages(), "a new queue holds nothing");
            publish(&broker, &plain, Record::new(None, Some(b"kept".to_vec()))).await;
            assert!(!plain.may_expire_messages(), "a message without a TTL");
            broker.close().expect("close");
        }
        let broker = Arc::new(Broker::open_with_clock(BrokerConfig::new(dir.path()), clock.clone()).expect("reopen"));
        let plain = broker.queue("plain").expect("reopened");
        assert!(
            !plain.may_expire_messages() && plain.opened().is_none(),
            "known from what the clean shutdown stored: not read, not even opened"
        );
        assert_eq!(broker.expire_waiting_messages_everywhere().await, 0);

        let ttl = Record::new(None, Some(b"brief".to_vec())).with_header(crate::queue::policy::headers::TTL_MS, Some(b"1000".to_vec()));
        publish(&broker, &plain, ttl).await;
        assert!(plain.may_expire_messages(), "a message with its own TTL");
        assert_eq!(broker.expire_waiting_messages_everywhere().await, 0, "not due yet");
        assert!(plain.may_expire_messages(), "still held: swept again");
        clock.advance_ms(1000);
        assert_eq!(broker.expire_waiting_messages_everywhere().await, 1);
        assert_eq!(plain.available_count(), 1, "the message without a TTL stays");
        assert_eq!(broker.expire_waiting_messages_everywhere().await, 0);
        assert!(!plain.may_expire_messages(), "what is left has no TTL");
    }
}
