//! Per-tenant limits: requests per minute (a token bucket on tokio's
//! clock, holding at most a minute's worth) and requests in flight (a
//! permit carried in the response body, so a stream counts until its last
//! byte or the client's disconnect). State is kept by tenant name across
//! config generations; a tenant without limits costs nothing here.

use std::pin::Pin;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU32, Ordering};
use std::task::{Context, Poll};

use bytes::Bytes;
use dashmap::DashMap;
use http::Response;
use http_body::{Body, Frame, SizeHint};
use http_body_util::BodyExt;
use switchyard_config::Tenant;
use tokio::time::Instant;

use crate::body::{BoxError, ProxyBody};
use crate::error::ProxyError;

/// Every tenant's live counters.
#[derive(Debug, Default)]
pub struct TenantLimits {
    by_tenant: DashMap<String, Arc<State>>,
}

#[derive(Debug)]
struct State {
    in_flight: AtomicU32,
    /// (tokens, last refill).
    bucket: Mutex<(f64, Instant)>,
}

/// A tenant's place among its in-flight requests; dropping it frees it.
#[derive(Debug)]
pub struct TenantPermit {
    state: Arc<State>,
}

impl Drop for TenantPermit {
    fn drop(&mut self) {
        self.state.in_flight.fetch_sub(1, Ordering::AcqRel);
    }
}

impl TenantLimits {
    /// Counts a request of `tenant` starting at `now`: `None` when it has no
    /// limits, a permit to carry in the response otherwise, 429 when a
    /// limit is reached.
    pub fn admit(&self, tenant: &Tenant, now: Instant) -> Result<Option<TenantPermit>, ProxyError> {
        if tenant.requests_per_minute.is_none() && tenant.concurrency.is_none() {
            return Ok(None);
        }
        let state =
            match self.by_tenant.get(&tenant.name) {
                Some(s) => Arc::clone(&s),
                None => Arc::clone(&self.by_tenant.entry(tenant.name.clone()).or_insert_with(
                    || {
                        Arc::new(State {
                            in_flight: AtomicU32::new(0),
                            bucket: Mutex::new((
                                f64::from(tenant.requests_per_minute.unwrap_or(0)),
                                now,
                            )),
                        })
                    },
                )),
            };
        let limited = |what: &'static str, retry_after: u32| ProxyError::TenantLimited {
            tenant: tenant.name.clone(),
            what,
            retry_after,
        };
        let max = tenant.concurrency.unwrap_or(u32::MAX);
        let taken = state
            .in_flight
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < max).then_some(n + 1)
            });
        if taken.is_err() {
            return Err(limited("concurrency", 1));
        }
        let permit = TenantPermit {
            state: Arc::clone(&state),
        };
        if let Some(rpm) = tenant.requests_per_minute {
            let cap = f64::from(rpm);
            let per_sec = cap / 60.0;
            let mut bucket = state.bucket.lock().unwrap_or_else(|p| p.into_inner());
            let (tokens, last) = &mut *bucket;
            *tokens =
                (*tokens + now.saturating_duration_since(*last).as_secs_f64() * per_sec).min(cap);
            *last = now;
            if *tokens < 1.0 {
                let wait = ((1.0 - *tokens) / per_sec).ceil().max(1.0) as u32;
                return Err(limited("requests_per_minute", wait));
            }
            *tokens -= 1.0;
        }
        Ok(Some(permit))
    }
}

/// `resp` with `permit` carried in its body (released with the body).
pub fn hold(resp: Response<ProxyBody>, permit: Option<TenantPermit>) -> Response<ProxyBody> {
    match permit {
        None => resp,
        Some(permit) => resp.map(|inner| {
            Held {
                inner,
                _permit: permit,
            }
            .boxed()
        }),
    }
}

struct Held {
    inner: ProxyBody,
    _permit: TenantPermit,
}

impl Body for Held {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        Pin::new(&mut self.get_mut().inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn tenant(rpm: Option<u32>, concurrency: Option<u32>) -> Tenant {
        Tenant {
            name: "t".into(),
            keys: Vec::new(),
            models: Vec::new(),
            max_priority: switchyard_config::MaxPriority::High,
            requests_per_minute: rpm,
            concurrency,
            client_cert_names: Vec::new(),
        }
    }

    #[test]
    fn concurrency_counts_permits_until_dropped() {
        let limits = TenantLimits::default();
        let t = tenant(None, Some(2));
        let now = Instant::now();
        let a = limits.admit(&t, now).unwrap();
        let _b = limits.admit(&t, now).unwrap();
        assert_eq!(limits.admit(&t, now).unwrap_err().status(), 429);
        drop(a);
        assert!(limits.admit(&t, now).unwrap().is_some());
        assert!(limits.admit(&tenant(None, None), now).unwrap().is_none());
    }

    #[tokio::test(start_paused = true)]
    async fn the_bucket_holds_a_minute_and_refills_continuously() {
        let limits = TenantLimits::default();
        let t = tenant(Some(60), None);
        for _ in 0..60 {
            limits.admit(&t, Instant::now()).unwrap();
        }
        let e = limits.admit(&t, Instant::now()).unwrap_err();
        assert_eq!((e.status().as_u16(), e.retry_after()), (429, Some(1)));
        tokio::time::advance(Duration::from_millis(1000)).await;
        limits.admit(&t, Instant::now()).unwrap();
        assert!(limits.admit(&t, Instant::now()).is_err());
    }
}
