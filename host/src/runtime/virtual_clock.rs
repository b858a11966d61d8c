//! The guest's `wasi:clocks/monotonic-clock`: virtual time that starts at 0 for every
//! Store and moves only when the guest waits on it.
//!
//! wasmtime-wasi's own `subscribe-duration` / `subscribe-instant` return pollables that
//! block the host thread on real time (a tokio sleep), and epoch interruption only fires
//! while wasm runs: `std::thread::sleep(10 s)` in a policy would hold a reconcile slot,
//! the hot-reload thread (inside `describe()`) or the simulator for 10 s whatever the
//! deadline. Here every clock pollable is ready at once, and waiting on one moves the
//! virtual clock to its deadline. So sleeping costs no real time, a guest that waits
//! "until 10 s have passed" gets there, and what it observes is the same on every run.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use wasmtime::component::{HasData, Resource, ResourceTable};
use wasmtime_wasi::HostMonotonicClock;
use wasmtime_wasi::p2::bindings::clocks::monotonic_clock;
use wasmtime_wasi::p2::{DynPollable, Pollable, subscribe};

/// Nanoseconds of virtual time since the Store was created, shared by the `WasiCtx`'s
/// clock (for `now`) and the pollables (which move it).
#[derive(Debug, Clone, Default)]
pub struct VirtualClock(Arc<AtomicU64>);

impl VirtualClock {
    pub fn new() -> Self {
        Self::default()
    }

    fn now(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }

    fn advance_to(&self, instant: u64) {
        self.0.fetch_max(instant, Ordering::Relaxed);
    }
}

impl HostMonotonicClock for VirtualClock {
    fn resolution(&self) -> u64 {
        1
    }

    fn now(&self) -> u64 {
        VirtualClock::now(self)
    }
}

/// A clock pollable: ready at once; being waited on moves the clock to its instant.
struct VirtualDeadline {
    clock: VirtualClock,
    at: u64,
}

#[wasmtime_wasi::async_trait]
impl Pollable for VirtualDeadline {
    async fn ready(&mut self) {
        self.clock.advance_to(self.at);
    }
}

/// What the monotonic-clock bindings see of the Store data.
pub struct VirtualClockView<'a> {
    pub clock: &'a VirtualClock,
    pub table: &'a mut ResourceTable,
}

/// `HasData` for [`add_to_linker`]'s getter.
pub struct VirtualClocks;

impl HasData for VirtualClocks {
    type Data<'a> = VirtualClockView<'a>;
}

impl VirtualClockView<'_> {
    fn deadline(&mut self, at: u64) -> wasmtime::Result<Resource<DynPollable>> {
        let pollable = self.table.push(VirtualDeadline {
            clock: self.clock.clone(),
            at,
        })?;
        subscribe(self.table, pollable)
    }
}

impl monotonic_clock::Host for VirtualClockView<'_> {
    fn now(&mut self) -> wasmtime::Result<monotonic_clock::Instant> {
        Ok(self.clock.now())
    }

    fn resolution(&mut self) -> wasmtime::Result<monotonic_clock::Duration> {
        Ok(1)
    }

    fn subscribe_instant(
        &mut self,
        when: monotonic_clock::Instant,
    ) -> wasmtime::Result<Resource<DynPollable>> {
        self.deadline(when)
    }

    fn subscribe_duration(
        &mut self,
        when: monotonic_clock::Duration,
    ) -> wasmtime::Result<Resource<DynPollable>> {
        let at = self.clock.now().saturating_add(when);
        self.deadline(at)
    }
}

/// Replace wasmtime-wasi's monotonic clock in `linker` (already holding WASI p2) with the
/// virtual one; `view` picks the clock and the resource table out of the Store data.
pub fn add_to_linker<T: 'static>(
    linker: &mut wasmtime::component::Linker<T>,
    view: fn(&mut T) -> VirtualClockView<'_>,
) -> wasmtime::Result<()> {
    linker.allow_shadowing(true);
    let replaced = monotonic_clock::add_to_linker::<T, VirtualClocks>(linker, view);
    linker.allow_shadowing(false);
    replaced
}

#[cfg(test)]
mod tests {
    use super::*;
    use monotonic_clock::Host as _;

    #[test]
    fn waiting_moves_the_clock_to_the_deadline_and_never_back() {
        let clock = VirtualClock::new();
        let mut table = ResourceTable::new();
        let mut view = VirtualClockView {
            clock: &clock,
            table: &mut table,
        };
        assert_eq!(view.now().unwrap(), 0);
        // Subscribing alone does not move time; waiting does.
        let mut ten_seconds = VirtualDeadline {
            clock: clock.clone(),
            at: view.now().unwrap() + 10_000_000_000,
        };
        assert_eq!(view.now().unwrap(), 0);
        futures::executor::block_on(ten_seconds.ready());
        assert_eq!(view.now().unwrap(), 10_000_000_000);
        let mut earlier = VirtualDeadline {
            clock: clock.clone(),
            at: 5,
        };
        futures::executor::block_on(earlier.ready());
        assert_eq!(view.now().unwrap(), 10_000_000_000);
    }
}
