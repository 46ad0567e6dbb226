//! Request dispatch: decodes each request body into its `kafka-protocol`
//! type, runs its handler and encodes the reply. One module per API family.

mod acls;
mod api_versions;
mod conditions;
mod configs;
mod consumer_groups;
mod fetch;
mod groups;
mod list_offsets;
mod log_dirs;
mod metadata;
mod offsets;
mod produce;
mod producers;
mod records;
mod scram_credentials;
mod share_group_offsets;
mod share_groups;
mod topics;
mod transactions;

use std::future::Future;
use std::sync::Arc;

use bytes::Bytes;
use conveyor_core::auth::{Operation, Resource};
use kafka_protocol::messages::ApiKey;
use kafka_protocol::protocol::{Encodable, StrBytes};

use crate::Context;
use crate::connection::{ConnectionInfo, Reply};
use crate::frame::{self, FrameError, Request};

/// Starts handling `request`. Order-sensitive work (appends) happens before
/// this returns; the returned future computes the reply.
pub fn dispatch(context: &Arc<Context>, connection: &Arc<ConnectionInfo>, request: Request) -> Result<Reply, FrameError> {
    let (api, version, correlation_id) = (request.api, request.version, request.header.correlation_id);
    let context = Arc::clone(context);
    let connection = Arc::clone(connection);
    match api {
        ApiKey::ApiVersions => {
            // An unsupported version is answered in the v0 shape (see `api_versions`).
            let reply_version = if crate::versions::is_supported(api, version) { version } else { 0 };
            Ok(reply(
                api,
                reply_version,
                correlation_id,
                async move { api_versions::handle(version) },
            ))
        }
        ApiKey::Metadata => {
            let body = frame::decode_body(&request)?;
            Ok(reply(api, version, correlation_id, async move {
                metadata::handle(&context, &connection, body, version).await
            }))
        }
        ApiKey::Produce => {
            let body = frame::decode_body(&request)?;
            Ok(produce::start(&context, &connection, body, version, correlation_id))
        }
        ApiKey::Fetch => {
            let body = frame::decode_body(&request)?;
            Ok(Box::pin(async move {
                let (response, reservation) = fetch::handle(&context, &connection, body, version).await;
                let frame = frame::encode_response(api, version, correlation_id, &response)?;
                // The records' bytes stay reserved in the connection's budget until the frame is sent.
                Ok(Some(Bytes::from_owner(HeldFrame {
                    frame,
                    _reservation: reservation,
                })))
            }))
        }
        ApiKey::ListOffsets => {
            let body = frame::decode_body(&request)?;
            Ok(reply(api, version, correlation_id, async move {
                list_offsets::handle(&context, &connection, body, version).await
            }))
        }
        ApiKey::CreateTopics => {
            let body = frame::decode_body(&request)?;
            Ok(reply(api, version, correlation_id, async move {
                topics::create(&context, &connection, body, version).await
            }))
        }
        ApiKey::DeleteTopics => {
            let body = frame::decode_body(&request)?;
            Ok(reply(api, version, correlation_id, async move {
                topics::delete(&context, &connection, body, version).await
            }))
        }
        ApiKey::FindCoordinator => {
            let body = frame::decode_body(&request)?;
            Ok(reply(api, version, correlation_id, async move {
                groups::find_coordinator(&context, &connection, body, version).await
            }))
        }
        ApiKey::JoinGroup => {
            let body = frame::decode_body(&request)?;
            let client_id = request.header.client_id.as_ref().map(|id| id.to_string()).unwrap_or_default();
            Ok(reply(api, version, correlation_id, async move {
                groups::join(&context, &connection, client_id, body, version).await
            }))
        }
        ApiKey::ConsumerGroupHeartbeat => {
            let body = frame::decode_body(&request)?;
            let client_id = request.header.client_id.as_ref().map(|id| id.to_string()).unwrap_or_default();
            Ok(reply(api, version, correlation_id, async move {
                consumer_groups::heartbeat(&context, &connection, client_id, body, version).await
            }))
        }
        ApiKey::ConsumerGroupDescribe => {
            let body = frame::decode_body(&request)?;
            Ok(reply(api, version, correlation_id, async move {
                consumer_groups::describe(&context, &connection, body).await
            }))
        }
        ApiKey::SyncGroup => {
            let body = frame::decode_body(&request)?;
            Ok(reply(api, version, correlation_id, async move {
                groups::sync(&context, &connection, body, version).await
            }))
        }
        ApiKey::Heartbeat => {
            let body = frame::decode_body(&request)?;
            Ok(reply(api, version, correlation_id, async move {
                groups::heartbeat(&context, &connection, body).await
            }))
        }
        ApiKey::LeaveGroup => {
            let body = frame::decode_body(&request)?;
            Ok(reply(api, version, correlation_id, async move {
                groups::leave(&context, &connection, body, version).await
            }))
        }
        ApiKey::DescribeGroups => {
            let body = frame::decode_body(&request)?;
            Ok(reply(api, version, correlation_id, async move {
                groups::describe(&context, &connection, body, version).await
            }))
        }
        ApiKey::ListGroups => {
            let body = frame::decode_body(&request)?;
            Ok(reply(api, version, correlation_id, async move {
                groups::list(&context, &connection, body, version).await
            }))
        }
        ApiKey::DeleteGroups => {
            let body = frame::decode_body(&request)?;
            Ok(reply(api, version, correlation_id, async move {
                groups::delete(&context, &connection, body).await
            }))
        }
        ApiKey::OffsetCommit => {
            let body = frame::decode_body(&request)?;
            Ok(reply(api, version, correlation_id, async move {
                offsets::commit(&context, &connection, body, version).await
            }))
        }
        ApiKey::OffsetFetch => {
            let body = frame::decode_body(&request)?;
            Ok(reply(api, version, correlation_id, async move {
                offsets::fetch(&context, &connection, body, version).await
            }))
        }
        ApiKey::OffsetDelete => {
            let body = frame::decode_body(&request)?;
            Ok(reply(api, version, correlation_id, async move {
                offsets::delete(&context, &connection, body).await
            }))
        }
        ApiKey::InitProducerId => {
            let body = frame::decode_body(&request)?;
            Ok(reply(api, version, correlation_id, async move {
                producers::init_producer_id(&context, &connection, body, version).await
            }))
        }
        ApiKey::AddPartitionsToTxn => {
            let body = frame::decode_body(&request)?;
            Ok(reply(api, version, correlation_id, async move {
                transactions::add_partitions(&context, &connection, body, version).await
            }))
        }
        ApiKey::AddOffsetsToTxn => {
            let body = frame::decode_body(&request)?;
            Ok(reply(api, version, correlation_id, async move {
                transactions::add_offsets(&context, &connection, body, version).await
            }))
        }
        ApiKey::TxnOffsetCommit => {
            let body = frame::decode_body(&request)?;
            Ok(reply(api, version, correlation_id, async move {
                transactions::commit_offsets(&context, &connection, body, version).await
            }))
        }
        ApiKey::ListTransactions => {
            let body = frame::decode_body(&request)?;
            Ok(reply(api, version, correlation_id, async move {
                transactions::list(&context, &connection, body, version)
            }))
        }
        ApiKey::DescribeTransactions => {
            let body = frame::decode_body(&request)?;
            Ok(reply(api, version, correlation_id, async move {
                transactions::describe(&context, &connection, body)
            }))
        }
        ApiKey::EndTxn => {
            let body = frame::decode_body(&request)?;
            Ok(reply(api, version, correlation_id, async move {
                transactions::end(&context, &connection, body, version).await
            }))
        }
        ApiKey::DescribeProducers => {
            let body = frame::decode_body(&request)?;
            Ok(reply(api, version, correlation_id, async move {
                producers::describe_producers(&context, &connection, body)
            }))
        }
        ApiKey::CreatePartitions => {
            let body = frame::decode_body(&request)?;
            Ok(reply(api, version, correlation_id, async move {
                topics::create_partitions(&context, &connection, body).await
            }))
        }
        ApiKey::DescribeConfigs => {
            let body = frame::decode_body(&request)?;
            Ok(reply(api, version, correlation_id, async move {
                configs::describe(&context, &connection, body, version)
            }))
        }
        ApiKey::AlterConfigs => {
            let body = frame::decode_body(&request)?;
            Ok(reply(api, version, correlation_id, async move {
                configs::alter(&context, &connection, body).await
            }))
        }
        ApiKey::IncrementalAlterConfigs => {
            let body = frame::decode_body(&request)?;
            Ok(reply(api, version, correlation_id, async move {
                configs::incremental_alter(&context, &connection, body).await
            }))
        }
        ApiKey::DeleteRecords => {
            let body = frame::decode_body(&request)?;
            Ok(reply(api, version, correlation_id, async move {
                records::delete_records(&context, &connection, body).await
            }))
        }
        ApiKey::OffsetForLeaderEpoch => {
            let body = frame::decode_body(&request)?;
            Ok(reply(api, version, correlation_id, async move {
                records::offset_for_leader_epoch(&context, &connection, body)
            }))
        }
        ApiKey::DescribeCluster => {
            let body = frame::decode_body(&request)?;
            Ok(reply(api, version, correlation_id, async move {
                metadata::describe_cluster(&context, &connection, body)
            }))
        }
        ApiKey::ShareGroupHeartbeat => {
            let body = frame::decode_body(&request)?;
            let client_id = request.header.client_id.as_ref().map(|id| id.to_string()).unwrap_or_default();
            Ok(reply(api, version, correlation_id, async move {
                share_groups::heartbeat(&context, &connection, client_id, body).await
            }))
        }
        ApiKey::ShareGroupDescribe => {
            let body = frame::decode_body(&request)?;
            Ok(reply(api, version, correlation_id, async move {
                share_groups::describe(&context, &connection, body)
            }))
        }
        ApiKey::ShareFetch => {
            let body = frame::decode_body(&request)?;
            Ok(reply(api, version, correlation_id, async move {
                share_groups::fetch(&context, &connection, body).await
            }))
        }
        ApiKey::ShareAcknowledge => {
            let body = frame::decode_body(&request)?;
            Ok(reply(api, version, correlation_id, async move {
                share_groups::acknowledge_request(&context, &connection, body).await
            }))
        }
        ApiKey::DescribeShareGroupOffsets => {
            let body = frame::decode_body(&request)?;
            Ok(reply(api, version, correlation_id, async move {
                share_group_offsets::describe(&context, &connection, body).await
            }))
        }
        ApiKey::AlterShareGroupOffsets => {
            let body = frame::decode_body(&request)?;
            Ok(reply(api, version, correlation_id, async move {
                share_group_offsets::alter(&context, &connection, body).await
            }))
        }
        ApiKey::DeleteShareGroupOffsets => {
            let body = frame::decode_body(&request)?;
            Ok(reply(api, version, correlation_id, async move {
                share_group_offsets::delete(&context, &connection, body).await
            }))
        }
        ApiKey::DescribeLogDirs => {
            let body = frame::decode_body(&request)?;
            Ok(reply(api, version, correlation_id, async move {
                log_dirs::describe(&context, &connection, body).await
            }))
        }
        ApiKey::CreateAcls => {
            let body = frame::decode_body(&request)?;
            Ok(reply(api, version, correlation_id, async move {
                acls::create(&context, &connection, body).await
            }))
        }
        ApiKey::DescribeAcls => {
            let body = frame::decode_body(&request)?;
            Ok(reply(api, version, correlation_id, async move {
                acls::describe(&context, &connection, body).await
            }))
        }
        ApiKey::DeleteAcls => {
            let body = frame::decode_body(&request)?;
            Ok(reply(api, version, correlation_id, async move {
                acls::delete(&context, &connection, body).await
            }))
        }
        ApiKey::AlterUserScramCredentials => {
            let body = frame::decode_body(&request)?;
            Ok(reply(api, version, correlation_id, async move {
                scram_credentials::alter(&context, &connection, body).await
            }))
        }
        ApiKey::DescribeUserScramCredentials => {
            let body = frame::decode_body(&request)?;
            Ok(reply(api, version, correlation_id, async move {
                scram_credentials::describe(&context, &connection, body)
            }))
        }
        // `parse_request` refuses APIs missing from the versions table;
        // the connection answers the SASL requests itself.
        other => Err(FrameError::UnsupportedVersion { api: other, version }),
    }
}

/// An encoded response that keeps its reservation in the connection's
/// budget for as long as its bytes live.
struct HeldFrame {
    frame: Bytes,
    _reservation: conveyor_core::connection_budget::Reservation,
}

impl AsRef<[u8]> for HeldFrame {
    fn as_ref(&self) -> &[u8] {
        &self.frame
    }
}

/// Wraps a handler's future into a reply that encodes its response.
fn reply<T, F>(api: ApiKey, version: i16, correlation_id: i32, response: F) -> Reply
where
    T: Encodable + Send,
    F: Future<Output = T> + Send + 'static,
{
    Box::pin(async move {
        let body = response.await;
        frame::encode_response(api, version, correlation_id, &body).map(Some)
    })
}

/// Kafka's "authorized operations were not requested".
const AUTHORIZED_OPERATIONS_OMITTED: i32 = i32::MIN;
/// The operations Kafka reports on topics, with their bit (Kafka's `AclOperation` code).
const TOPIC_OPERATIONS: [(Operation, i32); 8] = [
    (Operation::Read, 3),
    (Operation::Write, 4),
    (Operation::Create, 5),
    (Operation::Delete, 6),
    (Operation::Alter, 7),
    (Operation::Describe, 8),
    (Operation::DescribeConfigs, 10),
    (Operation::AlterConfigs, 11),
];
/// The operations Kafka reports on groups: READ, DELETE, DESCRIBE.
const GROUP_OPERATIONS: [(Operation, i32); 3] = [(Operation::Read, 3), (Operation::Delete, 6), (Operation::Describe, 8)];
/// The operations Kafka reports on the cluster.
const CLUSTER_OPERATIONS: [(Operation, i32); 7] = [
    (Operation::Create, 5),
    (Operation::Alter, 7),
    (Operation::Describe, 8),
    (Operation::ClusterAction, 9),
    (Operation::DescribeConfigs, 10),
    (Operation::AlterConfigs, 11),
    (Operation::IdempotentWrite, 12),
];

/// The bit set of `operations` the connection may do on `resource` (Kafka's authorized operations).
fn authorized_operations(context: &Context, connection: &ConnectionInfo, resource: &Resource<'_>, operations: &[(Operation, i32)]) -> i32 {
    let Some(principal) = &connection.principal else { return 0 };
    operations
        .iter()
        .filter(|(operation, _)| {
            context
                .broker
                .authorizer()
                .authorize(principal, Some(connection.peer.ip()), resource, *operation)
        })
        .fold(0, |bits, (_, bit)| bits | (1 << bit))
}

/// Error message text for a response's nullable error message field.
fn message(text: impl ToString) -> Option<StrBytes> {
    Some(StrBytes::from_string(text.to_string()))
}
