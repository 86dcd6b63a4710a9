//! Ordered sums over a plane of a field or pool, with the numerical guard's test folded in.
//!
//! The sampling sums every z-plane of every pool and field for its rows and checks, in the same
//! pass, that each value is finite and not negative (docs/model.md §7). The matrix update uses
//! the same sums on the pools it has just written, while they are still in cache, so that a
//! sample need not read the pools again; both use [`sum_checked`], so the sums are the same bits
//! whichever computes them.

/// Lanes of the partial sums in [`sum_checked`]: independent accumulators, so that the loop
/// vectorises instead of waiting on one chain of additions.
pub const LANES: usize = 8;

/// Whether a value of a concentration or pool passes the guard: finite and not negative
/// (round-off down to −1e−9 is tolerated); false for NaN. Branch-free, so that loops over
/// whole planes vectorise.
#[inline]
pub fn acceptable(v: f64) -> bool {
    (-1e-9..=f64::MAX).contains(&v)
}

/// The sum of `v` (in a fixed order: `LANES` interleaved partial sums, then those in order)
/// and whether every value is [`acceptable`].
#[inline]
pub fn sum_checked<T: Copy>(v: &[T], to: impl Fn(T) -> f64) -> (f64, bool) {
    let mut acc = [0.0f64; LANES];
    let mut ok = [true; LANES];
    let chunks = v.chunks_exact(LANES);
    let rest = chunks.remainder();
    for c in chunks {
        for l in 0..LANES {
            let x = to(c[l]);
            acc[l] += x;
            ok[l] &= acceptable(x);
        }
    }
    for (l, &x) in rest.iter().enumerate() {
        let x = to(x);
        acc[l] += x;
        ok[l] &= acceptable(x);
    }
    (acc.iter().sum(), ok.iter().all(|&b| b))
}

/// Checked sums of one z-plane of the matrix pools, in the order of
/// [`crate::guard::guarded_pools`] (collagen I, III, neo I, neo III, total, elastin, neo
/// elastin, fibrin).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PoolSums {
    /// The sum of each pool over the plane.
    pub sums: [f64; 8],
    /// Whether every value summed is [`acceptable`].
    pub clean: bool,
}

/// Which of the pools, in [`PoolSums`] order, are the neo pools and the fibrin: zero, and not
/// read, while the matrix has never had a deposit ([`crate::sim::matrix::Matrix::neo_live`]).
const NEO_OR_FIBRIN: [bool; 8] = [false, false, true, true, false, false, true, true];

/// The checked sums of one plane of the eight pools, given in [`PoolSums`] order. Without
/// `neo_live` the neo pools and the fibrin are all zero: they are not read, and their sums are
/// the +0 that reading them would give. The matrix update (on the planes it has just written)
/// and the sampling (on the others) both sum the pools here.
pub fn pool_sums(planes: [&[f64]; 8], neo_live: bool) -> PoolSums {
    let mut p = PoolSums {
        sums: [0.0; 8],
        clean: true,
    };
    for (k, v) in planes.into_iter().enumerate() {
        if neo_live || !NEO_OR_FIBRIN[k] {
            let (sum, ok) = sum_checked(v, |x| x);
            p.sums[k] = sum;
            p.clean &= ok;
        }
    }
    p
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sums_in_lanes_and_flags_bad_values() {
        let v: Vec<f64> = (0..21).map(|i| i as f64 * 0.1).collect();
        let (s, ok) = sum_checked(&v, |x| x);
        assert!(ok);
        assert!((s - 21.0).abs() < 1e-12, "{s}");
        for bad in [f64::NAN, f64::INFINITY, -1e-6] {
            let mut w = v.clone();
            w[13] = bad;
            assert!(!sum_checked(&w, |x| x).1, "{bad} passed");
        }
        let mut w = v.clone();
        w[5] = -1e-10;
        assert!(
            sum_checked(&w, |x| x).1,
            "round-off below zero is tolerated"
        );
        assert_eq!(sum_checked::<f32>(&[], |x| x as f64), (0.0, true));
    }
}
