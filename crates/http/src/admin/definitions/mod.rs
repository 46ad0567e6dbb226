//! `/api/v1/definitions`: the broker's topology in RabbitMQ's definitions
//! format — exported (vhosts, users, permissions,
//! queues with their arguments, exchanges, bindings) and imported, so a
//! team moves from RabbitMQ with `rabbitmqctl export_definitions` or
//! `rabbitmqadmin export`. Importing declares each object through the same
//! paths as the queue, exchange and binding endpoints (the AMQP door's
//! checks), in dependency order; what Conveyor has no equivalent for
//! (policies, parameters, topic permissions, tags it does not know, plugin
//! exchange types) is reported as skipped. RabbitMQ's password hashes
//! cannot become SCRAM credentials: an imported user logs in with its
//! RabbitMQ password over PLAIN (AMQP, HTTP Basic, Kafka SASL/PLAIN) until
//! its password is set here, which gives it SCRAM credentials too.

mod document;

use std::collections::BTreeSet;
use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use conveyor_core::auth::{Permission, Principal, RabbitHashing, RabbitPasswordHash, Tag};
use conveyor_core::exchange::{DEFAULT_EXCHANGE, ExchangeKind, is_predeclared};
use conveyor_core::{Broker, CoreError, VirtualHost, vhost};
use serde_json::Value;

use document::{
    BindingDefinition, Definitions, ExchangeDefinition, Imported, PermissionDefinition, QueueDefinition, Skipped, Tags, UserDefinition,
    VhostDefinition,
};

use super::bindings::{self, BindingRequest, DestinationType};
use super::error::{ApiError, ApiJson, ErrorBody};
use super::exchanges::{self, DeclareExchange};
use super::field_table;
use super::queues::{self, DeclareQueue};
use crate::HttpState;

/// Everything the broker defines, in RabbitMQ's definitions format
/// (a user's password hash is the one imported from RabbitMQ while it has
/// not set its password here; empty otherwise: SCRAM credentials cannot
/// become RabbitMQ hashes).
#[utoipa::path(get, operation_id = "export_definitions", path = "/definitions", tag = "definitions",
    responses((status = 200, body = Definitions), (status = 500, body = ErrorBody)))]
pub async fn export(State(state): State<Arc<HttpState>>) -> Json<Definitions> {
    let broker = &state.broker;
    let vhosts = broker.vhosts();
    let users = broker
        .authorizer()
        .users()
        .into_iter()
        .map(|user| UserDefinition {
            name: user.name.clone(),
            password_hash: user
                .rabbit_password_hash
                .as_ref()
                .map(RabbitPasswordHash::to_base64)
                .unwrap_or_default(),
            hashing_algorithm: Some(
                user.rabbit_password_hash
                    .as_ref()
                    .map_or(RabbitHashing::DEFAULT, |hash| hash.hashing)
                    .name()
                    .to_owned(),
            ),
            tags: Tags::List(user.tags.iter().map(|tag| tag.name().to_owned()).collect()),
            limits: None,
        })
        .collect();
    let permissions = broker
        .permissions()
        .await
        .into_iter()
        .map(|(user, vhost, permission)| PermissionDefinition {
            user,
            vhost,
            configure: permission.configure,
            write: permission.write,
            read: permission.read,
        })
        .collect();
    let queues = broker
        .queues()
        .iter()
        .map(|declared| {
            let (vhost, name) = vhost::split(&declared.name);
            let definition = declared.definition();
            QueueDefinition {
                name: name.to_owned(),
                vhost: vhost.into_owned(),
                durable: definition.durable,
                auto_delete: definition.auto_delete,
                arguments: definition
                    .arguments
                    .iter()
                    .map(|(key, text)| (key.clone(), field_table::json_of_text(key, text)))
                    .collect(),
            }
        })
        .collect();
    let mut exchanges = Vec::new();
    let mut bindings = Vec::new();
    for exchange in broker.exchanges() {
        let (vhost, name) = vhost::split(&exchange.name);
        for binding in bindings::bindings_of(broker, &exchange.name) {
            bindings.push(BindingDefinition {
                source: binding.source,
                vhost: binding.vhost,
                destination: binding.destination,
                destination_type: binding.destination_type.as_str().to_owned(),
                routing_key: binding.routing_key,
                arguments: binding.arguments.as_object().cloned().unwrap_or_default(),
            });
        }
        if name == DEFAULT_EXCHANGE || is_predeclared(&exchange.name) {
            continue;
        }
        let mut arguments = serde_json::Map::new();
        if let Some(alternate) = &exchange.alternate_exchange {
            arguments.insert(exchanges::ALTERNATE_EXCHANGE.to_owned(), Value::String(alternate.clone()));
        }
        exchanges.push(ExchangeDefinition {
            name: name.to_owned(),
            vhost: vhost.into_owned(),
            kind: exchange.kind.as_str().to_owned(),
            durable: exchange.durable,
            auto_delete: exchange.auto_delete,
            internal: exchange.internal,
            arguments,
        });
    }
    Json(Definitions {
        rabbit_version: None,
        product_name: Some("Conveyor".to_owned()),
        product_version: Some(env!("CARGO_PKG_VERSION").to_owned()),
        users,
        vhosts: vhosts
            .iter()
            .map(|vhost| VhostDefinition {
                name: vhost.name().to_owned(),
            })
            .collect(),
        permissions,
        queues,
        exchanges,
        bindings,
        ..Definitions::default()
    })
}

/// Imports a definitions document (RabbitMQ's format): vhosts, users,
/// permissions, exchanges, queues, then bindings, each declared as its own
/// endpoint declares it, so importing again changes nothing. Stops at the
/// first object refused, naming it (what came before stays); reports what
/// it skipped and the users left without a password.
#[utoipa::path(post, operation_id = "import_definitions", path = "/definitions", tag = "definitions",
    request_body = Definitions,
    responses(
        (status = 200, body = Imported),
        (status = 400, description = "an object refused, named in the message", body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 415, body = ErrorBody), (status = 422, body = ErrorBody),
    ))]
pub async fn import(State(state): State<Arc<HttpState>>, ApiJson(document): ApiJson<Definitions>) -> Result<Json<Imported>, ApiError> {
    let broker = &state.broker;
    let mut imported = Imported::default();
    for skipped in &document.policies {
        imported.skip(
            "policy",
            name_of(skipped),
            vhost_of(skipped),
            "policies are not supported: set x-… arguments on the queues",
        );
    }
    for skipped in &document.parameters {
        imported.skip(
            "parameter",
            name_of(skipped),
            vhost_of(skipped),
            "runtime parameters (shovels, federation) are not supported",
        );
    }
    for skipped in &document.topic_permissions {
        let user = skipped.get("user").and_then(Value::as_str).unwrap_or_default().to_owned();
        imported.skip("topic_permission", user, vhost_of(skipped), "topic permissions are not supported");
    }
    for definition in &document.vhosts {
        broker
            .create_vhost(&definition.name)
            .await
            .map_err(|error| refused("vhost", &definition.name, None, error.into()))?;
        imported.vhosts += 1;
    }
    for definition in &document.users {
        import_user(broker, definition, &mut imported).await?;
    }
    for definition in &document.permissions {
        if is_anonymous(broker, &definition.user) {
            imported.skip(
                "permission",
                definition.user.clone(),
                Some(definition.vhost.clone()),
                "guest is Conveyor's anonymous identity: [auth] anonymous decides what it may do",
            );
            continue;
        }
        let permission = Permission {
            configure: definition.configure.clone(),
            write: definition.write.clone(),
            read: definition.read.clone(),
        };
        broker
            .set_permission(&definition.user, &definition.vhost, permission)
            .await
            .map_err(|error| refused("permission of user", &definition.user, Some(&definition.vhost), error.into()))?;
        imported.permissions += 1;
    }
    for definition in &document.exchanges {
        import_exchange(broker, definition, &mut imported).await?;
    }
    for definition in &document.queues {
        let vhost = vhost_named(broker, &definition.vhost)?;
        let body = DeclareQueue {
            durable: definition.durable,
            auto_delete: definition.auto_delete,
            arguments: definition.arguments.clone(),
        };
        queues::declare_in(broker, &vhost, &definition.name, &body)
            .await
            .map_err(|error| refused("queue", &definition.name, Some(&definition.vhost), error))?;
        imported.queues += 1;
    }
    for definition in &document.bindings {
        import_binding(broker, definition, &mut imported).await?;
    }
    Ok(Json(imported))
}

/// Whether `user` names Conveyor's anonymous identity rather than a user
/// of the store: RabbitMQ's default `guest`, while no such user exists.
/// Importing it would make `guest` a user without a password, refusing
/// the guest/guest logins that `[auth] anonymous` lets in.
fn is_anonymous(broker: &Broker, user: &str) -> bool {
    user == Principal::Anonymous.name() && broker.authorizer().user(user).is_none()
}

async fn import_user(broker: &Broker, definition: &UserDefinition, imported: &mut Imported) -> Result<(), ApiError> {
    if is_anonymous(broker, &definition.name) {
        imported.skip(
            "user",
            definition.name.clone(),
            None,
            "guest is Conveyor's anonymous identity, allowed by [auth] anonymous (loopback by default)",
        );
        return Ok(());
    }
    let mut tags = BTreeSet::new();
    for name in definition.tags.names() {
        match name.parse::<Tag>() {
            Ok(tag) => {
                tags.insert(tag);
            }
            Err(_) => imported.skip(
                "user_tag",
                name,
                None,
                &format!(
                    "user {:?}: Conveyor knows the tags administrator and monitoring only",
                    definition.name
                ),
            ),
        }
    }
    // An existing user keeps its credentials and AWS key.
    let existing = broker.authorizer().user(&definition.name);
    let aws_access_key = existing.as_ref().and_then(|user| user.aws_access_key.clone());
    broker
        .put_user(&definition.name, None, tags, aws_access_key)
        .await
        .map_err(|error| refused("user", &definition.name, None, error.into()))?;
    let has_password = match password_hash(definition, imported) {
        Some(hash) => broker
            .set_rabbit_password_hash(&definition.name, hash)
            .await
            .map_err(|error| refused("user", &definition.name, None, error.into()))?,
        None => existing.is_some_and(|user| user.has_password()),
    };
    if !has_password {
        imported.users_without_password.push(definition.name.clone());
    }
    imported.users += 1;
    Ok(())
}

/// The user's RabbitMQ password hash, if it has one Conveyor can check
/// (an unknown algorithm or a malformed hash is reported as skipped).
fn password_hash(definition: &UserDefinition, imported: &mut Imported) -> Option<RabbitPasswordHash> {
    if definition.password_hash.is_empty() {
        return None;
    }
    let algorithm = definition.hashing_algorithm.as_deref().unwrap_or(RabbitHashing::DEFAULT.name());
    let parsed = RabbitHashing::from_name(algorithm)
        .ok_or_else(|| format!("unknown password hashing {algorithm:?}"))
        .and_then(|hashing| RabbitPasswordHash::parse(hashing, &definition.password_hash).map_err(|error| error.to_string()));
    parsed
        .map_err(|reason| {
            let reason = format!("user {:?}: {reason}; set its password anew", definition.name);
            imported.skip("user_password", definition.name.clone(), None, &reason);
        })
        .ok()
}

async fn import_exchange(broker: &Broker, definition: &ExchangeDefinition, imported: &mut Imported) -> Result<(), ApiError> {
    let vhost = vhost_named(broker, &definition.vhost)?;
    let resource = vhost
        .resource(&definition.name)
        .map_err(|error| refused("exchange", &definition.name, Some(&definition.vhost), CoreError::from(error).into()))?;
    if definition.name == DEFAULT_EXCHANGE || is_predeclared(&resource) {
        // Every vhost has them already.
        return Ok(());
    }
    if definition.kind.parse::<ExchangeKind>().is_err() {
        imported.skip(
            "exchange",
            definition.name.clone(),
            Some(definition.vhost.clone()),
            &format!(
                "exchange type {:?} is not supported (direct, fanout, topic and headers are)",
                definition.kind
            ),
        );
        return Ok(());
    }
    let body = DeclareExchange {
        kind: definition.kind.clone(),
        durable: definition.durable,
        auto_delete: definition.auto_delete,
        internal: definition.internal,
        arguments: definition.arguments.clone(),
    };
    let exchange = exchanges::definition(resource, &body)?;
    broker
        .declare_exchange(exchange)
        .await
        .map_err(|error| refused("exchange", &definition.name, Some(&definition.vhost), error.into()))?;
    imported.exchanges += 1;
    Ok(())
}

async fn import_binding(broker: &Broker, definition: &BindingDefinition, imported: &mut Imported) -> Result<(), ApiError> {
    let what = format!(
        "{} -> {} {}",
        definition.source, definition.destination_type, definition.destination
    );
    let destination_type = match definition.destination_type.as_str() {
        "queue" => DestinationType::Queue,
        "exchange" => DestinationType::Exchange,
        "topic" => DestinationType::Topic,
        other => {
            return Err(ApiError::bad_request(format!(
                "binding {what} in vhost {:?}: unknown destination_type {other:?}",
                definition.vhost
            )));
        }
    };
    if definition.source.is_empty() {
        // The default exchange's implicit bindings (RabbitMQ never exports them): nothing to do.
        return Ok(());
    }
    let vhost = vhost_named(broker, &definition.vhost)?;
    let request = BindingRequest {
        source: definition.source.clone(),
        destination: definition.destination.clone(),
        destination_type,
        routing_key: definition.routing_key.clone(),
        arguments: definition.arguments.clone(),
    };
    let (source, binding) =
        bindings::resolve(&vhost, &request).map_err(|error| refused("binding", &what, Some(&definition.vhost), error))?;
    let bound = broker
        .bindings(&source)
        .map_err(|error| refused("binding", &what, Some(&definition.vhost), error.into()))?;
    if !bound.contains(&binding) {
        broker
            .bind(&source, binding)
            .await
            .map_err(|error| refused("binding", &what, Some(&definition.vhost), error.into()))?;
    }
    imported.bindings += 1;
    Ok(())
}

/// The vhost an object names, which the document or the broker must define.
fn vhost_named(broker: &Broker, name: &str) -> Result<VirtualHost, ApiError> {
    broker
        .vhost(name)
        .ok_or_else(|| ApiError::not_found(format!("vhost {name:?} does not exist (define it in the document's vhosts)")))
}

/// An error naming the object of the document that was refused.
fn refused(kind: &str, name: &str, vhost: Option<&str>, error: ApiError) -> ApiError {
    let place = vhost.map(|vhost| format!(" in vhost {vhost:?}")).unwrap_or_default();
    ApiError::new(error.status, format!("{kind} {name:?}{place}: {}", error.message))
}

fn name_of(object: &Value) -> String {
    object.get("name").and_then(Value::as_str).unwrap_or_default().to_owned()
}

fn vhost_of(object: &Value) -> Option<String> {
    object.get("vhost").and_then(Value::as_str).map(str::to_owned)
}

impl Imported {
    fn skip(&mut self, kind: &str, name: String, vhost: Option<String>, reason: &str) {
        *self.skipped_by_kind.entry(kind.to_owned()).or_default() += 1;
        self.skipped.push(Skipped {
            kind: kind.to_owned(),
            name,
            vhost,
            reason: reason.to_owned(),
        });
    }
}
