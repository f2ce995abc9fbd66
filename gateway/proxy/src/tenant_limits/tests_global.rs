//! Fleet mode against an in-memory leaser with Redis's grant rule
//! (`min(ask, limit − granted)` per window): instances sharing it never
//! admit beyond the limit; token corrections and idle slices are settled
//! back; concurrency is held fleet-wide; failure modes.

use std::collections::HashMap;
use std::sync::Mutex;

use switchyard_config::{Cost, FailMode, MaxPriority, Quota};

use super::*;
use crate::usage::Usage;

#[derive(Debug, Default)]
struct Counters {
    granted: Mutex<HashMap<(Kind, u64), u64>>,
    down: AtomicBool,
}

#[derive(Debug)]
struct Fake(Arc<Counters>);

impl Leaser for Fake {
    fn lease(&self, l: Lease) -> LeaseFuture {
        let c = Arc::clone(&self.0);
        Box::pin(async move {
            if c.down.load(Ordering::Relaxed) {
                return None;
            }
            let mut g = c.granted.lock().unwrap();
            let used = g.entry((l.kind, l.window)).or_default();
            let got = l.ask.min(l.limit.saturating_sub(*used));
            *used += got;
            Some(Granted {
                got,
                left: l.limit - *used,
            })
        })
    }
}

fn instance(c: &Arc<Counters>, mode: FailMode) -> TenantLimits {
    let l = TenantLimits::default();
    assert!(l.enable_global(Global::new(Box::new(Fake(Arc::clone(c))), 0.1, mode)));
    l
}

fn tenant(rpm: Option<u32>, concurrency: Option<u32>, quota: Quota) -> Tenant {
    Tenant {
        name: "t".into(),
        keys: vec![TenantKey {
            id: "k".into(),
            ..TenantKey::default()
        }],
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

async fn admit(l: &TenantLimits, t: &Tenant) -> Result<Admission, ProxyError> {
    l.admit_any(t, &t.keys[0], Instant::now(), &mut RateInfo::default())
        .await
}

#[tokio::test]
async fn three_instances_never_admit_beyond_the_limit_and_return_idle_slices() {
    let c = Arc::default();
    let fleet: Vec<_> = (0..3).map(|_| instance(&c, FailMode::Open)).collect();
    let t = tenant(Some(100), None, Quota::default());
    let mut admitted = 0;
    for i in 0..300 {
        admitted += usize::from(admit(&fleet[i % 3], &t).await.is_ok());
    }
    assert_eq!(admitted, 100, "the fleet's grants are capped at the limit");

    // A new window: instance 0 leases a slice, goes idle; its sync hands
    // the slice back, so the others may use it.
    let c2 = Arc::default();
    let fleet: Vec<_> = (0..2).map(|_| instance(&c2, FailMode::Open)).collect();
    admit(&fleet[0], &t).await.unwrap();
    let acc = fleet[0]
        .accounts()
        .into_iter()
        .find(|r| r.key.is_none())
        .unwrap();
    let window = fleet[0].clock().unix(Instant::now()) / 60;
    assert_eq!(acc.account.rpm_slot().settle(window), None, "used: kept");
    // Stopping hands back a used slice too (9 left of the 10 leased).
    admit(&fleet[0], &t).await.unwrap();
    assert_eq!(acc.account.rpm_slot().release(window), Some((window, 8)));
    assert_eq!(acc.account.rpm_slot().release(window), None);
    admit(&fleet[0], &t).await.unwrap();
    let _ = acc.account.rpm_slot().settle(window);
    assert_eq!(
        acc.account.rpm_slot().settle(window),
        Some((window, 9)),
        "idle: returned"
    );
}

#[tokio::test]
async fn token_corrections_are_settled_back_to_the_fleet() {
    let c = Arc::default();
    let l = instance(&c, FailMode::Open);
    let quota = Quota {
        tokens_per_minute: Some(1000),
        ..Quota::default()
    };
    let t = tenant(None, None, quota);
    let mut rate = RateInfo::default();
    let mut a = admit(&l, &t).await.unwrap();
    let ask = Ask {
        tokens: 500,
        cost_nano: 0,
    };
    l.reserve_any(&mut a, &t, &t.keys[0], ask, Instant::now(), &mut rate)
        .await
        .unwrap();
    assert_eq!(rate.tokens.unwrap().limit, 1000);
    let price = Cost::default();
    // Used 900 where 500 were reserved: 400 owed.
    a.sink().book(
        Some(Usage {
            prompt_tokens: 450,
            completion_tokens: 450,
        }),
        &price,
    );
    let tenant_acc = l.accounts().into_iter().find(|r| r.key.is_none()).unwrap();
    let window = l.clock().unix(Instant::now()) / 60;
    // The lease was 500 (the request); the debt of 400 is charged.
    assert_eq!(
        tenant_acc.account.tpm_slot().settle(window),
        Some((window, -400))
    );
}

#[tokio::test]
async fn concurrency_is_held_fleet_wide() {
    let c = Arc::default();
    let a = instance(&c, FailMode::Open);
    let b = instance(&c, FailMode::Open);
    let t = tenant(None, Some(2), Quota::default());
    let first = admit(&a, &t).await.unwrap();
    let _second = admit(&b, &t).await.unwrap();
    let err = admit(&a, &t).await.unwrap_err();
    assert!(err.to_string().contains("concurrency"), "{err}");
    drop(first);
    // The slot instance `a` held is free again there.
    admit(&a, &t).await.unwrap();
}

#[tokio::test]
async fn degraded_limits_follow_their_failure_mode() {
    let c: Arc<Counters> = Arc::default();
    let l = instance(&c, FailMode::Open);
    // A lease that fails before the sync calls the fleet degraded: this
    // request is refused, never admitted unaccounted.
    c.down.store(true, Ordering::Relaxed);
    let err = admit(&l, &tenant(Some(40), None, Quota::default()))
        .await
        .unwrap_err();
    assert_eq!(err.status(), http::StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(err.retry_after(), Some(1));
    assert_eq!(l.global().unwrap().lease_failures(), 1);
    l.global().unwrap().set_live(4);
    l.global().unwrap().set_degraded(true);
    let t = tenant(Some(40), None, Quota::default());
    let mut served = 0;
    for _ in 0..20 {
        served += usize::from(admit(&l, &t).await.is_ok());
    }
    assert_eq!(served, 10, "open: this instance's share, 40 / 4");
    let closed = Tenant {
        on_redis_unavailable: Some(FailMode::Closed),
        ..tenant(Some(40), None, Quota::default())
    };
    let err = admit(&l, &closed).await.unwrap_err();
    assert_eq!(err.status(), http::StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(err.label(), "global_limits_unavailable");
}

#[tokio::test]
async fn the_fleets_spend_closes_a_budget_here() {
    let c = Arc::default();
    let l = instance(&c, FailMode::Open);
    let quota = Quota {
        daily_budget_usd: Some(1.0),
        ..Quota::default()
    };
    let t = tenant(None, None, quota);
    let ask = Ask {
        tokens: 10,
        cost_nano: 1000,
    };
    let mut a = admit(&l, &t).await.unwrap();
    let now = Instant::now();
    l.reserve_any(&mut a, &t, &t.keys[0], ask, now, &mut RateInfo::default())
        .await
        .unwrap();
    drop(a);
    let row = l.accounts().into_iter().find(|r| r.key.is_none()).unwrap();
    let unix = l.clock().unix(now);
    let [day, _month] = row.account.take_spend(unix);
    // The fleet has booked a whole dollar today (other instances).
    row.account.spend_pushed(&day, 1_000_000_000 + day.delta);
    let mut a = admit(&l, &t).await.unwrap();
    let err = l
        .reserve_any(&mut a, &t, &t.keys[0], ask, now, &mut RateInfo::default())
        .await
        .unwrap_err();
    assert_eq!(err.label(), "insufficient_quota");
}
