//! The KServe v2 Open Inference Protocol through the gateway.

use switchyard_fake_replica::ReplicaConfig;
use switchyard_tests::Http;

use crate::fleet;

fn tensor() -> serde_json::Value {
    serde_json::json!({
        "id": "req-1",
        "inputs": [{ "name": "x", "shape": [2, 2], "datatype": "FP32", "data": [1.0, 2.0, 3.0, 4.0] }]
    })
}

#[tokio::test]
async fn infer_is_proxied_by_path_name() {
    let (gw, replicas) = fleet(ReplicaConfig::default()).await;
    let http = Http::default();
    let ans = http
        .post(gw.data_addr, "/v2/models/resnet/infer", &tensor())
        .await;
    assert_eq!(ans.status, 200, "{:?}", ans.body);
    assert_eq!(ans.header("x-switchyard-replica"), "k");
    let json = ans.json();
    assert_eq!(json["id"], "req-1");
    assert_eq!(
        json["outputs"][0]["data"],
        serde_json::json!([1.0, 2.0, 3.0, 4.0])
    );
    assert_eq!(
        replicas["k"].last_request().unwrap().path,
        "/v2/models/resnet/infer"
    );

    let pinned = http
        .post(
            gw.data_addr,
            "/v2/models/resnet/versions/1/infer",
            &tensor(),
        )
        .await;
    assert_eq!(pinned.status, 200);
    assert_eq!(pinned.header("x-switchyard-version"), "1");
    let missing = http
        .post(
            gw.data_addr,
            "/v2/models/resnet/versions/9/infer",
            &tensor(),
        )
        .await;
    assert_eq!(missing.status, 404);
    assert!(
        missing.json()["error"]
            .as_str()
            .unwrap()
            .contains("no version `9`")
    );
}

#[tokio::test]
async fn metadata_readiness_and_health() {
    let (gw, _replicas) = fleet(ReplicaConfig::default()).await;
    let http = Http::default();
    assert_eq!(http.get(gw.data_addr, "/v2/health/live").await.status, 200);
    assert_eq!(http.get(gw.data_addr, "/v2/health/ready").await.status, 200);
    assert_eq!(
        http.get(gw.data_addr, "/v2/models/resnet/ready")
            .await
            .status,
        200
    );
    assert_eq!(
        http.get(gw.data_addr, "/v2/models/nope/ready").await.status,
        404
    );
    let meta = http.get(gw.data_addr, "/v2/models/resnet").await;
    assert_eq!(meta.status, 200);
    assert_eq!(meta.json()["name"], "resnet");
}

#[tokio::test]
async fn errors_use_the_kserve_shape() {
    let (gw, _replicas) = fleet(ReplicaConfig::default()).await;
    let http = Http::default();
    let ans = http
        .post(gw.data_addr, "/v2/models/unknown/infer", &tensor())
        .await;
    assert_eq!(ans.status, 404);
    assert!(
        ans.json()["error"].is_string(),
        "KServe errors are {{\"error\": \"...\"}}"
    );
    // An OpenAI-only model is not reachable over KServe.
    let ans = http
        .post(gw.data_addr, "/v2/models/chat/infer", &tensor())
        .await;
    assert_eq!(ans.status, 404);
    assert!(ans.json()["error"].as_str().unwrap().contains("kserve_v2"));
}
