//! Which endpoint a request is for. Pure: method and path in, endpoint out.

use http::Method;

use crate::error::ProxyError;

/// Every endpoint of the data plane.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Endpoint {
    /// `POST /v1/chat/completions`, `/v1/completions`, `/v1/embeddings`:
    /// routed on the body's `model`, forwarded on the same path.
    OpenAiInfer,
    /// `GET /v1/models`: the model groups, answered locally.
    ListModels,
    /// `POST /v2/models/{name}[/versions/{v}]/infer`.
    KserveInfer {
        /// Model group.
        model: String,
    },
    /// `GET /v2/models/{name}[/versions/{v}]`: forwarded to a replica.
    KserveMetadata {
        /// Model group.
        model: String,
    },
    /// `GET /v2/models/{name}[/versions/{v}]/ready`: answered locally.
    KserveModelReady {
        /// Model group.
        model: String,
    },
    /// `GET /v2/health/live`.
    Live,
    /// `GET /v2/health/ready`.
    Ready,
    /// `OPTIONS` on any of the above: a browser's CORS preflight, answered
    /// locally (405 when `server.cors` is not configured).
    Preflight {
        /// The method the endpoint takes.
        allow: Method,
    },
}

impl Endpoint {
    /// Classifies a request. A KServe version in the path becomes a pin
    /// (`name@version`), the same as OpenAI's `model: "group@version"`.
    pub fn classify(method: &Method, path: &str) -> Result<Self, ProxyError> {
        let want = |m: Method, e: Endpoint| {
            if *method == m {
                Ok(e)
            } else if *method == Method::OPTIONS {
                Ok(Endpoint::Preflight { allow: m })
            } else {
                Err(ProxyError::MethodNotAllowed {
                    method: method.clone(),
                    path: path.to_owned(),
                })
            }
        };
        match path {
            "/v1/chat/completions" | "/v1/completions" | "/v1/embeddings" => {
                return want(Method::POST, Endpoint::OpenAiInfer);
            }
            "/v1/models" => return want(Method::GET, Endpoint::ListModels),
            "/v2/health/live" => return want(Method::GET, Endpoint::Live),
            "/v2/health/ready" => return want(Method::GET, Endpoint::Ready),
            _ => {}
        }
        if let Some(rest) = path.strip_prefix("/v2/models/") {
            let segs: Vec<&str> = rest.split('/').collect();
            let (model, tail): (String, &[&str]) = match segs.as_slice() {
                [name, "versions", v, tail @ ..] if !v.is_empty() => (format!("{name}@{v}"), tail),
                [name, tail @ ..] => ((*name).to_owned(), tail),
                [] => (String::new(), &[]),
            };
            // One pin at most: `a@b/versions/3` would be group `a`,
            // version `b@3`, which the client never named.
            if !model.is_empty() && !model.starts_with('@') && model.matches('@').count() <= 1 {
                match tail {
                    ["infer"] => return want(Method::POST, Endpoint::KserveInfer { model }),
                    ["ready"] => return want(Method::GET, Endpoint::KserveModelReady { model }),
                    [] => return want(Method::GET, Endpoint::KserveMetadata { model }),
                    _ => {}
                }
            }
        }
        Err(ProxyError::NotFound {
            method: method.clone(),
            path: path.to_owned(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(m: Method, p: &str) -> Result<Endpoint, ProxyError> {
        Endpoint::classify(&m, p)
    }

    #[test]
    fn classifies_every_endpoint() {
        assert_eq!(
            c(Method::POST, "/v1/chat/completions").unwrap(),
            Endpoint::OpenAiInfer
        );
        assert_eq!(c(Method::GET, "/v1/models").unwrap(), Endpoint::ListModels);
        assert_eq!(
            c(Method::POST, "/v2/models/resnet/infer").unwrap(),
            Endpoint::KserveInfer {
                model: "resnet".into()
            }
        );
        assert_eq!(
            c(Method::POST, "/v2/models/resnet/versions/v2/infer").unwrap(),
            Endpoint::KserveInfer {
                model: "resnet@v2".into()
            }
        );
        assert_eq!(
            c(Method::GET, "/v2/models/resnet/ready").unwrap(),
            Endpoint::KserveModelReady {
                model: "resnet".into()
            }
        );
        assert_eq!(
            c(Method::GET, "/v2/models/resnet").unwrap(),
            Endpoint::KserveMetadata {
                model: "resnet".into()
            }
        );
        assert_eq!(c(Method::GET, "/v2/health/live").unwrap(), Endpoint::Live);
    }

    #[test]
    fn options_is_a_preflight_for_the_endpoints_method() {
        for (p, allow) in [
            ("/v1/chat/completions", Method::POST),
            ("/v1/models", Method::GET),
            ("/v2/models/resnet/versions/2/infer", Method::POST),
            ("/v2/models/resnet", Method::GET),
            ("/v2/health/ready", Method::GET),
        ] {
            assert_eq!(
                c(Method::OPTIONS, p).unwrap(),
                Endpoint::Preflight { allow },
                "{p}"
            );
        }
    }

    #[test]
    fn wrong_method_and_unknown_paths() {
        assert!(matches!(
            c(Method::GET, "/v1/chat/completions"),
            Err(ProxyError::MethodNotAllowed { .. })
        ));
        assert!(matches!(
            c(Method::OPTIONS, "/v2/models/x/explain"),
            Err(ProxyError::NotFound { .. })
        ));
        for p in [
            "/",
            "/v1/chat",
            "/v2/models/",
            "/v2/models/x/explain",
            "/v2/models//infer",
            "/v2/models/a@b/versions/3/infer",
            "/v2/models/a/versions/b@3/infer",
        ] {
            assert!(
                matches!(c(Method::POST, p), Err(ProxyError::NotFound { .. })),
                "{p}"
            );
        }
    }
}
