//! How the process allocates: fewer malloc arenas on glibc, so that a long cycle's resident
//! memory follows what it holds.

/// The arenas glibc may create, unless the operator chose (`MALLOC_ARENA_MAX`, or
/// `glibc.malloc.arena_max` in `GLIBC_TUNABLES`). By default glibc gives every thread that
/// allocates under contention an arena of its own, up to eight per core, and keeps the pages
/// freed in each: a cycle allocates on the runtime's workers and the state store's threads and
/// frees elsewhere, and at 300,000 users held 220 MB resident for an 82 MB heap. Two arenas cut
/// a first cycle's peak by a third at the same speed (docs/PERFORMANCE.md).
const ARENAS: i32 = 2;

/// Limits glibc's malloc arenas to [`ARENAS`]; called first thing in `main`, before any other
/// thread exists. Elsewhere (musl, macOS) a no-op.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[allow(unsafe_code)]
pub fn limit_malloc_arenas() {
    if operator_chose() {
        return;
    }
    // SAFETY: mallopt sets one of the allocator's parameters and touches no memory of ours; it
    // is called before the process starts any thread.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, ARENAS);
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
pub fn limit_malloc_arenas() {}

/// Whether the environment sets the number of arenas: it wins.
#[cfg_attr(not(all(target_os = "linux", target_env = "gnu")), allow(dead_code))]
fn operator_chose() -> bool {
    std::env::var_os("MALLOC_ARENA_MAX").is_some()
        || std::env::var("GLIBC_TUNABLES").is_ok_and(|t| t.contains("glibc.malloc.arena_max"))
}
