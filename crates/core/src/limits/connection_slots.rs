//! Counts open client connections, in total and per source address, and
//! hands out a slot per connection while both counts are under their caps.
//! Knows addresses and numbers, nothing of protocols or sockets.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;

use parking_lot::Mutex;

use super::limit::Limit;

/// The open connections, counted.
#[derive(Debug)]
pub(super) struct ConnectionSlots {
    total_max: u32,
    per_address_max: u32,
    counts: Mutex<Counts>,
}

#[derive(Debug, Default)]
struct Counts {
    total: u32,
    by_address: HashMap<IpAddr, u32>,
}

/// One open connection's place in the counts; dropping it frees the place.
#[derive(Debug)]
pub struct ConnectionSlot {
    slots: Arc<ConnectionSlots>,
    address: IpAddr,
}

impl ConnectionSlots {
    pub(super) fn new(total_max: u32, per_address_max: u32) -> ConnectionSlots {
        ConnectionSlots {
            total_max,
            per_address_max,
            counts: Mutex::new(Counts::default()),
        }
    }

    /// A slot for `address`, or the limit that refuses it.
    pub(super) fn admit(self: &Arc<Self>, address: IpAddr) -> Result<ConnectionSlot, Limit> {
        let mut counts = self.counts.lock();
        if counts.total >= self.total_max {
            return Err(Limit::Connections);
        }
        let from_address = counts.by_address.entry(address).or_insert(0);
        if *from_address >= self.per_address_max {
            return Err(Limit::ConnectionsPerAddress);
        }
        *from_address += 1;
        counts.total += 1;
        Ok(ConnectionSlot {
            slots: Arc::clone(self),
            address,
        })
    }

    pub(super) fn open(&self) -> u64 {
        self.counts.lock().total.into()
    }
}

impl Drop for ConnectionSlot {
    fn drop(&mut self) {
        let mut counts = self.slots.counts.lock();
        counts.total = counts.total.saturating_sub(1);
        if let Some(from_address) = counts.by_address.get_mut(&self.address) {
            *from_address -= 1;
            if *from_address == 0 {
                counts.by_address.remove(&self.address);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_are_capped_per_address_and_in_total_and_freed_on_drop() {
        let slots = Arc::new(ConnectionSlots::new(3, 2));
        let first: IpAddr = [127, 0, 0, 1].into();
        let second: IpAddr = [127, 0, 0, 2].into();
        let a = slots.admit(first).expect("first");
        let _b = slots.admit(first).expect("second from the same address");
        assert_eq!(slots.admit(first).err(), Some(Limit::ConnectionsPerAddress));
        let _c = slots.admit(second).expect("another address");
        assert_eq!(slots.admit(second).err(), Some(Limit::Connections));
        assert_eq!(slots.open(), 3);
        drop(a);
        assert_eq!(slots.open(), 2);
        let _d = slots.admit(first).expect("a freed slot is reused");
        assert_eq!(slots.counts.lock().by_address.len(), 2);
    }
}
