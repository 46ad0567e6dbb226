//! One log as the I/O pool sees it: an inbox of commands, whether the log
//! is in the pool's ready queue (or being served), its writer, and the
//! deadline of its timer. Handing a command in takes the inbox's lock for a
//! push; the writer itself is touched only by the one pool thread serving
//! the log, so its lock is never contended. Knows commands and the writer's
//! turn; nothing of threads or files.

use std::collections::VecDeque;
use std::time::Instant;

use parking_lot::{Mutex, MutexGuard};
use std::sync::Arc;

use crate::writer::{Command, Writer};

/// What a handle hands in and the pool takes out.
#[derive(Debug, Default)]
struct Inbox {
    commands: VecDeque<Command>,
    /// In the ready queue or being served: a push must not schedule it again.
    scheduled: bool,
    /// The writer stopped: commands are refused.
    closed: bool,
}

#[derive(Debug)]
pub(crate) struct LogCell {
    inbox: Mutex<Inbox>,
    /// `None` once the log is closed.
    writer: Mutex<Option<Writer>>,
    /// The deadline of the timer registered with the pool, if one is.
    timer: Mutex<Option<Instant>>,
}

impl LogCell {
    pub fn new(writer: Writer) -> Arc<LogCell> {
        Arc::new(LogCell {
            inbox: Mutex::new(Inbox::default()),
            writer: Mutex::new(Some(writer)),
            timer: Mutex::new(None),
        })
    }

    /// Hands `command` to the log. `Ok(true)`: the log just became ready
    /// and the caller must schedule it; `Err`: the log is closed (the
    /// command is dropped, which tells whoever waits for its reply).
    pub fn push(&self, command: Command) -> Result<bool, ()> {
        let mut inbox = self.inbox.lock();
        if inbox.closed {
            return Err(());
        }
        inbox.commands.push_back(command);
        Ok(!std::mem::replace(&mut inbox.scheduled, true))
    }

    /// Hands in a tick (the timer fell due): as [`LogCell::push`].
    pub fn push_tick(&self) -> Result<bool, ()> {
        self.push(Command::Tick)
    }

    /// Serves each log of a round: its commands, then the write of its
    /// group, for all of them; then the fsyncs and acknowledgements, for all
    /// of them, so fsyncs due together are issued together. Returns each
    /// cell with the deadline of the work its writer next owes.
    pub fn serve_round(cells: &[Arc<LogCell>]) -> Vec<(Arc<LogCell>, Option<Instant>)> {
        let mut writers: Vec<MutexGuard<'_, Option<Writer>>> = Vec::with_capacity(cells.len());
        for cell in cells {
            let mut writer = cell.writer.lock();
            cell.take_turn(&mut writer);
            writers.push(writer);
        }
        for writer in writers.iter_mut() {
            if let Some(writer) = writer.as_mut() {
                writer.sync_group();
                writer.tick();
            }
        }
        cells
            .iter()
            .zip(writers)
            .map(|(cell, writer)| (Arc::clone(cell), writer.as_ref().and_then(Writer::next_deadline)))
            .collect()
    }

    /// Runs the commands waiting (up to a full group) and writes the group.
    fn take_turn(&self, writer: &mut Option<Writer>) {
        let mut commands = std::mem::take(&mut self.inbox.lock().commands);
        let Some(active) = writer.as_mut() else {
            // Closed: dropping the commands tells their senders.
            return;
        };
        // Bounded by the commands taken.
        while let Some(command) = commands.pop_front() {
            if matches!(command, Command::Close { .. }) {
                // Refused from now on, before the close is acknowledged: a
                // caller woken by the reply must find the log closed.
                // Commands after the close are refused (dropped) with it.
                let mut inbox = self.inbox.lock();
                inbox.closed = true;
                inbox.commands.clear();
            }
            if active.handle(command) {
                *writer = None;
                return;
            }
            if active.group_full() {
                break;
            }
        }
        if !commands.is_empty() {
            // A full group: the rest waits for the next turn, ahead of
            // whatever arrived meanwhile.
            let mut inbox = self.inbox.lock();
            commands.append(&mut inbox.commands);
            inbox.commands = commands;
        }
        active.write_group();
    }

    /// Ends a turn: `true` if commands arrived meanwhile (the log stays
    /// scheduled and goes back in the ready queue), else the log is idle.
    pub fn finish_turn(&self) -> bool {
        let mut inbox = self.inbox.lock();
        if inbox.commands.is_empty() || inbox.closed {
            inbox.scheduled = false;
            if inbox.commands.capacity() > 64 {
                // An idle log keeps no large inbox.
                inbox.commands = VecDeque::new();
            }
            return false;
        }
        true
    }

    /// Whether a timer at `at` must be registered: none is, or a later one.
    pub fn claim_timer(&self, at: Instant) -> bool {
        let mut timer = self.timer.lock();
        if timer.is_some_and(|registered| registered <= at) {
            return false;
        }
        *timer = Some(at);
        true
    }

    /// Whether the timer at `at` is the one registered (not superseded by
    /// an earlier one); if so it is spent.
    pub fn fire_timer(&self, at: Instant) -> bool {
        let mut timer = self.timer.lock();
        if *timer == Some(at) {
            *timer = None;
            return true;
        }
        false
    }
}
