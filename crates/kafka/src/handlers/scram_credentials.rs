//! KIP-554: AlterUserScramCredentials and DescribeUserScramCredentials over
//! the core's user store. The client sends a salt, an iteration count and
//! the salted password (never the password); the core derives the stored
//! and server keys. ALTER and DESCRIBE on the cluster authorize them, as in Kafka.

use std::collections::BTreeMap;

use conveyor_core::CoreError;
use conveyor_core::auth::{AuthError, Operation, Resource, ScramCredential, ScramMechanism};
use kafka_protocol::ResponseError;
use kafka_protocol::messages::alter_user_scram_credentials_response::AlterUserScramCredentialsResult;
use kafka_protocol::messages::describe_user_scram_credentials_response::{CredentialInfo, DescribeUserScramCredentialsResult};
use kafka_protocol::messages::{
    AlterUserScramCredentialsRequest, AlterUserScramCredentialsResponse, DescribeUserScramCredentialsRequest,
    DescribeUserScramCredentialsResponse,
};
use kafka_protocol::protocol::StrBytes;

use super::message;
use crate::Context;
use crate::connection::ConnectionInfo;

/// Kafka's wire codes of the SCRAM mechanisms.
fn mechanism_code(mechanism: ScramMechanism) -> i8 {
    match mechanism {
        ScramMechanism::Sha256 => 1,
        ScramMechanism::Sha512 => 2,
    }
}

fn mechanism_from_code(code: i8) -> Option<ScramMechanism> {
    ScramMechanism::ALL.into_iter().find(|mechanism| mechanism_code(*mechanism) == code)
}

/// A failure of one user's changes: Kafka's code and message.
type Failure = (ResponseError, String);

pub async fn alter(
    context: &Context,
    connection: &ConnectionInfo,
    request: AlterUserScramCredentialsRequest,
) -> AlterUserScramCredentialsResponse {
    // Each user's changes, in request order; a user named twice for one mechanism is refused.
    let mut users: BTreeMap<String, Result<Vec<Change>, Failure>> = BTreeMap::new();
    let mut add = |name: String, change: Result<Change, Failure>| {
        let entry = users.entry(name).or_insert_with(|| Ok(Vec::new()));
        match (entry.as_mut(), change) {
            (Ok(changes), Ok(change)) => {
                if changes.iter().any(|existing| existing.mechanism() == change.mechanism()) {
                    *entry = Err((
                        ResponseError::DuplicateResource,
                        "A user credential cannot be altered twice in the same request".into(),
                    ));
                } else {
                    changes.push(change);
                }
            }
            (Ok(_), Err(failure)) => *entry = Err(failure),
            (Err(_), _) => {}
        }
    };
    for deletion in request.deletions {
        let change = match mechanism_from_code(deletion.mechanism) {
            Some(mechanism) => Ok(Change::Delete(mechanism)),
            None => Err(unknown_mechanism(deletion.mechanism)),
        };
        add(deletion.name.to_string(), change);
    }
    for upsertion in request.upsertions {
        let change = match mechanism_from_code(upsertion.mechanism) {
            Some(mechanism) => match u32::try_from(upsertion.iterations) {
                Ok(iterations) => Ok(Change::Upsert(ScramCredential::from_salted_password(
                    mechanism,
                    upsertion.salt.to_vec(),
                    iterations,
                    &upsertion.salted_password,
                ))),
                Err(_) => Err((
                    ResponseError::UnacceptableCredential,
                    format!("{} iterations is not a valid count", upsertion.iterations),
                )),
            },
            None => Err(unknown_mechanism(upsertion.mechanism)),
        };
        add(upsertion.name.to_string(), change);
    }
    let authorized = connection.allowed(context, &Resource::Cluster, Operation::Alter);
    let mut results = Vec::with_capacity(users.len());
    for (name, changes) in users {
        let outcome = if !authorized {
            Err((ResponseError::ClusterAuthorizationFailed, "Cluster authorization failed.".into()))
        } else if name.is_empty() {
            Err((ResponseError::UnacceptableCredential, "Username must not be empty".into()))
        } else {
            match changes {
                Ok(changes) => apply(context, &name, changes).await,
                Err(failure) => Err(failure),
            }
        };
        let mut result = AlterUserScramCredentialsResult::default().with_user(StrBytes::from_string(name));
        if let Err((error, text)) = outcome {
            result.error_code = error.code();
            result.error_message = message(text);
        }
        results.push(result);
    }
    AlterUserScramCredentialsResponse::default().with_results(results)
}

enum Change {
    Upsert(ScramCredential),
    Delete(ScramMechanism),
}

impl Change {
    fn mechanism(&self) -> ScramMechanism {
        match self {
            Change::Upsert(credential) => credential.mechanism,
            Change::Delete(mechanism) => *mechanism,
        }
    }
}

async fn apply(context: &Context, name: &str, changes: Vec<Change>) -> Result<(), Failure> {
    for change in changes {
        let outcome = match change {
            Change::Upsert(credential) => context.broker.set_scram_credential(name, credential).await,
            Change::Delete(mechanism) => context.broker.delete_scram_credential(name, mechanism).await,
        };
        outcome.map_err(|error| failure(&error))?;
    }
    Ok(())
}

fn failure(error: &CoreError) -> Failure {
    let code = match error {
        CoreError::Auth(AuthError::NoCredential { .. } | AuthError::UnknownUser(_)) => ResponseError::ResourceNotFound,
        CoreError::Auth(AuthError::Iterations { .. } | AuthError::InvalidUserName(_)) => ResponseError::UnacceptableCredential,
        other => crate::errors::core_error(other),
    };
    (code, error.to_string())
}

fn unknown_mechanism(code: i8) -> Failure {
    (
        ResponseError::UnsupportedSaslMechanism,
        format!("Unknown SCRAM mechanism {code} (1: SCRAM-SHA-256, 2: SCRAM-SHA-512)"),
    )
}

pub fn describe(
    context: &Context,
    connection: &ConnectionInfo,
    request: DescribeUserScramCredentialsRequest,
) -> DescribeUserScramCredentialsResponse {
    let mut response = DescribeUserScramCredentialsResponse::default();
    if !connection.allowed(context, &Resource::Cluster, Operation::Describe) {
        response.error_code = ResponseError::ClusterAuthorizationFailed.code();
        response.error_message = message("Cluster authorization failed.");
        return response;
    }
    let users = context.broker.authorizer().users();
    let requested: Vec<String> = match request.users {
        Some(names) if !names.is_empty() => names.into_iter().map(|user| user.name.to_string()).collect(),
        // Null or empty: every user that has a credential.
        _ => users
            .iter()
            .filter(|user| !user.credentials.is_empty())
            .map(|user| user.name.clone())
            .collect(),
    };
    for name in &requested {
        let mut result = DescribeUserScramCredentialsResult::default().with_user(StrBytes::from_string(name.clone()));
        if requested.iter().filter(|other| *other == name).count() > 1 {
            result.error_code = ResponseError::DuplicateResource.code();
            result.error_message = message(format!(
                "Cannot describe SCRAM credentials for the same user twice in a single request: {name}"
            ));
        } else {
            match users
                .iter()
                .find(|user| user.name == *name)
                .filter(|user| !user.credentials.is_empty())
            {
                Some(user) => {
                    result.credential_infos = user
                        .credentials
                        .iter()
                        .map(|credential| {
                            CredentialInfo::default()
                                .with_mechanism(mechanism_code(credential.mechanism))
                                .with_iterations(i32::try_from(credential.iterations).unwrap_or(i32::MAX))
                        })
                        .collect();
                }
                None => {
                    result.error_code = ResponseError::ResourceNotFound.code();
                    result.error_message = message(format!("Attempt to describe a user credential that does not exist: {name}"));
                }
            }
        }
        response.results.push(result);
    }
    response
}
