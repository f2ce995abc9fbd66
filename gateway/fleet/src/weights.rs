//! A group's weights as stored under `P/control/weights/<group>`, in the
//! one shape both writers share: the rollout leader writes the whole
//! document, an operator (the admin API in etcd mode, `switchyard fleet
//! weights`, or `etcdctl put`) may write just `{"v1": 90, "v2": 10}`. Both
//! read back as a [`WeightsDoc`]; a plain map reads as set by an operator.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// A group's weights as stored under `P/control/weights/<group>`: what a
/// weight override holds in one process (`control::reload`), plus who set
/// them and, after a promote, the new stable version.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(from = "Wire")]
pub struct WeightsDoc {
    /// Version -> weight; versions not named get 0.
    pub weights: BTreeMap<String, u32>,
    /// The group's weights in the config when these were set: when the
    /// config's weights change, the config wins and these go.
    #[serde(default)]
    pub source_weights: Vec<(String, u32)>,
    /// Who set them: `rollout` for the leader, else the operator's trigger.
    pub trigger: String,
    /// Set by a promote: the version `rollback` returns to from now on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stable: Option<String>,
}

/// What may be stored: the leader's document, or a plain map.
#[derive(Deserialize)]
#[serde(untagged)]
enum Wire {
    Doc {
        weights: BTreeMap<String, u32>,
        #[serde(default)]
        source_weights: Vec<(String, u32)>,
        trigger: String,
        #[serde(default)]
        stable: Option<String>,
    },
    Plain(BTreeMap<String, u32>),
}

impl From<Wire> for WeightsDoc {
    fn from(w: Wire) -> Self {
        match w {
            Wire::Doc {
                weights,
                source_weights,
                trigger,
                stable,
            } => Self {
                weights,
                source_weights,
                trigger,
                stable,
            },
            Wire::Plain(weights) => Self {
                weights,
                source_weights: Vec::new(),
                trigger: "operator".to_owned(),
                stable: None,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_operators_plain_map_and_the_leaders_document_both_read() {
        let plain: WeightsDoc = serde_json::from_str(r#"{"v1":90,"v2":10}"#).unwrap();
        assert_eq!(plain.weights.get("v2"), Some(&10));
        assert_eq!(plain.trigger, "operator");
        let doc: WeightsDoc = serde_json::from_str(
            r#"{"weights":{"v1":50,"v2":50},"source_weights":[["v1",100]],"trigger":"rollout","stable":"v2"}"#,
        )
        .unwrap();
        assert_eq!(doc.weights.get("v1"), Some(&50));
        assert_eq!(doc.trigger, "rollout");
        assert_eq!(doc.stable.as_deref(), Some("v2"));
        let back: WeightsDoc = serde_json::from_str(&serde_json::to_string(&doc).unwrap()).unwrap();
        assert_eq!(back, doc);
        assert!(serde_json::from_str::<WeightsDoc>(r#"{"v1":"x"}"#).is_err());
    }
}
