//! A string that never prints, and the one rule for what a secret that
//! goes into an HTTP header may contain.

use std::fmt;

/// A credential (upstream API key, admin token). `Debug`, `Display` and
/// `Serialize` all print `<redacted>`, so a secret cannot reach a log line, an
/// error message or `GET /admin/config` by accident; code that must send it
/// upstream calls [`Secret::expose`] on purpose.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a value read from the config (after `${ENV}` interpolation).
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The plain value, for the one place that needs it: building the
    /// upstream request header or checking a presented token.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Compares in time independent of where the first difference is, so
    /// the admin token cannot be guessed byte by byte from response timing.
    pub fn matches(&self, presented: &[u8]) -> bool {
        let ours = self.0.as_bytes();
        if ours.len() != presented.len() {
            return false;
        }
        ours.iter()
            .zip(presented)
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0
    }
}

/// Why a secret cannot be sent as (part of) an HTTP header value. The
/// messages describe the problem, never the value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum HeaderValueError {
    /// Nothing, or only spaces and tabs: a request would go out without a
    /// credential.
    #[error("is empty or only whitespace")]
    Empty,
    /// HTTP strips whitespace around a header value, so the replica would
    /// receive a different credential than the one configured.
    #[error("starts or ends with whitespace")]
    SurroundingWhitespace,
    /// `\n` or `\r` inside the value (a file holds one trailing line
    /// break at most): it would end the header.
    #[error("contains a line break")]
    LineBreak,
    /// Another control character (NUL, ESC, DEL, ...).
    #[error("contains a control character")]
    ControlCharacter,
    /// Header values are sent as visible ASCII; anything else is refused
    /// by the HTTP client.
    #[error("contains a non-ASCII character")]
    NonAscii,
    /// `<redacted>`, what a serialized config (`GET /admin/config`) shows
    /// in place of every secret: posted back unedited, it would replace
    /// the real credentials with the placeholder.
    #[error(
        "is the `<redacted>` placeholder of a serialized config (put the secret back, e.g. as `${{VAR}}`)"
    )]
    Placeholder,
}

/// Checks that `value` can be sent as a header value as it is: visible
/// ASCII, with spaces or tabs only inside, not empty, and not the
/// `<redacted>` placeholder.
///
/// Inline and `${ENV}` values are checked with this as they are: a
/// trailing newline there is a mistake to fix, not to guess around.
pub fn check_header_value(value: &str) -> Result<(), HeaderValueError> {
    if value == REDACTED {
        return Err(HeaderValueError::Placeholder);
    }
    let blank = |b: u8| b == b' ' || b == b'\t';
    let bytes = value.as_bytes();
    if bytes.iter().all(|&b| blank(b)) {
        return Err(HeaderValueError::Empty);
    }
    for &b in bytes {
        match b {
            b'\n' | b'\r' => return Err(HeaderValueError::LineBreak),
            b'\t' | b' '..=b'~' => {}
            0..=0x1f | 0x7f => return Err(HeaderValueError::ControlCharacter),
            0x80.. => return Err(HeaderValueError::NonAscii),
        }
    }
    if bytes.first().copied().is_some_and(blank) || bytes.last().copied().is_some_and(blank) {
        return Err(HeaderValueError::SurroundingWhitespace);
    }
    Ok(())
}

/// The header value held in a credential file's `contents`: the file
/// without one trailing line break (`\n` or `\r\n`), which editors and
/// `kubectl create secret --from-file` commonly leave, then checked with
/// [`check_header_value`].
///
/// Only one line break is dropped and nothing else is trimmed: a second
/// line or surrounding spaces mean the file is not what the operator
/// thinks it is. Config validation (`auth.bearer_file`, `auth.value_file`)
/// and the gateway's re-read of a rotated file both call this, so a file
/// `check` accepts is a file the gateway sends.
pub fn header_value_from_file_contents(contents: &str) -> Result<&str, HeaderValueError> {
    let value = contents
        .strip_suffix("\r\n")
        .or_else(|| contents.strip_suffix('\n'))
        .unwrap_or(contents);
    check_header_value(value)?;
    Ok(value)
}

const REDACTED: &str = "<redacted>";

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(REDACTED)
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(REDACTED)
    }
}

impl serde::Serialize for Secret {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(REDACTED)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn never_prints_its_value() {
        let s = Secret::new("sk-live-123");
        assert_eq!(format!("{s} {s:?}"), "<redacted> <redacted>");
        assert_eq!(serde_json::to_string(&s).unwrap(), "\"<redacted>\"");
        assert_eq!(s.expose(), "sk-live-123");
    }

    #[test]
    fn header_values_are_visible_ascii_without_surrounding_blanks() {
        assert_eq!(check_header_value("sk-1 2\t3"), Ok(()));
        for (bad, why) in [
            ("", HeaderValueError::Empty),
            (" \t ", HeaderValueError::Empty),
            ("sk\n", HeaderValueError::LineBreak),
            ("a\rb", HeaderValueError::LineBreak),
            ("a\u{1b}b", HeaderValueError::ControlCharacter),
            ("a\u{7f}", HeaderValueError::ControlCharacter),
            ("clé", HeaderValueError::NonAscii),
            (" sk", HeaderValueError::SurroundingWhitespace),
            ("sk\t", HeaderValueError::SurroundingWhitespace),
            ("<redacted>", HeaderValueError::Placeholder),
        ] {
            assert_eq!(check_header_value(bad), Err(why), "{bad:?}");
        }
    }

    #[test]
    fn a_file_loses_one_trailing_line_break_only() {
        assert_eq!(header_value_from_file_contents("tok\n"), Ok("tok"));
        assert_eq!(header_value_from_file_contents("tok\r\n"), Ok("tok"));
        assert_eq!(header_value_from_file_contents("tok"), Ok("tok"));
        assert_eq!(
            header_value_from_file_contents("tok\n\n"),
            Err(HeaderValueError::LineBreak)
        );
        assert_eq!(
            header_value_from_file_contents("a\nb\n"),
            Err(HeaderValueError::LineBreak)
        );
        assert_eq!(
            header_value_from_file_contents("\n"),
            Err(HeaderValueError::Empty)
        );
    }

    #[test]
    fn matches_only_the_exact_value() {
        let s = Secret::new("token");
        assert!(s.matches(b"token"));
        assert!(!s.matches(b"token2"));
        assert!(!s.matches(b"tokeN"));
        assert!(!s.matches(b""));
    }
}
