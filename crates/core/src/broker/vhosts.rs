//! The broker's virtual hosts: finding, creating and deleting them (one
//! catalog event each, through `metadata.rs`; a deletion takes the vhost's
//! queues, exchanges and bindings with it), and refusing a queue or
//! exchange in a vhost that does not exist.

use std::sync::Arc;

use tracing::info;

use super::Broker;
use super::metadata::run_to_completion;
use super::queues::remove_queues;
use super::views::Opened;
use crate::catalog::Event;
use crate::error::Result;
use crate::vhost::{self, VhostError, VirtualHost};

impl Broker {
    /// The virtual host named `name`, if it exists (`/` always does).
    pub fn vhost(&self, name: &str) -> Option<VirtualHost> {
        if name == vhost::DEFAULT_VHOST {
            return Some(VirtualHost::default());
        }
        self.meta.current().vhosts.get(name).cloned()
    }

    /// Every virtual host, `/` first.
    pub fn vhosts(&self) -> Vec<VirtualHost> {
        std::iter::once(VirtualHost::default())
            .chain(self.meta.views().vhosts.values().cloned())
            .collect()
    }

    /// Creates a virtual host with its predeclared exchanges; `false` if it
    /// existed. Durable when this returns.
    pub async fn create_vhost(&self, name: &str) -> Result<(VirtualHost, bool)> {
        let vhost = VirtualHost::new(name)?;
        let mut change = self.meta.change().await;
        if self.vhost(name).is_some() {
            return Ok((vhost, false));
        }
        let event = Event::VhostCreated { name: name.to_owned() };
        run_to_completion(async move {
            change.commit(event, true, Opened::Nothing).await?;
            info!(vhost = vhost.name(), "vhost created");
            Ok((vhost, true))
        })
        .await
    }

    /// Deletes a virtual host with everything in it: its queues (and their
    /// messages), exchanges and bindings, as one catalog event. `/` cannot
    /// be deleted. Returns how many queues went with it. Once its event is
    /// durable it finishes even if the caller goes away.
    pub async fn delete_vhost(&self, name: &str) -> Result<usize> {
        let vhost = VirtualHost::new(name)?;
        if vhost.is_default() {
            return Err(VhostError::Undeletable(name.to_owned()).into());
        }
        let mut change = self.meta.change().await;
        if self.vhost(name).is_none() {
            return Err(VhostError::NotFound(name.to_owned()).into());
        }
        let event = Event::VhostDeleted { name: name.to_owned() };
        let name = name.to_owned();
        run_to_completion(async move {
            let applied = change.commit(event, true, Opened::Nothing).await?;
            let meta = Arc::clone(change.meta());
            drop(change);
            meta.connections.close_vhost(&name);
            let count = applied.removed_queues.len();
            info!(vhost = name, queues = count, "vhost deleted");
            remove_queues(applied.removed_queues).await?;
            Ok(count)
        })
        .await
    }

    /// Refuses a queue or exchange (broker-wide name) in a vhost that does
    /// not exist (any more: a connection may outlive its vhost).
    pub(crate) fn check_vhost_of(&self, resource: &str) -> Result<()> {
        let (name, _) = vhost::split(resource);
        match self.vhost(&name) {
            Some(_) => Ok(()),
            None => Err(VhostError::NotFound(name.into_owned()).into()),
        }
    }
}
