//! The REST admin API under `/api/v1`: JSON resources for what the broker
//! holds (overview, topics, consumer groups, queues, exchanges, bindings,
//! client connections, resource alarms, limits, vhosts, poisoned logs), the
//! operations an operator needs (create, declare and delete, bind and
//! unbind, alter configs, purge, reset and commit offsets, peek, get (and
//! ack or reject), publish, redrive, close a connection, change alarm
//! limits, reopen poisoned logs, export and import RabbitMQ definitions),
//! and the
//! OpenAPI document generated from these handlers at
//! `/api/v1/openapi.json`; users, permission entries and ACLs, and the
//! console's login. Every request passes `guard.rs` first (who asks, may
//! they, from this site?). One resource family per file; every error
//! answers with the one shape of `error.rs`. Translates only: rules and
//! state live in the core.

mod acls;
mod alarms;
mod bindings;
pub(crate) mod cluster;
mod connections;
mod definitions;
mod deliveries;
mod error;
mod exchanges;
mod field_table;
mod groups;
pub mod guard;
mod limits;
mod login;
mod logs;
mod messages;
mod overview;
mod permissions;
mod queues;
mod redrive;
pub mod sessions;
mod topics;
mod users;
mod vhosts;

use std::sync::{Arc, LazyLock};

use axum::Router;
use axum::routing::any;
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::HttpState;

pub use error::{ApiError, ErrorBody};

/// Where the admin API is mounted.
pub const BASE_PATH: &str = "/api/v1";

#[derive(OpenApi)]
#[openapi(
    info(title = "Conveyor admin API", description = "Inspect and operate a Conveyor broker: topics, consumer groups, queues, exchanges, connections."),
    components(schemas(ErrorBody)),
    tags(
        (name = "overview", description = "The broker at a glance"),
        (name = "topics", description = "Kafka topics and their partitions"),
        (name = "groups", description = "Kafka consumer and share groups, their committed offsets and share-partition start offsets"),
        (name = "queues", description = "Queues (AMQP and SQS), their messages and dead letters"),
        (name = "exchanges", description = "Exchanges and their bindings"),
        (name = "connections", description = "Open Kafka and AMQP client connections"),
        (name = "vhosts", description = "AMQP virtual hosts: isolated namespaces of queues, exchanges and bindings"),
        (name = "users", description = "Users (SCRAM credentials, tags, AWS keys), the console's login, who is asking"),
        (name = "permissions", description = "RabbitMQ permission entries: per user and vhost, configure/write/read patterns"),
        (name = "acls", description = "Kafka ACL bindings"),
        (name = "definitions", description = "The topology in RabbitMQ's definitions format: export and import"),
    )
)]
struct ApiDoc;

/// The admin API's routes and its OpenAPI document, built once.
fn parts() -> (Router<Arc<HttpState>>, utoipa::openapi::OpenApi) {
    let api = OpenApiRouter::new()
        .routes(routes!(overview::overview))
        .routes(routes!(alarms::status, alarms::set_limits))
        .routes(routes!(limits::status))
        .routes(routes!(cluster::status))
        .routes(routes!(cluster::add_member))
        .routes(routes!(cluster::remove_member))
        .routes(routes!(logs::list_poisoned))
        .routes(routes!(logs::reopen))
        .routes(routes!(topics::list, topics::create))
        .routes(routes!(topics::describe, topics::delete))
        .routes(routes!(topics::alter_configs))
        .routes(routes!(groups::list))
        .routes(routes!(groups::describe, groups::delete))
        .routes(routes!(groups::reset_offsets))
        .routes(routes!(groups::commit_offsets))
        .routes(routes!(messages::peek_partition))
        .routes(routes!(messages::publish_to_topic))
        .routes(routes!(messages::publish_batch_to_topic))
        .routes(routes!(queues::list))
        .routes(routes!(queues::describe, queues::declare, queues::delete))
        .routes(routes!(queues::purge))
        .routes(routes!(deliveries::get))
        .routes(routes!(messages::peek_queue, messages::publish_to_queue))
        .routes(routes!(redrive::redrive))
        .routes(routes!(exchanges::list))
        .routes(routes!(exchanges::describe, exchanges::declare, exchanges::delete))
        .routes(routes!(messages::publish_to_exchange))
        .routes(routes!(bindings::list, bindings::add, bindings::remove))
        .routes(routes!(connections::list))
        .routes(routes!(connections::close))
        .routes(routes!(vhosts::list))
        .routes(routes!(vhosts::create, vhosts::delete))
        .routes(routes!(users::whoami))
        .routes(routes!(users::list))
        .routes(routes!(users::describe, users::put, users::delete))
        .routes(routes!(users::set_password))
        .routes(routes!(login::login))
        .routes(routes!(login::logout))
        .routes(routes!(permissions::list))
        .routes(routes!(permissions::set, permissions::clear))
        .routes(routes!(acls::list, acls::create, acls::delete))
        .routes(routes!(definitions::export, definitions::import));
    let (router, openapi) = OpenApiRouter::with_openapi(ApiDoc::openapi())
        .nest(BASE_PATH, api)
        .split_for_parts();
    // Only the admin routes answer a wrong method in the JSON error shape;
    // the rest of the listener keeps its own behaviour.
    (router.method_not_allowed_fallback(error::method_not_allowed), openapi)
}

/// The OpenAPI document, rendered once.
static OPENAPI_JSON: LazyLock<String> = LazyLock::new(|| parts().1.to_json().unwrap_or_else(|_| "{}".to_owned()));

/// Every admin route, with the OpenAPI document and a JSON 404 for any
/// other path under [`BASE_PATH`].
pub fn router() -> Router<Arc<HttpState>> {
    overview::mark_start();
    parts()
        .0
        .route(&format!("{BASE_PATH}/openapi.json"), axum::routing::get(openapi_json))
        .route(BASE_PATH, any(error::unknown_path))
        .route(&format!("{BASE_PATH}/{{*rest}}"), any(error::unknown_path))
}

/// `GET /api/v1/openapi.json`.
async fn openapi_json() -> ([(axum::http::header::HeaderName, &'static str); 1], &'static str) {
    ([(axum::http::header::CONTENT_TYPE, "application/json")], OPENAPI_JSON.as_str())
}
