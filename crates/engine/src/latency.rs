//! Latency histograms with fixed buckets, in the shape Prometheus exposes them.

/// Upper bounds of the buckets, in seconds: from a fast local request to a slow cycle.
pub const BUCKETS: [f64; 14] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0,
];

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Histogram {
    /// Observations per bucket (not cumulative); the last one counts those above every bound.
    pub counts: [u64; BUCKETS.len() + 1],
    pub sum_seconds: f64,
}

impl Histogram {
    pub fn observe(&mut self, seconds: f64) {
        let bucket = BUCKETS
            .iter()
            .position(|bound| seconds <= *bound)
            .unwrap_or(BUCKETS.len());
        self.counts[bucket] += 1;
        self.sum_seconds += seconds;
    }

    pub fn merge(&mut self, other: &Histogram) {
        for (mine, theirs) in self.counts.iter_mut().zip(other.counts) {
            *mine += theirs;
        }
        self.sum_seconds += other.sum_seconds;
    }

    pub fn count(&self) -> u64 {
        self.counts.iter().sum()
    }

    /// (upper bound, observations at or below it), the last bound being infinity.
    pub fn cumulative(&self) -> Vec<(f64, u64)> {
        let mut total = 0;
        BUCKETS
            .iter()
            .copied()
            .chain([f64::INFINITY])
            .zip(self.counts)
            .map(|(bound, count)| {
                total += count;
                (bound, total)
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn observations_land_in_the_first_bucket_that_holds_them() {
        let mut histogram = Histogram::default();
        for seconds in [0.001, 0.005, 0.2, 7.0, 1_000.0] {
            histogram.observe(seconds);
        }
        let mut other = Histogram::default();
        other.observe(0.2);
        histogram.merge(&other);
        let cumulative = histogram.cumulative();
        assert_eq!(cumulative[0], (0.005, 2));
        assert_eq!(cumulative[5], (0.25, 4));
        assert_eq!(cumulative[10], (10.0, 5));
        assert_eq!(cumulative.last().copied(), Some((f64::INFINITY, 6)));
        assert_eq!(histogram.count(), 6);
        assert!((histogram.sum_seconds - 1_007.406).abs() < 1e-9);
    }
}
