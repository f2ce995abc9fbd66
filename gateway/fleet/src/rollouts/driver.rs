//! The leader's rollout driver: every [`TICK`] one consistent read, one
//! pure decision per declared rollout ([`plan::decide`]), and fenced
//! writes of what changed. Only a leader runs it ([`crate::leader`]).

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use etcd_client::Client;
use switchyard_config::Config;

use super::Error;
use super::figures::per_instance;
use super::plan::{self, Effect, Observed};
use super::store::{self, Fence, Keys, View};

/// How often the leader looks at the fleet's rollouts.
pub const TICK: Duration = Duration::from_millis(500);

/// Wall clock, ms since the Unix epoch: the only clock that means the same
/// to the next leader, so a stored step's times survive a leader change
/// (skew between hosts, kept to ms by NTP, shifts a step by as much).
#[allow(
    clippy::disallowed_methods,
    reason = "a rollout step's times must mean the same on every instance"
)]
pub fn wall_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// One look at every rollout `config` declares, its decisions stored.
/// Returns how many groups were written.
pub async fn tick(
    client: &mut Client,
    keys: &Keys,
    fence: &Fence,
    config: &Config,
    now_ms: u64,
) -> Result<usize, Error> {
    let view = store::read(client, keys).await?;
    let mut written = 0;
    for m in &config.models {
        let Some(spec) = &m.rollout else { continue };
        let stored = view.records.get(&m.name);
        let weights = view.weights.get(&m.name);
        let seen = Observed {
            weights: weights.map(|w| &w.value),
            applied: weights.is_some_and(|w| view.all_serve(w.mod_revision)),
            counts: counts(&view, &m.name, [&spec.canary, &spec.baseline]),
            source_weights: m
                .versions
                .iter()
                .map(|v| (v.name.clone(), v.weight))
                .collect(),
            now_ms,
        };
        let (record, doc) = match plan::decide(spec, stored.map(|s| &s.value), &seen) {
            Effect::Nothing => continue,
            Effect::Save(r) => (r, None),
            Effect::SaveAndWrite(r, w) => (r, Some(w)),
        };
        let expected = stored.map_or(0, |s| s.mod_revision);
        match store::save(
            client,
            keys,
            fence,
            &m.name,
            expected,
            &record,
            doc.as_ref(),
        )
        .await?
        {
            Some(_) => written += 1,
            None => {
                // Deposed, or someone wrote the record since the read: the
                // next tick reads again and decides on what is stored.
                tracing::warn!(group = %m.name, "rollout write refused (leadership or record changed)");
            }
        }
    }
    Ok(written)
}

fn counts<'a>(
    view: &View,
    group: &str,
    versions: impl IntoIterator<Item = &'a String>,
) -> BTreeMap<String, super::figures::PerInstance> {
    versions
        .into_iter()
        .map(|v| (v.clone(), per_instance(&view.counts, group, v)))
        .collect()
}
