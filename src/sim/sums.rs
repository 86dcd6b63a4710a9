//! Ordered sums over a plane of a field or pool, with the numerical guard's test folded in.
//!
//! The sampling sums every z-plane of every pool and field for its rows and checks, in the same
//! pass, that each value is finite and not negative (docs/model.md §7). The matrix update uses
//! the same sums on the pools it has just written, while they are still in cache, so that a
//! sample need not read the pools again; both use [`sum_checked`], so the sums are the same bits
//! whichever computes them.

use crate::sim::diffusion::has_avx2;
#[cfg(target_arch = "x86_64")]
use std::arch::x86_64::*;

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
            let (sum, ok) = sum_checked_wide(v);
            p.sums[k] = sum;
            p.clean &= ok;
        }
    }
    p
}

/// A value that [`sum_checked_wide`] sums: f32 (fields) or f64 (pools), taken as f64.
pub trait Summed: Copy {
    /// The value as f64 (exact).
    fn to_f64(self) -> f64;
    /// Values `p[0..8]` as f64 in two vectors (lanes 0–3, 4–7).
    ///
    /// # Safety
    /// `p` must be valid for reads of 8 values, and the processor must have AVX.
    #[cfg(target_arch = "x86_64")]
    unsafe fn load8(p: *const Self) -> (__m256d, __m256d);
}

impl Summed for f64 {
    #[inline(always)]
    fn to_f64(self) -> f64 {
        self
    }
    #[cfg(target_arch = "x86_64")]
    #[inline]
    #[target_feature(enable = "avx2")]
    unsafe fn load8(p: *const f64) -> (__m256d, __m256d) {
        // SAFETY: the caller guarantees 8 readable values.
        unsafe { (_mm256_loadu_pd(p), _mm256_loadu_pd(p.add(4))) }
    }
}

impl Summed for f32 {
    #[inline(always)]
    fn to_f64(self) -> f64 {
        self as f64
    }
    #[cfg(target_arch = "x86_64")]
    #[inline]
    #[target_feature(enable = "avx2")]
    unsafe fn load8(p: *const f32) -> (__m256d, __m256d) {
        // SAFETY: the caller guarantees 8 readable values; f32 → f64 is exact, as `as f64`.
        unsafe {
            let v = _mm256_loadu_ps(p);
            (
                _mm256_cvtps_pd(_mm256_castps256_ps128(v)),
                _mm256_cvtps_pd(_mm256_extractf128_ps::<1>(v)),
            )
        }
    }
}

/// [`sum_checked`] with 256-bit vectors where the processor has them (AVX2 is checked for, as
/// for the other wide kernels): lanes 0–3 and 4–7 of the partial sums are two vectors, each lane
/// taking its values in the same order, and the test of each value is the same pair of ordered
/// comparisons (false for NaN). The same sum, bit for bit, and the same verdict; the scalar
/// code keeps eight chains of scalar additions.
pub fn sum_checked_wide<T: Summed>(v: &[T]) -> (f64, bool) {
    #[cfg(target_arch = "x86_64")]
    {
        if has_avx2() {
            // SAFETY: AVX2 (and so AVX) was detected at run time.
            return unsafe { sum_checked_avx(v) };
        }
    }
    sum_checked(v, T::to_f64)
}

// The wide sums hold the lanes in two vectors of four.
const _: () = assert!(LANES == 8);

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn sum_checked_avx<T: Summed>(v: &[T]) -> (f64, bool) {
    let chunks = v.chunks_exact(LANES);
    let rest = chunks.remainder();
    let lo = _mm256_set1_pd(-1e-9);
    let hi = _mm256_set1_pd(f64::MAX);
    let (mut a0, mut a1) = (_mm256_setzero_pd(), _mm256_setzero_pd());
    let all = _mm256_castsi256_pd(_mm256_set1_epi64x(-1));
    let (mut k0, mut k1) = (all, all);
    let test = |x| {
        _mm256_and_pd(
            _mm256_cmp_pd::<_CMP_GE_OQ>(x, lo),
            _mm256_cmp_pd::<_CMP_LE_OQ>(x, hi),
        )
    };
    for c in chunks {
        // SAFETY: c holds LANES = 8 values; AVX2 is enabled here.
        let (x0, x1) = unsafe { T::load8(c.as_ptr()) };
        a0 = _mm256_add_pd(a0, x0);
        a1 = _mm256_add_pd(a1, x1);
        k0 = _mm256_and_pd(k0, test(x0));
        k1 = _mm256_and_pd(k1, test(x1));
    }
    let mut acc = [0.0f64; LANES];
    // SAFETY: acc holds 8 values: the stores write acc[0..4] and acc[4..8].
    unsafe {
        _mm256_storeu_pd(acc.as_mut_ptr(), a0);
        _mm256_storeu_pd(acc.as_mut_ptr().add(4), a1);
    }
    let mut ok = _mm256_movemask_pd(k0) == 0xF && _mm256_movemask_pd(k1) == 0xF;
    for (l, &x) in rest.iter().enumerate() {
        let x = x.to_f64();
        acc[l] += x;
        ok &= acceptable(x);
    }
    (acc.iter().sum(), ok)
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

    #[test]
    fn wide_sums_equal_the_scalar_ones_bit_for_bit() {
        // Lengths around the lane count and a plane's, values over many binades, and each kind
        // of value at the edge of the test at every position of a short vector: the same sum
        // bits and the same verdict as the scalar code.
        let val = |i: usize| {
            let v = crate::sim::rng::mix64(i as u64);
            ((v >> 11) as f64 / (1u64 << 53) as f64) * 10f64.powi((v % 13) as i32 - 6)
        };
        for len in (0..40).chain([9025, 9031]) {
            let v: Vec<f64> = (0..len).map(|i| val(i + 100 * len)).collect();
            let (a, b) = (sum_checked(&v, |x| x), sum_checked_wide(&v));
            assert_eq!((a.0.to_bits(), a.1), (b.0.to_bits(), b.1), "length {len}");
            assert!(b.1, "length {len}");
        }
        let edges = [
            (f64::NAN, false),
            (f64::INFINITY, false),
            (f64::NEG_INFINITY, false),
            (-1e-6, false),
            (-1.000001e-9, false),
            (-1e-9, true),
            (-1e-10, true),
            (-0.0, true),
            (f64::MAX, true),
        ];
        for len in [1, 7, 8, 9, 17, 24] {
            for pos in 0..len {
                for (x, accepted) in edges {
                    let mut v: Vec<f64> = (0..len).map(|i| val(i + 7 * pos)).collect();
                    v[pos] = x;
                    let (a, b) = (sum_checked(&v, |x| x), sum_checked_wide(&v));
                    assert_eq!(b.1, accepted, "{x} at {pos} of {len}");
                    assert_eq!(a.1, b.1, "{x} at {pos} of {len}");
                    assert!(
                        a.0.to_bits() == b.0.to_bits() || (a.0.is_nan() && b.0.is_nan()),
                        "{x} at {pos} of {len}"
                    );
                }
            }
        }
        // f32 values (the fields), widened to f64 as the scalar code does.
        for len in (0..40).chain([9025, 9031]) {
            let v: Vec<f32> = (0..len).map(|i| val(i + 100 * len) as f32).collect();
            let (a, b) = (sum_checked(&v, |x| x as f64), sum_checked_wide(&v));
            assert_eq!(
                (a.0.to_bits(), a.1),
                (b.0.to_bits(), b.1),
                "f32, length {len}"
            );
        }
        for len in [1, 8, 9, 17] {
            for pos in 0..len {
                for x in [f32::NAN, f32::INFINITY, -1e-6, -1e-9, -1e-10, f32::MAX] {
                    let mut v: Vec<f32> = (0..len).map(|i| val(i + 7 * pos) as f32).collect();
                    v[pos] = x;
                    let (a, b) = (sum_checked(&v, |x| x as f64), sum_checked_wide(&v));
                    assert_eq!(a.1, b.1, "f32 {x} at {pos} of {len}");
                    assert!(a.0.to_bits() == b.0.to_bits() || (a.0.is_nan() && b.0.is_nan()));
                }
            }
        }
    }
}
