//! [`run_load`]: paces requests (closed or open loop), owns every task it
//! spawns, and turns the tally into a [`LoadReport`].

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio::time::Instant;

use super::conversation::Conversations;
use super::exchange::{self, HttpClient, Prepared};
use super::progress::{Live, Progress};
use super::recorder::Recorder;
use super::spec::{cumulative, pick};
use super::{LoadReport, LoadSpec, Mode};

/// When the `i`-th open-loop request is due: a fixed schedule that does not
/// move when the server is slow (coordinated omission stays corrected).
pub(crate) fn intended_at(first: Instant, i: u64, rate_per_sec: f64) -> Instant {
    first + Duration::from_secs_f64(i as f64 / rate_per_sec)
}

/// State shared by the pacing loop and the request tasks.
struct Shared {
    client: HttpClient,
    /// `Bearer <key>`, when the run sends a tenant key.
    auth: Option<http::HeaderValue>,
    timeout: Duration,
    source: Source,
    measure_from: Instant,
    end: Instant,
    budget: u64,
    claimed: AtomicU64,
    rec: Mutex<Recorder>,
    live: Arc<Live>,
}

/// Where each request's body comes from.
enum Source {
    /// Drawn from the weighted mix: `prepared[workload][size]`.
    Mix {
        prepared: Vec<Vec<Prepared>>,
        cum_workload: Vec<f64>,
        cum_size: Vec<f64>,
    },
    /// The next turn of a shared-prefix conversation, rendered per request.
    Conversations {
        uri: http::Uri,
        state: Mutex<Conversations>,
    },
}

impl Source {
    fn new(spec: &LoadSpec) -> anyhow::Result<Self> {
        if let Some(shape) = &spec.shared_prefix {
            let uri = format!("{}/v1/chat/completions", spec.url.trim_end_matches('/'));
            return Ok(Self::Conversations {
                uri: uri
                    .parse()
                    .map_err(|e| anyhow::anyhow!("url {uri:?}: {e}"))?,
                state: Mutex::new(Conversations::new(shape.clone())),
            });
        }
        let sizes = spec.prompt.weighted();
        let prepared = spec
            .workload
            .iter()
            .map(|(_, w)| {
                sizes
                    .iter()
                    .map(|(_, n)| Prepared::new(&spec.url, w, *n))
                    .collect()
            })
            .collect::<anyhow::Result<Vec<Vec<_>>>>()?;
        Ok(Self::Mix {
            prepared,
            cum_workload: cumulative(spec.workload.iter().map(|(w, _)| *w)),
            cum_size: cumulative(sizes.iter().map(|(w, _)| *w)),
        })
    }

    /// The next request to send (cheap clones of shared bytes for the mix).
    fn next(&self, rng: &mut fastrand::Rng) -> Prepared {
        match self {
            Self::Mix {
                prepared,
                cum_workload,
                cum_size,
            } => {
                let w = pick(rng, cum_workload);
                let s = pick(rng, cum_size);
                prepared[w][s].clone()
            }
            Self::Conversations { uri, state } => Prepared {
                uri: uri.clone(),
                body: state.lock().map(|mut c| c.next(rng)).unwrap_or_default(),
                api_key: None,
            },
        }
    }
}

impl Shared {
    /// Whether a request due at `due` should be sent, and if so whether it is
    /// measured (`false` during warm-up). `None` ends the run.
    fn claim(&self, due: Instant) -> Option<bool> {
        if due >= self.end {
            return None;
        }
        if due < self.measure_from {
            return Some(false);
        }
        (self.claimed.fetch_add(1, Ordering::Relaxed) < self.budget).then_some(true)
    }

    async fn one(&self, req: &Prepared, due: Instant, measured: bool) {
        self.live.sent.fetch_add(1, Ordering::Relaxed);
        let o = exchange::send(&self.client, req, self.auth.as_ref(), due, self.timeout).await;
        let ok = o.verdict.is_some_and(|v| v.is_ok());
        self.live.finish(ok);
        if measured {
            let now = Instant::now();
            if let Ok(mut rec) = self.rec.lock() {
                rec.record(&o, now);
            }
        }
    }
}

fn validate(spec: &LoadSpec) -> anyhow::Result<()> {
    anyhow::ensure!(!spec.workload.is_empty(), "empty workload");
    let sizes = spec.prompt.weighted();
    anyhow::ensure!(!sizes.is_empty(), "no prompt sizes");
    let weights = spec
        .workload
        .iter()
        .map(|(w, _)| *w)
        .chain(sizes.iter().map(|(w, _)| *w));
    for w in weights {
        anyhow::ensure!(w.is_finite() && w > 0.0, "weights must be > 0");
    }
    if let Some(shape) = &spec.shared_prefix {
        shape.validate()?;
    }
    match spec.mode {
        Mode::Closed { concurrency } => anyhow::ensure!(concurrency > 0, "concurrency must be > 0"),
        Mode::Open {
            rate_per_sec,
            max_in_flight,
        } => {
            anyhow::ensure!(
                rate_per_sec.is_finite() && rate_per_sec > 0.0,
                "rate must be > 0"
            );
            anyhow::ensure!(max_in_flight > 0, "max_in_flight must be > 0");
        }
    }
    anyhow::ensure!(
        !spec.request_timeout.is_zero(),
        "request timeout must be > 0"
    );
    Ok(())
}

/// Runs the load described by `spec` and reports what it measured.
///
/// Offsets in the report's timeline (and the event markers given to
/// [`crate::plot::plot`]) count from the moment this function was called;
/// measurement starts after `spec.warmup`. Returns once every request sent
/// has finished or timed out.
pub async fn run_load(spec: LoadSpec) -> anyhow::Result<LoadReport> {
    validate(&spec)?;
    let start = Instant::now();
    let source = Source::new(&spec)?;
    let pool = match spec.mode {
        Mode::Closed { concurrency } => concurrency,
        Mode::Open { max_in_flight, .. } => max_in_flight,
    };
    let client = hyper_util::client::legacy::Client::builder(TokioExecutor::new())
        .pool_timer(TokioTimer::new())
        .pool_max_idle_per_host(pool)
        .build_http();
    let measure_from = start + spec.warmup;
    let auth = spec
        .api_key
        .as_deref()
        .map(|k| http::HeaderValue::from_str(&format!("Bearer {k}")))
        .transpose()
        .context("--api-key is not a valid header value")?;
    let shared = Arc::new(Shared {
        client,
        auth,
        timeout: spec.request_timeout,
        source,
        measure_from,
        end: measure_from + spec.duration,
        budget: spec.max_requests.unwrap_or(u64::MAX),
        claimed: AtomicU64::new(0),
        rec: Mutex::new(Recorder::new(start)?),
        live: Arc::default(),
    });
    let progress = Progress::start(&spec, start, Arc::clone(&shared.live));
    match spec.mode {
        Mode::Closed { concurrency } => closed(&shared, concurrency).await,
        Mode::Open {
            rate_per_sec,
            max_in_flight,
        } => open(&shared, start, rate_per_sec, max_in_flight).await?,
    }
    progress.finish();
    let all_done = Instant::now();
    let seconds = all_done
        .min(shared.end)
        .saturating_duration_since(measure_from);
    let shared = Arc::into_inner(shared)
        .ok_or_else(|| anyhow::anyhow!("a request task outlived the run"))?;
    let rec = shared
        .rec
        .into_inner()
        .map_err(|_| anyhow::anyhow!("recorder poisoned"))?;
    Ok(LoadReport::new(&spec, rec, seconds.as_secs_f64()))
}

async fn closed(shared: &Arc<Shared>, concurrency: usize) {
    let mut set = JoinSet::new();
    for worker in 0..concurrency {
        let shared = Arc::clone(shared);
        set.spawn(async move {
            let mut rng = fastrand::Rng::with_seed(worker as u64);
            loop {
                let due = Instant::now();
                let Some(measured) = shared.claim(due) else {
                    break;
                };
                let req = shared.source.next(&mut rng);
                shared.one(&req, due, measured).await;
            }
        });
    }
    while set.join_next().await.is_some() {}
}

async fn open(
    shared: &Arc<Shared>,
    first: Instant,
    rate: f64,
    max_in_flight: usize,
) -> anyhow::Result<()> {
    let slots = Arc::new(Semaphore::new(max_in_flight));
    let mut set = JoinSet::new();
    let mut rng = fastrand::Rng::with_seed(0);
    for i in 0.. {
        let due = intended_at(first, i, rate);
        let Some(measured) = shared.claim(due) else {
            break;
        };
        tokio::time::sleep_until(due).await;
        let slot = Arc::clone(&slots).acquire_owned().await?;
        if measured {
            let lag = due.elapsed();
            if let Ok(mut rec) = shared.rec.lock() {
                rec.max_send_lag = rec.max_send_lag.max(lag);
            }
        }
        let req = shared.source.next(&mut rng);
        let task_shared = Arc::clone(shared);
        set.spawn(async move {
            task_shared.one(&req, due, measured).await;
            drop(slot);
        });
        while set.try_join_next().is_some() {}
    }
    while set.join_next().await.is_some() {}
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn open_loop_schedule_is_fixed_by_rate() {
        let t0 = Instant::now();
        assert_eq!(intended_at(t0, 0, 100.0), t0);
        assert_eq!(intended_at(t0, 1, 100.0) - t0, Duration::from_millis(10));
        assert_eq!(
            intended_at(t0, 250, 100.0) - t0,
            Duration::from_millis(2500)
        );
        let d = intended_at(t0, 3, 3.0) - t0;
        assert!(d.as_nanos().abs_diff(1_000_000_000) < 10, "{d:?}");
    }

    #[test]
    fn open_loop_claims_warmup_then_measured_then_stops() {
        let start = Instant::now();
        let shared = Shared {
            client: hyper_util::client::legacy::Client::builder(TokioExecutor::new()).build_http(),
            auth: None,
            timeout: Duration::from_secs(1),
            source: Source::Mix {
                prepared: Vec::new(),
                cum_workload: vec![1.0],
                cum_size: vec![1.0],
            },
            measure_from: start + Duration::from_secs(1),
            end: start + Duration::from_secs(3),
            budget: 150,
            claimed: AtomicU64::new(0),
            rec: Mutex::new(Recorder::new(start).unwrap()),
            live: Arc::default(),
        };
        let claims: Vec<Option<bool>> = (0..400)
            .map(|i| shared.claim(intended_at(start, i, 100.0)))
            .collect();
        assert!(claims[..100].iter().all(|c| *c == Some(false)), "warm-up");
        assert!(
            claims[100..250].iter().all(|c| *c == Some(true)),
            "measured"
        );
        assert!(claims[250..].iter().all(Option::is_none), "budget spent");
    }
}
