//! The broker's global allocator. Small and ordinary allocations go to the
//! system allocator; allocations of 1 GiB or more are made with
//! `mmap(MAP_NORESERVE)`, which reserves address space without committing
//! memory.
//!
//! Why: codec crates size vectors from counts read off the wire before
//! checking that the bytes behind them exist (`kafka-protocol` 0.18 does
//! `Vec::with_capacity(n)` for every array; see DESIGN.md). With Linux's
//! default heuristic overcommit, a 2^31-element reservation fails, and Rust
//! aborts the whole process on allocation failure — a 20-byte request would
//! kill the broker. With this allocator the reservation succeeds without
//! touching memory, the decoder then fails on the missing bytes, the vector is
//! freed, and the connection gets a protocol error. Memory really used is
//! still bounded by the frame size limits each front door enforces.
//!
//! Knows nothing of protocols. Install it in every binary that decodes
//! network input:
//!
//! ```ignore
//! #[global_allocator]
//! static ALLOCATOR: conveyor_alloc::LazyHugeAllocator = conveyor_alloc::LazyHugeAllocator;
//! ```

#![allow(
    unsafe_code,
    reason = "a global allocator is unsafe by definition; each block states its invariant"
)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::ptr;

/// Allocations at least this large are reserved lazily.
pub const HUGE_BYTES: usize = 1 << 30;
/// mmap returns page-aligned memory; larger alignments go to the system allocator.
const PAGE_BYTES: usize = 4096;

#[derive(Debug, Default, Clone, Copy)]
pub struct LazyHugeAllocator;

fn is_huge(layout: Layout) -> bool {
    layout.size() >= HUGE_BYTES && layout.align() <= PAGE_BYTES
}

// SAFETY: every pointer handed out is either from `System` with the same
// layout, or from `mmap` with at least `layout.size()` bytes, page-aligned
// (which satisfies any alignment <= PAGE_BYTES), and freed by the matching
// call chosen by the same `is_huge(layout)` test on the same layout.
unsafe impl GlobalAlloc for LazyHugeAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if is_huge(layout) {
            map(layout.size())
        } else {
            // SAFETY: forwarded with the caller's guarantees.
            unsafe { System.alloc(layout) }
        }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        if is_huge(layout) {
            // Anonymous mappings are zero-filled.
            map(layout.size())
        } else {
            // SAFETY: forwarded with the caller's guarantees.
            unsafe { System.alloc_zeroed(layout) }
        }
    }

    unsafe fn dealloc(&self, pointer: *mut u8, layout: Layout) {
        if is_huge(layout) {
            // SAFETY: `pointer` came from `map(layout.size())`.
            unsafe { libc::munmap(pointer.cast(), layout.size()) };
        } else {
            // SAFETY: `pointer` came from `System` with this layout.
            unsafe { System.dealloc(pointer, layout) }
        }
    }

    unsafe fn realloc(&self, pointer: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: the caller guarantees `new_size` forms a valid layout with this alignment.
        let new_layout = unsafe { Layout::from_size_align_unchecked(new_size, layout.align()) };
        if !is_huge(layout) && !is_huge(new_layout) {
            // SAFETY: forwarded with the caller's guarantees.
            return unsafe { System.realloc(pointer, layout, new_size) };
        }
        if is_huge(layout) && is_huge(new_layout) {
            // Move the pages instead of copying a mostly untouched reservation.
            // SAFETY: `pointer` is a mapping of `layout.size()` bytes made by `map`.
            let moved = unsafe { libc::mremap(pointer.cast(), layout.size(), new_size, libc::MREMAP_MAYMOVE) };
            return if moved == libc::MAP_FAILED { ptr::null_mut() } else { moved.cast() };
        }
        // SAFETY: a fresh block of `new_layout`, filled from the old one, which is then freed.
        unsafe {
            let new_pointer = self.alloc(new_layout);
            if !new_pointer.is_null() {
                ptr::copy_nonoverlapping(pointer, new_pointer, layout.size().min(new_size));
                self.dealloc(pointer, layout);
            }
            new_pointer
        }
    }
}

fn map(size: usize) -> *mut u8 {
    // SAFETY: an anonymous private mapping with no address hint has no
    // preconditions; failure is reported as MAP_FAILED.
    let pointer = unsafe {
        libc::mmap(
            ptr::null_mut(),
            size,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE,
            -1,
            0,
        )
    };
    if pointer == libc::MAP_FAILED {
        ptr::null_mut()
    } else {
        pointer.cast()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[global_allocator]
    static ALLOCATOR: LazyHugeAllocator = LazyHugeAllocator;

    #[test]
    fn a_hostile_capacity_does_not_abort() {
        // What a decoder does with a count of 2^31 - 1 elements of 100 bytes:
        // about 200 GiB reserved, nothing committed, then freed.
        let huge: Vec<[u8; 100]> = Vec::with_capacity(i32::MAX as usize);
        assert!(huge.capacity() >= i32::MAX as usize);
        drop(huge);
    }

    #[test]
    fn huge_buffers_are_usable_and_growable() {
        let mut buffer: Vec<u8> = Vec::with_capacity(HUGE_BYTES);
        buffer.extend_from_slice(&[7u8; 4096]);
        buffer.reserve(HUGE_BYTES * 2);
        assert_eq!(&buffer[..4096], &[7u8; 4096][..]);
        let zeroed = vec![0u8; HUGE_BYTES];
        assert_eq!(zeroed[HUGE_BYTES - 1], 0);
    }
}
