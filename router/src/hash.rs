//! Hashing and mixing: the affinity key of a session or prompt, the
//! rendezvous score of a replica, and the per-request random stream.
//!
//! A leaf on purpose: it imports nothing from this crate, so the table (which
//! hashes replica ids), the policies (which score replicas) and ranking
//! (which draws random numbers) can all use it without depending on each
//! other.

/// SplitMix64's finaliser: a cheap, well-mixed 64-bit hash of a 64-bit value.
pub(crate) fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// The affinity key of a session id or prompt prefix: FNV-1a, then mixed.
/// Stable across processes and releases (unlike `std`'s `DefaultHasher`), so
/// every gateway in front of a fleet sends a session to the same replica.
pub fn affinity_key(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xCBF2_9CE4_8422_2325;
    for b in bytes {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0100_0000_01B3);
    }
    mix(h)
}

/// A tiny deterministic generator: one `u64` of caller randomness is enough
/// for all the choices a request needs, and keeps ranking a pure function
/// of its inputs.
pub(crate) struct SplitMix(pub(crate) u64);

impl SplitMix {
    /// The next number of the stream.
    pub(crate) fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        mix(self.0)
    }

    /// A uniform index in `0..n` (`n > 0`).
    pub(crate) fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// A `u64` as a uniform float in [0, 1).
pub(crate) fn unit(x: u64) -> f64 {
    (x >> 11) as f64 / (1u64 << 53) as f64
}
