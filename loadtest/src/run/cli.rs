//! The `run` subcommand's flags, turned into one [`LoadSpec`] (the same value
//! the scenario runner builds), then the summary, JSON and plot outputs.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;

use super::spec::{parse_mix, parse_prompt_mix};
use super::{Endpoint, LoadSpec, Mode, PromptSizes, SharedPrefix, Workload, run_load};

/// Flags of `run`.
#[derive(clap::Args, Clone, Debug)]
#[command(after_help = "\
Workload mix (--mix): comma-separated ENDPOINT[:stream|:plain]:MODEL[=WEIGHT]
  e.g. --mix 'chat:stream:llama=3,chat:plain:llama=1,embeddings:bge=1,kserve:resnet'
  ENDPOINT is chat, completions, embeddings or kserve; without :stream/:plain an
  item follows --stream; WEIGHT defaults to 1.
Prompt sizes (--prompt-mix): comma-separated BYTES=WEIGHT, BYTES may end in k/KiB/m/MiB
  e.g. --prompt-mix '200=9,100KiB=1'
Shared-prefix workload (--workload shared-prefix): --conversations chats at once,
  each with system prompt (id % --system-prompts) of --system-bytes; turn k sends
  the system prompt, the k earlier user and (fixed) assistant turns of --turn-bytes
  each and a new user turn, streamed to /v1/chat/completions with --model; a
  conversation done after --turns is replaced by a new one; each request picks a
  conversation at random. Ignores --endpoint, --stream and the prompt flags.
Latency is measured from each request's intended send time (open loop: its slot
in the fixed schedule), so stalls are not hidden (coordinated omission).
Verdicts: complete, error-event, silent-truncation, invalid-body, reset, connect,
timeout, http_NNN.")]
pub struct RunArgs {
    /// Base URL of the gateway or replica.
    #[arg(long)]
    url: String,
    /// Closed loop: this many workers, each waits for its answer (default 64).
    #[arg(long, conflicts_with = "rate")]
    concurrency: Option<usize>,
    /// Open loop: this many requests per second, whatever the latency.
    #[arg(long)]
    rate: Option<f64>,
    /// Open loop: cap on requests in flight (a due request waits, and the
    /// wait counts in its latency).
    #[arg(long, default_value_t = 4096)]
    max_in_flight: usize,
    /// How long to send after warm-up.
    #[arg(long, default_value_t = 10.0)]
    duration_secs: f64,
    /// Stop after this many measured requests if sooner.
    #[arg(long)]
    requests: Option<u64>,
    /// Warm-up whose requests are sent but not recorded.
    #[arg(long, default_value_t = 1.0)]
    warmup_secs: f64,
    /// Endpoint when --mix is not given: chat, completions, embeddings, kserve.
    #[arg(long, default_value = "chat")]
    endpoint: String,
    /// Model when --mix is not given.
    #[arg(long, default_value = "chat")]
    model: String,
    /// Ask for SSE streams (chat and completions).
    #[arg(long)]
    stream: bool,
    /// Weighted workload mix (see below); overrides --endpoint/--model.
    #[arg(long)]
    mix: Option<String>,
    /// Prompt size in bytes.
    #[arg(long, default_value_t = 200, conflicts_with = "prompt_mix")]
    prompt_bytes: usize,
    /// Weighted prompt sizes (see below).
    #[arg(long)]
    prompt_mix: Option<String>,
    /// `mix` (--mix / --endpoint with --prompt-*) or `shared-prefix`
    /// (multi-turn chats sharing system prompts; see below).
    #[arg(long, default_value = "mix", value_parser = ["mix", "shared-prefix"])]
    workload: String,
    /// shared-prefix: distinct system prompts.
    #[arg(long, default_value_t = 4)]
    system_prompts: usize,
    /// shared-prefix: conversations active at once.
    #[arg(long, default_value_t = 64)]
    conversations: usize,
    /// shared-prefix: requests per conversation.
    #[arg(long, default_value_t = 6)]
    turns: usize,
    /// shared-prefix: bytes of each system prompt.
    #[arg(long, default_value_t = 2048)]
    system_bytes: usize,
    /// shared-prefix: bytes of each user and each assistant turn.
    #[arg(long, default_value_t = 160)]
    turn_bytes: usize,
    /// Replica base URLs whose `/metrics` (vLLM names) are read before and
    /// after the run; the report gets their prefix-cache hits and queries.
    #[arg(long, value_delimiter = ',', value_name = "URL,...")]
    engine_metrics: Vec<String>,
    /// Per-request timeout (headers and whole body).
    #[arg(long, default_value_t = 30.0)]
    timeout_secs: f64,
    /// Write the results as JSON here.
    #[arg(long)]
    json: Option<PathBuf>,
    /// Write an SVG plot of latency, throughput and traffic split here.
    #[arg(long)]
    plot: Option<PathBuf>,
    /// Event marker on the plot, SECS=LABEL from the start (repeatable).
    #[arg(long = "mark", value_name = "SECS=LABEL")]
    marks: Vec<String>,
    /// No progress bar.
    #[arg(long)]
    no_progress: bool,
    /// A tenant API key, sent as `Authorization: Bearer` with every request.
    #[arg(long, env = "SWITCHYARD_API_KEY", hide_env_values = true)]
    api_key: Option<String>,
}

fn secs(name: &str, v: f64) -> anyhow::Result<Duration> {
    Duration::try_from_secs_f64(v).with_context(|| format!("--{name} {v}"))
}

impl RunArgs {
    /// The [`LoadSpec`] these flags describe.
    pub fn spec(&self) -> anyhow::Result<LoadSpec> {
        let mode = match (self.concurrency, self.rate) {
            (_, Some(rate_per_sec)) => Mode::Open {
                rate_per_sec,
                max_in_flight: self.max_in_flight,
            },
            (c, None) => Mode::Closed {
                concurrency: c.unwrap_or(64),
            },
        };
        let shared_prefix = self.shared_prefix()?;
        let workload = match &self.mix {
            Some(m) => parse_mix(m, self.stream).context("--mix")?,
            None if shared_prefix.is_some() => vec![(
                1.0,
                Workload {
                    endpoint: Endpoint::Chat,
                    model: self.model.clone(),
                    stream: true,
                    api_key: None,
                },
            )],
            None => {
                let endpoint = Endpoint::parse(&self.endpoint).context("--endpoint")?;
                let stream = self.stream && endpoint.can_stream();
                vec![(
                    1.0,
                    Workload {
                        endpoint,
                        model: self.model.clone(),
                        stream,
                        api_key: None,
                    },
                )]
            }
        };
        let prompt = match &self.prompt_mix {
            Some(m) => parse_prompt_mix(m).context("--prompt-mix")?,
            None => PromptSizes::Fixed(self.prompt_bytes),
        };
        Ok(LoadSpec {
            url: self.url.clone(),
            mode,
            duration: secs("duration-secs", self.duration_secs)?,
            max_requests: self.requests,
            warmup: secs("warmup-secs", self.warmup_secs)?,
            workload,
            prompt,
            shared_prefix,
            request_timeout: secs("timeout-secs", self.timeout_secs)?,
            progress: !self.no_progress,
            api_key: self.api_key.clone(),
        })
    }

    fn shared_prefix(&self) -> anyhow::Result<Option<SharedPrefix>> {
        if self.workload != "shared-prefix" {
            return Ok(None);
        }
        anyhow::ensure!(
            self.mix.is_none() && self.prompt_mix.is_none(),
            "--workload shared-prefix takes no --mix or --prompt-mix"
        );
        let shape = SharedPrefix {
            model: self.model.clone(),
            system_prompts: self.system_prompts,
            conversations: self.conversations,
            turns: self.turns,
            system_bytes: self.system_bytes,
            turn_bytes: self.turn_bytes,
        };
        shape.validate()?;
        Ok(Some(shape))
    }

    fn marks(&self) -> anyhow::Result<Vec<(Duration, String)>> {
        self.marks
            .iter()
            .map(|m| {
                let (t, label) = m.split_once('=').context("--mark wants SECS=LABEL")?;
                let t: f64 = t.trim().parse().with_context(|| format!("--mark {m}"))?;
                Ok((secs("mark", t)?, label.to_owned()))
            })
            .collect()
    }
}

/// Runs the load, prints the summary, writes the JSON and plot if asked.
pub async fn run(args: RunArgs) -> anyhow::Result<()> {
    let spec = args.spec()?;
    let marks = args.marks()?;
    let before = if args.engine_metrics.is_empty() {
        None
    } else {
        Some(super::engine::scrape(&args.engine_metrics).await?)
    };
    let mut report = run_load(spec).await?;
    if let Some(before) = before {
        let after = super::engine::scrape(&args.engine_metrics).await?;
        report.prefix_cache = Some(after.since(before));
    }
    print!("{}", report.summary());
    if let Some(path) = &args.json {
        let text = serde_json::to_string_pretty(&report)?;
        std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))?;
    }
    if let Some(path) = &args.plot {
        crate::plot::plot(&report, &marks, path)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct T {
        #[command(flatten)]
        a: RunArgs,
    }

    fn parse(args: &[&str]) -> anyhow::Result<LoadSpec> {
        let mut v = vec!["t", "--url", "http://127.0.0.1:1"];
        v.extend_from_slice(args);
        T::try_parse_from(v)?.a.spec()
    }

    #[test]
    fn flags_build_specs() {
        let s = parse(&[]).unwrap();
        assert_eq!(s.mode, Mode::Closed { concurrency: 64 });
        assert_eq!(s.prompt, PromptSizes::Fixed(200));
        let s = parse(&[
            "--rate",
            "50",
            "--mix",
            "chat:stream:a=2,kserve:b",
            "--prompt-mix",
            "10=1,100k=1",
        ])
        .unwrap();
        assert_eq!(
            s.mode,
            Mode::Open {
                rate_per_sec: 50.0,
                max_in_flight: 4096
            }
        );
        assert_eq!(s.workload.len(), 2);
        assert!(parse(&["--rate", "5", "--concurrency", "3"]).is_err());
        assert!(parse(&["--prompt-bytes", "5", "--prompt-mix", "1=1"]).is_err());
        assert!(parse(&["--endpoint", "nope"]).is_err());
    }

    #[test]
    fn shared_prefix_flags() {
        let s = parse(&[
            "--workload",
            "shared-prefix",
            "--turns",
            "3",
            "--model",
            "m",
        ])
        .unwrap();
        let shape = s.shared_prefix.unwrap();
        assert_eq!((shape.turns, shape.conversations), (3, 64));
        assert_eq!(shape.model, "m");
        assert!(s.workload[0].1.stream);
        assert!(parse(&[]).unwrap().shared_prefix.is_none());
        assert!(parse(&["--workload", "shared-prefix", "--mix", "chat:m"]).is_err());
        assert!(parse(&["--workload", "shared-prefix", "--turns", "0"]).is_err());
        assert!(parse(&["--workload", "nope"]).is_err());
    }
}
