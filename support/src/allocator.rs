//! The global allocator of the benches and examples ([`use_mimalloc!`](crate::use_mimalloc)).
//!
//! Burn's CPU backends allocate and free the same large buffers at every training step. With
//! glibc's allocator each large buffer is returned to the kernel when freed and page-faulted in
//! again on the next step; mimalloc keeps them, and with purging disabled it never hands them
//! back. Measured on the ResCom loss benches (`cargo bench --bench loss`) this halves the
//! time of a step; see BENCHMARKS.md.

pub use mimalloc::MiMalloc;

/// Makes mimalloc the global allocator of the binary that calls it (at the top level of its
/// crate): `rescom_support::use_mimalloc!();`.
#[macro_export]
macro_rules! use_mimalloc {
    () => {
        #[global_allocator]
        static GLOBAL: $crate::allocator::MiMalloc = $crate::allocator::MiMalloc;
    };
}

/// `mi_option_purge_delay` in mimalloc's `mimalloc.h` (v2 and v3).
const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

/// Keeps freed memory mapped instead of returning it to the OS 10 ms after it is freed
/// (mimalloc's default).
pub fn keep_freed_memory() {
    // SAFETY: setting an option is a plain store that mimalloc allows at any time.
    unsafe { libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, -1) }
}
