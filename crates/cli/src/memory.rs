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
    let tunables = std::env::var("GLIBC_TUNABLES").ok();
    if operator_chose(
        std::env::var_os("MALLOC_ARENA_MAX").is_some(),
        tunables.as_deref(),
    ) {
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

/// Whether the environment sets the number of arenas (`MALLOC_ARENA_MAX` is set, or
/// `GLIBC_TUNABLES` holds `glibc.malloc.arena_max`): it wins.
#[cfg_attr(not(all(target_os = "linux", target_env = "gnu")), allow(dead_code))]
fn operator_chose(arena_max_set: bool, tunables: Option<&str>) -> bool {
    arena_max_set
        || tunables.is_some_and(|t| {
            t.split(':')
                .any(|setting| setting.starts_with("glibc.malloc.arena_max="))
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_operator_s_arena_setting_wins() {
        assert!(!operator_chose(false, None));
        assert!(operator_chose(true, None));
        assert!(operator_chose(
            false,
            Some("glibc.malloc.check=3:glibc.malloc.arena_max=8")
        ));
        assert!(!operator_chose(false, Some("glibc.malloc.arena_test=4")));
    }
}
