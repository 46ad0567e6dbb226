//! Request dispatch: decodes each request body into its `kafka-protocol`
//! type, runs its handler and encodes the reply. One module per API family.

mod api_versions;
mod configs;
mod fetch;
mod groups;
mod list_offsets;
mod metadata;
mod offsets;
mod produce;
mod producers;
mod records;
mod topics;
mod transactions;

use std::future::Future;
use std::sync::Arc;

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
            Ok(produce::start(&context, body, version, correlation_id))
        }
        ApiKey::Fetch => {
            let body = frame::decode_body(&request)?;
            Ok(reply(api, version, correlation_id, async move {
                fetch::handle(&context, body, version).await
            }))
        }
        ApiKey::ListOffsets => {
            let body = frame::decode_body(&request)?;
            Ok(reply(api, version, correlation_id, async move {
                list_offsets::handle(&context, body, version).await
            }))
        }
        ApiKey::CreateTopics => {
            let body = frame::decode_body(&request)?;
            Ok(reply(api, version, correlation_id, async move {
                topics::create(&context, body, version).await
            }))
        }
        ApiKey::DeleteTopics => {
            let body = frame::decode_body(&request)?;
            Ok(reply(api, version, correlation_id, async move {
                topics::delete(&context, body, version).await
            }))
        }
        ApiKey::FindCoordinator => {
            let body = frame::decode_body(&request)?;
            Ok(reply(api, version, correlation_id, async move {
                groups::find_coordinator(&context, &connection, body, version)
            }))
        }
        ApiKey::JoinGroup => {
            let body = frame::decode_body(&request)?;
            let client_id = request.header.client_id.as_ref().map(|id| id.to_string()).unwrap_or_default();
            Ok(reply(api, version, correlation_id, async move {
                groups::join(&context, &connection, client_id, body, version).await
            }))
        }
        ApiKey::SyncGroup => {
            let body = frame::decode_body(&request)?;
            Ok(reply(api, version, correlation_id, async move {
                groups::sync(&context, body, version).await
            }))
        }
        ApiKey::Heartbeat => {
            let body = frame::decode_body(&request)?;
            Ok(reply(
                api,
                version,
                correlation_id,
                async move { groups::heartbeat(&context, body) },
            ))
        }
        ApiKey::LeaveGroup => {
            let body = frame::decode_body(&request)?;
            Ok(reply(api, version, correlation_id, async move {
                groups::leave(&context, body, version)
            }))
        }
        ApiKey::DescribeGroups => {
            let body = frame::decode_body(&request)?;
            Ok(reply(api, version, correlation_id, async move {
                groups::describe(&context, body, version)
            }))
        }
        ApiKey::ListGroups => {
            let body = frame::decode_body(&request)?;
            Ok(reply(
                api,
                version,
                correlation_id,
                async move { groups::list(&context, body, version) },
            ))
        }
        ApiKey::DeleteGroups => {
            let body = frame::decode_body(&request)?;
            Ok(reply(
                api,
                version,
                correlation_id,
                async move { groups::delete(&context, body).await },
            ))
        }
        ApiKey::OffsetCommit => {
            let body = frame::decode_body(&request)?;
            Ok(reply(
                api,
                version,
                correlation_id,
                async move { offsets::commit(&context, body).await },
            ))
        }
        ApiKey::OffsetFetch => {
            let body = frame::decode_body(&request)?;
            Ok(reply(api, version, correlation_id, async move {
                offsets::fetch(&context, body, version)
            }))
        }
        ApiKey::OffsetDelete => {
            let body = frame::decode_body(&request)?;
            Ok(reply(
                api,
                version,
                correlation_id,
                async move { offsets::delete(&context, body).await },
            ))
        }
        ApiKey::InitProducerId => {
            let body = frame::decode_body(&request)?;
            Ok(reply(api, version, correlation_id, async move {
                producers::init_producer_id(&context, body, version).await
            }))
        }
        ApiKey::AddPartitionsToTxn => {
            let body = frame::decode_body(&request)?;
            Ok(reply(api, version, correlation_id, async move {
                transactions::add_partitions(&context, body, version).await
            }))
        }
        ApiKey::AddOffsetsToTxn => {
            let body = frame::decode_body(&request)?;
            Ok(reply(api, version, correlation_id, async move {
                transactions::add_offsets(&context, body, version).await
            }))
        }
        ApiKey::TxnOffsetCommit => {
            let body = frame::decode_body(&request)?;
            Ok(reply(api, version, correlation_id, async move {
                transactions::commit_offsets(&context, body, version).await
            }))
        }
        ApiKey::ListTransactions => {
            let body = frame::decode_body(&request)?;
            Ok(reply(api, version, correlation_id, async move {
                transactions::list(&context, body, version)
            }))
        }
        ApiKey::DescribeTransactions => {
            let body = frame::decode_body(&request)?;
            Ok(reply(api, version, correlation_id, async move {
                transactions::describe(&context, body)
            }))
        }
        ApiKey::EndTxn => {
            let body = frame::decode_body(&request)?;
            Ok(reply(api, version, correlation_id, async move {
                transactions::end(&context, body, version).await
            }))
        }
        ApiKey::DescribeProducers => {
            let body = frame::decode_body(&request)?;
            Ok(reply(api, version, correlation_id, async move {
                producers::describe_producers(&context, body)
            }))
        }
        ApiKey::CreatePartitions => {
            let body = frame::decode_body(&request)?;
            Ok(reply(api, version, correlation_id, async move {
                topics::create_partitions(&context, body).await
            }))
        }
        ApiKey::DescribeConfigs => {
            let body = frame::decode_body(&request)?;
            Ok(reply(api, version, correlation_id, async move {
                configs::describe(&context, body, version)
            }))
        }
        ApiKey::AlterConfigs => {
            let body = frame::decode_body(&request)?;
            Ok(reply(
                api,
                version,
                correlation_id,
                async move { configs::alter(&context, body).await },
            ))
        }
        ApiKey::IncrementalAlterConfigs => {
            let body = frame::decode_body(&request)?;
            Ok(reply(api, version, correlation_id, async move {
                configs::incremental_alter(&context, body).await
            }))
        }
        ApiKey::DeleteRecords => {
            let body = frame::decode_body(&request)?;
            Ok(reply(api, version, correlation_id, async move {
                records::delete_records(&context, body).await
            }))
        }
        ApiKey::OffsetForLeaderEpoch => {
            let body = frame::decode_body(&request)?;
            Ok(reply(api, version, correlation_id, async move {
                records::offset_for_leader_epoch(&context, body)
            }))
        }
        ApiKey::DescribeCluster => {
            let body = frame::decode_body(&request)?;
            Ok(reply(api, version, correlation_id, async move {
                metadata::describe_cluster(&context, &connection, body)
            }))
        }
        // `parse_request` refuses APIs missing from the versions table.
        other => Err(FrameError::UnsupportedVersion { api: other, version }),
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
/// Every operation allowed (there are no ACLs yet): bits 2..=12, READ
/// through IDEMPOTENT_WRITE.
const ALL_OPERATIONS: i32 = 0b1_1111_1111_1100;

/// Error message text for a response's nullable error message field.
fn message(text: impl ToString) -> Option<StrBytes> {
    Some(StrBytes::from_string(text.to_string()))
}
