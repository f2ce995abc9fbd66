//! The live dashboard in a real browser: headless Chromium, driven over
//! WebDriver by a `chromedriver` this test starts on 127.0.0.1, loads `/`
//! from the admin listener of a running demo (gateway + fake replicas +
//! synthetic traffic, in this process), checks that the replica rows render
//! and that the live numbers move, and saves a screenshot to
//! `target/dashboard.png`.
//!
//! Chromium comes from `scripts/install-deps`; without it these tests
//! fail (they never skip). Set `DASHBOARD_SCREENSHOT=docs/dashboard.png` to
//! write the README's picture instead: dark, after a minute of history and
//! once the demo's injected fault has a replica ejected (about 70 s).

mod webdriver;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use serde_json::Value;
use switchyard_demo::Demo;
use switchyard_fake_replica::ReplicaConfig;
use switchyard_tests::{Http, chat};
use webdriver::Browser;

/// Bound on each test as a whole.
const TEST_LIMIT: Duration = Duration::from_secs(150);
/// Bound on each thing the page should show.
const SHOW_LIMIT: Duration = Duration::from_secs(20);

async fn bounded<T>(fut: impl Future<Output = T>) -> T {
    tokio::time::timeout(TEST_LIMIT, fut)
        .await
        .expect("dashboard test took too long")
}

fn any_port() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 0))
}

fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target"))
}

/// Sum of the Requests column and the page's poll counter.
const READ_NUMBERS: &str = r#"
    const cells = [...document.querySelectorAll('tr.replica td.c-requests')];
    const total = cells.reduce((a, td) => a + Number(td.textContent.replace(/,/g, '')), 0);
    return { total, polls: Number(document.body.dataset.polls || 0),
             rps: document.getElementById('t-rps').textContent };
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dashboard_shows_the_demo_fleet_and_its_numbers_move() {
    let browser = Browser::start().await;
    bounded(async {
        let demo = Demo::start(any_port(), any_port(), true).await.unwrap();
        let admin = demo.running().admin_addr;
        let docs_shot = std::env::var_os("DASHBOARD_SCREENSHOT").map(PathBuf::from);
        let page = browser.session(1600, 1000, docs_shot.is_some()).await;
        page.goto(&format!("http://{admin}/")).await;

        page.wait_for(
            "seven replica rows in three clouds, live",
            SHOW_LIMIT,
            "return document.body.dataset.state === 'live'
                && document.querySelectorAll('tr.replica').length === 7
                && document.querySelectorAll('tr.cloud').length === 3",
        )
        .await;
        let ids = page
            .eval("return [...document.querySelectorAll('tr.replica')].map(r => r.dataset.id)")
            .await;
        for id in ["private-1", "aws-1", "azure-1", "aws-2", "private-3"] {
            assert!(ids.as_array().unwrap().contains(&Value::from(id)), "{ids}");
        }
        let groups = page
            .eval(
                "return [...document.querySelectorAll('#groups .group')].map(g => g.dataset.model)",
            )
            .await;
        assert_eq!(groups, serde_json::json!(["chat", "chat-small", "resnet"]));

        let before = page.eval(READ_NUMBERS).await;
        let script = format!(
            "const before = {before};
             const now = (() => {{ {READ_NUMBERS} }})();
             return now.total > before.total && now.polls >= before.polls + 2
                 && now.rps !== '–' && Number(now.rps) > 0 ? now : null;"
        );
        let after = page
            .wait_for("request counts and throughput move", SHOW_LIMIT, &script)
            .await;
        println!("dashboard numbers: {before} -> {after}");

        let shot = match docs_shot {
            Some(path) => {
                page.wait_for(
                    "a minute of history, then a replica ejected by the demo's fault",
                    Duration::from_secs(100),
                    "return Number(document.body.dataset.polls) >= 50
                        && document.querySelector('tr.replica.is-ejected') !== null",
                )
                .await;
                path
            }
            None => target_dir().join("dashboard.png"),
        };
        let png = page.screenshot().await;
        assert!(png.starts_with(b"\x89PNG"), "not a PNG");
        std::fs::write(&shot, &png).unwrap();
        println!("screenshot: {}", shot.display());

        page.close().await;
        demo.shutdown().await.unwrap();
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dashboard_asks_for_the_admin_token_and_keeps_it_out_of_urls() {
    let browser = Browser::start().await;
    bounded(async {
        let fleet = switchyard_tests::replicas(&[
            ("a", ReplicaConfig::default()),
            ("b", ReplicaConfig::default()),
        ])
        .await;
        let yaml = r#"
server: { admin_token: "t0ken-for-the-dashboard" }
clouds: { onprem: { provider: private }, aws: { provider: aws } }
models: [{ name: chat, versions: [{ name: v1, weight: 100 }] }]
replicas:
  - { id: a, model: chat, cloud: onprem, url: "${A_URL}" }
  - { id: b, model: chat, cloud: aws, url: "${B_URL}" }
"#;
        let gw = switchyard_tests::gateway(yaml, &fleet).await;
        let http = Http::default();
        for _ in 0..4 {
            let ans = http
                .post(gw.data_addr, "/v1/chat/completions", &chat("chat", false))
                .await;
            assert_eq!(ans.status, 200);
        }
        let page = browser.session(1280, 800, false).await;
        page.goto(&format!("http://{}/", gw.admin_addr)).await;

        page.wait_for(
            "the token prompt, and no data",
            SHOW_LIMIT,
            "return document.body.dataset.state === 'auth'
                && !document.getElementById('auth').hidden
                && document.querySelectorAll('tr.replica').length === 0",
        )
        .await;

        page.type_into("#auth-token", "not-the-token").await;
        page.click("#auth-submit").await;
        page.wait_for(
            "a wrong token rejected",
            SHOW_LIMIT,
            "return document.body.dataset.state === 'auth'
                && !document.getElementById('auth-error').hidden",
        )
        .await;

        page.type_into("#auth-token", "t0ken-for-the-dashboard")
            .await;
        page.click("#auth-submit").await;
        let requests = page
            .wait_for(
                "the replica table once the right token is in",
                SHOW_LIMIT,
                "const rows = document.querySelectorAll('tr.replica');
                 return document.body.dataset.state === 'live' && rows.length === 2
                     ? [...rows].map(r => Number(r.querySelector('.c-requests').textContent))
                     : null",
            )
            .await;
        let total: u64 = requests
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_u64().unwrap())
            .sum();
        assert_eq!(total, 4, "{requests}");

        let where_ = page
            .eval("return [location.href, sessionStorage.getItem('switchyard.adminToken')]")
            .await;
        assert_eq!(where_[0], format!("http://{}/", gw.admin_addr));
        assert_eq!(where_[1], "t0ken-for-the-dashboard");

        page.close().await;
        gw.shutdown().await.unwrap();
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fleet_of_hundreds_fits_folded_by_cloud_and_model() {
    let browser = Browser::start().await;
    bounded(async {
        // 300 replicas over 3 clouds and 5 model groups. Nothing is sent to
        // them (no traffic, no health checks), so their URLs need no server.
        let mut yaml = String::from(
            "clouds: { onprem: { provider: private }, aws: { provider: aws }, azure: { provider: azure } }\nmodels:\n",
        );
        for m in 0..5 {
            yaml.push_str(&format!("  - {{ name: m{m}, versions: [{{ name: v1, weight: 100 }}] }}\n"));
        }
        yaml.push_str("replicas:\n");
        for i in 0..300 {
            let cloud = ["onprem", "aws", "azure"][i % 3];
            yaml.push_str(&format!(
                "  - {{ id: r{i}, model: m{}, cloud: {cloud}, url: \"http://127.0.0.1:{}\" }}\n",
                (i / 3) % 5,
                10_000 + i
            ));
        }
        let gw = switchyard_tests::gateway(&yaml, &Default::default()).await;
        let page = browser.session(1600, 1000, false).await;
        page.goto(&format!("http://{}/", gw.admin_addr)).await;
        let folded = page
            .wait_for(
                "the fleet, folded to its clouds",
                SHOW_LIMIT,
                "const visible = (sel) => [...document.querySelectorAll(sel)].filter(r => !r.hidden).length;
                 return document.body.dataset.state === 'live'
                     && document.querySelectorAll('tr.replica').length === 300
                     ? [visible('tr.cloud'), visible('tr.model'), visible('tr.replica'),
                        document.getElementById('replicas').getBoundingClientRect().height]
                     : null",
            )
            .await;
        assert_eq!(folded[0], 3, "{folded}");
        assert_eq!((folded[1].as_u64(), folded[2].as_u64()), (Some(0), Some(0)), "{folded}");
        assert!(folded[3].as_f64().unwrap() < 400.0, "the table fits: {folded}");

        // Unfold one cloud: its model groups; then one model: its replicas.
        page.click("tr.cloud[data-key='aws']").await;
        page.wait_for(
            "aws's model groups",
            SHOW_LIMIT,
            "return [...document.querySelectorAll('tr.model')].filter(r => !r.hidden).length === 5",
        )
        .await;
        page.click("tr.model[data-key='aws|m1']").await;
        let shown = page
            .wait_for(
                "m1's replicas in aws",
                SHOW_LIMIT,
                "const rows = [...document.querySelectorAll('tr.replica')].filter(r => !r.hidden);
                 return rows.length > 0 ? rows.map(r => r.dataset.id) : null",
            )
            .await;
        let ids: Vec<&str> = shown.as_array().unwrap().iter().filter_map(|v| v.as_str()).collect();
        assert_eq!(ids.len(), 20, "{ids:?}");
        assert!(ids.iter().all(|id| {
            let i: usize = id[1..].parse().unwrap();
            i % 3 == 1 && (i / 3) % 5 == 1
        }), "{ids:?}");
        page.close().await;
        gw.shutdown().await.unwrap();
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_tenants_panel_shows_spend_against_budgets() {
    let browser = Browser::start().await;
    bounded(async {
        let fleet = switchyard_tests::replicas(&[("a", ReplicaConfig::default())]).await;
        let yaml = r#"
clouds: { onprem: { provider: private } }
models: [{ name: chat, versions: [{ name: v1, weight: 100 }] }]
replicas:
  - { id: a, model: chat, cloud: onprem, url: "${A_URL}", cost: { input_per_1k: 1.0, output_per_1k: 1.0 } }
tenants:
  - name: team
    keys: [{ id: ci, key: ci-key, daily_budget_usd: 1 }, { id: app, key: app-key }]
    monthly_budget_usd: 10
"#;
        let gw = switchyard_tests::gateway(yaml, &fleet).await;
        let http = Http::default();
        for key in ["ci-key", "ci-key", "app-key"] {
            let ans = http
                .call(
                    "POST",
                    gw.data_addr,
                    "/v1/chat/completions",
                    &[("content-type", "application/json"), ("x-api-key", key)],
                    chat("chat", false).to_string(),
                )
                .await;
            assert_eq!(ans.status, 200);
        }
        let page = browser.session(1280, 800, false).await;
        page.goto(&format!("http://{}/", gw.admin_addr)).await;
        let rows = page
            .wait_for(
                "the tenant and its two keys",
                SHOW_LIMIT,
                "const rows = [...document.querySelectorAll('#tenant-rows tr')];
                 return !document.getElementById('tenants-panel').hidden && rows.length === 3
                     ? rows.map(r => [r.dataset.key || '', r.cells[1].textContent,
                                      r.cells[3].textContent, r.cells[4].textContent,
                                      r.querySelectorAll('.bar').length])
                     : null",
            )
            .await;
        let rows = rows.as_array().unwrap();
        assert_eq!(rows[0][0], "", "the tenant first: {rows:?}");
        assert_eq!(rows[0][1], "3");
        assert!(rows[0][4].as_u64() == Some(1), "the month's budget bar: {rows:?}");
        assert!(rows[0][3].as_str().unwrap().ends_with("/ $10.00"), "{rows:?}");
        let ci = rows.iter().find(|r| r[0] == "ci").unwrap();
        assert_eq!(ci[1], "2");
        assert!(ci[2].as_str().unwrap().ends_with("/ $1.00"), "{rows:?}");
        page.close().await;
        gw.shutdown().await.unwrap();
    })
    .await;
}
