//! The gateway-wide budget of request-body bytes held in memory.
//!
//! Every request body is buffered so that a failed attempt can be replayed
//! on another replica. `max_body_bytes` bounds one body; this bounds them
//! all together (`server.limits.max_buffered_bytes`), so a burst of large
//! prompts cannot take the process's memory. When the budget is spent the
//! request is refused at once with 503 + `Retry-After`, saying why, rather
//! than queued: holding it would need the very memory that ran out.
//!
//! A counter, not a semaphore: the limit is read from the snapshot on every
//! request, so a reload that changes it applies at once.

use std::sync::atomic::{AtomicUsize, Ordering};

use crate::error::ProxyError;

/// Bytes of request bodies currently held, across all requests.
#[derive(Debug, Default)]
pub struct BufferBudget {
    used: AtomicUsize,
}

/// Bytes held by one request; given back when dropped (when the request's
/// attempts are over: its body is not needed for a replay after that).
#[derive(Debug)]
pub struct BufferPermit<'a> {
    budget: &'a BufferBudget,
    bytes: usize,
}

impl BufferBudget {
    /// Bytes held right now (for metrics and tests).
    pub fn used(&self) -> usize {
        self.used.load(Ordering::Acquire)
    }

    /// Takes `bytes` out of a budget of `limit`, or refuses with the 503.
    pub fn reserve(&self, bytes: usize, limit: usize) -> Result<BufferPermit<'_>, ProxyError> {
        let mut permit = BufferPermit {
            budget: self,
            bytes: 0,
        };
        permit.grow_to(bytes, limit)?;
        Ok(permit)
    }
}

impl BufferPermit<'_> {
    /// Makes this permit cover `bytes` (a chunked body turned out longer
    /// than its declared length, or had none).
    pub fn grow_to(&mut self, bytes: usize, limit: usize) -> Result<(), ProxyError> {
        let Some(more) = bytes.checked_sub(self.bytes).filter(|m| *m > 0) else {
            return Ok(());
        };
        self.budget
            .used
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |used| {
                used.checked_add(more).filter(|total| *total <= limit)
            })
            .map_err(|_| ProxyError::BufferBudget { limit })?;
        self.bytes = bytes;
        Ok(())
    }
}

impl Drop for BufferPermit<'_> {
    fn drop(&mut self) {
        self.budget.used.fetch_sub(self.bytes, Ordering::AcqRel);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_are_counted_refused_past_the_limit_and_given_back() {
        let b = BufferBudget::default();
        let mut one = b.reserve(60, 100).unwrap();
        assert!(matches!(
            b.reserve(50, 100),
            Err(ProxyError::BufferBudget { limit: 100 })
        ));
        let two = b.reserve(40, 100).unwrap();
        assert_eq!(b.used(), 100);
        drop(two);
        one.grow_to(90, 100).unwrap();
        assert!(one.grow_to(101, 100).is_err());
        assert_eq!(b.used(), 90);
        drop(one);
        assert_eq!(b.used(), 0);
    }
}
