//! The one authorizer every door asks: principal × resource × operation →
//! allow or deny, from the users and grants of the catalog. Rules: the
//! anonymous identity and users tagged `administrator` may do everything;
//! anyone else only what is granted — on a vhost's queues and exchanges by
//! RabbitMQ's permission entries, on Kafka's resources by ACLs (deny wins,
//! no ACL no access). Also checks passwords and counts failures. Knows no
//! wire format: each door maps its request onto these terms and answers a
//! refusal in its protocol's words.

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;
use std::sync::Arc;

use arc_swap::ArcSwap;
use parking_lot::RwLock;

use super::acl::{Acl, AclPermissionType, PatternType};
use super::failures::AuthFailures;
use super::permission::CompiledPermission;
use super::policy::AuthPolicy;
use super::resource::{Operation, Principal, Resource};
use super::scram::ScramCredential;
use super::state::AuthState;
use super::user::User;

/// A refused request, in RabbitMQ's words:
/// `configure access to queue 'q' in vhost '/' refused for user 'alice'`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{operation} access to {resource} refused for user '{user}'")]
pub struct Denied {
    pub operation: &'static str,
    pub resource: String,
    pub user: String,
}

/// What the authorizer decides from: derived from the catalog's
/// [`AuthState`] after every change, swapped in whole.
#[derive(Debug, Default)]
struct View {
    users: BTreeMap<String, User>,
    /// (user, vhost) → compiled entry.
    permissions: HashMap<(String, String), CompiledPermission>,
    acls: Vec<Acl>,
    /// AWS access key id → user name.
    access_keys: HashMap<String, String>,
}

impl View {
    fn new(state: &AuthState) -> View {
        let mut permissions = HashMap::new();
        for (user, entries) in &state.permissions {
            for (vhost, permission) in entries {
                // Patterns are checked when granted; one that no longer
                // compiles grants nothing.
                if let Ok(compiled) = permission.compile() {
                    permissions.insert((user.clone(), vhost.clone()), compiled);
                }
            }
        }
        let access_keys = state
            .users
            .values()
            .filter_map(|user| {
                user.aws_access_key
                    .as_ref()
                    .map(|key| (key.access_key_id.clone(), user.name.clone()))
            })
            .collect();
        View {
            users: state.users.clone(),
            permissions,
            acls: state.acls.iter().cloned().collect(),
            access_keys,
        }
    }
}

#[derive(Debug)]
pub struct Authorizer {
    policy: RwLock<AuthPolicy>,
    view: ArcSwap<View>,
    failures: AuthFailures,
}

impl Authorizer {
    pub fn new(state: &AuthState) -> Authorizer {
        Authorizer {
            policy: RwLock::new(AuthPolicy::default()),
            view: ArcSwap::from_pointee(View::new(state)),
            failures: AuthFailures::default(),
        }
    }

    /// Derives the view again after a catalog change.
    pub(crate) fn refresh(&self, state: &AuthState) {
        self.view.store(Arc::new(View::new(state)));
    }

    pub fn policy(&self) -> AuthPolicy {
        *self.policy.read()
    }

    /// The `[auth]` settings, set once at startup.
    pub fn set_policy(&self, policy: AuthPolicy) {
        *self.policy.write() = policy;
    }

    pub fn failures(&self) -> &AuthFailures {
        &self.failures
    }

    /// Whether a client at `peer` that brings no credentials is the anonymous identity.
    pub fn anonymous_allowed(&self, peer: IpAddr) -> bool {
        self.policy().anonymous.allows(peer)
    }

    pub fn user(&self, name: &str) -> Option<User> {
        self.view.load().users.get(name).cloned()
    }

    pub fn users(&self) -> Vec<User> {
        self.view.load().users.values().cloned().collect()
    }

    /// The user holding AWS access key `access_key_id` (for SigV4).
    pub fn user_by_access_key(&self, access_key_id: &str) -> Option<User> {
        let view = self.view.load();
        view.access_keys.get(access_key_id).and_then(|name| view.users.get(name)).cloned()
    }

    /// Checks `password` against the user's stored credential in constant
    /// time; an unknown user costs as long. `Err` says why, for the failure
    /// counters (the door tells the client nothing more than "refused").
    pub fn authenticate(&self, name: &str, password: &str) -> Result<Principal, super::FailureReason> {
        match self.user(name) {
            Some(user) if user.verify_password(password) => Ok(Principal::User(user.name)),
            Some(_) => Err(super::FailureReason::BadCredentials),
            None => {
                let _ = ScramCredential::decoy().verify(password);
                Err(super::FailureReason::UnknownUser)
            }
        }
    }

    /// The anonymous identity and administrators.
    pub fn is_administrator(&self, principal: &Principal) -> bool {
        match principal {
            Principal::Anonymous => true,
            Principal::User(name) => self.view.load().users.get(name).is_some_and(User::is_administrator),
        }
    }

    /// Those who may read the admin API: administrators and `monitoring`.
    pub fn is_monitoring(&self, principal: &Principal) -> bool {
        match principal {
            Principal::Anonymous => true,
            Principal::User(name) => self.view.load().users.get(name).is_some_and(User::is_monitoring),
        }
    }

    /// The decision. `host` is the client's address, for Kafka ACLs' hosts.
    pub fn authorize(&self, principal: &Principal, host: Option<IpAddr>, resource: &Resource<'_>, operation: Operation) -> bool {
        let Principal::User(name) = principal else {
            return true;
        };
        let view = self.view.load();
        let user = view.users.get(name);
        if user.is_some_and(User::is_administrator) {
            return true;
        }
        // A name not in the store (deleted since it logged in) opens no
        // vhost; Kafka's ACLs name principals, which need not be users of
        // the store (a client certificate's CN), so they still apply.
        if user.is_none() && resource.kafka().is_none() {
            return false;
        }
        match *resource {
            Resource::Vhost(vhost) => operation == Operation::Access && view.permissions.contains_key(&(name.clone(), vhost.to_owned())),
            Resource::Queue {
                vhost,
                name: resource_name,
            }
            | Resource::Exchange {
                vhost,
                name: resource_name,
            } => {
                let Some(access) = operation.access() else { return false };
                view.permissions
                    .get(&(name.clone(), vhost.to_owned()))
                    .is_some_and(|permission| permission.allows(access, resource_name))
            }
            Resource::Topic(_) | Resource::Group(_) | Resource::TransactionalId(_) | Resource::Cluster => {
                let (Some((resource_type, resource_name)), Some(asked)) = (resource.kafka(), operation.kafka()) else {
                    return false;
                };
                let kafka_principal = principal.kafka_principal();
                let host = host.map(|ip| ip.to_string());
                let mut allowed = false;
                for acl in view
                    .acls
                    .iter()
                    .filter(|acl| acl.covers(resource_type, resource_name) && acl.applies_to(&kafka_principal, host.as_deref()))
                {
                    match acl.permission_type {
                        AclPermissionType::Deny if acl.operation.denies(asked) => return false,
                        AclPermissionType::Allow if acl.operation.allows(asked) => allowed = true,
                        _ => {}
                    }
                }
                allowed
            }
        }
    }

    /// Whether `operation` is allowed on at least one Kafka resource of the
    /// type of `resource` (Kafka's `authorizeByResourceType`): an ALLOW ACL
    /// of that type for the principal, unless a DENY of every name (`*`)
    /// refuses it. For InitProducerId without a transactional id, which
    /// WRITE on any topic allows.
    pub fn authorize_any(&self, principal: &Principal, host: Option<IpAddr>, resource: &Resource<'_>, operation: Operation) -> bool {
        let Principal::User(name) = principal else {
            return true;
        };
        let view = self.view.load();
        if view.users.get(name).is_some_and(User::is_administrator) {
            return true;
        }
        let (Some((resource_type, _)), Some(asked)) = (resource.kafka(), operation.kafka()) else {
            return false;
        };
        let kafka_principal = principal.kafka_principal();
        let host = host.map(|ip| ip.to_string());
        let applicable = view
            .acls
            .iter()
            .filter(|acl| acl.resource_type == resource_type && acl.applies_to(&kafka_principal, host.as_deref()));
        let mut allowed = false;
        for acl in applicable {
            let every_name = acl.pattern_type == PatternType::Literal && acl.resource_name == super::acl::WILDCARD;
            match acl.permission_type {
                AclPermissionType::Deny if every_name && acl.operation.denies(asked) => return false,
                AclPermissionType::Allow if acl.operation.allows(asked) => allowed = true,
                _ => {}
            }
        }
        allowed
    }

    /// [`authorize`](Self::authorize), a refusal counted under `protocol`
    /// and logged (rate-limited), in RabbitMQ's words.
    pub fn check(
        &self,
        protocol: &'static str,
        principal: &Principal,
        host: Option<IpAddr>,
        resource: &Resource<'_>,
        operation: Operation,
    ) -> Result<(), Denied> {
        if self.authorize(principal, host, resource, operation) {
            return Ok(());
        }
        let denied = Denied {
            operation: operation.name(),
            resource: resource.describe(),
            user: principal.name().to_owned(),
        };
        self.failures.denied(protocol, principal.name(), &denied.to_string());
        Err(denied)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::acl::{AclOperation, AclResourceType, PatternType};
    use crate::auth::permission::Permission;
    use crate::auth::user::Tag;

    fn state() -> AuthState {
        let mut state = AuthState::default();
        for name in ["alice", "bob", "root"] {
            let mut user = User::new(name).expect("user");
            user.set_password("s3cret").expect("password");
            if name == "root" {
                user.tags.insert(Tag::Administrator);
            }
            state.set_user(&user);
        }
        state.set_permission(
            "alice",
            "/",
            &Permission {
                configure: "^alice\\.".into(),
                write: ".*".into(),
                read: "^(alice\\..*|amq\\.default)$".into(),
            },
        );
        let acl = |name: &str, pattern_type, operation, permission_type| Acl {
            resource_type: AclResourceType::Topic,
            resource_name: String::from(name),
            pattern_type,
            principal: "User:alice".into(),
            host: "*".into(),
            operation,
            permission_type,
        };
        state.add_acls(&[
            acl("orders.", PatternType::Prefixed, AclOperation::Write, AclPermissionType::Allow),
            acl("orders.secret", PatternType::Literal, AclOperation::All, AclPermissionType::Deny),
        ]);
        state
    }

    #[test]
    fn acls_apply_to_principals_outside_the_store_and_by_resource_type() {
        let authorizer = Authorizer::new(&state());
        let mut with_cert_user = state();
        with_cert_user.add_acls(&[Acl {
            resource_type: AclResourceType::Topic,
            resource_name: "certs.".into(),
            pattern_type: PatternType::Prefixed,
            principal: "User:carol".into(),
            host: "*".into(),
            operation: AclOperation::Write,
            permission_type: AclPermissionType::Allow,
        }]);
        authorizer.refresh(&with_cert_user);
        let carol = Principal::User("carol".into());
        assert!(
            authorizer.authorize(&carol, None, &Resource::Topic("certs.eu"), Operation::Write),
            "a client certificate's CN needs no user in the store"
        );
        assert!(!authorizer.authorize(&carol, None, &Resource::Vhost("/"), Operation::Access));
        assert!(authorizer.authorize_any(&carol, None, &Resource::Topic(""), Operation::Write));
        assert!(!authorizer.authorize_any(&carol, None, &Resource::Topic(""), Operation::Read));
        assert!(!authorizer.authorize_any(&carol, None, &Resource::Cluster, Operation::IdempotentWrite));
        assert!(authorizer.authorize_any(&alice(), None, &Resource::Topic(""), Operation::Write));
    }

    fn alice() -> Principal {
        Principal::User("alice".into())
    }

    #[test]
    fn a_new_user_has_no_rights_until_granted_and_administrators_have_all() {
        let authorizer = Authorizer::new(&state());
        let bob = Principal::User("bob".into());
        let queue = Resource::Queue { vhost: "/", name: "jobs" };
        assert!(!authorizer.authorize(&bob, None, &Resource::Vhost("/"), Operation::Access));
        assert!(!authorizer.authorize(&bob, None, &queue, Operation::Read));
        assert!(!authorizer.authorize(&bob, None, &Resource::Topic("orders.eu"), Operation::Describe));
        let root = Principal::User("root".into());
        assert!(authorizer.authorize(&root, None, &queue, Operation::Configure));
        assert!(authorizer.authorize(&root, None, &Resource::Cluster, Operation::Alter));
        assert!(authorizer.authorize(&Principal::Anonymous, None, &queue, Operation::Configure));
        let ghost = Principal::User("deleted".into());
        assert!(!authorizer.authorize(&ghost, None, &Resource::Vhost("/"), Operation::Access));
        assert!(!authorizer.authorize(&ghost, None, &Resource::Topic("orders.eu"), Operation::Write));
    }

    #[test]
    fn permission_entries_grant_vhost_access_and_match_names_per_kind() {
        let authorizer = Authorizer::new(&state());
        assert!(authorizer.authorize(&alice(), None, &Resource::Vhost("/"), Operation::Access));
        assert!(!authorizer.authorize(&alice(), None, &Resource::Vhost("staging"), Operation::Access));
        let own = Resource::Queue {
            vhost: "/",
            name: "alice.jobs",
        };
        let other = Resource::Queue { vhost: "/", name: "jobs" };
        assert!(authorizer.authorize(&alice(), None, &own, Operation::Configure));
        assert!(!authorizer.authorize(&alice(), None, &other, Operation::Configure));
        assert!(authorizer.authorize(&alice(), None, &other, Operation::Write));
        assert!(!authorizer.authorize(&alice(), None, &other, Operation::Read));
        let elsewhere = Resource::Queue {
            vhost: "staging",
            name: "alice.jobs",
        };
        assert!(!authorizer.authorize(&alice(), None, &elsewhere, Operation::Configure));
        let denied = authorizer
            .check("amqp", &alice(), None, &other, Operation::Configure)
            .expect_err("refused");
        assert_eq!(
            denied.to_string(),
            "configure access to queue 'jobs' in vhost '/' refused for user 'alice'"
        );
        assert_eq!(authorizer.failures().denials(), vec![("amqp", 1)]);
    }

    #[test]
    fn acls_allow_by_prefix_deny_wins_and_describe_is_implied() {
        let authorizer = Authorizer::new(&state());
        let eu = Resource::Topic("orders.eu");
        assert!(authorizer.authorize(&alice(), None, &eu, Operation::Write));
        assert!(
            authorizer.authorize(&alice(), None, &eu, Operation::Describe),
            "WRITE implies DESCRIBE"
        );
        assert!(!authorizer.authorize(&alice(), None, &eu, Operation::Read));
        assert!(!authorizer.authorize(&alice(), None, &Resource::Topic("payments"), Operation::Write));
        assert!(
            !authorizer.authorize(&alice(), None, &Resource::Topic("orders.secret"), Operation::Write),
            "deny wins"
        );
        assert!(!authorizer.authorize(&alice(), None, &Resource::Group("orders.eu"), Operation::Read));
    }

    #[test]
    fn acl_hosts_restrict_by_client_address() {
        let mut state = state();
        state.add_acls(&[Acl {
            resource_type: AclResourceType::Group,
            resource_name: "billing".into(),
            pattern_type: PatternType::Literal,
            principal: "User:*".into(),
            host: "10.0.0.7".into(),
            operation: AclOperation::Read,
            permission_type: AclPermissionType::Allow,
        }]);
        let authorizer = Authorizer::new(&state);
        let group = Resource::Group("billing");
        assert!(authorizer.authorize(&alice(), "10.0.0.7".parse().ok(), &group, Operation::Read));
        assert!(!authorizer.authorize(&alice(), "10.0.0.8".parse().ok(), &group, Operation::Read));
        assert!(!authorizer.authorize(&alice(), None, &group, Operation::Read));
    }

    #[test]
    fn passwords_are_checked_against_the_store() {
        let authorizer = Authorizer::new(&state());
        assert_eq!(authorizer.authenticate("alice", "s3cret"), Ok(alice()));
        assert_eq!(
            authorizer.authenticate("alice", "wrong"),
            Err(super::super::FailureReason::BadCredentials)
        );
        assert_eq!(
            authorizer.authenticate("mallory", "s3cret"),
            Err(super::super::FailureReason::UnknownUser)
        );
    }
}
