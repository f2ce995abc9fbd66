//! `server.workers`: one per core unless told, a count, or the shared
//! runtime; anything else is refused at its path.

use std::num::NonZeroU16;

use super::{GOOD, env, errors};
use crate::Workers;
use crate::load_str;

fn with_workers(w: &str) -> String {
    GOOD.replace(
        "admin_listen: 127.0.0.1:9090",
        &format!("admin_listen: 127.0.0.1:9090\n  workers: {w}"),
    )
}

#[test]
fn workers_default_to_one_per_core_and_take_a_count_or_shared() {
    assert_eq!(load_str(GOOD, &env).unwrap().server.workers, Workers::Auto);
    let load = |w: &str| load_str(&with_workers(w), &env).unwrap().server.workers;
    assert_eq!(load("auto"), Workers::Auto);
    assert_eq!(load("shared"), Workers::Shared);
    assert_eq!(load("4"), Workers::Count(NonZeroU16::new(4).unwrap()));
}

#[test]
fn a_bad_worker_count_is_refused_at_its_path() {
    for (w, says) in [
        ("0", "0 is out of range"),
        ("-2", "-2 is out of range"),
        ("5000", "5000 is out of range"),
        ("many", "`many` is not a worker count"),
    ] {
        let errs = errors(&with_workers(w));
        assert!(
            errs.iter()
                .any(|e| e.starts_with("server.workers") && e.contains(says)),
            "{w}: {errs:?}"
        );
    }
}
