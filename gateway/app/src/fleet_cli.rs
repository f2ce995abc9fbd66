//! `switchyard fleet ...`: the operator's side of a fleet in etcd. Every
//! write is a compare-and-swap on what was read (a concurrent edit is
//! refused, not lost), then a bounded wait until every live instance
//! serves the write's revision; who did not, and why, is printed.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Subcommand};
use switchyard_fleet::etcd::{Confirmation, FleetClient, InstanceStatus};

/// Where the fleet is, and how long to wait for it.
#[derive(Args)]
pub struct FleetArgs {
    /// etcd endpoint.
    #[arg(long, default_value = "http://127.0.0.1:2379", global = true)]
    etcd: String,
    /// Key prefix of the fleet.
    #[arg(long, default_value = "/switchyard", global = true)]
    prefix: String,
    /// How long a write waits for every live instance to serve it.
    #[arg(long, default_value_t = 10_000, global = true)]
    wait_ms: u64,
    #[command(subcommand)]
    action: FleetAction,
}

#[derive(Subcommand)]
enum FleetAction {
    /// Every live instance: revision, config hash, refusal, degraded.
    Status,
    /// Validate FILE like `check`, then make it the fleet's config.
    Apply {
        /// The YAML config.
        file: PathBuf,
        /// Write only if the document is still at this revision (default:
        /// the one read just before writing).
        #[arg(long)]
        expect_revision: Option<i64>,
    },
    /// Set a group's version weights, e.g. `weights chat v1=90 v2=10`, or
    /// `weights chat --clear` to serve the document's weights again.
    Weights {
        /// The model group.
        group: String,
        /// `version=weight` pairs (versions not named get 0).
        #[arg(required_unless_present = "clear")]
        weights: Vec<String>,
        /// Remove the override instead.
        #[arg(long, conflicts_with = "weights")]
        clear: bool,
    },
    /// All of a group's traffic to VERSION, which becomes its stable version.
    Promote {
        /// The model group.
        group: String,
        /// The version.
        version: String,
    },
    /// All of a group's traffic back to its stable version.
    Rollback {
        /// The model group.
        group: String,
    },
}

/// Runs the command; `Ok(false)`: it was refused or not confirmed.
pub async fn run(args: FleetArgs) -> anyhow::Result<bool> {
    let client = FleetClient::connect(&args.etcd, &args.prefix).await?;
    let wait = Duration::from_millis(args.wait_ms);
    let revision = match args.action {
        FleetAction::Status => return status(&client).await,
        FleetAction::Apply {
            file,
            expect_revision,
        } => {
            let Some(text) = checked(&file)? else {
                return Ok(false);
            };
            let expected = match expect_revision {
                Some(r) => r,
                None => client.config().await?.map_or(0, |d| d.mod_revision),
            };
            client.put_config(&text, expected).await?
        }
        FleetAction::Weights { group, clear, .. } if clear => client.clear_weights(&group).await?,
        FleetAction::Weights { group, weights, .. } => {
            client
                .put_weights(&group, &parse_weights(&weights)?)
                .await?
        }
        FleetAction::Promote { group, version } => client.put_stable(&group, &version).await?,
        FleetAction::Rollback { group } => {
            let stable = client.stable(&group).await?.ok_or_else(|| {
                anyhow::anyhow!(
                    "{group} has no stable version in etcd yet (`fleet promote` records one; \
                     an instance's `POST /admin/models/{group}/rollback` uses its own)"
                )
            })?;
            client.put_stable(&group, &stable).await?
        }
    };
    let c = client.wait(revision, wait).await?;
    report(&c);
    Ok(c.complete())
}

/// FILE's text when it validates; otherwise its problems are printed.
fn checked(file: &std::path::Path) -> anyhow::Result<Option<String>> {
    let text =
        std::fs::read_to_string(file).map_err(|e| anyhow::anyhow!("{}: {e}", file.display()))?;
    match switchyard_config::load_file(file) {
        Ok(_) => Ok(Some(text)),
        Err(e) => {
            let errors = e.field_errors();
            eprintln!(
                "{}: {} problem(s); nothing written",
                file.display(),
                errors.len()
            );
            for err in errors {
                eprintln!("  {err}");
            }
            Ok(None)
        }
    }
}

fn parse_weights(pairs: &[String]) -> anyhow::Result<BTreeMap<String, u32>> {
    let mut out = BTreeMap::new();
    for p in pairs {
        let (v, w) = p
            .split_once('=')
            .ok_or_else(|| anyhow::anyhow!("`{p}`: expected version=weight"))?;
        let w: u32 = w
            .parse()
            .ok()
            .filter(|w| *w <= 100)
            .ok_or_else(|| anyhow::anyhow!("`{p}`: the weight must be 0..=100"))?;
        out.insert(v.to_owned(), w);
    }
    if out.values().all(|w| *w == 0) {
        anyhow::bail!("total weight is 0: at least one version needs weight > 0");
    }
    Ok(out)
}

async fn status(client: &FleetClient) -> anyhow::Result<bool> {
    let doc = client.config().await?;
    match &doc {
        Some(d) => println!(
            "config: revision {}, hash {}",
            d.mod_revision,
            &switchyard_fleet::etcd::status::doc_hash(&d.text)[..12]
        ),
        None => println!("config: none under {}", client.layout().config()),
    }
    let instances = client.instances().await?;
    println!("{} live instance(s)", instances.len());
    for s in &instances {
        println!("{}", line(s));
    }
    Ok(true)
}

fn line(s: &InstanceStatus) -> String {
    let mut l = format!(
        "  {}  revision {}  hash {}  data {}  admin {}",
        s.id,
        s.revision,
        s.hash.get(..12).unwrap_or(&s.hash),
        s.data_addr,
        s.admin_addr
    );
    if s.degraded {
        l.push_str(&format!(
            "  DEGRADED: {}",
            s.degraded_reason.as_deref().unwrap_or("")
        ));
    }
    if let Some(r) = &s.last_refusal {
        l.push_str(&format!("\n    last refusal at revision {}:", r.revision));
        for e in &r.errors {
            l.push_str(&format!("\n      {}: {}", e.path, e.message));
        }
    }
    l
}

fn report(c: &Confirmation) {
    let live = c.confirmed.len() + c.refused.len() + c.behind.len();
    println!(
        "revision {}: {}/{live} live instance(s) serve it",
        c.revision,
        c.confirmed.len()
    );
    for s in &c.refused {
        println!("REFUSED{}", line(s));
    }
    for s in &c.behind {
        println!("BEHIND{}", line(s));
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn weights_are_version_equals_weight_pairs() {
        let w = parse_weights(&["v1=90".into(), "v2=10".into()]).unwrap();
        assert_eq!(w, BTreeMap::from([("v1".into(), 90), ("v2".into(), 10)]));
        assert!(
            parse_weights(&["v1".into()])
                .unwrap_err()
                .to_string()
                .contains("version=weight")
        );
        assert!(
            parse_weights(&["v1=101".into()])
                .unwrap_err()
                .to_string()
                .contains("0..=100")
        );
        assert!(
            parse_weights(&["v1=0".into()])
                .unwrap_err()
                .to_string()
                .contains("total weight is 0")
        );
    }
}
