//! Reading what the gateway reports: its metrics page and its log.

use std::sync::{Arc, Mutex};

/// `switchyard_upstream_attempts_total` of `replica` with `result`, summed
/// over the other labels.
pub fn upstream_attempts(metrics: &str, replica: &str, result: &str) -> f64 {
    let (r, res) = (
        format!("replica=\"{replica}\""),
        format!("result=\"{result}\""),
    );
    metrics
        .lines()
        .filter(|l| l.starts_with("switchyard_upstream_attempts_total{"))
        .filter(|l| l.contains(&r) && l.contains(&res))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// A `tracing` writer that keeps everything written to it, for tests that
/// read the access log.
#[derive(Clone, Default)]
pub struct LogCapture(pub Arc<Mutex<Vec<u8>>>);

impl std::io::Write for LogCapture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}
