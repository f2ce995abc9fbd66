//! The Helm chart (`deploy/helm/switchyard`) rendered for its default
//! values, etcd mode and a ServiceMonitor, parsed as YAML, and checked for
//! what breaks a rollout when wrong: probes on the admin port and paths,
//! ports that match the config's listeners, a shutdown that fits the grace
//! period, the PDB, the security context, etcd mode's arguments, and a
//! default config the real loader accepts. Not checked: the Kubernetes
//! schemas (no kubeconform here) and helm's own rendering (see render.rs).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod render;

use std::path::{Path, PathBuf};

use render::{Context, render};
use serde_yaml_ng::Value;

fn chart() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/helm/switchyard")
}

fn values(overrides: &str) -> Value {
    let mut v: Value =
        serde_yaml_ng::from_str(&std::fs::read_to_string(chart().join("values.yaml")).unwrap())
            .unwrap();
    let o: Value = serde_yaml_ng::from_str(overrides).unwrap();
    merge(&mut v, o);
    v
}

fn merge(into: &mut Value, from: Value) {
    match (into, from) {
        (Value::Mapping(a), Value::Mapping(b)) => {
            for (k, v) in b {
                match a.get_mut(&k) {
                    Some(slot) => merge(slot, v),
                    None => {
                        a.insert(k, v);
                    }
                }
            }
        }
        (slot, v) => *slot = v,
    }
}

/// Every rendered manifest, as `helm template switchyard CHART` would.
fn manifests(overrides: &str) -> Vec<Value> {
    let cx = Context {
        release: "switchyard".into(),
        namespace: "default".into(),
        chart: "switchyard".into(),
        values: values(overrides),
    };
    let mut files: Vec<_> = std::fs::read_dir(chart().join("templates"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    let mut out = Vec::new();
    for f in files {
        let text = render(&std::fs::read_to_string(&f).unwrap(), &cx);
        for doc in text.split("\n---\n") {
            let v: Value = serde_yaml_ng::from_str(doc)
                .unwrap_or_else(|e| panic!("{}: {e}\n{doc}", f.display()));
            if !v.is_null() {
                out.push(v);
            }
        }
    }
    out
}

fn kind<'a>(all: &'a [Value], kind: &str) -> Vec<&'a Value> {
    all.iter()
        .filter(|m| m["kind"].as_str() == Some(kind))
        .collect()
}

fn at<'a>(v: &'a Value, path: &str) -> &'a Value {
    path.split('.').fold(v, |v, k| match k.parse::<usize>() {
        Ok(i) => &v[i],
        Err(_) => &v[k],
    })
}

fn port_of(addr: &str) -> u64 {
    addr.rsplit(':').next().unwrap().parse().unwrap()
}

#[test]
fn the_default_render_probes_the_admin_port_and_shuts_down_within_the_grace_period() {
    let all = manifests("{}");
    let dep = kind(&all, "Deployment")[0];
    let pod = at(dep, "spec.template.spec");
    let c = at(pod, "containers.0");
    let ports: Vec<(&str, u64)> = c["ports"]
        .as_sequence()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["name"].as_str().unwrap(),
                p["containerPort"].as_u64().unwrap(),
            )
        })
        .collect();
    // The config the ConfigMap carries, read by the real loader.
    let cm = kind(&all, "ConfigMap")[0];
    let text = cm["data"]["config.yaml"].as_str().unwrap();
    let config = switchyard_config::load_str(text, &|_| Some("t0ken-for-the-chart-test".into()))
        .expect("the chart's default config is valid");
    let raw: Value = serde_yaml_ng::from_str(text).unwrap();
    assert_eq!(
        ports,
        [
            ("data", port_of(at(&raw, "server.listen").as_str().unwrap())),
            (
                "admin",
                port_of(at(&raw, "server.admin_listen").as_str().unwrap())
            )
        ]
    );
    assert!(!config.models.is_empty());
    assert_eq!(
        (
            at(c, "readinessProbe.httpGet.path").as_str(),
            at(c, "readinessProbe.httpGet.port").as_str()
        ),
        (Some("/readyz"), Some("admin"))
    );
    assert_eq!(
        (
            at(c, "livenessProbe.httpGet.path").as_str(),
            at(c, "livenessProbe.httpGet.port").as_str()
        ),
        (Some("/healthz"), Some("admin"))
    );
    // preStop sleep, then SIGTERM: overlap, then grace; all within the period.
    let cmd: Vec<&str> = at(c, "lifecycle.preStop.exec.command")
        .as_sequence()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap())
        .collect();
    assert_eq!(cmd[0], "sleep");
    let sleep_ms = cmd[1].parse::<u64>().unwrap() * 1000;
    let limits = at(&raw, "server.limits");
    let (overlap, grace) = (
        limits["shutdown_overlap_ms"].as_u64().unwrap(),
        limits["shutdown_grace_ms"].as_u64().unwrap(),
    );
    assert!(
        overlap > 0,
        "behind a Service the listener must outlive the endpoint removal"
    );
    let period_ms = pod["terminationGracePeriodSeconds"].as_u64().unwrap() * 1000;
    assert!(
        period_ms >= sleep_ms + overlap + grace,
        "{period_ms} < {sleep_ms} + {overlap} + {grace}"
    );
    assert_eq!(at(c, "args").as_sequence().unwrap().len(), 3);
    assert_eq!(
        at(c, "args.2").as_str(),
        Some("/etc/switchyard/config.yaml")
    );
    assert_eq!(
        at(c, "volumeMounts.1.mountPath").as_str(),
        Some("/etc/switchyard")
    );
    assert_eq!(
        at(pod, "volumes.1.configMap.name").as_str(),
        at(cm, "metadata.name").as_str()
    );
    // Non-root as the image's user, read-only root.
    let dockerfile = std::fs::read_to_string(chart().join("../../../Dockerfile")).unwrap();
    let uid = pod["securityContext"]["runAsUser"].as_u64().unwrap();
    assert!(
        dockerfile.contains(&format!("USER {uid}:")),
        "the image's user is {uid}"
    );
    assert_eq!(
        at(pod, "securityContext.runAsNonRoot").as_bool(),
        Some(true)
    );
    assert_eq!(
        at(c, "securityContext.readOnlyRootFilesystem").as_bool(),
        Some(true)
    );
    assert_eq!(
        at(c, "securityContext.allowPrivilegeEscalation").as_bool(),
        Some(false)
    );
    assert!(at(c, "resources.requests.cpu").as_str().is_some());
    // The Service routes the data port; the PDB leaves a rollout room to drain.
    let svc = kind(&all, "Service")
        .into_iter()
        .find(|s| at(s, "metadata.name").as_str() == Some("switchyard"))
        .unwrap();
    assert_eq!(
        (
            at(svc, "spec.ports.0.port").as_u64(),
            at(svc, "spec.ports.0.targetPort").as_str()
        ),
        (Some(ports[0].1), Some("data"))
    );
    let pdb = kind(&all, "PodDisruptionBudget")[0];
    let min = at(pdb, "spec.minAvailable").as_u64().unwrap();
    assert!(min >= 1 && min < at(dep, "spec.replicas").as_u64().unwrap());
    assert_eq!(
        at(pdb, "spec.selector.matchLabels"),
        at(dep, "spec.selector.matchLabels")
    );
    assert!(kind(&all, "ServiceMonitor").is_empty(), "off by default");
}

#[test]
fn etcd_mode_runs_with_etcd_and_prefix_and_mounts_no_config() {
    let all = manifests("etcd: { enabled: true, url: 'http://etcd.db:2379', prefix: /sy }");
    let c = at(
        kind(&all, "Deployment")[0],
        "spec.template.spec.containers.0",
    );
    let args: Vec<&str> = c["args"]
        .as_sequence()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap())
        .collect();
    assert_eq!(
        args,
        ["run", "--etcd", "http://etcd.db:2379", "--prefix", "/sy"]
    );
    assert!(kind(&all, "ConfigMap").is_empty());
    assert_eq!(
        c["volumeMounts"].as_sequence().unwrap().len(),
        1,
        "only /tmp"
    );
}

#[test]
fn the_service_monitor_scrapes_admin_metrics_with_the_token() {
    let all = manifests("serviceMonitor: { enabled: true }");
    let sm = kind(&all, "ServiceMonitor")[0];
    assert_eq!(
        (
            at(sm, "spec.endpoints.0.port").as_str(),
            at(sm, "spec.endpoints.0.path").as_str()
        ),
        (Some("admin"), Some("/metrics"))
    );
    assert_eq!(
        at(sm, "spec.endpoints.0.bearerTokenSecret.key").as_str(),
        Some("SWITCHYARD_ADMIN_TOKEN")
    );
    // It selects the admin Service (and only that one).
    let wanted = at(sm, "spec.selector.matchLabels").as_mapping().unwrap();
    let selected: Vec<&str> = kind(&all, "Service")
        .into_iter()
        .filter(|svc| {
            let labels = at(svc, "metadata.labels").as_mapping().unwrap();
            wanted.iter().all(|(k, v)| labels.get(k) == Some(v))
        })
        .map(|svc| at(svc, "metadata.name").as_str().unwrap())
        .collect();
    assert_eq!(selected, ["switchyard-admin"]);
}

#[test]
fn the_renderer_trims_and_branches_as_go_templates_do() {
    let cx = Context {
        release: "r".into(),
        namespace: "n".into(),
        chart: "c".into(),
        values: serde_yaml_ng::from_str("{ on: true, off: false, s: 'a\"b', m: { k: 1 } }")
            .unwrap(),
    };
    let t = "a:\n{{- if .Values.on }}\n  b: {{ .Values.s | quote }}\n{{- else }}\n  c: 1\n{{- end }}\nm:\n  {{- toYaml .Values.m | nindent 2 }}\n{{ if not .Values.off -}}\n  x {{ .Release.Name }}\n{{- end }}";
    assert_eq!(render(t, &cx), "a:\n  b: \"a\\\"b\"\nm:\n  k: 1\nx r");
}

#[test]
#[should_panic(expected = "unsupported")]
fn the_renderer_refuses_what_it_does_not_know() {
    let cx = Context {
        release: "r".into(),
        namespace: "n".into(),
        chart: "c".into(),
        values: Value::Null,
    };
    render("{{ include \"x\" . }}", &cx);
}
