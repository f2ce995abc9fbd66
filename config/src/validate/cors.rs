//! `server.cors`: the browser origins that may call the data plane.

use super::{Validator, http_token};
use crate::defaults as d;
use crate::model::Cors;
use crate::raw::RawCors;

impl Validator<'_> {
    pub(super) fn cors(&mut self, raw: Option<RawCors>) -> Option<Cors> {
        let raw = raw?;
        let base = "server.cors";
        let mut allow_origins = Vec::new();
        if raw.allow_origins.is_empty() {
            self.err(
                format!("{base}.allow_origins"),
                "must name at least one origin, or be [\"*\"] (omit `cors` to disable it)",
            );
        }
        let any = raw.allow_origins.iter().any(|o| o == "*");
        if any && raw.allow_origins.len() > 1 {
            self.err(
                format!("{base}.allow_origins"),
                "`*` allows every origin: list it alone",
            );
        }
        for (i, o) in raw.allow_origins.into_iter().enumerate() {
            if o == "*" {
                allow_origins.push(o);
            } else if let Err(why) = origin(&o) {
                self.err(
                    format!("{base}.allow_origins[{i}]"),
                    format!("`{o}` is not an origin ({why}); write scheme://host[:port]"),
                );
            } else {
                allow_origins.push(o.to_ascii_lowercase());
            }
        }
        let mut allow_headers = Vec::new();
        for (i, h) in raw.allow_headers.into_iter().enumerate() {
            if http_token(&h) {
                allow_headers.push(h.to_ascii_lowercase());
            } else {
                self.err(
                    format!("{base}.allow_headers[{i}]"),
                    format!("`{h}` is not a header name"),
                );
            }
        }
        let max_age_s = self
            .int(
                base,
                "max_age_s",
                raw.max_age_s,
                0,
                i64::from(d::CORS_MAX_AGE_S_MAX),
            )
            .map_or(d::CORS_MAX_AGE_S, |s| s as u32);
        Some(Cors {
            allow_origins,
            allow_headers,
            max_age_s,
        })
    }
}

/// Checks that `o` is what a browser sends in `Origin`: `http` or
/// `https`, a host, an optional port, nothing after.
fn origin(o: &str) -> Result<(), &'static str> {
    let rest = o
        .strip_prefix("https://")
        .or_else(|| o.strip_prefix("http://"))
        .ok_or("the scheme must be http or https")?;
    let (host, port) = match rest.rsplit_once(':') {
        Some((h, p)) if !h.ends_with(']') || rest.starts_with('[') => (h, Some(p)),
        _ => (rest, None),
    };
    if host.is_empty() {
        return Err("no host");
    }
    if host
        .chars()
        .any(|c| !(c.is_ascii_alphanumeric() || ".-[]:".contains(c)))
    {
        return Err("no path, query, user or other character after the host");
    }
    if let Some(p) = port
        && p.parse::<u16>().is_err()
    {
        return Err("the port must be a number");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::origin;

    #[test]
    fn origins_are_scheme_host_port() {
        for ok in [
            "https://app.example.com",
            "http://localhost:3000",
            "http://[::1]:8080",
        ] {
            assert!(origin(ok).is_ok(), "{ok}");
        }
        for bad in [
            "app.example.com",
            "ftp://x",
            "https://",
            "https://app.example.com/",
            "https://a.example.com/path",
            "https://u@a.example.com",
            "https://a.example.com:http",
        ] {
            assert!(origin(bad).is_err(), "{bad}");
        }
    }
}
