//! A global allocator that remembers the largest single request since the last reset, so that
//! an allocation sized from a header rather than from the bytes behind it is seen, and that
//! refuses absurd requests outright (the process then aborts and the supervisor reports it)
//! instead of letting one input exhaust the machine's memory.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

/// Requests above this many bytes are refused.
pub const REFUSE_ABOVE: usize = 2 << 30;

static LARGEST: AtomicUsize = AtomicUsize::new(0);

/// The system allocator, with the largest request recorded.
pub struct Recording;

/// Records `size`; `true` when the request is to be refused.
fn note(size: usize) -> bool {
    if size > LARGEST.load(Ordering::Relaxed) {
        LARGEST.fetch_max(size, Ordering::Relaxed);
    }
    size > REFUSE_ABOVE
}

// SAFETY: every call is forwarded unchanged to `System`, or answered with null (allowed by the
// `GlobalAlloc` contract for a failed allocation).
unsafe impl GlobalAlloc for Recording {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if note(layout.size()) {
            return std::ptr::null_mut();
        }
        // SAFETY: forwarded with the caller's layout.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        if note(layout.size()) {
            return std::ptr::null_mut();
        }
        // SAFETY: forwarded with the caller's layout.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if note(new_size) {
            return std::ptr::null_mut();
        }
        // SAFETY: forwarded with the caller's pointer, layout and size.
        unsafe { System.realloc(ptr, layout, new_size) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` came from `System` with this layout.
        unsafe { System.dealloc(ptr, layout) }
    }
}

/// Forgets the largest request so far.
pub fn reset() {
    LARGEST.store(0, Ordering::Relaxed);
}

/// The largest request since the last [`reset`], in bytes.
pub fn largest() -> usize {
    LARGEST.load(Ordering::Relaxed)
}
