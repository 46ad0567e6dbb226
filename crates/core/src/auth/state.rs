//! The users and grants the catalog holds: users by name, RabbitMQ
//! permission entries by user and vhost, Kafka ACL bindings. Part of
//! `CatalogState`, changed only by applying catalog events (so it is the
//! same live and on replay); the authorizer reads a view derived from it.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use super::acl::Acl;
use super::permission::Permission;
use super::user::User;

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuthState {
    #[serde(default)]
    pub users: BTreeMap<String, User>,
    /// user → vhost → entry.
    #[serde(default)]
    pub permissions: BTreeMap<String, BTreeMap<String, Permission>>,
    #[serde(default)]
    pub acls: BTreeSet<Acl>,
}

impl AuthState {
    /// Creates or replaces a user.
    pub fn set_user(&mut self, user: &User) {
        self.users.insert(user.name.clone(), user.clone());
    }

    /// A user goes with its permission entries, as in RabbitMQ; ACLs name
    /// principals, not users, and stay, as in Kafka.
    pub fn delete_user(&mut self, name: &str) {
        self.users.remove(name);
        self.permissions.remove(name);
    }

    /// `user`'s permission entry in `vhost`, if it has one.
    pub fn permission(&self, user: &str, vhost: &str) -> Option<&Permission> {
        self.permissions.get(user).and_then(|entries| entries.get(vhost))
    }

    pub fn set_permission(&mut self, user: &str, vhost: &str, permission: &Permission) {
        self.permissions
            .entry(user.to_owned())
            .or_default()
            .insert(vhost.to_owned(), permission.clone());
    }

    pub fn clear_permission(&mut self, user: &str, vhost: &str) {
        if let Some(entries) = self.permissions.get_mut(user) {
            entries.remove(vhost);
            if entries.is_empty() {
                self.permissions.remove(user);
            }
        }
    }

    /// A deleted vhost's permission entries go with it, as in RabbitMQ.
    pub fn forget_vhost(&mut self, vhost: &str) {
        for entries in self.permissions.values_mut() {
            entries.remove(vhost);
        }
        self.permissions.retain(|_, entries| !entries.is_empty());
    }

    pub fn add_acls(&mut self, acls: &[Acl]) {
        self.acls.extend(acls.iter().cloned());
    }

    pub fn remove_acls(&mut self, acls: &[Acl]) {
        for acl in acls {
            self.acls.remove(acl);
        }
    }
}
