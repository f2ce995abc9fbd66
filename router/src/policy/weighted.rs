//! `weighted`: a replica drawn in proportion to its configured `weight`.

use crate::hash::{SplitMix, unit};

use super::seam::{Candidates, Choose, Segment};

/// One O(log n) draw over the lane's running weight sums, then a second
/// draw, then the rest. A replica in slow start is accepted with
/// probability equal to its ramp (redrawing otherwise), so its share grows
/// from 10% of its weight to all of it over the window.
#[derive(Debug)]
pub(crate) struct Weighted;

impl Choose for Weighted {
    fn order<'t>(&'t self, c: &Candidates<'t, '_>, rng: &mut SplitMix, out: &mut Vec<Segment<'t>>) {
        let replicas = c.lane.replicas();
        let cumulative = c.lane.cumulative();
        let n = replicas.len();
        let total = cumulative.last().copied().unwrap_or(0).max(1);
        let draw = |rng: &mut SplitMix| {
            let point = rng.next() % total;
            cumulative.partition_point(|&s| s <= point).min(n - 1)
        };
        let mut first = draw(rng);
        for _ in 0..8 {
            let ramp = c.entries[replicas[first]].ramp(c.now);
            if ramp >= 1.0 || unit(rng.next()) < ramp {
                break;
            }
            first = draw(rng);
        }
        let second = (0..4).map(|_| draw(rng)).find(|&k| k != first);
        let head = [Some(replicas[first]), second.map(|k| replicas[k])];
        out.push(c.segment(replicas, head, rng.below(n)));
    }
}
