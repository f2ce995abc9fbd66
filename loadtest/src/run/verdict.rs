//! How one request ended. The labels are the keys of `verdicts` in the JSON
//! report, so they are stable names, not `Debug` output.

/// How one request ended, from best to worst-understood.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// 2xx and a whole answer: JSON that parses, or a stream that ended
    /// with `[DONE]` or a `finish_reason`.
    Complete,
    /// A 2xx stream that carried an in-band error event: the failure was
    /// reported to the client, which is the acceptable way to fail mid-stream.
    ErrorEvent,
    /// A 2xx stream that ended cleanly with neither `[DONE]`, a
    /// `finish_reason` nor an error event: the client cannot tell a cut
    /// answer from a whole one, the worst outcome.
    SilentTruncation,
    /// A 2xx non-streaming answer whose body is not JSON.
    InvalidBody,
    /// The connection failed after it was made (before headers or mid-body).
    Reset,
    /// The connection could not be made (refused, unreachable).
    Connect,
    /// The request did not finish within the request timeout.
    Timeout,
    /// A non-2xx status.
    Http(u16),
}

impl Verdict {
    /// Stable label: `complete`, `error-event`, `silent-truncation`,
    /// `invalid-body`, `reset`, `connect`, `timeout`, `http_NNN`.
    pub fn label(self) -> String {
        match self {
            Self::Complete => "complete".into(),
            Self::ErrorEvent => "error-event".into(),
            Self::SilentTruncation => "silent-truncation".into(),
            Self::InvalidBody => "invalid-body".into(),
            Self::Reset => "reset".into(),
            Self::Connect => "connect".into(),
            Self::Timeout => "timeout".into(),
            Self::Http(s) => format!("http_{s}"),
        }
    }

    /// Whether the request counts as `ok`.
    pub fn is_ok(self) -> bool {
        self == Self::Complete
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_are_stable() {
        assert_eq!(Verdict::Http(503).label(), "http_503");
        assert_eq!(Verdict::SilentTruncation.label(), "silent-truncation");
        assert_eq!(Verdict::ErrorEvent.label(), "error-event");
        assert!(Verdict::Complete.is_ok() && !Verdict::Timeout.is_ok());
    }
}
