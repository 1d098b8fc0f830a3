//! Allocator setting shared by the binaries (`emu-eval`, the peer benchmarks), whose global
//! allocator is mimalloc.

/// `mi_option_purge_delay` in mimalloc's `mi_option_e` (v2 and v3 headers alike).
const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

/// Tells mimalloc never to hand freed memory back to the OS. The networks free and allocate
/// buffers of the same sizes in every layer; once mimalloc has returned them (after its purge
/// delay), each new buffer costs a page fault and a kernel page clear per page (12–16% of a UNet
/// forward, ~24,000 faults). Kept, the next layer reuses them: peak memory stays the peak of live
/// buffers, but it is not given back until exit. No effect where mimalloc is not the allocator.
pub fn retain_freed_memory() {
    // SAFETY: sets one integer option; mimalloc reads options atomically when it purges.
    unsafe { libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, -1) }
}
