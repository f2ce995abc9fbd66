//! Switchyard's data plane as a value: [`Proxy::handle`] takes one HTTP
//! request (any body type, so tests call it without a socket) and returns
//! the answer: a replica's, or an error in the client's own API shape.
//!
//! It owns what a request needs and nothing else: the atomically swapped
//! [`Snapshot`] (config + replica table + upstream clients), the live
//! per-replica stats that outlive snapshots, admission queues, the retry
//! and buffer budgets. What watches it (metrics, access log, traces, costs,
//! rollout figures) hangs off the [`Observer`] seam; what changes it
//! (reloads, rollouts, probes) calls [`Proxy::store`] from the control
//! crate above. This crate imports neither.
//!
//! # Layout
//! The request path reads top to bottom in [`handle`] ([`Proxy::handle`]);
//! each phase is one file:
//! - [`asked`]: the client's headers the path reads, in one pass;
//!   [`endpoint`]: classify (404/405); [`local`]: answers given here;
//!   [`auth`]: the tenant behind an API key, its models and priority
//!   ([`runtime_keys`]: keys created at run time, asked on a config miss;
//!   [`jwt`]: or behind a token of a configured issuer;
//!   [`client_cert`]: or a verified client certificate's tenant);
//!   [`tenant_limits`]: its and its key's request rate, in-flight count,
//!   tokens per minute and spend budgets, and its spend.
//! - [`budget`]: the gateway-wide budget of buffered request bodies.
//! - [`openai`]: the one parse of an OpenAI body (model, stream, prompt).
//! - [`failover`]: the attempt loop; [`retry_budget`]: its token bucket;
//!   [`admission`]: the wait queues when every replica is full.
//! - [`forward`]: one attempt: build, authorize, send, classify, hold the
//!   answer until it may be committed (`commit.rs`: a valid head, the
//!   first SSE `data:` event, a small body read whole; what the
//!   replica's head says, in one pass); [`headers`]: which headers cross,
//!   both ways.
//! - [`resume`]: a committed chat stream that breaks is continued on
//!   another replica (prefill or regenerate-and-skip), or ends honestly.
//! - [`connections`]: open client connections, their caps and counts
//!   (the accept loop in the binary asks it).
//! - [`answer`]: the headers the gateway adds to every answer (request
//!   id, replica, version, generation, attempts), kept beside the
//!   response for the HTTP/1 encoder to write.
//! - `guarded.rs`: the response body holding the replica's slot (idle
//!   timeout, keep-alive, SSE error event); `observed.rs`: the body that
//!   finishes the request's observer; [`body`]: the body type (a leaf);
//!   [`sse`]: the stream watch; [`events`]: whole-event SSE framing; [`usage`]: token usage read off an answer.
//! - [`upstream`]: per-replica address and credentials ([`upstream::Upstream::authorize`]
//!   is the one place credentials are attached, for requests and probes);
//!   [`adapter`]: cloud protocols (Azure OpenAI, Bedrock, SageMaker).
//! - [`error`]: the layer's error enum and its one HTTP edge; [`spare`]:
//!   per-thread spares of the header maps and head buffers every request
//!   builds and drops.
//! - [`Proxy`] (in `proxy.rs`): what a request needs that outlives a
//!   generation; [`observe`]: the observer seam; [`snapshot`]: what one
//!   generation holds.

pub mod adapter;
pub mod admission;
pub mod answer;
pub mod asked;
pub mod auth;
pub mod body;
pub mod budget;
pub mod client_cert;
mod commit;
pub mod connections;
pub mod cors;
pub mod endpoint;
pub mod error;
pub mod events;
pub mod failover;
pub mod first_token;
pub mod forward;
mod guarded;
pub mod handle;
pub mod headers;
pub mod jwt;
pub mod lazy_deadline;
pub mod local;
pub mod observe;
mod observed;
pub mod openai;
mod proxy;
pub mod read_sized;
pub mod resume;
pub mod retry_budget;
pub mod runtime_keys;
pub mod server_h1;
pub mod snapshot;
pub mod spare;
pub mod sse;
pub mod tenant_limits;
pub mod upstream;
pub mod usage;
pub mod worker;

pub use body::{BoxError, ProxyBody};
pub use error::{Api, ProxyError};
pub use observe::{NoObserver, Observer, RequestObserver};
pub use proxy::Proxy;
pub use snapshot::{PrepareError, Snapshot};
