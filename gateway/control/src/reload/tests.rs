//! The control path without sockets: snapshot pinning under random
//! reload sequences, and weight overrides against file changes.

#![allow(clippy::unwrap_used)]

use proptest::prelude::*;
use switchyard_config::Protocol;
use switchyard_router::RouteRequest;

use super::*;

/// One replica slot of the generated configs: present or not, and at
/// which of a few addresses.
#[derive(Debug, Clone)]
struct Slot {
    present: bool,
    port: u16,
    version: u8,
}

fn yaml(slots: &[Slot], v2_weight: u32) -> String {
    let mut s = format!(
        "models:\n  - name: m\n    versions: [{{ name: v1, weight: 50 }}, {{ name: v2, weight: {v2_weight} }}]\n\
         clouds: {{ c: {{ provider: private }} }}\nreplicas:\n"
    );
    for (i, slot) in slots.iter().enumerate().filter(|(_, s)| s.present) {
        s.push_str(&format!(
            "  - {{ id: r{i}, model: m, version: v{}, cloud: c, url: \"http://127.0.0.1:{}\", max_concurrency: 1000 }}\n",
            slot.version, slot.port
        ));
    }
    s
}

fn slots() -> impl Strategy<Value = Vec<Slot>> {
    prop::collection::vec(
        (any::<bool>(), 9001u16..9004, 1u8..=2).prop_map(|(present, port, version)| Slot {
            present,
            port,
            version,
        }),
        6,
    )
    .prop_filter("at least one replica per version", |s| {
        (1..=2).all(|v| s.iter().any(|x| x.present && x.version == v))
    })
}

fn load(text: &str) -> Config {
    switchyard_config::load_str(text, &|_| None).unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Random add/update/remove sequences: a request that pinned a
    /// snapshot routes only to that snapshot's replicas (same id, same
    /// URL, matching upstream details), whatever was applied since;
    /// replicas a change dropped are draining, kept ones are not.
    #[test]
    fn requests_route_only_within_the_snapshot_they_pinned(
        steps in prop::collection::vec((slots(), 0u32..=100), 1..8),
        rand in any::<u64>(),
    ) {
        let first = &steps[0];
        let gw = Controller::for_tests(load(&yaml(&first.0, first.1)));
        let mut pinned = vec![gw.proxy().snapshot()];
        for (slots, w) in &steps[1..] {
            let before = gw.proxy().snapshot();
            let applied = gw.apply(load(&yaml(slots, *w)), Trigger::AdminConfig).unwrap();
            let after = gw.proxy().snapshot();
            prop_assert_eq!(applied.generation, after.generation);
            prop_assert!(after.generation >= before.generation);
            for e in before.table.entries() {
                let kept = after.table.entries().iter().any(|n| {
                    n.replica.id == e.replica.id && n.replica.url == e.replica.url
                });
                prop_assert_eq!(e.stats.is_draining(), !kept, "{}", e.replica.id);
            }
            pinned.push(after);
        }
        for (k, snap) in pinned.iter().enumerate() {
            let req = RouteRequest {
                model: "m",
                protocol: Protocol::OpenAi,
                clouds: &[],
                affinity_key: None,
                prefix: &[],
                adapter: None,
            };
            let ranking = snap.table.rank(&req, rand.wrapping_add(k as u64)).unwrap();
            for i in ranking.iter() {
                let entry = &snap.table.entries()[i];
                let declared = snap.config.replicas.iter().find(|r| r.id == entry.replica.id);
                prop_assert!(declared.is_some_and(|r| r.url == entry.replica.url));
                let up = &snap.upstreams[i];
                prop_assert_eq!(up.id_header.to_str().unwrap(), entry.replica.id.as_str());
                prop_assert_eq!(up.authority.port_u16(), entry.replica.url.port());
            }
        }
    }
}

#[test]
fn weight_overrides_survive_unrelated_reloads_and_yield_to_the_file() {
    let slots: Vec<Slot> = (0..2)
        .map(|i| Slot {
            present: true,
            port: 9001,
            version: i + 1,
        })
        .collect();
    let gw = Controller::for_tests(load(&yaml(&slots, 50)));
    let weights = |gw: &Controller| -> Vec<u32> {
        gw.proxy().snapshot().config.models[0]
            .versions
            .iter()
            .map(|v| v.weight)
            .collect()
    };
    gw.set_weights("m", BTreeMap::from([("v2".into(), 100)]), Trigger::Weights)
        .unwrap();
    assert_eq!(weights(&gw), [0, 100]);
    // An unrelated change (a replica moves) keeps the override.
    let mut moved = slots.clone();
    moved[0].port = 9002;
    gw.apply(load(&yaml(&moved, 50)), Trigger::File).unwrap();
    assert_eq!(weights(&gw), [0, 100]);
    // The file changes this group's weights: the file wins.
    let applied = gw.apply(load(&yaml(&moved, 10)), Trigger::File).unwrap();
    assert_eq!(weights(&gw), [50, 10]);
    assert!(applied.warnings.iter().any(|w| w.contains("replaced")));
}
