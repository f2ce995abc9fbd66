//! The load figures the scoring policies (`prefix_cache`, the LoRA scorer)
//! weigh against their affinity: a replica's load, its batch size and KV
//! use, and the least load among the candidates.

use super::seam::Candidates;

/// (load in requests, requests per batch, KV use) of replica `i`: the
/// engine's running + waiting corrected by our sends since the scrape and
/// its running batch when fresh; else our in-flight and its slots.
pub(crate) fn load(c: &Candidates<'_, '_>, i: usize) -> (f64, f64, f64) {
    let e = &c.entries[i];
    let stale = c.scoring.engine_stale.as_millis() as u64;
    match e.engine(c.now, stale) {
        Some(v) => (
            f64::from(v.load),
            f64::from(e.stats.engine.running().max(1)),
            v.kv,
        ),
        None => (
            f64::from(e.stats.in_flight()),
            (f64::from(e.replica.max_concurrency) * e.ramp(c.now)).max(1.0),
            0.0,
        ),
    }
}

/// The least load among `replicas`.
pub(crate) fn least(c: &Candidates<'_, '_>, replicas: &[usize]) -> f64 {
    replicas
        .iter()
        .map(|&i| load(c, i).0)
        .fold(f64::INFINITY, f64::min)
}

/// `queue_weight × excess load in batches + kv_weight × kv` of replica `i`
/// over the least loaded candidate: what a score subtracts.
pub(crate) fn penalty(c: &Candidates<'_, '_>, least: f64, i: usize) -> f64 {
    let (requests, batch, kv) = load(c, i);
    c.scoring.queue_weight * (requests - least) / batch + c.scoring.kv_weight * kv
}

/// The indices of the best two of `replicas` by `score` (higher first),
/// walked from a random `offset` so ties go to a random replica.
pub(crate) fn best_two(
    replicas: &[usize],
    offset: usize,
    score: impl Fn(usize) -> f64,
) -> [Option<usize>; 2] {
    let mut best: [(f64, Option<usize>); 2] = [(f64::NEG_INFINITY, None); 2];
    for k in 0..replicas.len() {
        let i = replicas[(offset + k) % replicas.len()];
        let sc = score(i);
        if sc > best[0].0 {
            best[1] = best[0];
            best[0] = (sc, Some(i));
        } else if sc > best[1].0 {
            best[1] = (sc, Some(i));
        }
    }
    [best[0].1, best[1].1]
}
