use std::time::Duration;

use switchyard_config::{Cost, MaxPriority, Quota};

use super::*;
use crate::usage::Usage;

fn tenant(rpm: Option<u32>, concurrency: Option<u32>, quota: Quota) -> Tenant {
    Tenant {
        name: "t".into(),
        keys: Vec::new(),
        models: Vec::new(),
        max_priority: MaxPriority::High,
        requests_per_minute: rpm,
        concurrency,
        quota,
        default_max_tokens: 100,
        client_cert_names: Vec::new(),
        clouds: Vec::new(),
        on_redis_unavailable: None,
    }
}

fn key(rpm: Option<u32>, quota: Quota) -> TenantKey {
    TenantKey {
        id: "k".into(),
        requests_per_minute: rpm,
        quota,
        ..TenantKey::default()
    }
}

/// 1000 tokens cost 0.001.
const PRICE: Cost = Cost {
    input_per_1k: 0.001,
    output_per_1k: 0.001,
    per_hour: None,
    tokens_per_hour: None,
};

fn usage(total: u64) -> Option<Usage> {
    Some(Usage {
        prompt_tokens: total / 2,
        completion_tokens: total - total / 2,
    })
}

fn tenant_row(l: &TenantLimits) -> AccountFigures {
    l.figures().remove(0).figures
}

#[test]
fn concurrency_counts_admissions_until_dropped() {
    let limits = TenantLimits::default();
    let t = tenant(None, Some(2), Quota::default());
    let k = key(None, Quota::default());
    let now = Instant::now();
    let mut rate = RateInfo::default();
    let a = limits.admit(&t, &k, now, &mut rate).unwrap();
    let _b = limits.admit(&t, &k, now, &mut rate).unwrap();
    let e = limits.admit(&t, &k, now, &mut rate).unwrap_err();
    assert_eq!(e.status(), 429);
    drop(a);
    limits.admit(&t, &k, now, &mut rate).unwrap();
    assert_eq!(rate, RateInfo::default(), "no rate limit, no headers");
}

#[tokio::test(start_paused = true)]
async fn a_keys_request_rate_is_checked_on_top_of_its_tenants() {
    let limits = TenantLimits::default();
    let t = tenant(Some(60), None, Quota::default());
    let k = key(Some(2), Quota::default());
    let other = TenantKey {
        id: "other".into(),
        ..TenantKey::default()
    };
    let mut rate = RateInfo::default();
    for _ in 0..2 {
        limits.admit(&t, &k, Instant::now(), &mut rate).unwrap();
    }
    let e = limits.admit(&t, &k, Instant::now(), &mut rate).unwrap_err();
    assert!(
        e.to_string()
            .starts_with("key `k` of tenant `t` is over its requests_per_minute"),
        "{e}"
    );
    // 2 a minute: one more in 30 s.
    assert_eq!(e.retry_after(), Some(30));
    let w = rate.requests.unwrap();
    assert_eq!((w.limit, w.remaining), (2, 0));
    // The tenant's other key has the tenant's 58 left.
    let mut rate = RateInfo::default();
    for _ in 0..58 {
        limits.admit(&t, &other, Instant::now(), &mut rate).unwrap();
    }
    let e = limits
        .admit(&t, &other, Instant::now(), &mut rate)
        .unwrap_err();
    assert!(
        e.to_string()
            .starts_with("tenant `t` is over its requests_per_minute"),
        "{e}"
    );
    tokio::time::advance(Duration::from_secs(1)).await;
    limits.admit(&t, &other, Instant::now(), &mut rate).unwrap();
}

#[tokio::test(start_paused = true)]
async fn tokens_are_reserved_then_corrected_by_the_reported_usage() {
    let limits = TenantLimits::default();
    let q = Quota {
        tokens_per_minute: Some(1000),
        ..Quota::default()
    };
    let (t, k) = (tenant(None, None, q), key(None, Quota::default()));
    let ask = Ask {
        tokens: 600,
        cost_nano: 0,
    };
    let mut rate = RateInfo::default();
    let mut a = limits.admit(&t, &k, Instant::now(), &mut rate).unwrap();
    limits
        .reserve(&mut a, &t, &k, ask, Instant::now(), &mut rate)
        .unwrap();
    assert_eq!(rate.tokens.unwrap().remaining, 400);
    // A second 600 does not fit while the first is in flight.
    let mut b = limits.admit(&t, &k, Instant::now(), &mut rate).unwrap();
    let e = limits
        .reserve(&mut b, &t, &k, ask, Instant::now(), &mut rate)
        .unwrap_err();
    assert_eq!((e.status().as_u16(), e.label()), (429, "tenant_limited"));
    // 200 more tokens come in 12 s.
    assert_eq!(e.retry_after(), Some(12));
    // The answer used 100 of its 600: 500 go back.
    a.sink().book(usage(100), &PRICE);
    drop(a);
    limits
        .reserve(&mut b, &t, &k, ask, Instant::now(), &mut rate)
        .unwrap();
    assert_eq!(rate.tokens.unwrap().remaining, 300);
    // This one used 1200: the bucket owes 600 beyond what it held.
    b.sink().book(usage(1200), &PRICE);
    let mut c = limits.admit(&t, &k, Instant::now(), &mut rate).unwrap();
    let one = Ask {
        tokens: 1,
        cost_nano: 0,
    };
    assert!(
        limits
            .reserve(&mut c, &t, &k, one, Instant::now(), &mut rate)
            .is_err()
    );
    let f = tenant_row(&limits);
    assert_eq!((f.requests, f.input_tokens + f.output_tokens), (2, 1300));
    // Larger than the whole minute: it passes once the bucket is full.
    let huge = Ask {
        tokens: 5000,
        cost_nano: 0,
    };
    assert!(
        limits
            .reserve(&mut c, &t, &k, huge, Instant::now(), &mut rate)
            .is_err()
    );
    tokio::time::advance(Duration::from_secs(120)).await;
    limits
        .reserve(&mut c, &t, &k, huge, Instant::now(), &mut rate)
        .unwrap();
    assert_eq!(rate.tokens.unwrap().remaining, 0);
}

#[tokio::test(start_paused = true)]
async fn a_reservation_is_refunded_without_an_answer_and_charged_without_usage() {
    let limits = TenantLimits::default();
    let q = Quota {
        tokens_per_minute: Some(1000),
        daily_budget_usd: Some(1.0),
        ..Quota::default()
    };
    let (t, k) = (tenant(None, None, q), key(None, Quota::default()));
    let ask = Ask {
        tokens: 400,
        cost_nano: 400_000_000,
    };
    let mut rate = RateInfo::default();
    let reserve = |rate: &mut RateInfo| {
        let mut a = limits.admit(&t, &k, Instant::now(), rate).unwrap();
        limits
            .reserve(&mut a, &t, &k, ask, Instant::now(), rate)
            .map(|()| a)
    };
    // Every attempt failed: nothing was served, everything comes back.
    drop(reserve(&mut rate).unwrap());
    let f = tenant_row(&limits);
    assert_eq!((f.requests, f.spend_today, f.reserved), (0, 0.0, 0.0));
    // Served, no usage reported: the reservation is what it used.
    let a = reserve(&mut rate).unwrap();
    a.served();
    drop(a);
    let f = tenant_row(&limits);
    assert_eq!((f.requests, f.unknown_usage), (1, 1));
    assert!((f.spend_today - 0.4).abs() < 1e-9, "{f:?}");
    assert_eq!(rate.tokens.unwrap().remaining, 600);
}

#[tokio::test(start_paused = true)]
async fn a_spent_budget_answers_insufficient_quota_until_the_next_utc_day() {
    // 2026-12-06T23:00:00Z.
    let limits = TenantLimits::with_clock(Clock::starting_at(1_796_598_000));
    let q = Quota {
        daily_budget_usd: Some(0.001),
        monthly_budget_usd: Some(0.0025),
        ..Quota::default()
    };
    let (t, k) = (tenant(None, None, Quota::default()), key(None, q));
    let ask = Ask {
        tokens: 1000,
        cost_nano: 1_000_000,
    };
    let mut rate = RateInfo::default();
    let mut spend = |limits: &TenantLimits| {
        let mut a = limits.admit(&t, &k, Instant::now(), &mut rate)?;
        limits.reserve(&mut a, &t, &k, ask, Instant::now(), &mut rate)?;
        a.sink().book(usage(1000), &PRICE);
        Ok::<_, ProxyError>(())
    };
    spend(&limits).unwrap();
    let e = spend(&limits).unwrap_err();
    assert_eq!(e.label(), "insufficient_quota");
    assert!(
        e.to_string()
            .starts_with("key `k` of tenant `t` has used its daily budget"),
        "{e}"
    );
    assert_eq!(e.retry_after(), Some(3600), "until midnight UTC");
    tokio::time::advance(Duration::from_secs(3600)).await;
    spend(&limits).unwrap();
    spend(&limits).unwrap_err();
    tokio::time::advance(Duration::from_secs(86_400)).await;
    // Day three: 0.002 of the month's 0.0025 spent, room for one more.
    spend(&limits).unwrap();
    let e = spend(&limits).unwrap_err();
    assert!(e.to_string().contains("monthly budget"), "{e}");
    let rows = limits.figures();
    let f = &rows[1].figures;
    assert_eq!(rows[1].key.as_deref(), Some("k"));
    assert!((f.spend - 0.003).abs() < 1e-9, "{f:?}");
    assert!((f.spend_today - 0.001).abs() < 1e-9, "{f:?}");
}

/// 200 requests race for a budget worth 10 reservations: at most one
/// reservation beyond it is ever let in.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_budget_under_200_concurrent_requests_overshoots_by_at_most_one_reservation() {
    let limits = Arc::new(TenantLimits::default());
    let q = Quota {
        daily_budget_usd: Some(0.0095),
        ..Quota::default()
    };
    let t = Arc::new(tenant(None, None, q));
    let k = Arc::new(key(None, Quota::default()));
    let ask = Ask {
        tokens: 1000,
        cost_nano: 1_000_000,
    };
    let barrier = Arc::new(tokio::sync::Barrier::new(200));
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..200 {
        let (limits, t, k, barrier) = (limits.clone(), t.clone(), k.clone(), barrier.clone());
        tasks.spawn(async move {
            barrier.wait().await;
            let mut rate = RateInfo::default();
            let mut a = limits.admit(&t, &k, Instant::now(), &mut rate).ok()?;
            limits
                .reserve(&mut a, &t, &k, ask, Instant::now(), &mut rate)
                .ok()?;
            tokio::task::yield_now().await;
            // Each answer uses what it reserved.
            a.sink().book(usage(1000), &PRICE);
            Some(())
        });
    }
    let mut admitted = 0;
    while let Some(done) = tasks.join_next().await {
        admitted += usize::from(done.unwrap().is_some());
    }
    let spend = tenant_row(&limits).spend_today;
    assert!(admitted >= 10, "the budget was usable: {admitted}");
    assert!(
        spend <= 0.0095 + 0.001 + 1e-9,
        "overshoot beyond one reservation: {spend}"
    );
    assert_eq!(
        admitted, 10,
        "0.0095 fits 9 whole reservations plus the one that crosses it"
    );
}
