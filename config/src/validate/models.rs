//! `models:` groups, their versions and fallbacks, residency, and the
//! checks that need the replicas too.

use std::collections::{BTreeMap, HashSet};

use super::Validator;
use crate::model::{Cloud, ModelGroup, Replica, Version};
use crate::raw::{RawModel, RawVersion};

impl Validator<'_> {
    pub(super) fn models(&mut self, raw: Vec<RawModel>) -> Vec<ModelGroup> {
        if raw.is_empty() {
            self.err("models", "at least one model group is required");
        }
        let mut seen = HashSet::new();
        let mut out = Vec::with_capacity(raw.len());
        for (i, m) in raw.into_iter().enumerate() {
            let path = format!("models[{i}]");
            self.name(&format!("{path}.name"), &m.name);
            if !seen.insert(m.name.clone()) {
                self.err(
                    format!("{path}.name"),
                    format!("duplicate model group `{}`", m.name),
                );
            }
            let versions = self.versions(&path, m.versions);
            let routing = self.routing(&format!("{path}.routing"), m.routing);
            let rollout = m
                .rollout
                .and_then(|r| self.rollout(&format!("{path}.rollout"), r, &versions));
            let health_check = m
                .health_check
                .map(|h| self.health_check(&format!("{path}.health_check"), h));
            out.push(ModelGroup {
                rollout,
                name: m.name,
                versions,
                fallbacks: m.fallbacks,
                context_fallbacks: m.context_fallbacks,
                residency: m.residency,
                adapters: m.adapters,
                health_check,
                routing,
            });
        }
        self.fallbacks(&out);
        self.adapters(&out);
        out
    }

    /// `models[i].adapters`: names, unique across groups and unlike any
    /// group's, so a request's `model` names one thing.
    fn adapters(&mut self, groups: &[ModelGroup]) {
        let names: HashSet<&str> = groups.iter().map(|m| m.name.as_str()).collect();
        let mut seen: HashSet<&str> = HashSet::new();
        for (i, m) in groups.iter().enumerate() {
            for (j, a) in m.adapters.iter().enumerate() {
                let path = format!("models[{i}].adapters[{j}]");
                self.name(&path, a);
                if names.contains(a.as_str()) {
                    self.err(path, format!("`{a}` is also a model group's name"));
                } else if !seen.insert(a) {
                    self.err(path, format!("adapter `{a}` is listed twice"));
                }
            }
        }
    }

    /// Fallbacks (and context fallbacks) need the full list of names.
    fn fallbacks(&mut self, groups: &[ModelGroup]) {
        let names: HashSet<&str> = groups.iter().map(|m| m.name.as_str()).collect();
        for (i, m) in groups.iter().enumerate() {
            let lists = [
                ("fallbacks", &m.fallbacks),
                ("context_fallbacks", &m.context_fallbacks),
            ];
            for (field, j, f) in lists
                .into_iter()
                .flat_map(|(field, l)| l.iter().enumerate().map(move |(j, f)| (field, j, f)))
            {
                let path = format!("models[{i}].{field}[{j}]");
                if f == &m.name {
                    self.err(path, "a group cannot fall back to itself");
                } else if !names.contains(f.as_str()) {
                    self.err(path, format!("unknown model group `{f}`"));
                }
            }
        }
    }

    fn versions(&mut self, path: &str, raw: Vec<RawVersion>) -> Vec<Version> {
        if raw.is_empty() {
            self.err(
                format!("{path}.versions"),
                "at least one version is required",
            );
            return Vec::new();
        }
        let mut seen = HashSet::new();
        let mut out = Vec::with_capacity(raw.len());
        for (j, v) in raw.into_iter().enumerate() {
            let vpath = format!("{path}.versions[{j}]");
            self.name(&format!("{vpath}.name"), &v.name);
            if !seen.insert(v.name.clone()) {
                self.err(
                    format!("{vpath}.name"),
                    format!("duplicate version `{}`", v.name),
                );
            }
            if !(0..=100).contains(&v.weight) {
                self.err(
                    format!("{vpath}.weight"),
                    format!("must be 0..=100, got {}", v.weight),
                );
            }
            out.push(Version {
                name: v.name,
                weight: v.weight.clamp(0, 100) as u32,
            });
        }
        if out.iter().all(|v| v.weight == 0) {
            self.err(
                format!("{path}.versions"),
                "total weight is 0: at least one version needs weight > 0",
            );
        }
        out
    }

    /// `models[i].residency`: cloud ids or provider names.
    pub(super) fn residency(&mut self, models: &[ModelGroup], clouds: &BTreeMap<String, Cloud>) {
        for (i, m) in models.iter().enumerate() {
            for (j, r) in m.residency.iter().enumerate() {
                let known =
                    clouds.contains_key(r) || ["aws", "azure", "private"].contains(&r.as_str());
                if !known {
                    self.err(
                        format!("models[{i}].residency[{j}]"),
                        format!("`{r}` is neither a cloud id nor a provider (aws, azure, private)"),
                    );
                }
            }
        }
    }

    /// Every version with traffic has a replica serving it.
    pub(super) fn cross_checks(&mut self, models: &[ModelGroup], replicas: &[Replica]) {
        for (i, m) in models.iter().enumerate() {
            for (j, v) in m.versions.iter().enumerate() {
                let served = replicas
                    .iter()
                    .any(|r| r.model == m.name && r.version == v.name);
                if !served && v.weight > 0 {
                    self.err(
                        format!("models[{i}].versions[{j}]"),
                        format!(
                            "`{}@{}` has weight {} but no replica serves it",
                            m.name, v.name, v.weight
                        ),
                    );
                }
            }
        }
    }
}
