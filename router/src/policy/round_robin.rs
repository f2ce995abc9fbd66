//! `round_robin`: each request starts one replica further along.

use std::sync::atomic::{AtomicUsize, Ordering};

use crate::hash::SplitMix;

use super::seam::{Candidates, Choose, Segment};

/// The cursor lives in the policy, so only a `round_robin` group has one.
/// It is per table generation: a reload starts the turn again, which is
/// harmless for an even spread.
#[derive(Debug, Default)]
pub(crate) struct RoundRobin {
    cursor: AtomicUsize,
}

impl Choose for RoundRobin {
    fn order<'t>(&'t self, c: &Candidates<'t, '_>, _: &mut SplitMix, out: &mut Vec<Segment<'t>>) {
        let all = c.lane.replicas();
        let start = self.cursor.fetch_add(1, Ordering::Relaxed) % all.len();
        out.push(c.segment(all, [None, None], start));
    }
}
