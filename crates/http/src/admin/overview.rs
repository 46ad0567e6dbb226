//! `GET /api/v1/overview`: the broker at a glance — version, uptime, how
//! many topics, partitions, groups, queues and exchanges exist, messages
//! waiting in queues, bytes stored in logs, traffic totals since the start
//! and rates over the last few seconds, and open connections.

use std::collections::BTreeMap;
use std::sync::{Arc, OnceLock};
use std::time::Instant;

use axum::Json;
use axum::extract::State;
use conveyor_core::stats::Flow;
use serde::Serialize;
use utoipa::ToSchema;

use super::error::{ApiError, ErrorBody, blocking};
use crate::HttpState;

/// When the HTTP front door was built: the process's start, near enough.
static STARTED: OnceLock<Instant> = OnceLock::new();

pub(super) fn mark_start() {
    STARTED.get_or_init(Instant::now);
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Overview {
    /// The broker's version.
    pub version: String,
    pub cluster_id: String,
    pub uptime_ms: u64,
    pub topics: u64,
    pub partitions: u64,
    /// Consumer groups with members or committed offsets.
    pub groups: u64,
    pub queues: u64,
    /// Exchanges, the predeclared ones included.
    pub exchanges: u64,
    /// Queue messages waiting for a consumer, over every queue.
    pub messages_ready: u64,
    /// Queue messages held by consumers and not yet acknowledged, over every queue.
    pub messages_unacked: u64,
    /// Bytes stored in topic partition logs and queue message logs.
    pub bytes_on_disk: u64,
    /// Messages into topics and queues since the process started; the
    /// difference between two reads over their interval is the rate.
    pub messages_in_total: u64,
    /// Messages handed out by Kafka fetches and queue deliveries since the process started.
    pub messages_out_total: u64,
    pub bytes_in_total: u64,
    pub bytes_out_total: u64,
    /// Messages into topics and queues per second, averaged over the last
    /// few seconds (the broker samples its counters every 5 s).
    pub messages_in_per_second: f64,
    /// Messages handed out per second, averaged the same way.
    pub messages_out_per_second: f64,
    /// Open client connections by protocol (`kafka`, `amqp`).
    pub connections: BTreeMap<String, i64>,
}

/// The broker at a glance.
#[utoipa::path(get, path = "/overview", operation_id = "overview", tag = "overview",
    responses((status = 200, body = Overview), (status = 500, body = ErrorBody)))]
pub async fn overview(State(state): State<Arc<HttpState>>) -> Result<Json<Overview>, ApiError> {
    let broker = Arc::clone(&state.broker);
    // Counting touches every log's and cursor's lock: off the reactor.
    let overview = blocking(move || {
        let topics = broker.topics();
        let queues = broker.queues();
        let mut bytes_on_disk = 0;
        let mut partitions = 0;
        for topic in &topics {
            for summary in topic.partition_summaries() {
                partitions += 1;
                bytes_on_disk += summary.size_bytes;
            }
        }
        let (mut messages_ready, mut messages_unacked) = (0, 0);
        for declared in &queues {
            messages_ready += declared.available_count();
            messages_unacked += declared.acquired_count() as u64;
            bytes_on_disk += declared.size_bytes();
        }
        let stats = broker.stats();
        let flows: Vec<Arc<Flow>> = stats.topics().into_values().chain(stats.queues().into_values()).collect();
        let total = |counter: fn(&Flow) -> &std::sync::atomic::AtomicU64| flows.iter().map(|flow| Flow::get(counter(flow))).sum();
        Ok(Overview {
            messages_in_total: total(|flow| &flow.messages_in),
            messages_out_total: total(|flow| &flow.messages_out),
            bytes_in_total: total(|flow| &flow.bytes_in),
            bytes_out_total: total(|flow| &flow.bytes_out),
            // Folded from +0.0: a float sum of nothing is -0.0, which a
            // fresh broker's console would show as "-0.0 msg/s".
            messages_in_per_second: flows.iter().fold(0.0, |sum, flow| sum + flow.rates_per_s().0),
            messages_out_per_second: flows.iter().fold(0.0, |sum, flow| sum + flow.rates_per_s().1),
            connections: broker
                .connections()
                .totals()
                .into_iter()
                .map(|(protocol, open, _channels)| (protocol.name().to_owned(), open as i64))
                .collect(),
            version: env!("CARGO_PKG_VERSION").to_owned(),
            cluster_id: broker.cluster_id(),
            uptime_ms: STARTED.get().map_or(0, |started| started.elapsed().as_millis() as u64),
            topics: topics.len() as u64,
            partitions,
            groups: broker.groups().list().len() as u64,
            queues: queues.len() as u64,
            exchanges: broker.exchanges().len() as u64,
            messages_ready,
            messages_unacked,
            bytes_on_disk,
        })
    })
    .await?;
    Ok(Json(overview))
}
