//! CreateAcls, DescribeAcls and DeleteAcls over the core's ACL bindings:
//! Kafka's wire codes of resource types, pattern types, operations and
//! permission types mapped onto the core's model, and Kafka's filters
//! (ANY, MATCH, LITERAL, PREFIXED). ALTER on the cluster authorizes
//! creating and deleting, DESCRIBE on the cluster describing, as in Kafka.

use std::collections::BTreeMap;

use conveyor_core::auth::{
    Acl, AclFilter, AclOperation, AclPermissionType, AclResourceType, Operation, PatternFilter, PatternType, Resource,
};
use kafka_protocol::ResponseError;
use kafka_protocol::messages::create_acls_response::AclCreationResult;
use kafka_protocol::messages::delete_acls_request::DeleteAclsFilter;
use kafka_protocol::messages::delete_acls_response::{DeleteAclsFilterResult, DeleteAclsMatchingAcl};
use kafka_protocol::messages::describe_acls_response::{AclDescription, DescribeAclsResource};
use kafka_protocol::messages::{
    CreateAclsRequest, CreateAclsResponse, DeleteAclsRequest, DeleteAclsResponse, DescribeAclsRequest, DescribeAclsResponse,
};
use kafka_protocol::protocol::StrBytes;

use super::message;
use crate::Context;
use crate::connection::ConnectionInfo;

/// Kafka's `ANY` code in filters (resource, pattern, operation and permission types alike).
const ANY: i8 = 1;

const RESOURCE_TYPES: [(i8, AclResourceType); 4] = [
    (2, AclResourceType::Topic),
    (3, AclResourceType::Group),
    (4, AclResourceType::Cluster),
    (5, AclResourceType::TransactionalId),
];
const OPERATIONS: [(i8, AclOperation); 11] = [
    (2, AclOperation::All),
    (3, AclOperation::Read),
    (4, AclOperation::Write),
    (5, AclOperation::Create),
    (6, AclOperation::Delete),
    (7, AclOperation::Alter),
    (8, AclOperation::Describe),
    (9, AclOperation::ClusterAction),
    (10, AclOperation::DescribeConfigs),
    (11, AclOperation::AlterConfigs),
    (12, AclOperation::IdempotentWrite),
];
const PERMISSION_TYPES: [(i8, AclPermissionType); 2] = [(2, AclPermissionType::Deny), (3, AclPermissionType::Allow)];
const PATTERN_TYPES: [(i8, PatternType); 2] = [(3, PatternType::Literal), (4, PatternType::Prefixed)];

fn from_code<T: Copy>(table: &[(i8, T)], code: i8) -> Option<T> {
    table.iter().find(|(known, _)| *known == code).map(|(_, value)| *value)
}

fn to_code<T: Copy + PartialEq>(table: &[(i8, T)], value: T) -> i8 {
    table.iter().find(|(_, known)| *known == value).map_or(0, |(code, _)| *code)
}

/// A filter field: `ANY` is `None`; an unknown code is an invalid request.
fn filter_code<T: Copy>(table: &[(i8, T)], code: i8, what: &str) -> Result<Option<T>, String> {
    if code == ANY {
        return Ok(None);
    }
    from_code(table, code).map(Some).ok_or_else(|| format!("unknown {what} {code}"))
}

pub async fn create(context: &Context, connection: &ConnectionInfo, request: CreateAclsRequest) -> CreateAclsResponse {
    let authorized = connection.allowed(context, &Resource::Cluster, Operation::Alter);
    let mut outcomes: Vec<Result<Acl, (ResponseError, String)>> = Vec::with_capacity(request.creations.len());
    for creation in request.creations {
        let outcome = if authorized {
            binding(
                creation.resource_type,
                creation.resource_name.to_string(),
                creation.resource_pattern_type,
                creation.principal.to_string(),
                creation.host.to_string(),
                creation.operation,
                creation.permission_type,
            )
            .map_err(|reason| (ResponseError::InvalidRequest, reason))
        } else {
            Err((ResponseError::ClusterAuthorizationFailed, "Cluster authorization failed.".into()))
        };
        outcomes.push(outcome);
    }
    let valid: Vec<Acl> = outcomes.iter().filter_map(|outcome| outcome.as_ref().ok().cloned()).collect();
    let stored = if valid.is_empty() {
        Ok(())
    } else {
        context.broker.create_acls(valid).await
    };
    let results = outcomes
        .into_iter()
        .map(|outcome| {
            let failure = match (outcome, &stored) {
                (Err(failure), _) => Some(failure),
                (Ok(_), Err(error)) => Some((crate::errors::core_error(error), error.to_string())),
                (Ok(_), Ok(())) => None,
            };
            match failure {
                Some((error, text)) => AclCreationResult::default()
                    .with_error_code(error.code())
                    .with_error_message(message(text)),
                None => AclCreationResult::default(),
            }
        })
        .collect();
    CreateAclsResponse::default().with_results(results)
}

/// A binding from a CreateAcls entry, checked as Kafka checks it.
fn binding(
    resource_type: i8,
    resource_name: String,
    pattern_type: i8,
    principal: String,
    host: String,
    operation: i8,
    permission_type: i8,
) -> Result<Acl, String> {
    let acl = Acl {
        resource_type: from_code(&RESOURCE_TYPES, resource_type).ok_or_else(|| format!("invalid resource type {resource_type}"))?,
        resource_name,
        pattern_type: from_code(&PATTERN_TYPES, pattern_type)
            .ok_or_else(|| format!("invalid pattern type {pattern_type}: LITERAL (3) or PREFIXED (4)"))?,
        principal,
        host,
        operation: from_code(&OPERATIONS, operation).ok_or_else(|| format!("invalid operation {operation}"))?,
        permission_type: from_code(&PERMISSION_TYPES, permission_type)
            .ok_or_else(|| format!("invalid permission type {permission_type}: DENY (2) or ALLOW (3)"))?,
    };
    acl.validate().map_err(|error| error.to_string())?;
    Ok(acl)
}

/// [`filter`] of the seven filter fields, which DescribeAcls's request and
/// each of DeleteAcls's filters hold under the same names (two wire types).
macro_rules! filter_of {
    ($wire:expr) => {{
        let fields = $wire;
        filter(
            fields.resource_type_filter,
            fields.resource_name_filter.map(|name| name.to_string()),
            fields.pattern_type_filter,
            fields.principal_filter.map(|name| name.to_string()),
            fields.host_filter.map(|name| name.to_string()),
            fields.operation,
            fields.permission_type,
        )
    }};
}

#[allow(clippy::too_many_arguments, reason = "the seven fields of Kafka's ACL filter")]
fn filter(
    resource_type: i8,
    resource_name: Option<String>,
    pattern_type: i8,
    principal: Option<String>,
    host: Option<String>,
    operation: i8,
    permission_type: i8,
) -> Result<AclFilter, String> {
    let pattern_type = match pattern_type {
        1 => PatternFilter::Any,
        2 => PatternFilter::Match,
        3 => PatternFilter::Literal,
        4 => PatternFilter::Prefixed,
        other => return Err(format!("unknown pattern type filter {other}")),
    };
    Ok(AclFilter {
        resource_type: filter_code(&RESOURCE_TYPES, resource_type, "resource type")?,
        resource_name,
        pattern_type,
        principal,
        host,
        operation: filter_code(&OPERATIONS, operation, "operation")?,
        permission_type: filter_code(&PERMISSION_TYPES, permission_type, "permission type")?,
    })
}

pub async fn describe(context: &Context, connection: &ConnectionInfo, request: DescribeAclsRequest) -> DescribeAclsResponse {
    let mut response = DescribeAclsResponse::default();
    if !connection.allowed(context, &Resource::Cluster, Operation::Describe) {
        response.error_code = ResponseError::ClusterAuthorizationFailed.code();
        response.error_message = message("Cluster authorization failed.");
        return response;
    }
    let filter = match filter_of!(request) {
        Ok(filter) => filter,
        Err(reason) => {
            response.error_code = ResponseError::InvalidRequest.code();
            response.error_message = message(reason);
            return response;
        }
    };
    // One entry per resource pattern, its ACLs inside, as Kafka groups them.
    let mut resources: BTreeMap<(AclResourceType, String, PatternType), Vec<AclDescription>> = BTreeMap::new();
    for acl in context.broker.acls(&filter).await {
        resources
            .entry((acl.resource_type, acl.resource_name.clone(), acl.pattern_type))
            .or_default()
            .push(
                AclDescription::default()
                    .with_principal(StrBytes::from_string(acl.principal))
                    .with_host(StrBytes::from_string(acl.host))
                    .with_operation(to_code(&OPERATIONS, acl.operation))
                    .with_permission_type(to_code(&PERMISSION_TYPES, acl.permission_type)),
            );
    }
    response.resources = resources
        .into_iter()
        .map(|((resource_type, name, pattern_type), acls)| {
            DescribeAclsResource::default()
                .with_resource_type(to_code(&RESOURCE_TYPES, resource_type))
                .with_resource_name(StrBytes::from_string(name))
                .with_pattern_type(to_code(&PATTERN_TYPES, pattern_type))
                .with_acls(acls)
        })
        .collect();
    response
}

pub async fn delete(context: &Context, connection: &ConnectionInfo, request: DeleteAclsRequest) -> DeleteAclsResponse {
    let authorized = connection.allowed(context, &Resource::Cluster, Operation::Alter);
    let parsed: Vec<Result<AclFilter, (ResponseError, String)>> = request
        .filters
        .into_iter()
        .map(|wire: DeleteAclsFilter| {
            if !authorized {
                return Err((ResponseError::ClusterAuthorizationFailed, "Cluster authorization failed.".into()));
            }
            filter_of!(wire).map_err(|reason| (ResponseError::InvalidRequest, reason))
        })
        .collect();
    let filters: Vec<AclFilter> = parsed.iter().filter_map(|parsed| parsed.as_ref().ok().cloned()).collect();
    let deleted = if filters.is_empty() {
        Ok(Vec::new())
    } else {
        context.broker.delete_acls(&filters).await
    };
    let results = parsed
        .into_iter()
        .map(|parsed| match (parsed, &deleted) {
            (Err((error, text)), _) => DeleteAclsFilterResult::default()
                .with_error_code(error.code())
                .with_error_message(message(text)),
            (Ok(_), Err(error)) => DeleteAclsFilterResult::default()
                .with_error_code(crate::errors::core_error(error).code())
                .with_error_message(message(error)),
            (Ok(filter), Ok(deleted)) => DeleteAclsFilterResult::default().with_matching_acls(
                deleted
                    .iter()
                    .filter(|acl| filter.matches(acl))
                    .map(|acl| {
                        DeleteAclsMatchingAcl::default()
                            .with_resource_type(to_code(&RESOURCE_TYPES, acl.resource_type))
                            .with_resource_name(StrBytes::from_string(acl.resource_name.clone()))
                            .with_pattern_type(to_code(&PATTERN_TYPES, acl.pattern_type))
                            .with_principal(StrBytes::from_string(acl.principal.clone()))
                            .with_host(StrBytes::from_string(acl.host.clone()))
                            .with_operation(to_code(&OPERATIONS, acl.operation))
                            .with_permission_type(to_code(&PERMISSION_TYPES, acl.permission_type))
                    })
                    .collect(),
            ),
        })
        .collect();
    DeleteAclsResponse::default().with_filter_results(results)
}
