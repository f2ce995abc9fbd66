//! What a load run is asked to do ([`LoadSpec`]), and the parsers for the
//! compact CLI forms of a workload mix and a prompt-size mix.

use std::time::Duration;

use anyhow::Context;
use serde::Serialize;

use super::SharedPrefix;

/// A complete description of one load run, so the CLI and the scenario
/// runner build the same value and go through one code path.
#[derive(Clone, Debug)]
pub struct LoadSpec {
    /// Base URL of the gateway or replica (`http://127.0.0.1:8080`).
    pub url: String,
    /// Closed loop (fixed concurrency) or open loop (fixed arrival rate).
    pub mode: Mode,
    /// How long to send after the warm-up.
    pub duration: Duration,
    /// Stop after this many measured requests, if reached before `duration`.
    pub max_requests: Option<u64>,
    /// Time at the start whose requests are sent but not recorded, so
    /// connection set-up and cold caches do not skew the numbers.
    pub warmup: Duration,
    /// Weighted mix of request kinds; one is drawn per request.
    pub workload: Vec<(f64, Workload)>,
    /// Prompt sizes, drawn per request.
    pub prompt: PromptSizes,
    /// Instead of `workload` and `prompt`: multi-turn chat conversations
    /// sharing system prompts, streamed.
    pub shared_prefix: Option<SharedPrefix>,
    /// A request (headers and whole body) taking longer ends as `timeout`.
    pub request_timeout: Duration,
    /// Show an indicatif progress bar on stderr (only when it is a terminal).
    pub progress: bool,
    /// Sent as `Authorization: Bearer` with every request (a tenant's key).
    pub api_key: Option<String>,
}

/// How requests are paced.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// `concurrency` workers, each sending its next request when the
    /// previous answer has been read: measures capacity, hides stalls.
    Closed {
        /// Number of workers.
        concurrency: usize,
    },
    /// Requests are due at a fixed rate whatever the server does, and
    /// latency counts from the due time, so a stall is charged to every
    /// request it delayed (coordinated omission corrected).
    Open {
        /// Arrivals per second.
        rate_per_sec: f64,
        /// Cap on requests in flight; a due request waits for a slot, and
        /// the wait is part of its latency.
        max_in_flight: usize,
    },
}

/// One kind of request.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Workload {
    /// Which API.
    pub endpoint: Endpoint,
    /// Model name sent (or in the KServe path).
    pub model: String,
    /// Ask for an SSE stream (chat and completions only).
    pub stream: bool,
    /// Sent as `x-api-key` (a tenant's key), when set.
    #[serde(skip)]
    pub api_key: Option<String>,
}

/// The inference APIs the gateway serves.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Endpoint {
    /// `POST /v1/chat/completions`.
    Chat,
    /// `POST /v1/completions`.
    Completions,
    /// `POST /v1/embeddings`.
    Embeddings,
    /// `POST /v2/models/{model}/infer` (KServe v2).
    Kserve,
}

impl Endpoint {
    /// Parses the CLI name.
    pub fn parse(s: &str) -> anyhow::Result<Self> {
        Ok(match s {
            "chat" => Self::Chat,
            "completions" => Self::Completions,
            "embeddings" => Self::Embeddings,
            "kserve" => Self::Kserve,
            other => {
                anyhow::bail!("unknown endpoint {other:?} (chat, completions, embeddings, kserve)")
            }
        })
    }

    /// Whether the API has an SSE form.
    pub fn can_stream(self) -> bool {
        matches!(self, Self::Chat | Self::Completions)
    }
}

/// Prompt sizes in bytes.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PromptSizes {
    /// Every prompt has this size.
    Fixed(usize),
    /// Weighted choice of sizes, e.g. mostly short with some 100 KiB prompts.
    Choice(Vec<(f64, usize)>),
}

impl PromptSizes {
    /// Every size that can be drawn, with its weight.
    pub fn weighted(&self) -> Vec<(f64, usize)> {
        match self {
            Self::Fixed(n) => vec![(1.0, *n)],
            Self::Choice(v) => v.clone(),
        }
    }
}

/// Parses `--mix`: comma-separated `ENDPOINT[:stream|:plain]:MODEL[=WEIGHT]`.
/// Without `:stream`/`:plain` the item streams when `default_stream` is set
/// (and the endpoint can). The weight defaults to 1. The model may contain
/// `:` (`chat:stream:llama3:8b=2`).
pub fn parse_mix(s: &str, default_stream: bool) -> anyhow::Result<Vec<(f64, Workload)>> {
    let mut out = Vec::new();
    for item in s.split(',').map(str::trim).filter(|i| !i.is_empty()) {
        let (body, weight) = split_weight(item)?;
        let (endpoint, rest) = body
            .split_once(':')
            .with_context(|| format!("mix item {item:?}: expected ENDPOINT:MODEL"))?;
        let endpoint = Endpoint::parse(endpoint).with_context(|| format!("mix item {item:?}"))?;
        let (stream, model) = match rest.split_once(':') {
            Some(("stream", m)) => (true, m),
            Some(("plain", m)) => (false, m),
            _ => (default_stream, rest),
        };
        anyhow::ensure!(!model.is_empty(), "mix item {item:?}: empty model name");
        anyhow::ensure!(
            !stream || endpoint.can_stream() || rest == model,
            "mix item {item:?}: {endpoint:?} cannot stream"
        );
        let stream = stream && endpoint.can_stream();
        out.push((
            weight,
            Workload {
                endpoint,
                model: model.to_owned(),
                stream,
                api_key: None,
            },
        ));
    }
    anyhow::ensure!(!out.is_empty(), "empty --mix");
    Ok(out)
}

/// Parses `--prompt-mix`: comma-separated `BYTES=WEIGHT`, where BYTES may end
/// in `k`/`KiB` (×1024) or `m`/`MiB` (×1024²).
pub fn parse_prompt_mix(s: &str) -> anyhow::Result<PromptSizes> {
    let mut out = Vec::new();
    for item in s.split(',').map(str::trim).filter(|i| !i.is_empty()) {
        let (size, weight) = split_weight(item)?;
        out.push((
            weight,
            parse_size(size).with_context(|| format!("prompt mix item {item:?}"))?,
        ));
    }
    anyhow::ensure!(!out.is_empty(), "empty --prompt-mix");
    Ok(PromptSizes::Choice(out))
}

fn parse_size(s: &str) -> anyhow::Result<usize> {
    let lower = s.trim().to_ascii_lowercase();
    let (num, mult) = if let Some(n) = lower.strip_suffix("kib").or(lower.strip_suffix('k')) {
        (n, 1024)
    } else if let Some(n) = lower.strip_suffix("mib").or(lower.strip_suffix('m')) {
        (n, 1024 * 1024)
    } else {
        (lower.as_str(), 1)
    };
    let n: usize = num
        .trim()
        .parse()
        .with_context(|| format!("bad size {s:?}"))?;
    Ok(n * mult)
}

/// Splits `X=W` into `X` and a positive finite weight (1 when absent).
fn split_weight(item: &str) -> anyhow::Result<(&str, f64)> {
    let Some((body, w)) = item.rsplit_once('=') else {
        return Ok((item, 1.0));
    };
    let w: f64 = w
        .trim()
        .parse()
        .with_context(|| format!("bad weight in {item:?}"))?;
    anyhow::ensure!(w.is_finite() && w > 0.0, "weight in {item:?} must be > 0");
    Ok((body.trim(), w))
}

/// Draws an index from weights with a caller-owned RNG, so each worker (or
/// the open-loop dispatcher) is reproducible on its own.
pub(crate) fn pick(rng: &mut fastrand::Rng, cumulative: &[f64]) -> usize {
    let total = cumulative.last().copied().unwrap_or(0.0);
    let x = rng.f64() * total;
    cumulative
        .iter()
        .position(|c| x < *c)
        .unwrap_or(cumulative.len().saturating_sub(1))
}

/// Running sums of weights, for [`pick`].
pub(crate) fn cumulative(weights: impl IntoIterator<Item = f64>) -> Vec<f64> {
    weights
        .into_iter()
        .scan(0.0, |acc, w| {
            *acc += w;
            Some(*acc)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mix_parses_modes_models_and_weights() {
        let m = parse_mix(
            "chat:stream:llama=3, chat:plain:llama=1,embeddings:bge",
            false,
        )
        .unwrap();
        assert_eq!(m.len(), 3);
        assert_eq!(m[0].0, 3.0);
        assert!(m[0].1.stream);
        assert_eq!(m[0].1.model, "llama");
        assert!(!m[1].1.stream);
        assert_eq!(m[2].0, 1.0);
        assert_eq!(m[2].1.endpoint, Endpoint::Embeddings);
    }

    #[test]
    fn mix_uses_default_stream_and_keeps_colons_in_models() {
        let m = parse_mix("chat:llama3:8b=2,kserve:resnet", true).unwrap();
        assert_eq!(m[0].1.model, "llama3:8b");
        assert!(m[0].1.stream);
        assert!(!m[1].1.stream, "kserve never streams");
    }

    #[test]
    fn mix_rejects_bad_items() {
        assert!(parse_mix("", false).is_err());
        assert!(parse_mix("chat", false).is_err());
        assert!(parse_mix("grpc:m", false).is_err());
        assert!(parse_mix("chat:m=0", false).is_err());
        assert!(parse_mix("chat:m=x", false).is_err());
        assert!(parse_mix("embeddings:stream:m", false).is_err());
    }

    #[test]
    fn prompt_mix_parses_suffixes() {
        let p = parse_prompt_mix("200=9,100KiB=1,1m=0.5").unwrap();
        assert_eq!(
            p,
            PromptSizes::Choice(vec![(9.0, 200), (1.0, 102_400), (0.5, 1_048_576)])
        );
        assert!(parse_prompt_mix("abc=1").is_err());
    }

    #[test]
    fn pick_follows_weights() {
        let cum = cumulative([3.0, 1.0]);
        let mut rng = fastrand::Rng::with_seed(7);
        let firsts = (0..4000).filter(|_| pick(&mut rng, &cum) == 0).count();
        assert!((2700..3300).contains(&firsts), "{firsts}");
    }
}
