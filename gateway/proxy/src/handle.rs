//! The request path, top to bottom. Each phase is one call here and lives in
//! its own file:
//!
//! 1. **snapshot**: load the config generation once; the request keeps it.
//! 2. **classify** ([`endpoint`](crate::endpoint)): which endpoint, or 404/405.
//! 3. **local answers** ([`local`]): `/v1/models`, health, model readiness,
//!    CORS preflights ([`cors`], before any API key is asked for);
//!    then **who calls** ([`auth`]): the tenant's key (401), its priority
//!    ceiling, its limits ([`tenant_limits`], 429), and after the target,
//!    whether it may call the model (403).
//! 4. **read body** under the size limit, the body-read timeout and the
//!    gateway-wide buffer budget ([`budget`](crate::budget)).
//! 5. **target**: the model the client named (OpenAI body field or KServe path).
//! 6. **rank** candidates (router, pure and lazy).
//! 7. **attempts** ([`failover`]): admit into the best untried replica's
//!    slot, **forward** ([`forward`](crate::forward)), retry retryable failures elsewhere
//!    (bounded, budgeted), and stream the answer back with the slot attached
//!    to the body ([`body`](crate::body)).
//!
//! Every error becomes the API's own error JSON in exactly one place,
//! [`Proxy::handle`], through [`ProxyError::into_response`]; there too every
//! answer gets its `x-request-id` and, with `server.cors`, its CORS headers
//! ([`cors::decorate`]).

use std::borrow::Cow;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use http::{HeaderMap, HeaderValue, Request, Response, header};
use http_body::Body;
use http_body_util::BodyExt;
use switchyard_config::{Limits, Protocol};
use switchyard_router::{Group, RouteRequest, clock_at};

use crate::admission::Priority;
use crate::answer::{Answer, Ours, Stamp};
use crate::asked::Asked;
use crate::body::{BoxError, ProxyBody};
use crate::endpoint::Endpoint;
use crate::error::{Api, ProxyError};
use crate::headers::names;
use crate::observe::{Arrival, OutcomeSlot, RequestObserver};
use crate::proxy::Proxy;
use crate::snapshot::Snapshot;
use crate::tenant_limits::RateInfo;
use crate::upstream::Upstream;
use crate::{
    adapter, auth, client_cert, cors, failover, local, observed, openai, resume, tenant_limits,
};

impl Proxy {
    /// Serves one data-plane request. Never fails: errors are answers too.
    /// Takes any body, so tests call it with no socket.
    ///
    /// Returned boxed: hyper's h2 keeps this future in its stream slot for
    /// the request's whole life, and the request path's state is
    /// kilobytes. Boxed, the stream holds a pointer, and the request's state
    /// is freed once the response head is out, not when a long stream ends.
    /// (Our HTTP/1 connection reuses one box: [`Proxy::handle_unboxed`].)
    /// Not an `async fn`: that would keep the request by value in the
    /// connection too, twice (rust-lang/rust#62958).
    pub fn handle<B>(
        &self,
        req: Request<B>,
        remote: SocketAddr,
    ) -> Pin<Box<impl Future<Output = Response<ProxyBody>>>>
    where
        B: Body<Data = Bytes> + Send,
        B::Error: Into<BoxError>,
    {
        let answer = handle(self, req, remote);
        Box::pin(async move { answer.await.into_response() })
    }

    /// [`Proxy::handle`], unboxed: for a connection that keeps one box for
    /// its requests' futures and puts each new one in it (`Pin::set`),
    /// rather than allocating (and freeing) kilobytes per request. Our own
    /// headers come beside the response, for the HTTP/1 encoder to write
    /// ([`Answer`]).
    pub fn handle_unboxed<B>(
        &self,
        req: Request<B>,
        remote: SocketAddr,
    ) -> impl Future<Output = Answer>
    where
        B: Body<Data = Bytes> + Send,
        B::Error: Into<BoxError>,
    {
        handle(self, req, remote)
    }
}

/// Not an `async fn` (nor is `serve`): one stores its by-value arguments
/// twice (rust-lang/rust#62958), and the request is handed down by value.
#[allow(clippy::manual_async_fn)]
fn handle<B>(gw: &Proxy, req: Request<B>, remote: SocketAddr) -> impl Future<Output = Answer>
where
    B: Body<Data = Bytes> + Send,
    B::Error: Into<BoxError>,
{
    async move {
        let api = Api::for_path(req.uri().path());
        let asked = Asked::scan(req.headers());
        let request_id = asked.request_id.clone().unwrap_or_else(fresh_request_id);
        // 1. One snapshot for the whole request.
        let snap = gw.snapshot();
        let cors = snap.config.server.cors.as_ref();
        let origin = cors.and_then(|_| req.headers().get(header::ORIGIN).cloned());
        let mut obs = gw.observer().request(Arrival {
            method: req.method(),
            uri: req.uri(),
            headers: req.headers(),
            request_id: &request_id,
        });
        // The caller's rate windows, for OpenAI's `x-ratelimit-*` headers on
        // any answer (429s included).
        let mut rate = RateInfo::default();
        let outcome = OutcomeSlot::default();
        // (Not boxed again: `Proxy::handle` boxes this whole future.)
        let served = serve(
            gw,
            &snap,
            req,
            remote,
            (&asked, &request_id, &outcome),
            obs.as_mut(),
            &mut rate,
        );
        let (mut resp, stamp) = match served.await {
            Ok(answered) => answered,
            Err(e) => {
                tracing::debug!(error = %e, kind = e.label(), "request failed");
                obs.failed(&e);
                (e.into_response(api), None)
            }
        };
        rate.apply(resp.headers_mut());
        let ours = match cors {
            // CORS exposes what the answer carries, ours included.
            Some(cors) => {
                let served = stamp.map(|s| (Arc::clone(&snap), s));
                Ours::new(request_id, served).into_map(resp.headers_mut());
                cors::decorate(cors, origin.as_ref(), resp.headers_mut());
                None
            }
            None => Some(Ours::new(request_id, stamp.map(|s| (snap, s)))),
        };
        // Metrics, access log and spans finish when the body has been sent.
        let response = observed::respond(obs, outcome, resp);
        Answer { response, ours }
    }
}

#[allow(clippy::manual_async_fn)]
fn serve<B>(
    gw: &Proxy,
    snap: &Arc<Snapshot>,
    req: Request<B>,
    remote: SocketAddr,
    (asked, request_id, outcome): (&Asked, &HeaderValue, &OutcomeSlot),
    obs: &mut dyn RequestObserver,
    rate: &mut RateInfo,
) -> impl Future<Output = Result<(Response<ProxyBody>, Option<Stamp>), ProxyError>>
where
    B: Body<Data = Bytes> + Send,
    B::Error: Into<BoxError>,
{
    async move {
        obs.bind(snap);

        // 2-3. What is asked; answer locally what we can.
        let endpoint = Endpoint::classify(req.method(), req.uri().path())?;
        let protocol = match &endpoint {
            Endpoint::ListModels => {
                client_cert::authenticate(
                    &snap.config,
                    gw.runtime_keys(),
                    snap.jwt.as_ref(),
                    req.headers(),
                    req.extensions(),
                )?;
                return Ok((local::list_models(snap), None));
            }
            Endpoint::Preflight { allow } => {
                let cors = snap.config.server.cors.as_ref();
                let answer = cors::preflight(cors, req.headers(), allow, req.uri().path())?;
                return Ok((answer, None));
            }
            Endpoint::Live => return Ok((local::live(), None)),
            Endpoint::Ready => return Ok((local::ready(gw), None)),
            Endpoint::KserveModelReady { model } => {
                return Ok((local::model_ready(snap, model), None));
            }
            Endpoint::OpenAiInfer => Protocol::OpenAi,
            Endpoint::KserveInfer { .. } | Endpoint::KserveMetadata { .. } => Protocol::KserveV2,
        };
        let (parts, body) = req.into_parts();
        // Who calls (401 without a valid key when tenants are configured);
        // the priority asked, up to the tenant's ceiling.
        let identity = client_cert::identify(
            &snap.config,
            gw.runtime_keys(),
            snap.jwt.as_ref(),
            &parts.headers,
            &parts.extensions,
        )?;
        let caller = identity.as_ref().map(|(tenant, _)| *tenant);
        let priority = auth::ceiling(asked.priority.ok_or_else(Priority::invalid)?, caller);
        let mut admission = match &identity {
            Some((tenant, key)) => {
                obs.caller(&tenant.name, &key.id);
                Some(
                    gw.tenant_limits()
                        .admit_any(tenant, key, tokio::time::Instant::now(), rate)
                        .await?,
                )
            }
            None => None,
        };

        // 4. The whole body, bounded in size and time (routing needs `model`, and a
        //    buffered body is what lets a later attempt replay it).
        //    Held bodies count against the gateway-wide budget (503 when spent).
        let limits = &snap.config.server.limits;
        let declared = asked.length;
        let mut buffered = gw.buffer_budget().reserve(
            declared.unwrap_or(0).min(limits.max_body_bytes as u64) as usize,
            limits.max_buffered_bytes,
        )?;
        let body = read_body(body, declared, limits).await?;
        buffered.grow_to(body.len(), limits.max_buffered_bytes)?;
        // One clock reading for the phase, the ranking and the deadline.
        let read = tokio::time::Instant::now();
        obs.body_read(read);

        // 5. The model the client named: the OpenAI body's `model`, or the KServe path.
        let openai = match &endpoint {
            Endpoint::KserveInfer { .. } | Endpoint::KserveMetadata { .. } => None,
            _ => Some(openai::parse(&body)?),
        };
        let named = match (&endpoint, &openai) {
            (_, Some(head)) => head.model.as_str(),
            (Endpoint::KserveInfer { model } | Endpoint::KserveMetadata { model }, _) => model,
            _ => unreachable!("every other endpoint's body was parsed above"),
        };
        // A LoRA adapter's name (`models[i].adapters`) routes to its group and
        // is forwarded as sent to that group's replicas; a fallback group gets
        // its own model name. Borrowed otherwise: no copy per request.
        let (model, lora) = match snap.table.adapter(named) {
            Some((group, a)) => (Cow::Owned(group), Some(a.to_owned())),
            None => (Cow::Borrowed(named), None),
        };
        // The model's group (`name` of `name@version`), read once.
        let group_name = switchyard_router::parse_model(&model).0;
        obs.target(&model);
        auth::authorize_model(caller, &model)?;
        // Tokens per minute and budgets: the estimate set aside before the call.
        if let (Some((tenant, key)), Some(admission)) = (&identity, admission.as_mut()) {
            let ask =
                tenant_limits::estimate(snap, &model, &parts, openai.as_ref(), &body, tenant, key);
            gw.tenant_limits()
                .reserve_any(
                    admission,
                    tenant,
                    key,
                    ask,
                    tokio::time::Instant::now(),
                    rate,
                )
                .await?;
        }
        let tenant_usage = admission.as_ref().map(tenant_limits::Admission::sink);

        // 6. Rank every replica that may serve (pure, lazy).
        let asked_clouds = if asked.clouds {
            allowed_clouds(&parts.headers)
        } else {
            Vec::new()
        };
        let clouds = tenant_clouds(snap, caller, asked_clouds)?;
        let group = snap.table.group(group_name);
        let prefix = prefix_blocks(group, openai.as_ref(), &body);
        let route = RouteRequest {
            model: &model,
            protocol,
            clouds: &clouds,
            affinity_key: affinity_key(group, &parts.headers, asked, openai.as_ref(), &body),
            prefix: &prefix,
            adapter: lora.as_deref(),
        };
        let ranking = snap
            .table
            .rank_at(&route, fastrand::u64(..), clock_at(read.into_std()))?;

        // 7. Attempts: take a slot on the best untried candidate, adapt the
        //    request to it (its model name), send; on a retryable failure before
        //    any byte went to the client, try the next one.
        // A chat stream of a group that allows resumes may be continued
        // elsewhere should it break (`resume/`).
        let max_resumes = snap
            .config
            .model(group_name)
            .map_or(0, |m| m.routing.max_resumes);
        let resumable = max_resumes > 0
            && openai.as_ref().is_some_and(|h| h.stream)
            && parts.uri.path().ends_with("/chat/completions");
        // The client's query string is not forwarded: neither the OpenAI API
        // nor KServe v2 uses one, and it is where clients put keys
        // (`?api-key=`). Cloud adapters build their own (`api-version`).
        let passthrough = |up: &Upstream| match (&endpoint, &openai) {
            (Endpoint::KserveInfer { .. }, _) => (
                Cow::Owned(format!("/v2/models/{}/infer", up.model_name)),
                body.clone(),
            ),
            (Endpoint::KserveMetadata { .. }, _) => (
                Cow::Owned(format!("/v2/models/{}", up.model_name)),
                body.clone(),
            ),
            (_, Some(head)) => {
                let body =
                    openai::rewrite_model(&body, head, name_for(up, lora.as_deref(), group_name));
                // Token-exact resume needs the stream's token ids.
                let body = if resumable && up.token_ids && !resume::token_ids::client_asked(&body) {
                    resume::token_ids::ask(&body)
                } else {
                    body
                };
                (Cow::Borrowed(parts.uri.path()), body)
            }
            _ => (Cow::Borrowed(parts.uri.path()), body.clone()),
        };
        let prepare = |up: &Upstream| {
            // Cloud protocols (Azure OpenAI, Bedrock) translate; the rest pass through.
            if let (Some(adapter), Some(head)) = (&up.adapter, &openai) {
                let call = adapter::Call {
                    path: parts.uri.path(),
                    body: &body,
                    head,
                };
                return adapter
                    .prepare(&call, name_for(up, lora.as_deref(), group_name))
                    .map(|(path, body)| (Cow::Owned(path), body));
            }
            Ok(passthrough(up))
        };
        let deadline = read + limits.request_timeout;
        let request = failover::Request {
            model: &model,
            ranking: &ranking,
            route,
            method: &parts.method,
            headers: &parts.headers,
            remote,
            request_id,
            priority,
            obs,
            resumable,
            tenant_usage: tenant_usage.as_ref(),
            deadline,
            outcome,
        };
        let (resp, stamp) = failover::send(gw, snap, request, prepare).await?;
        let resp = resume::attach(resp, outcome, || resume::Continuation {
            snap: Arc::clone(snap),
            observer: Arc::clone(gw.observer()),
            budget: Arc::clone(gw.retry_budget()),
            queue: gw.queues().get(group_name),
            path: parts.uri.path().to_owned(),
            headers: parts.headers.clone(),
            body: body.clone(),
            clouds: clouds.iter().map(|c| (*c).to_owned()).collect(),
            remote,
            request_id: request_id.clone(),
            deadline,
            max_resumes,
            adapter: lora.clone(),
            tenant_usage: tenant_usage.clone(),
            closing: gw.closing().clone(),
        });
        crate::spare::recycle_map(parts.headers);
        Ok((tenant_limits::hold(resp, admission), Some(stamp)))
    }
}

/// The model name `up` is sent: the client's LoRA `adapter` of `group`
/// to that group's replicas, else the replica's own (borrowed: a name
/// made per attempt was an allocation).
fn name_for<'a>(up: &'a Upstream, adapter: Option<&'a str>, group: &str) -> &'a str {
    match adapter {
        Some(a) if up.group == group => a,
        _ => &up.model_name,
    }
}

/// Reads the body up to `max_body_bytes`, refusing early on a `declared`
/// `Content-Length` over the limit, within `body_read_timeout`.
async fn read_body<B>(body: B, declared: Option<u64>, limits: &Limits) -> Result<Bytes, ProxyError>
where
    B: Body<Data = Bytes>,
    B::Error: Into<BoxError>,
{
    let limit = limits.max_body_bytes;
    if declared.is_some_and(|n| n > limit as u64) {
        return Err(ProxyError::BodyTooLarge { limit });
    }
    // (Usually in with the head: then no timer is set up.)
    match crate::lazy_deadline::within(limits.body_read_timeout, collect(body, limit)).await {
        None => Err(ProxyError::BodyTimeout {
            ms: limits.body_read_timeout.as_millis(),
        }),
        Some(read) => read,
    }
}

/// The body's bytes, refused past `limit` bytes. A body that comes in one
/// piece (the usual case: the HTTP/1 connection hands over a buffered
/// `content-length` body whole) is kept as it came, with no copy and no
/// list of pieces (http-body-util's `collect` allocated one per request).
async fn collect<B>(body: B, limit: usize) -> Result<Bytes, ProxyError>
where
    B: Body<Data = Bytes>,
    B::Error: Into<BoxError>,
{
    let mut body = std::pin::pin!(body);
    let mut whole = Bytes::new();
    let mut joined: Option<BytesMut> = None;
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| ProxyError::BodyRead(e.into()))?;
        // Trailers carry nothing routing or a replica needs.
        let Ok(data) = frame.into_data() else {
            continue;
        };
        let len = joined.as_ref().map_or(whole.len(), BytesMut::len) + data.len();
        if len > limit {
            return Err(ProxyError::BodyTooLarge { limit });
        }
        match &mut joined {
            Some(joined) => joined.extend_from_slice(&data),
            None if whole.is_empty() => whole = data,
            None => {
                let mut both = BytesMut::with_capacity(len);
                both.extend_from_slice(&whole);
                both.extend_from_slice(&data);
                joined = Some(both);
            }
        }
    }
    Ok(joined.map_or(whole, BytesMut::freeze))
}

/// The `affinity` policy's key, only for groups that use it: the session
/// header's value when present, else the first `prefix_bytes` of the
/// prompt (`messages`, or `prompt`), located by the one parse `openai.rs`
/// already does. Requests that share a system prompt then share a replica
/// and its KV cache.
fn affinity_key(
    group: Option<&Group>,
    headers: &HeaderMap,
    asked: &Asked,
    openai: Option<&openai::OpenAiHead>,
    body: &[u8],
) -> Option<u64> {
    let Some(settings) = group.and_then(Group::affinity) else {
        // Other policies use the key only to keep a session on one version.
        return asked.session;
    };
    if let Some(session) = headers.get(settings.header.as_str()) {
        return Some(switchyard_router::affinity_key(session.as_bytes()));
    }
    let (start, end) = openai?.prompt?;
    let end = end.min(start + settings.prefix_bytes);
    (settings.prefix_bytes > 0).then(|| switchyard_router::affinity_key(&body[start..end]))
}

/// The `prefix_cache` policy's prompt blocks, only for groups that use it
/// (no allocation otherwise): the `messages` (or `prompt`) JSON as the
/// client sent it, located by the one parse `openai.rs` does, in chained
/// blocks of the group's `prefix_block_bytes`. Requests that share a system
/// prompt, or a conversation's earlier turns, share their leading blocks.
fn prefix_blocks(
    group: Option<&Group>,
    openai: Option<&openai::OpenAiHead>,
    body: &[u8],
) -> Vec<u64> {
    match (group, openai.and_then(|h| h.prompt)) {
        (Some(g), Some((start, end))) if g.uses_prefixes() => switchyard_router::prefix_blocks(
            &body[start..end],
            g.scoring.prefix_block_bytes,
            g.scoring.prefix_max_blocks,
        ),
        _ => Vec::new(),
    }
}

/// `x-switchyard-clouds: private,aws-east`: cloud ids or providers this
/// request may reach. It narrows the model group's residency, never widens it.
fn allowed_clouds(headers: &HeaderMap) -> Vec<&str> {
    headers
        .get_all(names::X_CLOUDS)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .filter(|c| !c.is_empty())
        .collect()
}

/// The clouds a request may reach: the client's `x-switchyard-clouds`,
/// narrowed by its tenant's `clouds` (residency per tenant): the cloud ids
/// both allow, or 403 when none is left. No allocation for a tenant
/// without `clouds`.
fn tenant_clouds<'a>(
    snap: &'a Snapshot,
    caller: auth::Caller<'a>,
    asked: Vec<&'a str>,
) -> Result<Vec<&'a str>, ProxyError> {
    let Some(tenant) = caller.filter(|t| !t.clouds.is_empty()) else {
        return Ok(asked);
    };
    let allows = |places: &[&str], c: &switchyard_config::Cloud| {
        places.is_empty()
            || places
                .iter()
                .any(|p| *p == c.id || *p == c.provider.as_str())
    };
    let own: Vec<&str> = tenant.clouds.iter().map(String::as_str).collect();
    let both: Vec<&'a str> = snap
        .config
        .clouds
        .values()
        .filter(|c| allows(&own, c) && allows(&asked, c))
        .map(|c| c.id.as_str())
        .collect();
    if both.is_empty() {
        return Err(ProxyError::CloudNotAllowed {
            tenant: tenant.name.clone(),
            asked: if asked.is_empty() {
                "any".into()
            } else {
                asked.join(",")
            },
            allowed: tenant.clouds.join(","),
        });
    }
    Ok(both)
}

/// A request id for a client that sent none (or no sane one, see
/// [`Asked`]): 32 random hex digits, written in place (one allocation: the value's).
fn fresh_request_id() -> HeaderValue {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut id = [0u8; 32];
    let mut bits = fastrand::u128(..);
    for digit in id.iter_mut().rev() {
        *digit = HEX[(bits & 0xf) as usize];
        bits >>= 4;
    }
    HeaderValue::from_bytes(&id).unwrap_or_else(|_| HeaderValue::from_static("unknown"))
}

#[cfg(test)]
mod collect_tests {
    use std::collections::VecDeque;
    use std::task::{Context, Poll};

    use http_body::Frame;

    use super::*;

    /// A body that yields its pieces one frame each, then trailers.
    struct Pieces(VecDeque<Frame<Bytes>>);

    impl Pieces {
        fn new(pieces: &[&'static [u8]]) -> Self {
            let mut frames: VecDeque<_> = pieces
                .iter()
                .map(|p| Frame::data(Bytes::from_static(p)))
                .collect();
            frames.push_back(Frame::trailers(HeaderMap::new()));
            Self(frames)
        }
    }

    impl Body for Pieces {
        type Data = Bytes;
        type Error = std::convert::Infallible;

        fn poll_frame(
            mut self: Pin<&mut Self>,
            _: &mut Context<'_>,
        ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
            Poll::Ready(self.0.pop_front().map(Ok))
        }
    }

    #[tokio::test]
    async fn a_body_in_pieces_is_joined_in_order_and_trailers_are_left_out() {
        let body = collect(Pieces::new(&[b"{\"model\":", b"", b"\"m\"", b"}"]), 64).await;
        assert_eq!(&body.unwrap()[..], b"{\"model\":\"m\"}");
    }

    #[tokio::test]
    async fn a_body_in_one_piece_is_not_copied() {
        static ONE: &[u8] = b"{\"model\":\"m\"}";
        let body = collect(Pieces::new(&[ONE]), 64).await.unwrap();
        assert_eq!(body.as_ptr(), ONE.as_ptr());
    }

    #[tokio::test]
    async fn a_body_over_the_limit_in_pieces_is_refused() {
        let body = collect(Pieces::new(&[b"12345", b"67890", b"1"]), 10).await;
        assert!(matches!(body, Err(ProxyError::BodyTooLarge { limit: 10 })));
        let exact = collect(Pieces::new(&[b"12345", b"67890"]), 10).await;
        assert_eq!(exact.unwrap().len(), 10);
    }
}

#[cfg(test)]
mod request_id_tests {
    use super::*;

    #[test]
    fn a_fresh_request_id_is_32_lowercase_hex_digits_and_new_each_time() {
        let ids: Vec<HeaderValue> = (0..64).map(|_| fresh_request_id()).collect();
        for id in &ids {
            assert_eq!(id.len(), 32, "{id:?}");
            assert!(
                id.as_bytes()
                    .iter()
                    .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(b)),
                "{id:?}"
            );
        }
        let distinct: std::collections::HashSet<_> =
            ids.iter().map(HeaderValue::as_bytes).collect();
        assert_eq!(distinct.len(), ids.len());
        // Every digit position takes more than one value.
        for at in 0..32 {
            let seen: std::collections::HashSet<u8> =
                ids.iter().map(|id| id.as_bytes()[at]).collect();
            assert!(seen.len() > 1, "digit {at} never changes");
        }
    }
}
