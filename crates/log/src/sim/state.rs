//! The simulated disk's contents: a tree of directories and files, each with
//! what readers see now and what is durable, and the rules of every
//! operation on them (faults, capacity, power loss). Behind one lock, owned by
//! `SimDisk`; knows nothing of the log.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::io;
use std::path::{Component, Path};

use super::faults::{Faults, PowerLoss, SimError, SimOp};
use super::rng::SimRng;

pub(crate) type NodeId = u64;

/// How many recent operations the trace keeps for a failing test to print.
const TRACE_LEN_MAX: usize = 200;

/// A change to a file not yet made durable, in the order it was made.
#[derive(Debug, Clone)]
enum Change {
    Write { position: u64, bytes: Vec<u8> },
    SetLen(u64),
}

#[derive(Debug, Default)]
struct FileNode {
    /// What reads see (the page cache).
    data: Vec<u8>,
    /// What survives a power loss.
    durable: Vec<u8>,
    /// Changes since the last successful sync that a sync will make durable.
    unsynced: Vec<Change>,
    /// Bytes reserved for the file (`allocate`), counted as used even past
    /// its length; writes inside them need no free space.
    allocated: u64,
}

impl FileNode {
    /// The room the file takes on the disk.
    fn footprint(&self) -> u64 {
        (self.data.len() as u64).max(self.allocated)
    }
}

#[derive(Debug, Default)]
struct DirNode {
    entries: BTreeMap<String, NodeId>,
    durable: BTreeMap<String, NodeId>,
}

#[derive(Debug)]
enum Node {
    File(FileNode),
    Dir(DirNode),
}

#[derive(Debug)]
pub(crate) struct DiskState {
    /// Bumped by every power loss: handles from before it fail.
    pub generation: u64,
    nodes: HashMap<NodeId, Node>,
    next_node: NodeId,
    rng: SimRng,
    faults: Faults,
    scheduled: VecDeque<(SimOp, SimError)>,
    capacity_bytes: Option<u64>,
    /// How many failed syncs dropped unsynced writes that reads still see.
    forgotten_syncs: u64,
    trace: VecDeque<String>,
}

const ROOT: NodeId = 0;

fn not_found(path: &Path) -> io::Error {
    io::Error::new(io::ErrorKind::NotFound, format!("{}: no such file or directory", path.display()))
}

fn apply(data: &mut Vec<u8>, change: &Change) {
    match change {
        Change::Write { position, bytes } => {
            let start = *position as usize;
            let end = start + bytes.len();
            if data.len() < end {
                data.resize(end, 0);
            }
            data[start..end].copy_from_slice(bytes);
        }
        Change::SetLen(length) => data.resize(*length as usize, 0),
    }
}

/// The file names along `path` (the root and `.` skipped; `..` is not used by the log).
fn names(path: &Path) -> Vec<String> {
    path.components()
        .filter_map(|component| match component {
            Component::Normal(name) => Some(name.to_string_lossy().into_owned()),
            _ => None,
        })
        .collect()
}

impl DiskState {
    pub fn new(seed: u64) -> DiskState {
        let mut nodes = HashMap::new();
        nodes.insert(ROOT, Node::Dir(DirNode::default()));
        DiskState {
            generation: 0,
            nodes,
            next_node: ROOT + 1,
            rng: SimRng::new(seed),
            faults: Faults::none(),
            scheduled: VecDeque::new(),
            capacity_bytes: None,
            forgotten_syncs: 0,
            trace: VecDeque::new(),
        }
    }

    pub fn set_faults(&mut self, faults: Faults) {
        self.faults = faults;
    }

    pub fn schedule(&mut self, op: SimOp, error: SimError) {
        self.scheduled.push_back((op, error));
    }

    pub fn set_capacity(&mut self, capacity_bytes: Option<u64>) {
        self.capacity_bytes = capacity_bytes;
    }

    pub fn forgotten_syncs(&self) -> u64 {
        self.forgotten_syncs
    }

    pub fn trace(&self) -> Vec<String> {
        self.trace.iter().cloned().collect()
    }

    pub fn note(&mut self, text: String) {
        if self.trace.len() == TRACE_LEN_MAX {
            self.trace.pop_front();
        }
        self.trace.push_back(text);
    }

    /// Whether this operation fails, and how: a scheduled fault for it
    /// first, else the random rate.
    fn fault(&mut self, op: SimOp) -> Option<SimError> {
        if let Some(at) = self.scheduled.iter().position(|(scheduled, _)| *scheduled == op) {
            return self.scheduled.remove(at).map(|(_, error)| error);
        }
        let rate = self.faults.per_million(op);
        if rate == 0 || !self.rng.chance(rate) {
            return None;
        }
        let no_space = self.rng.between(1, 100) <= u64::from(self.faults.no_space_percent);
        Some(if no_space { SimError::NoSpace } else { SimError::Io })
    }

    fn fail(&mut self, op: SimOp, path: &Path) -> io::Result<()> {
        match self.fault(op) {
            Some(error) => {
                self.note(format!("{op:?} {} -> {error:?}", path.display()));
                Err(error.to_io())
            }
            None => Ok(()),
        }
    }

    /// The bytes the files reachable from the root hold now.
    pub fn used_bytes(&self) -> u64 {
        let mut used = 0;
        let mut stack = vec![ROOT];
        let mut seen = HashSet::new();
        // Each node is visited once; the tree is finite.
        while let Some(id) = stack.pop() {
            if !seen.insert(id) {
                continue;
            }
            match self.nodes.get(&id) {
                Some(Node::Dir(dir)) => stack.extend(dir.entries.values().copied()),
                Some(Node::File(file)) => used += file.footprint(),
                None => {}
            }
        }
        used
    }

    fn lookup(&self, path: &Path) -> Option<NodeId> {
        let mut at = ROOT;
        for name in names(path) {
            match self.nodes.get(&at) {
                Some(Node::Dir(dir)) => at = *dir.entries.get(&name)?,
                _ => return None,
            }
        }
        Some(at)
    }

    /// The directory holding `path` and the name `path` has in it.
    fn parent_of(&self, path: &Path) -> io::Result<(NodeId, String)> {
        let mut parts = names(path);
        let name = parts
            .pop()
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "the root has no parent"))?;
        let mut at = ROOT;
        for part in parts {
            match self.nodes.get(&at) {
                Some(Node::Dir(dir)) => at = *dir.entries.get(&part).ok_or_else(|| not_found(path))?,
                _ => return Err(io::Error::new(io::ErrorKind::NotADirectory, format!("{}", path.display()))),
            }
        }
        match self.nodes.get(&at) {
            Some(Node::Dir(_)) => Ok((at, name)),
            _ => Err(io::Error::new(io::ErrorKind::NotADirectory, format!("{}", path.display()))),
        }
    }

    fn dir_mut(&mut self, id: NodeId) -> io::Result<&mut DirNode> {
        match self.nodes.get_mut(&id) {
            Some(Node::Dir(dir)) => Ok(dir),
            _ => Err(io::Error::new(io::ErrorKind::NotADirectory, "not a directory")),
        }
    }

    /// What reads of a file see.
    pub fn file_data(&self, id: NodeId) -> io::Result<&[u8]> {
        Ok(&self.file(id)?.data)
    }

    /// Overwrites bytes in both the readable and the durable contents.
    pub fn damage(&mut self, id: NodeId, position: u64, bytes: &[u8]) -> io::Result<()> {
        let file = self.file_mut(id)?;
        let change = Change::Write {
            position,
            bytes: bytes.to_vec(),
        };
        apply(&mut file.data, &change);
        apply(&mut file.durable, &change);
        self.note(format!("damage {} bytes at {position}", bytes.len()));
        Ok(())
    }

    fn file(&self, id: NodeId) -> io::Result<&FileNode> {
        match self.nodes.get(&id) {
            Some(Node::File(file)) => Ok(file),
            _ => Err(io::Error::new(io::ErrorKind::IsADirectory, "not a file")),
        }
    }

    fn file_mut(&mut self, id: NodeId) -> io::Result<&mut FileNode> {
        match self.nodes.get_mut(&id) {
            Some(Node::File(file)) => Ok(file),
            _ => Err(io::Error::new(io::ErrorKind::IsADirectory, "not a file")),
        }
    }

    fn new_node(&mut self, node: Node) -> NodeId {
        let id = self.next_node;
        self.next_node += 1;
        self.nodes.insert(id, node);
        id
    }

    pub fn open(&mut self, path: &Path) -> io::Result<NodeId> {
        let id = self.lookup(path).ok_or_else(|| not_found(path))?;
        self.file(id)?;
        Ok(id)
    }

    pub fn create_file(&mut self, path: &Path, exclusive: bool) -> io::Result<NodeId> {
        let (parent, name) = self.parent_of(path)?;
        if let Some(&existing) = self.dir_mut(parent)?.entries.get(&name) {
            if exclusive {
                return Err(io::Error::new(io::ErrorKind::AlreadyExists, format!("{} exists", path.display())));
            }
            self.fail(SimOp::SetLen, path)?;
            self.set_len(existing, 0)?;
            return Ok(existing);
        }
        self.fail(SimOp::Create, path)?;
        let id = self.new_node(Node::File(FileNode::default()));
        self.dir_mut(parent)?.entries.insert(name, id);
        self.note(format!("create {}", path.display()));
        Ok(id)
    }

    pub fn create_dir(&mut self, path: &Path) -> io::Result<()> {
        let (parent, name) = self.parent_of(path)?;
        if self.dir_mut(parent)?.entries.contains_key(&name) {
            return Err(io::Error::new(io::ErrorKind::AlreadyExists, format!("{} exists", path.display())));
        }
        self.fail(SimOp::Create, path)?;
        let id = self.new_node(Node::Dir(DirNode::default()));
        self.dir_mut(parent)?.entries.insert(name, id);
        self.note(format!("mkdir {}", path.display()));
        Ok(())
    }

    pub fn read(&self, path: &Path) -> io::Result<Vec<u8>> {
        let id = self.lookup(path).ok_or_else(|| not_found(path))?;
        Ok(self.file(id)?.data.clone())
    }

    pub fn rename(&mut self, from: &Path, to: &Path) -> io::Result<()> {
        let (from_parent, from_name) = self.parent_of(from)?;
        let (to_parent, to_name) = self.parent_of(to)?;
        if !self.dir_mut(from_parent)?.entries.contains_key(&from_name) {
            return Err(not_found(from));
        }
        self.fail(SimOp::Rename, from)?;
        let id = self
            .dir_mut(from_parent)?
            .entries
            .remove(&from_name)
            .ok_or_else(|| not_found(from))?;
        self.dir_mut(to_parent)?.entries.insert(to_name, id);
        self.note(format!("rename {} {}", from.display(), to.display()));
        Ok(())
    }

    pub fn remove(&mut self, path: &Path, directory: bool) -> io::Result<()> {
        let (parent, name) = self.parent_of(path)?;
        let id = *self.dir_mut(parent)?.entries.get(&name).ok_or_else(|| not_found(path))?;
        let is_dir = matches!(self.nodes.get(&id), Some(Node::Dir(_)));
        if is_dir != directory {
            let kind = if is_dir {
                io::ErrorKind::IsADirectory
            } else {
                io::ErrorKind::NotADirectory
            };
            return Err(io::Error::new(kind, format!("{}", path.display())));
        }
        self.fail(SimOp::Remove, path)?;
        self.dir_mut(parent)?.entries.remove(&name);
        self.note(format!("remove {}", path.display()));
        Ok(())
    }

    pub fn list(&self, path: &Path) -> io::Result<Vec<String>> {
        let id = self.lookup(path).ok_or_else(|| not_found(path))?;
        match self.nodes.get(&id) {
            Some(Node::Dir(dir)) => Ok(dir.entries.keys().cloned().collect()),
            _ => Err(io::Error::new(io::ErrorKind::NotADirectory, format!("{}", path.display()))),
        }
    }

    pub fn exists(&self, path: &Path) -> bool {
        self.lookup(path).is_some()
    }

    pub fn sync_dir(&mut self, path: &Path) -> io::Result<()> {
        let id = self.lookup(path).ok_or_else(|| not_found(path))?;
        self.fail(SimOp::SyncDir, path)?;
        let dir = self.dir_mut(id)?;
        dir.durable = dir.entries.clone();
        Ok(())
    }

    /// One positional write; returns how many bytes landed.
    pub fn write(&mut self, id: NodeId, bytes: &[u8], position: u64) -> io::Result<usize> {
        let fault = self.fault(SimOp::Write);
        let mut length = bytes.len();
        if let Some(error) = fault {
            // A failed write may still land a prefix of its bytes: torn.
            length = self.rng.between(0, bytes.len() as u64) as usize;
            self.land(id, &bytes[..length], position)?;
            self.note(format!("write {length}/{} at {position} -> {error:?}", bytes.len()));
            return Err(error.to_io());
        }
        if let Some(capacity) = self.capacity_bytes {
            let current = self.file(id)?.footprint();
            let growth = (position + length as u64).saturating_sub(current);
            let free = capacity.saturating_sub(self.used_bytes());
            if growth > free {
                length -= (growth - free) as usize;
                if length == 0 {
                    self.note(format!("write 0/{} at {position} -> full", bytes.len()));
                    return Err(SimError::NoSpace.to_io());
                }
            }
        }
        self.land(id, &bytes[..length], position)?;
        Ok(length)
    }

    fn land(&mut self, id: NodeId, bytes: &[u8], position: u64) -> io::Result<()> {
        if bytes.is_empty() {
            return Ok(());
        }
        let file = self.file_mut(id)?;
        let change = Change::Write {
            position,
            bytes: bytes.to_vec(),
        };
        apply(&mut file.data, &change);
        file.unsynced.push(change);
        Ok(())
    }

    /// Reserves room for the file up to `end` bytes.
    pub fn allocate(&mut self, id: NodeId, end: u64) -> io::Result<()> {
        if let Some(error) = self.fault(SimOp::Write) {
            self.note(format!("allocate to {end} -> {error:?}"));
            return Err(error.to_io());
        }
        if let Some(capacity) = self.capacity_bytes {
            let growth = end.saturating_sub(self.file(id)?.footprint());
            if growth > capacity.saturating_sub(self.used_bytes()) {
                self.note(format!("allocate to {end} -> full"));
                return Err(SimError::NoSpace.to_io());
            }
        }
        let file = self.file_mut(id)?;
        file.allocated = file.allocated.max(end);
        Ok(())
    }

    pub fn set_len(&mut self, id: NodeId, length: u64) -> io::Result<()> {
        if let Some(capacity) = self.capacity_bytes {
            let growth = length.saturating_sub(self.file(id)?.footprint());
            if growth > capacity.saturating_sub(self.used_bytes()) {
                return Err(SimError::NoSpace.to_io());
            }
        }
        let file = self.file_mut(id)?;
        let change = Change::SetLen(length);
        apply(&mut file.data, &change);
        file.unsynced.push(change);
        Ok(())
    }

    pub fn set_len_checked(&mut self, id: NodeId, length: u64) -> io::Result<()> {
        if let Some(error) = self.fault(SimOp::SetLen) {
            self.note(format!("set_len {length} -> {error:?}"));
            return Err(error.to_io());
        }
        self.note(format!("set_len {length}"));
        self.set_len(id, length)
    }

    pub fn sync_file(&mut self, id: NodeId) -> io::Result<()> {
        if let Some(error) = self.fault(SimOp::Sync) {
            let forget = self.faults.forget_failed_syncs && self.rng.coin();
            if forget && !self.file(id)?.unsynced.is_empty() {
                // Linux marks the pages clean after a writeback error: reads
                // still see the data, no later sync writes it.
                self.file_mut(id)?.unsynced.clear();
                self.forgotten_syncs += 1;
            }
            self.note(format!("sync -> {error:?} (forgot unsynced: {forget})"));
            return Err(error.to_io());
        }
        let file = self.file_mut(id)?;
        let changes = std::mem::take(&mut file.unsynced);
        for change in &changes {
            apply(&mut file.durable, change);
        }
        Ok(())
    }

    /// The power goes out and comes back: what was not durable is lost, or
    /// partly kept under [`PowerLoss::KeepSome`]. Every earlier handle dies.
    pub fn power_loss(&mut self, mode: PowerLoss) {
        self.generation += 1;
        self.scheduled.clear();
        let mut ids: Vec<NodeId> = self.nodes.keys().copied().collect();
        // Node order must not depend on the hash map, or a seed would not replay.
        ids.sort_unstable();
        for id in ids {
            let keep_dir = mode == PowerLoss::KeepSome && self.rng.coin();
            let mut survivors = Vec::new();
            if let Some(Node::File(file)) = self.nodes.get(&id) {
                for change in &file.unsynced {
                    if mode == PowerLoss::LoseUnsynced || !self.rng.coin() {
                        continue;
                    }
                    match change {
                        Change::Write { position, bytes } if self.rng.between(0, 3) == 0 => {
                            let torn = self.rng.between(0, bytes.len() as u64) as usize;
                            survivors.push(Change::Write {
                                position: *position,
                                bytes: bytes[..torn].to_vec(),
                            });
                        }
                        other => survivors.push(other.clone()),
                    }
                }
            }
            match self.nodes.get_mut(&id) {
                Some(Node::Dir(dir)) => {
                    if keep_dir {
                        dir.durable = dir.entries.clone();
                    } else {
                        dir.entries = dir.durable.clone();
                    }
                }
                Some(Node::File(file)) => {
                    for change in &survivors {
                        apply(&mut file.durable, change);
                    }
                    file.data = file.durable.clone();
                    file.unsynced.clear();
                }
                None => {}
            }
        }
        self.note(format!("power loss ({mode:?})"));
    }
}
