//! Firewall mark pools.

use std::collections::VecDeque;

/// First mark handed to fwmark vservers.
pub const VSERVER_MARK_BASE: u32 = 256;
/// Number of marks for fwmark vservers (256..=8255).
pub const VSERVER_MARK_COUNT: u32 = 8000;
/// First mark handed to DSR and TUN health checks.
pub const CHECK_MARK_BASE: u32 = 65536;
/// Number of marks for DSR and TUN health checks (65536..=81535).
pub const CHECK_MARK_COUNT: u32 = 16000;

/// A FIFO pool of marks. A released mark goes to the back of the queue, so
/// it is not handed out again while other marks are free; this keeps a
/// stale kernel rule for an old mark from matching a new owner at once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MarkPool {
    free: VecDeque<u32>,
}

impl MarkPool {
    /// Creates a pool of `count` marks starting at `base`.
    pub fn new(base: u32, count: u32) -> Self {
        Self {
            free: (base..base + count).collect(),
        }
    }

    /// Creates the pool for fwmark vservers.
    pub fn for_vservers() -> Self {
        Self::new(VSERVER_MARK_BASE, VSERVER_MARK_COUNT)
    }

    /// Creates the pool for DSR and TUN health checks.
    pub fn for_checks() -> Self {
        Self::new(CHECK_MARK_BASE, CHECK_MARK_COUNT)
    }

    /// Takes the oldest free mark, or `None` when the pool is exhausted.
    pub fn allocate(&mut self) -> Option<u32> {
        self.free.pop_front()
    }

    /// Returns a mark to the back of the pool.
    pub fn release(&mut self, mark: u32) {
        self.free.push_back(mark);
    }

    /// Returns the number of free marks.
    pub fn available(&self) -> usize {
        self.free.len()
    }
}
