//! Benchmark-only: the smallest task component weft can run, with no standard library and
//! so no WASI: nothing to initialise, no data segments beyond its own. `cargo xtask bench`'s
//! B1 measures the bare pooled cycle of `exit` against it, to say what a real plugin's
//! instantiation pays for. Never embedded in `weft`.

#![no_std]

extern crate alloc;

use alloc::string::String;
use alloc::vec::Vec;
use core::alloc::{GlobalAlloc, Layout};
use core::cell::UnsafeCell;

wit_bindgen::generate!({
    path: "../../wit",
    world: "task",
});

use exports::weft::plugin::task_plugin::Guest;
use weft::plugin::types::{Capabilities, Ending, PluginInfo, TaskContext, TaskOutcome};

struct Noop;

impl Guest for Noop {
    fn describe() -> PluginInfo {
        PluginInfo {
            name: String::from("noop"),
            version: String::from("0.1.0"),
            description: String::from("does nothing"),
            params: Vec::new(),
            results: Vec::new(),
            results_fixed: true,
            capabilities: Capabilities {
                secrets: Vec::new(),
                http_hosts: Vec::new(),
                workspaces: Vec::new(),
            },
        }
    }

    fn run(_ctx: TaskContext) -> TaskOutcome {
        TaskOutcome {
            ending: Ending::Success,
            results: Vec::new(),
        }
    }
}

export!(Noop);

/// A bump allocator over a fixed arena: an instance lives for one call, so nothing is
/// ever freed.
struct Bump {
    arena: UnsafeCell<[u8; ARENA]>,
    next: UnsafeCell<usize>,
}

const ARENA: usize = 64 * 1024;

// One thread per instance (wasm32 without threads).
unsafe impl Sync for Bump {}

unsafe impl GlobalAlloc for Bump {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: single-threaded; `next` and the arena are only touched here.
        unsafe {
            let next = &mut *self.next.get();
            let start = (*next + layout.align() - 1) & !(layout.align() - 1);
            let end = start + layout.size();
            if end > ARENA {
                return core::ptr::null_mut();
            }
            *next = end;
            (*self.arena.get()).as_mut_ptr().add(start)
        }
    }

    unsafe fn dealloc(&self, _ptr: *mut u8, _layout: Layout) {}
}

#[global_allocator]
static ALLOCATOR: Bump = Bump {
    arena: UnsafeCell::new([0; ARENA]),
    next: UnsafeCell::new(0),
};

/// The canonical ABI's allocator: arguments are written into memory it hands out.
#[unsafe(no_mangle)]
unsafe extern "C" fn cabi_realloc(
    old: *mut u8,
    old_len: usize,
    align: usize,
    new_len: usize,
) -> *mut u8 {
    if new_len == 0 {
        return align as *mut u8;
    }
    // SAFETY: `align` is a power of two from the canonical ABI; the bump arena never frees.
    unsafe {
        let Ok(layout) = Layout::from_size_align(new_len, align) else {
            core::arch::wasm32::unreachable()
        };
        let new = ALLOCATOR.alloc(layout);
        if new.is_null() {
            core::arch::wasm32::unreachable()
        }
        if !old.is_null() {
            core::ptr::copy_nonoverlapping(old, new, old_len.min(new_len));
        }
        new
    }
}

#[panic_handler]
fn panic(_: &core::panic::PanicInfo) -> ! {
    core::arch::wasm32::unreachable()
}
