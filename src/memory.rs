//! The allocator's settings for a long-running operator (glibc only; elsewhere these do
//! nothing).
//!
//! glibc gives threads their own malloc arenas (up to eight per core) and keeps what is freed
//! in each. A tokio runtime moves tasks between threads, so one object's allocations spread
//! over all of them and the freed memory of a start-up burst stays resident (heaptrack at
//! ~6,600 objects: a 66 MB peak heap in a 107 MB peak RSS, heaptrack's
//! overhead included; BENCHMARKS.md).

/// Caps the number of malloc arenas at two: call before the runtime's threads start.
/// Returns whether the setting was taken.
pub fn limit_arenas() -> bool {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        // SAFETY: mallopt only changes the allocator's tuning; M_ARENA_MAX takes any
        // positive count.
        unsafe { libc::mallopt(libc::M_ARENA_MAX, 2) == 1 }
    }
    #[cfg(not(all(target_os = "linux", target_env = "gnu")))]
    {
        false
    }
}

/// Returns the free pages of every arena to the OS (after a burst of work, e.g. start-up or a
/// scrape). Takes a few milliseconds at 10,000 objects: run it off the async threads.
pub fn release_free_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim takes the arenas' locks itself; 0 keeps no extra top padding.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// Returns what a start-up burst or a scrape freed to the OS every `period`, on a blocking
/// thread; runs until its task is dropped with the runtime.
pub async fn release_free_memory_every(period: std::time::Duration) {
    let mut every = tokio::time::interval(period);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        every.tick().await;
        let _ = tokio::task::spawn_blocking(release_free_memory).await;
    }
}

#[cfg(test)]
mod tests {
    #[test]
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    fn glibc_takes_the_arena_limit() {
        assert!(super::limit_arenas());
        super::release_free_memory();
    }
}
