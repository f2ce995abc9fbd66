//! `--engine-metrics`: the replicas' own prefix-cache counters over a run,
//! read from their Prometheus `/metrics` (vLLM's names) before and after,
//! so a report says why its time to first token is what it is.

use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde::Serialize;

/// Prefix-cache blocks looked up and found, summed over the replicas.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub struct PrefixCacheStats {
    /// `vllm:prefix_cache_queries_total` increase.
    pub queries: u64,
    /// `vllm:prefix_cache_hits_total` increase.
    pub hits: u64,
    /// `hits / queries` (0 when nothing was queried).
    pub hit_rate: f64,
}

impl PrefixCacheStats {
    /// The increase from `before` to `self` (counters read twice).
    pub fn since(self, before: Self) -> Self {
        let queries = self.queries.saturating_sub(before.queries);
        let hits = self.hits.saturating_sub(before.hits);
        let hit_rate = if queries == 0 {
            0.0
        } else {
            hits as f64 / queries as f64
        };
        Self {
            queries,
            hits,
            hit_rate,
        }
    }
}

/// Sums the two counters in a Prometheus text exposition (every label set).
pub(crate) fn parse(text: &str) -> PrefixCacheStats {
    let mut s = PrefixCacheStats::default();
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        let name = line.split(['{', ' ']).next().unwrap_or_default();
        let value = line
            .rsplit(' ')
            .next()
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0) as u64;
        match name {
            "vllm:prefix_cache_queries_total" => s.queries += value,
            "vllm:prefix_cache_hits_total" => s.hits += value,
            _ => {}
        }
    }
    s
}

/// Reads and sums `GET {url}/metrics` of every replica base URL.
pub(crate) async fn scrape(urls: &[String]) -> anyhow::Result<PrefixCacheStats> {
    let client = Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
    let mut total = PrefixCacheStats::default();
    for url in urls {
        let uri = format!("{}/metrics", url.trim_end_matches('/'));
        let get = async {
            let req = http::Request::get(&uri).body(Full::new(Bytes::new()))?;
            let resp = client.request(req).await?;
            anyhow::ensure!(resp.status().is_success(), "{}", resp.status());
            let body = resp.into_body().collect().await?.to_bytes();
            Ok(parse(&String::from_utf8_lossy(&body)))
        };
        let s = tokio::time::timeout(Duration::from_secs(5), get)
            .await
            .map_err(|_| anyhow::anyhow!("{uri}: timed out"))?
            .map_err(|e| anyhow::anyhow!("{uri}: {e}"))?;
        total.queries += s.queries;
        total.hits += s.hits;
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_are_summed_over_label_sets_and_diffed() {
        let text = "# TYPE vllm:prefix_cache_hits counter\n\
            vllm:prefix_cache_hits_total{model_name=\"a\"} 3\n\
            vllm:prefix_cache_hits_total{model_name=\"b\"} 4.0\n\
            vllm:prefix_cache_queries_total 20\n\
            vllm:num_requests_running{model_name=\"a\"} 9\n";
        let after = parse(text);
        assert_eq!((after.queries, after.hits), (20, 7));
        let before = PrefixCacheStats {
            queries: 10,
            hits: 2,
            hit_rate: 0.0,
        };
        let d = after.since(before);
        assert_eq!((d.queries, d.hits), (10, 5));
        assert_eq!(d.hit_rate, 0.5);
    }
}
