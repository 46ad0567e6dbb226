//! The broker's operations on users and grants: each change is checked and
//! committed as one catalog event through the broker's one change path
//! (durable when the call returns; the authorizer derives its view again in
//! the same step). Also the start-up bootstrap from the config file. What a
//! user or grant is, and how decisions are made, is in the sibling modules.

use std::collections::BTreeSet;

use tracing::info;

use super::acl::{Acl, AclFilter};
use super::permission::Permission;
use super::rabbit_hash::RabbitPasswordHash;
use super::scram::{ScramCredential, ScramMechanism};
use super::user::{AwsAccessKey, Tag, User};
use super::{AuthError, Authorizer};
use crate::broker::Broker;
use crate::catalog::{CatalogState, Event};
use crate::error::Result;
use crate::vhost::VhostError;

/// A user as the config file defines it (`[users.NAME]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfiguredUser {
    pub name: String,
    pub password: Option<String>,
    pub tags: BTreeSet<Tag>,
    pub aws_access_key: Option<AwsAccessKey>,
}

impl Broker {
    /// Who may do what: ask it before acting for a client.
    pub fn authorizer(&self) -> &Authorizer {
        self.authorizer_view()
    }

    /// Creates or replaces a user: `tags` and `aws_access_key` replace the
    /// old ones; a `password` replaces its credentials (without one an
    /// existing user keeps them). Returns whether the user is new.
    pub async fn put_user(
        &self,
        name: &str,
        password: Option<&str>,
        tags: BTreeSet<Tag>,
        aws_access_key: Option<AwsAccessKey>,
    ) -> Result<bool> {
        let mut user = User::new(name)?;
        if let Some(password) = password {
            user.set_password(password)?;
        }
        user.tags = tags;
        user.aws_access_key = aws_access_key;
        let change = self.auth_change().await;
        let existing = change.catalog().auth.users.get(name).cloned();
        if password.is_none()
            && let Some(existing) = &existing
        {
            user.credentials = existing.credentials.clone();
            user.rabbit_password_hash = existing.rabbit_password_hash.clone();
        }
        check_access_key(change.catalog(), &user)?;
        if existing.as_ref() == Some(&user) {
            return Ok(false);
        }
        change.commit_to_end(Event::UserSet { user }, true).await?;
        info!(user = name, created = existing.is_none(), "user set");
        Ok(existing.is_none())
    }

    /// Gives an existing user without SCRAM credentials a password hash
    /// imported from RabbitMQ (it checks PLAIN logins until a password is
    /// set). A user with credentials keeps them: its password was set here.
    /// Returns whether the hash was taken.
    pub async fn set_rabbit_password_hash(&self, name: &str, hash: RabbitPasswordHash) -> Result<bool> {
        let change = self.auth_change().await;
        let mut user = existing_user(change.catalog(), name)?;
        if !user.credentials.is_empty() {
            return Ok(false);
        }
        if user.rabbit_password_hash.as_ref() == Some(&hash) {
            return Ok(true);
        }
        user.rabbit_password_hash = Some(hash);
        change.commit_to_end(Event::UserSet { user }, true).await?;
        info!(user = name, "RabbitMQ password hash imported");
        Ok(true)
    }

    /// New credentials from `password` for an existing user.
    pub async fn set_user_password(&self, name: &str, password: &str) -> Result<()> {
        let mut fresh = User::new(name)?;
        fresh.set_password(password)?;
        let change = self.auth_change().await;
        let mut user = existing_user(change.catalog(), name)?;
        user.credentials = fresh.credentials;
        user.rabbit_password_hash = None;
        change.commit_to_end(Event::UserSet { user }, true).await?;
        info!(user = name, "password changed");
        Ok(())
    }

    /// Adds or replaces one SCRAM credential, creating the user without tags
    /// if it does not exist (Kafka's AlterUserScramCredentials upsertion).
    pub async fn set_scram_credential(&self, name: &str, credential: ScramCredential) -> Result<()> {
        super::scram::checked_iterations(credential.iterations)?;
        let change = self.auth_change().await;
        let mut user = match change.catalog().auth.users.get(name) {
            Some(user) => user.clone(),
            None => User::new(name)?,
        };
        user.set_credential(credential);
        change.commit_to_end(Event::UserSet { user }, true).await
    }

    /// Removes one SCRAM credential (Kafka's AlterUserScramCredentials deletion).
    pub async fn delete_scram_credential(&self, name: &str, mechanism: ScramMechanism) -> Result<()> {
        let change = self.auth_change().await;
        let mut user = existing_user(change.catalog(), name)?;
        if user.credential(mechanism).is_none() {
            return Err(AuthError::NoCredential {
                user: name.to_owned(),
                mechanism: mechanism.name(),
            }
            .into());
        }
        user.credentials.retain(|credential| credential.mechanism != mechanism);
        change.commit_to_end(Event::UserSet { user }, true).await
    }

    /// Deletes a user with its permission entries (its connections keep
    /// their sessions but are refused everything from now on).
    pub async fn delete_user(&self, name: &str) -> Result<()> {
        let change = self.auth_change().await;
        existing_user(change.catalog(), name)?;
        change.commit_to_end(Event::UserDeleted { name: name.to_owned() }, true).await?;
        info!(user = name, "user deleted");
        Ok(())
    }

    /// Sets `user`'s permission entry in `vhost` (both must exist).
    pub async fn set_permission(&self, user: &str, vhost_name: &str, permission: Permission) -> Result<()> {
        permission.compile()?;
        let change = self.auth_change().await;
        existing_user(change.catalog(), user)?;
        if self.vhost(vhost_name).is_none() {
            return Err(VhostError::NotFound(vhost_name.to_owned()).into());
        }
        if change.catalog().auth.permission(user, vhost_name) == Some(&permission) {
            return Ok(());
        }
        let event = Event::PermissionSet {
            user: user.to_owned(),
            vhost: vhost_name.to_owned(),
            permission,
        };
        change.commit_to_end(event, true).await?;
        info!(user, vhost = vhost_name, "permission set");
        Ok(())
    }

    /// Removes `user`'s permission entry in `vhost`; `false` if there was none.
    pub async fn clear_permission(&self, user: &str, vhost_name: &str) -> Result<bool> {
        let change = self.auth_change().await;
        if change.catalog().auth.permission(user, vhost_name).is_none() {
            return Ok(false);
        }
        let event = Event::PermissionCleared {
            user: user.to_owned(),
            vhost: vhost_name.to_owned(),
        };
        change.commit_to_end(event, true).await?;
        info!(user, vhost = vhost_name, "permission cleared");
        Ok(true)
    }

    /// Every permission entry: (user, vhost, entry).
    pub async fn permissions(&self) -> Vec<(String, String, Permission)> {
        let change = self.auth_change().await;
        change
            .catalog()
            .auth
            .permissions
            .iter()
            .flat_map(|(user, entries)| {
                entries
                    .iter()
                    .map(move |(vhost, permission)| (user.clone(), vhost.clone(), permission.clone()))
            })
            .collect()
    }

    /// Adds ACL bindings (ones that exist already change nothing).
    pub async fn create_acls(&self, acls: Vec<Acl>) -> Result<()> {
        for acl in &acls {
            acl.validate()?;
        }
        let change = self.auth_change().await;
        let acls: Vec<Acl> = acls.into_iter().filter(|acl| !change.catalog().auth.acls.contains(acl)).collect();
        if acls.is_empty() {
            return Ok(());
        }
        change.commit_to_end(Event::AclsCreated { acls }, true).await
    }

    /// Removes every ACL binding some filter matches; returns them.
    pub async fn delete_acls(&self, filters: &[AclFilter]) -> Result<Vec<Acl>> {
        let change = self.auth_change().await;
        let acls: Vec<Acl> = change
            .catalog()
            .auth
            .acls
            .iter()
            .filter(|acl| filters.iter().any(|filter| filter.matches(acl)))
            .cloned()
            .collect();
        if !acls.is_empty() {
            change.commit_to_end(Event::AclsDeleted { acls: acls.clone() }, true).await?;
        }
        Ok(acls)
    }

    /// The ACL bindings `filter` matches.
    pub async fn acls(&self, filter: &AclFilter) -> Vec<Acl> {
        let change = self.auth_change().await;
        change
            .catalog()
            .auth
            .acls
            .iter()
            .filter(|acl| filter.matches(acl))
            .cloned()
            .collect()
    }

    /// Applies the config file's users at start-up: each is created, or set
    /// to what the file says (a password that no longer verifies is hashed
    /// anew, so editing the file and restarting changes it); users made at
    /// runtime are left alone. Then every `(user, vhost, entry)` of
    /// `permissions` is set. Nothing is appended when nothing differs.
    pub async fn apply_configured_users(&self, users: &[ConfiguredUser], permissions: &[(String, String, Permission)]) -> Result<()> {
        for configured in users {
            let existing = self.authorizer().user(&configured.name);
            let password_holds = match (&existing, &configured.password) {
                (Some(user), Some(password)) => !user.credentials.is_empty() && user.verify_password(password),
                (_, None) => true,
                (None, Some(_)) => false,
            };
            let unchanged = existing
                .as_ref()
                .is_some_and(|user| password_holds && user.tags == configured.tags && user.aws_access_key == configured.aws_access_key);
            if unchanged {
                continue;
            }
            let password = if password_holds { None } else { configured.password.as_deref() };
            self.put_user(
                &configured.name,
                password,
                configured.tags.clone(),
                configured.aws_access_key.clone(),
            )
            .await?;
        }
        for (user, vhost_name, permission) in permissions {
            self.set_permission(user, vhost_name, permission.clone()).await?;
        }
        Ok(())
    }
}

fn existing_user(catalog: &CatalogState, name: &str) -> Result<User> {
    catalog
        .auth
        .users
        .get(name)
        .cloned()
        .ok_or_else(|| AuthError::UnknownUser(name.to_owned()).into())
}

/// One AWS access key id names one user.
fn check_access_key(catalog: &CatalogState, user: &User) -> Result<()> {
    let Some(key) = &user.aws_access_key else { return Ok(()) };
    let holder = catalog.auth.users.values().find(|other| {
        other.name != user.name
            && other
                .aws_access_key
                .as_ref()
                .is_some_and(|theirs| theirs.access_key_id == key.access_key_id)
    });
    match holder {
        Some(holder) => Err(AuthError::AccessKeyInUse {
            key: key.access_key_id.clone(),
            user: holder.name.clone(),
        }
        .into()),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::BrokerConfig;
    use crate::auth::{Operation, Principal, Resource};

    fn open(dir: &std::path::Path) -> Broker {
        Broker::open(BrokerConfig::new(dir)).expect("open broker")
    }

    #[tokio::test]
    async fn grants_need_an_existing_user_and_vhost_and_take_effect_at_once() {
        let dir = tempfile::tempdir().expect("tempdir");
        let broker = open(dir.path());
        let alice = Principal::User("alice".into());
        let jobs = Resource::Queue { vhost: "/", name: "jobs" };
        assert!(
            broker.set_permission("alice", "/", Permission::full()).await.is_err(),
            "no such user"
        );
        assert!(broker.put_user("alice", Some("s3cret"), BTreeSet::new(), None).await.expect("put"));
        assert!(
            broker.set_permission("alice", "nowhere", Permission::full()).await.is_err(),
            "no such vhost"
        );
        assert!(!broker.authorizer().authorize(&alice, None, &jobs, Operation::Read));
        broker.set_permission("alice", "/", Permission::full()).await.expect("grant");
        assert!(broker.authorizer().authorize(&alice, None, &jobs, Operation::Read));
        assert!(broker.clear_permission("alice", "/").await.expect("clear"));
        assert!(!broker.authorizer().authorize(&alice, None, &jobs, Operation::Read));
        broker.delete_user("alice").await.expect("delete");
        assert!(broker.authorizer().authenticate("alice", "s3cret").is_err());
    }

    #[tokio::test]
    async fn configured_users_are_applied_once_and_a_changed_password_is_taken_on_restart() {
        let dir = tempfile::tempdir().expect("tempdir");
        let key = AwsAccessKey {
            access_key_id: "AKIAALICE".into(),
            secret_access_key: "secret".into(),
        };
        let configured = |password: &str| ConfiguredUser {
            name: "alice".into(),
            password: Some(password.into()),
            tags: BTreeSet::from([Tag::Administrator]),
            aws_access_key: Some(key.clone()),
        };
        let grants = [("alice".to_owned(), "/".to_owned(), Permission::full())];
        {
            let broker = open(dir.path());
            broker.apply_configured_users(&[configured("one")], &grants).await.expect("apply");
            let before = broker.authorizer().user("alice").expect("alice");
            broker
                .apply_configured_users(&[configured("one")], &grants)
                .await
                .expect("apply again");
            assert_eq!(
                broker.authorizer().user("alice"),
                Some(before),
                "unchanged: the salts are the same, nothing was hashed anew"
            );
            broker.close().expect("close");
        }
        let broker = open(dir.path());
        assert!(broker.authorizer().authenticate("alice", "one").is_ok(), "survives a restart");
        assert_eq!(
            broker.authorizer().user_by_access_key("AKIAALICE").map(|user| user.name),
            Some("alice".into())
        );
        broker.apply_configured_users(&[configured("two")], &grants).await.expect("apply");
        assert!(broker.authorizer().authenticate("alice", "one").is_err());
        assert!(broker.authorizer().authenticate("alice", "two").is_ok());
        let error = broker
            .put_user("bob", Some("x"), BTreeSet::new(), Some(key.clone()))
            .await
            .expect_err("one key, one user");
        assert!(error.to_string().contains("AKIAALICE"), "{error}");
    }
}
