//! The Kafka APIs Conveyor serves and the version range of each, advertised
//! through ApiVersions. One table: a version is listed only if every field it
//! adds is handled, because librdkafka uses whatever the broker advertises.

use std::sync::LazyLock;

use kafka_protocol::messages::ApiKey;

/// (API, min version, max version) for every API this broker implements.
pub const SUPPORTED: &[(ApiKey, i16, i16)] = &[
    (ApiKey::Produce, 3, 13),
    (ApiKey::Fetch, 4, 18),
    (ApiKey::ListOffsets, 1, 10),
    (ApiKey::Metadata, 0, 13),
    (ApiKey::ApiVersions, 0, 4),
    (ApiKey::CreateTopics, 2, 7),
    (ApiKey::DeleteTopics, 1, 6),
    (ApiKey::FindCoordinator, 0, 4),
    (ApiKey::JoinGroup, 0, 7),
    (ApiKey::SyncGroup, 0, 5),
    (ApiKey::Heartbeat, 0, 4),
    (ApiKey::LeaveGroup, 0, 5),
    (ApiKey::OffsetCommit, 2, 9),
    (ApiKey::OffsetFetch, 1, 9),
    (ApiKey::ConsumerGroupHeartbeat, 0, 1),
    (ApiKey::ConsumerGroupDescribe, 0, 1),
    (ApiKey::DescribeGroups, 0, 6),
    (ApiKey::ListGroups, 0, 5),
    (ApiKey::DeleteGroups, 0, 2),
    (ApiKey::OffsetDelete, 0, 0),
    (ApiKey::InitProducerId, 0, 5),
    (ApiKey::DescribeProducers, 0, 0),
    (ApiKey::AddPartitionsToTxn, 0, 4),
    (ApiKey::EndTxn, 0, 4),
    (ApiKey::AddOffsetsToTxn, 0, 3),
    (ApiKey::TxnOffsetCommit, 0, 3),
    (ApiKey::ListTransactions, 0, 1),
    (ApiKey::DescribeTransactions, 0, 0),
    (ApiKey::CreatePartitions, 0, 3),
    (ApiKey::DescribeConfigs, 1, 4),
    (ApiKey::AlterConfigs, 0, 2),
    (ApiKey::IncrementalAlterConfigs, 0, 1),
    (ApiKey::DeleteRecords, 0, 2),
    (ApiKey::OffsetForLeaderEpoch, 2, 4),
    (ApiKey::DescribeCluster, 0, 2),
    (ApiKey::DescribeLogDirs, 1, 4),
    (ApiKey::ShareGroupHeartbeat, 1, 1),
    (ApiKey::ShareGroupDescribe, 1, 1),
    (ApiKey::ShareFetch, 1, 1),
    (ApiKey::ShareAcknowledge, 1, 1),
    (ApiKey::DescribeShareGroupOffsets, 0, 0),
    (ApiKey::AlterShareGroupOffsets, 0, 0),
    (ApiKey::DeleteShareGroupOffsets, 0, 0),
    (ApiKey::SaslHandshake, 0, 1),
    (ApiKey::SaslAuthenticate, 0, 2),
    (ApiKey::DescribeAcls, 1, 3),
    (ApiKey::CreateAcls, 1, 3),
    (ApiKey::DeleteAcls, 1, 3),
    (ApiKey::DescribeUserScramCredentials, 0, 0),
    (ApiKey::AlterUserScramCredentials, 0, 0),
];

/// The supported version range of `api`, if it is served at all.
pub fn range(api: ApiKey) -> Option<(i16, i16)> {
    SUPPORTED.iter().find(|(key, _, _)| *key == api).map(|(_, min, max)| (*min, *max))
}

pub fn is_supported(api: ApiKey, version: i16) -> bool {
    range(api).is_some_and(|(min, max)| (min..=max).contains(&version))
}

/// Kafka's names of the served APIs: the codec's variant names are Kafka's
/// own (`Produce`, `FindCoordinator`), spelled out once.
static NAMES: LazyLock<Vec<(ApiKey, String)>> = LazyLock::new(|| SUPPORTED.iter().map(|(api, _, _)| (*api, format!("{api:?}"))).collect());

/// Kafka's name of `api` (`Produce`, `Fetch`), for metrics; `unknown` for an API not served.
pub fn name(api: ApiKey) -> &'static str {
    NAMES
        .iter()
        .find(|(key, _)| *key == api)
        .map_or("unknown", |(_, name)| name.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn served_apis_are_named_as_kafka_names_them() {
        assert_eq!(
            (name(ApiKey::Produce), name(ApiKey::FindCoordinator)),
            ("Produce", "FindCoordinator")
        );
        assert_eq!(name(ApiKey::ElectLeaders), "unknown");
    }

    #[test]
    fn every_advertised_range_is_one_the_codec_can_decode() {
        for (api, min, max) in SUPPORTED {
            let codec = api.valid_versions();
            assert!(
                codec.min <= *min && *max <= codec.max,
                "{api:?} {min}..={max} outside the codec's {codec}"
            );
        }
    }

    #[test]
    fn kafkajs_maxima_have_a_supported_version_at_or_below_them() {
        // kafkajs 2.2 speaks only these versions at most.
        for (api, kafkajs_max) in [
            (ApiKey::Produce, 7),
            (ApiKey::Fetch, 11),
            (ApiKey::Metadata, 6),
            (ApiKey::ListOffsets, 3),
            (ApiKey::ApiVersions, 2),
            (ApiKey::OffsetCommit, 5),
            (ApiKey::OffsetFetch, 4),
            (ApiKey::FindCoordinator, 2),
            (ApiKey::JoinGroup, 5),
            (ApiKey::SyncGroup, 3),
            (ApiKey::Heartbeat, 3),
        ] {
            let (min, _) = range(api).expect("supported");
            assert!(min <= kafkajs_max, "{api:?}");
        }
    }
}
