//! EndpointSlices as the API server sends them (JSON), mapped to members.

use super::*;

fn slice(json: &str) -> EndpointSlice {
    serde_json::from_str(json).expect("valid EndpointSlice JSON")
}

fn a(s: &str) -> SocketAddr {
    s.parse().expect("socket address")
}

/// An IPv4 slice of Service `vllm` (ports `http` 8000 and `metrics` 9090):
/// a ready pod, one with no conditions at all, a terminating but serving
/// one, a terminating not-serving one, and a not-ready one.
const V4: &str = r#"{
  "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
  "metadata": {"name": "vllm-abc12", "namespace": "llm",
    "labels": {"kubernetes.io/service-name": "vllm"}, "resourceVersion": "101"},
  "addressType": "IPv4",
  "ports": [{"name": "http", "port": 8000, "protocol": "TCP"},
            {"name": "metrics", "port": 9090, "protocol": "TCP"}],
  "endpoints": [
    {"addresses": ["10.1.0.5"], "conditions": {"ready": true, "serving": true, "terminating": false},
     "targetRef": {"kind": "Pod", "name": "vllm-0", "namespace": "llm"}, "nodeName": "gpu-a"},
    {"addresses": ["10.1.0.6"]},
    {"addresses": ["10.1.0.7"], "conditions": {"ready": false, "serving": true, "terminating": true}},
    {"addresses": ["10.1.0.8"], "conditions": {"ready": false, "serving": false, "terminating": true}},
    {"addresses": ["10.1.0.9"], "conditions": {"ready": false, "serving": false, "terminating": false}}
  ]
}"#;

/// The IPv6 slice of the same dual-stack Service.
const V6: &str = r#"{
  "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
  "metadata": {"name": "vllm-v6xyz", "namespace": "llm",
    "labels": {"kubernetes.io/service-name": "vllm"}},
  "addressType": "IPv6",
  "ports": [{"name": "http", "port": 8000, "protocol": "TCP"}],
  "endpoints": [
    {"addresses": ["fd00::5"], "conditions": {"ready": true}},
    {"addresses": ["10.1.0.99"], "conditions": {"ready": true}}
  ]
}"#;

/// A second IPv4 slice (the Service has more endpoints than one slice
/// holds), whose pods serve `http` on another target port.
const V4_MORE: &str = r#"{
  "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
  "metadata": {"name": "vllm-def34", "namespace": "llm",
    "labels": {"kubernetes.io/service-name": "vllm"}},
  "addressType": "IPv4",
  "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}],
  "endpoints": [{"addresses": ["10.1.1.5"], "conditions": {"ready": true}}]
}"#;

/// A slice for only the `metrics` port.
const METRICS_ONLY: &str = r#"{
  "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
  "metadata": {"name": "vllm-m9", "namespace": "llm"},
  "addressType": "IPv4",
  "ports": [{"name": "metrics", "port": 9090}],
  "endpoints": [{"addresses": ["10.1.2.5"], "conditions": {"ready": true}}]
}"#;

fn http() -> KubePort {
    KubePort::Name("http".into())
}

#[test]
fn conditions_follow_the_api_defaults() {
    let got = endpoints(&slice(V4), &http());
    assert_eq!(
        got,
        vec![
            (a("10.1.0.5:8000"), State::Ready),
            (a("10.1.0.6:8000"), State::Ready),
            (a("10.1.0.7:8000"), State::Draining),
            (a("10.1.0.8:8000"), State::NotReady),
            (a("10.1.0.9:8000"), State::NotReady),
        ]
    );
    assert_eq!(
        ready(&slice(V4), &http()),
        vec![a("10.1.0.5:8000"), a("10.1.0.6:8000")]
    );
}

#[test]
fn named_port_picks_that_ports_number_per_slice() {
    assert_eq!(
        ready(&slice(V4), &KubePort::Name("metrics".into())),
        vec![a("10.1.0.5:9090"), a("10.1.0.6:9090")]
    );
    assert_eq!(ready(&slice(V4_MORE), &http()), vec![a("10.1.1.5:8080")]);
    assert!(ready(&slice(METRICS_ONLY), &http()).is_empty());
    assert!(ready(&slice(V4), &KubePort::Name("grpc".into())).is_empty());
}

#[test]
fn numbered_port_needs_a_slice_serving_it() {
    assert_eq!(ready(&slice(V4), &KubePort::Number(9090)).len(), 2);
    assert!(ready(&slice(V4_MORE), &KubePort::Number(8000)).is_empty());
    assert!(ready(&slice(METRICS_ONLY), &KubePort::Number(8000)).is_empty());
    // A slice of a Service without ports: a port with no number means all.
    let all = r#"{"metadata": {"name": "h"}, "addressType": "IPv4",
        "ports": [{"name": ""}], "endpoints": [{"addresses": ["10.9.0.1"]}]}"#;
    assert_eq!(
        ready(&slice(all), &KubePort::Number(8000)),
        vec![a("10.9.0.1:8000")]
    );
}

#[test]
fn udp_ports_and_fqdn_slices_give_nothing() {
    let udp = r#"{"metadata": {"name": "u"}, "addressType": "IPv4",
        "ports": [{"name": "http", "port": 8000, "protocol": "UDP"}],
        "endpoints": [{"addresses": ["10.9.0.1"]}]}"#;
    assert!(ready(&slice(udp), &http()).is_empty());
    let fqdn = r#"{"metadata": {"name": "f"}, "addressType": "FQDN",
        "ports": [{"name": "http", "port": 8000}],
        "endpoints": [{"addresses": ["gpu.example.com"]}]}"#;
    assert!(ready(&slice(fqdn), &http()).is_empty());
}

#[test]
fn dual_stack_gives_both_families_and_drops_mismatched_addresses() {
    let mut t = Tracker::new(http());
    t.step(Step::ListStart);
    t.step(Step::Listed(slice(V4)));
    t.step(Step::Listed(slice(V6)));
    let members = t
        .step(Step::ListDone)
        .expect("published at the end of a list");
    assert_eq!(
        members,
        vec![a("10.1.0.5:8000"), a("10.1.0.6:8000"), a("[fd00::5]:8000")]
    );
}

#[test]
fn a_list_publishes_only_when_done_and_replaces_everything() {
    let mut t = Tracker::new(http());
    assert!(t.step(Step::ListStart).is_none());
    assert!(t.step(Step::Listed(slice(V4))).is_none());
    assert!(t.step(Step::Listed(slice(V4_MORE))).is_none());
    assert_eq!(t.step(Step::ListDone).map(|m| m.len()), Some(3));
    // The watch drops; meanwhile slice vllm-def34's pod is deleted and the
    // slice goes. The re-list lacks it: its member is gone at ListDone, and
    // the old set serves until then.
    t.step(Step::ListStart);
    t.step(Step::Listed(slice(V4)));
    assert_eq!(t.members().len(), 3, "old set serves during the re-list");
    assert_eq!(
        t.step(Step::ListDone),
        Some(vec![a("10.1.0.5:8000"), a("10.1.0.6:8000")])
    );
}

#[test]
fn watch_events_update_incrementally() {
    let mut t = Tracker::new(http());
    t.step(Step::ListStart);
    t.step(Step::Listed(slice(V4)));
    t.step(Step::ListDone);
    assert_eq!(
        t.step(Step::Applied(slice(V4_MORE))).map(|m| m.len()),
        Some(3)
    );
    // vllm-0 starts terminating: it leaves the member set (and drains).
    let modified = V4.replace(
        r#""conditions": {"ready": true, "serving": true, "terminating": false}"#,
        r#""conditions": {"ready": false, "serving": true, "terminating": true}"#,
    );
    assert_eq!(
        t.step(Step::Applied(slice(&modified))),
        Some(vec![a("10.1.0.6:8000"), a("10.1.1.5:8080")])
    );
    assert_eq!(
        t.step(Step::Deleted(slice(V4_MORE))),
        Some(vec![a("10.1.0.6:8000")])
    );
}

#[test]
fn an_endpoint_in_two_slices_is_one_member() {
    let moved = V4_MORE
        .replace("10.1.1.5", "10.1.0.5")
        .replace("8080", "8000");
    let mut t = Tracker::new(http());
    t.step(Step::ListStart);
    t.step(Step::Listed(slice(V4)));
    t.step(Step::Listed(slice(&moved)));
    assert_eq!(t.step(Step::ListDone).map(|m| m.len()), Some(2));
}
