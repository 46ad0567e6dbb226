//! Who a `conveyor bench kafka` produce phase produces as: a plain producer,
//! an idempotent one (a producer id and a sequence per partition) or a
//! transactional one (the same, inside transactions committed every
//! `--commit-interval-ms`). It speaks to the bootstrap broker only, which
//! is the transaction coordinator of a one-node cluster; it knows nothing of
//! what the phases measure.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use conveyor_kafka::client::Client;
use conveyor_log::record::BatchBuilder;
use kafka_protocol::messages::add_partitions_to_txn_request::AddPartitionsToTxnTopic;
use kafka_protocol::messages::{AddPartitionsToTxnRequest, EndTxnRequest, InitProducerIdRequest, ProducerId, TopicName, TransactionalId};
use kafka_protocol::protocol::StrBytes;

const INIT_PRODUCER_ID_VERSION: i16 = 1;
const ADD_PARTITIONS_TO_TXN_VERSION: i16 = 3;
const END_TXN_VERSION: i16 = 1;
/// Long enough that no transaction of the bench expires on the broker.
const TRANSACTION_TIMEOUT_MS: i32 = 60_000;

/// How a produce phase's producers identify their batches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delivery {
    Plain,
    Idempotent,
    /// Transactions committed once they are this old.
    Transactional {
        commit_every: Duration,
    },
}

/// One producer connection's identity and open transaction.
pub struct ProducerSession {
    delivery: Delivery,
    producer_id: i64,
    producer_epoch: i16,
    transactional_id: Option<TransactionalId>,
    /// The next sequence per partition.
    sequences: HashMap<u32, i32>,
    /// When the open transaction began, if one is open.
    transaction_started: Option<Instant>,
    committed_transactions: u64,
}

impl ProducerSession {
    /// Asks the broker for a producer id unless `delivery` is plain;
    /// `transactional_id` names the producer when it is transactional.
    pub async fn start(client: &mut Client, delivery: Delivery, transactional_id: &str) -> anyhow::Result<ProducerSession> {
        let transactional_id =
            matches!(delivery, Delivery::Transactional { .. }).then(|| TransactionalId(StrBytes::from_string(transactional_id.to_owned())));
        let mut session = ProducerSession {
            delivery,
            producer_id: -1,
            producer_epoch: -1,
            transactional_id,
            sequences: HashMap::new(),
            transaction_started: None,
            committed_transactions: 0,
        };
        if delivery != Delivery::Plain {
            let request = InitProducerIdRequest::default()
                .with_transactional_id(session.transactional_id.clone())
                .with_transaction_timeout_ms(TRANSACTION_TIMEOUT_MS)
                .with_producer_id(ProducerId(-1))
                .with_producer_epoch(-1);
            let reply = client.send(&request, INIT_PRODUCER_ID_VERSION).await.context("InitProducerId")?;
            if reply.error_code != 0 {
                bail!("InitProducerId failed with error code {}", reply.error_code);
            }
            session.producer_id = reply.producer_id.0;
            session.producer_epoch = reply.producer_epoch;
        }
        Ok(session)
    }

    /// The transactional id Produce requests must carry, if any.
    pub fn transactional_id(&self) -> Option<TransactionalId> {
        self.transactional_id.clone()
    }

    /// Opens a transaction over every partition of `topic` unless one is
    /// open (transactional producers only); Kafka refuses data for a
    /// partition not added to the transaction first.
    pub async fn begin(&mut self, client: &mut Client, topic: &TopicName, partitions: u32) -> anyhow::Result<()> {
        let Some(transactional_id) = self.transactional_id.clone() else {
            return Ok(());
        };
        if self.transaction_started.is_some() {
            return Ok(());
        }
        let request = AddPartitionsToTxnRequest::default()
            .with_v3_and_below_transactional_id(transactional_id)
            .with_v3_and_below_producer_id(ProducerId(self.producer_id))
            .with_v3_and_below_producer_epoch(self.producer_epoch)
            .with_v3_and_below_topics(vec![
                AddPartitionsToTxnTopic::default()
                    .with_name(topic.clone())
                    .with_partitions((0..partitions as i32).collect()),
            ]);
        let reply = client
            .send(&request, ADD_PARTITIONS_TO_TXN_VERSION)
            .await
            .context("AddPartitionsToTxn")?;
        let failed = reply
            .results_by_topic_v3_and_below
            .iter()
            .flat_map(|topic| &topic.results_by_partition)
            .find(|partition| partition.partition_error_code != 0);
        if let Some(partition) = failed {
            bail!(
                "AddPartitionsToTxn: partition {} failed with error code {}",
                partition.partition_index,
                partition.partition_error_code
            );
        }
        self.transaction_started = Some(Instant::now());
        Ok(())
    }

    /// Stamps a batch of `count` records for `partition` with the producer
    /// id, the partition's next sequence and the transactional attribute.
    pub fn stamp(&mut self, partition: u32, count: usize, builder: BatchBuilder) -> BatchBuilder {
        if self.delivery == Delivery::Plain {
            return builder;
        }
        let sequence = self.sequences.entry(partition).or_insert(0);
        let builder = builder.producer(self.producer_id, self.producer_epoch, *sequence);
        // Kafka's sequences wrap to 0 after i32::MAX.
        *sequence = ((i64::from(*sequence) + count as i64) % (i64::from(i32::MAX) + 1)) as i32;
        if self.transactional_id.is_some() {
            builder.transactional()
        } else {
            builder
        }
    }

    /// The open transaction is old enough to commit.
    pub fn commit_due(&self) -> bool {
        match (self.delivery, self.transaction_started) {
            (Delivery::Transactional { commit_every }, Some(started)) => started.elapsed() >= commit_every,
            _ => false,
        }
    }

    /// Commits the open transaction, if any; every Produce of it must have
    /// been answered.
    pub async fn commit(&mut self, client: &mut Client) -> anyhow::Result<()> {
        let (Some(transactional_id), Some(_)) = (self.transactional_id.clone(), self.transaction_started) else {
            return Ok(());
        };
        let request = EndTxnRequest::default()
            .with_transactional_id(transactional_id)
            .with_producer_id(ProducerId(self.producer_id))
            .with_producer_epoch(self.producer_epoch)
            .with_committed(true);
        let reply = client.send(&request, END_TXN_VERSION).await.context("EndTxn")?;
        if reply.error_code != 0 {
            bail!("EndTxn (commit) failed with error code {}", reply.error_code);
        }
        self.transaction_started = None;
        self.committed_transactions += 1;
        Ok(())
    }

    pub fn committed_transactions(&self) -> u64 {
        self.committed_transactions
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn session(delivery: Delivery) -> ProducerSession {
        ProducerSession {
            delivery,
            producer_id: 7,
            producer_epoch: 2,
            transactional_id: matches!(delivery, Delivery::Transactional { .. })
                .then(|| TransactionalId(StrBytes::from_static_str("bench"))),
            sequences: HashMap::new(),
            transaction_started: None,
            committed_transactions: 0,
        }
    }

    fn header(builder: BatchBuilder) -> conveyor_log::batch::BatchHeader {
        let mut builder = builder;
        builder.push(conveyor_log::record::Record::new(None, Some(b"v".to_vec())));
        conveyor_log::batch::BatchHeader::parse(&builder.build()).expect("a whole batch")
    }

    #[test]
    fn sequences_count_records_per_partition_and_wrap_as_kafka_does() {
        let mut session = session(Delivery::Idempotent);
        let first = header(session.stamp(0, 100, BatchBuilder::new(0)));
        let second = header(session.stamp(0, 100, BatchBuilder::new(0)));
        let other = header(session.stamp(1, 5, BatchBuilder::new(0)));
        assert_eq!((first.producer_id, first.producer_epoch), (7, 2));
        assert_eq!((first.base_sequence, second.base_sequence, other.base_sequence), (0, 100, 0));
        assert!(!first.is_transactional());
        session.sequences.insert(0, i32::MAX - 1);
        session.stamp(0, 3, BatchBuilder::new(0));
        assert_eq!(session.sequences[&0], 1, "i32::MAX - 1 + 3 wraps to 1");
    }

    #[test]
    fn transactional_batches_carry_the_attribute_and_plain_ones_no_producer() {
        let transactional = header(
            session(Delivery::Transactional {
                commit_every: Duration::from_millis(100),
            })
            .stamp(0, 1, BatchBuilder::new(0)),
        );
        assert!(transactional.is_transactional());
        let plain = header(session(Delivery::Plain).stamp(0, 1, BatchBuilder::new(0)));
        assert_eq!((plain.producer_id, plain.base_sequence), (-1, -1));
        assert!(!session(Delivery::Idempotent).commit_due(), "no transaction, nothing to commit");
    }
}
