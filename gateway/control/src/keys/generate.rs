//! New keys: `sk-sy-` and 43 base62 characters (256 bits) from the
//! system's CSPRNG (ring's `SystemRandom`, i.e. `getrandom`), and a
//! random id that says nothing about the key.

use ring::rand::{SecureRandom, SystemRandom};
use switchyard_config::key_digest;

use super::file::format_hash;
use super::{KeyError, KeyRecord, NewKey};

/// What every generated key starts with (secret scanners can match it).
pub const PREFIX: &str = "sk-sy-";

/// Random characters in a key: 43 × log2(62) ≈ 256 bits.
const KEY_CHARS: usize = 43;

/// Random characters in a key id (≈ 71 bits: ids never collide).
const ID_CHARS: usize = 12;

/// How many characters of the key a listing shows (the prefix and 6
/// random ones: 36 of its 256 bits).
const SHOWN: usize = PREFIX.len() + 6;

const ALPHABET: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// A new key for `tenant` and its record.
pub(super) fn key(tenant: &str, name: Option<String>, now_ms: u64) -> Result<NewKey, KeyError> {
    let key = secret()?;
    let record = KeyRecord {
        id: format!("key_{}", base62(ID_CHARS)?),
        tenant: tenant.to_owned(),
        name,
        prefix: key[..SHOWN].to_owned(),
        hash: format_hash(&key_digest(key.as_bytes())),
        created_at_ms: now_ms,
        revoked_at_ms: None,
        expires_at_ms: None,
        replaces: None,
    };
    Ok(NewKey { record, key })
}

/// A new key (`sk-sy-` and 43 random base62 characters), nothing kept.
pub(super) fn secret() -> Result<String, KeyError> {
    Ok(format!("{PREFIX}{}", base62(KEY_CHARS)?))
}

/// `n` uniformly random base62 characters. Bytes of 248 and more are
/// dropped (248 = 4 × 62), so every character is equally likely.
fn base62(n: usize) -> Result<String, KeyError> {
    let rng = SystemRandom::new();
    let mut out = String::with_capacity(n);
    let mut buf = [0u8; 64];
    while out.len() < n {
        rng.fill(&mut buf).map_err(|_| KeyError::Random)?;
        for &b in buf.iter().filter(|&&b| b < 248) {
            if out.len() == n {
                break;
            }
            out.push(ALPHABET[usize::from(b % 62)] as char);
        }
    }
    Ok(out)
}
