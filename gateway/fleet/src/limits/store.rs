//! One connection to the fleet's Redis (redis-rs's `ConnectionManager`:
//! multiplexed, reconnecting) and the calls the leaser and the sync make,
//! each bounded in time so an unreachable Redis is noticed in one timeout.

use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{IntoConnectionInfo, RedisResult};
use switchyard_config::GlobalLimits;
use switchyard_proxy::tenant_limits::{Granted, Kind, Lease};

use super::LimitsError;
use super::keys::{Keys, WINDOW_TTL_S, spend_ttl_s};
use super::scripts::{ADJUST_WINDOW, HEARTBEAT, LEASE_CONC, LEASE_WINDOW};

/// The connection, the key names and this instance's id.
#[derive(Clone)]
pub(super) struct Store {
    con: ConnectionManager,
    pub(super) keys: Keys,
    pub(super) instance: String,
    timeout: Duration,
    /// How long an instance's concurrency slots count without a heartbeat.
    pub(super) lease_ttl: Duration,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("instance", &self.instance)
            .finish_non_exhaustive()
    }
}

impl Store {
    /// A lazy connection (made at the first call, remade after a loss):
    /// starting with Redis down starts degraded, not failed.
    pub(super) fn new(cfg: &GlobalLimits, instance: String) -> Result<Self, LimitsError> {
        let mut info = cfg
            .redis_url
            .as_str()
            .into_connection_info()
            .map_err(|e| LimitsError::Url(e.to_string()))?;
        if let Some(p) = &cfg.password {
            let redis = info.redis_settings().clone().set_password(p.expose());
            info = info.set_redis_settings(redis);
        }
        let client = redis::Client::open(info).map_err(|e| LimitsError::Url(e.to_string()))?;
        // A lease waits at most this long before its request falls back.
        let timeout = cfg
            .sync_interval
            .clamp(Duration::from_millis(50), Duration::from_millis(500));
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(timeout))
            .set_response_timeout(Some(timeout))
            .set_number_of_retries(1)
            .set_max_delay(timeout);
        let con = ConnectionManager::new_lazy_with_config(client, config)
            .map_err(|e| LimitsError::Url(e.to_string()))?;
        Ok(Self {
            con,
            keys: Keys::new(&cfg.key_prefix),
            instance,
            timeout,
            lease_ttl: (cfg.sync_interval * 30).max(Duration::from_secs(3)),
        })
    }

    /// `fut` within the timeout; an error or a timeout is `None`.
    async fn bounded<T>(&self, fut: impl Future<Output = RedisResult<T>>) -> Option<T> {
        match tokio::time::timeout(self.timeout, fut).await {
            Ok(Ok(v)) => Some(v),
            Ok(Err(e)) => {
                tracing::debug!(error = %e, "global limits: redis call failed");
                None
            }
            Err(_) => None,
        }
    }

    /// One lease (see [`super::scripts`]).
    pub(super) async fn lease(&self, l: &Lease) -> Option<Granted> {
        let key = self
            .keys
            .limit(l.kind, &l.tenant, l.key.as_deref(), l.window);
        let mut con = self.con.clone();
        let (got, left): (u64, u64) = match l.kind {
            Kind::Concurrency => {
                let mut inv = LEASE_CONC.prepare_invoke();
                inv.key(&key).key(self.keys.instances());
                inv.arg(&self.instance).arg(l.ask).arg(l.limit);
                self.bounded(inv.invoke_async(&mut con)).await?
            }
            Kind::Rpm | Kind::Tpm => {
                let mut inv = LEASE_WINDOW.prepare_invoke();
                inv.key(&key).arg(l.ask).arg(l.limit).arg(WINDOW_TTL_S);
                self.bounded(inv.invoke_async(&mut con)).await?
            }
        };
        Some(Granted { got, left })
    }

    /// Returns (positive) or charges (negative) `delta` of a window.
    pub(super) async fn adjust(&self, key: &str, delta: i64) -> Option<()> {
        let mut con = self.con.clone();
        let mut inv = ADJUST_WINDOW.prepare_invoke();
        inv.key(key).arg(delta).arg(WINDOW_TTL_S);
        self.bounded(inv.invoke_async::<u64>(&mut con))
            .await
            .map(|_| ())
    }

    /// Sets the slots this instance holds of `tenant`'s concurrency.
    pub(super) async fn hold_conc(&self, tenant: &str, held: u64) -> Option<()> {
        let key = self.keys.limit(Kind::Concurrency, tenant, None, 0);
        let mut con = self.con.clone();
        let cmd = if held == 0 {
            redis::cmd("HDEL").arg(&key).arg(&self.instance).clone()
        } else {
            redis::cmd("HSET")
                .arg(&key)
                .arg(&self.instance)
                .arg(held)
                .clone()
        };
        self.bounded(cmd.query_async::<()>(&mut con)).await
    }

    /// Adds `delta` to a spend counter; the fleet's total.
    pub(super) async fn add_spend(&self, key: &str, period: &str, delta: u64) -> Option<u64> {
        let mut con = self.con.clone();
        let mut pipe = redis::pipe();
        pipe.atomic()
            .cmd("INCRBY")
            .arg(key)
            .arg(delta)
            .cmd("EXPIRE")
            .arg(key)
            .arg(spend_ttl_s(period))
            .ignore();
        let (total,): (u64,) = self.bounded(pipe.query_async(&mut con)).await?;
        Some(total)
    }

    /// Renews this instance's lease; how many instances are alive.
    pub(super) async fn heartbeat(&self) -> Option<u32> {
        let mut con = self.con.clone();
        let mut inv = HEARTBEAT.prepare_invoke();
        inv.key(self.keys.instances())
            .arg(&self.instance)
            .arg(self.lease_ttl.as_millis() as u64);
        self.bounded(inv.invoke_async(&mut con)).await
    }
}
