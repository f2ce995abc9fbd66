//! The estimate a tenant's request reserves before the call.

use switchyard_config::{Tenant, TenantKey};

use super::Ask;
use crate::openai::OpenAiHead;
use crate::snapshot::Snapshot;
use crate::usage;

/// What a tenant's request is estimated to use, for its token limit and
/// budgets: input ≈ one token per 4 bytes of the prompt (`messages` or
/// `prompt` as sent, JSON included, so it errs high; the whole body when
/// neither is found), plus the output it may produce (`max_tokens`,
/// `max_completion_tokens`, or the tenant's `default_max_tokens`; none for
/// embeddings), priced at the group's highest replica price. The answer's
/// reported usage replaces the estimate.
pub fn estimate(
    snap: &Snapshot,
    model: &str,
    parts: &http::request::Parts,
    openai: Option<&OpenAiHead>,
    body: &[u8],
    tenant: &Tenant,
    key: &TenantKey,
) -> Ask {
    if !tenant.quota.any() && !key.quota.any() {
        return Ask::default();
    }
    let prompt_bytes = openai
        .and_then(|h| h.prompt)
        .map_or(body.len(), |(start, end)| end - start);
    let input = (prompt_bytes as u64).div_ceil(4);
    let output = if parts.uri.path().ends_with("/embeddings") {
        0
    } else {
        openai
            .and_then(|h| h.max_tokens)
            .unwrap_or(u64::from(tenant.default_max_tokens))
    };
    let cost_nano = snap
        .max_price
        .get(switchyard_router::parse_model(model).0)
        .map_or(0, |p| usage::cost_nano(input, output, p));
    Ask {
        tokens: input + output,
        cost_nano,
    }
}
