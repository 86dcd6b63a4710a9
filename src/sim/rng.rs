//! Counter-based random streams.
//!
//! Every random draw of the model comes from a stream keyed by a hash of (seed, purpose, id,
//! tick): an agent's draws at a tick depend on nothing but those four numbers, so results are
//! the same whatever the number of threads or the order in which agents are processed. The
//! stream is SplitMix64 run in counter mode (output i = mix(key + (i+1)·γ)), a generator that
//! passes BigCrush in this use; it implements `rand`'s `TryRng`, so `rand_distr` samplers work
//! with it. Session-level draws (channel layouts) use `rand`'s ChaCha8 seeded the same way.

use rand::SeedableRng;
use rand::rngs::ChaCha8Rng;
use std::convert::Infallible;

/// What a stream is used for; part of its key so that purposes never share numbers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u64)]
pub enum Purpose {
    /// Channel positions of a session.
    Channels = 1,
    /// A fibroblast's behaviour in one step.
    Agent = 2,
    /// Initial placement of fibroblasts.
    Placement = 3,
    /// Sub-voxel offsets of a session's grid.
    Offset = 4,
    /// A fibroblast's behaviour in one burn-in step before day 0.
    BurnIn = 5,
}

const GAMMA: u64 = 0x9E37_79B9_7F4A_7C15;

/// The SplitMix64 finaliser: a bijective 64-bit mix.
#[inline]
pub fn mix64(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Key of the stream for (seed, purpose, id, tick): chained mixing, so that (seed 1, id 0) and
/// (seed 0, id 1) give unrelated keys.
#[inline]
pub fn key(seed: u64, purpose: Purpose, id: u64, tick: u64) -> u64 {
    let mut h = mix64(seed ^ 0x6A09_E667_F3BC_C908);
    h = mix64(h ^ (purpose as u64).wrapping_mul(GAMMA));
    h = mix64(h ^ id.wrapping_mul(0xD1B5_4A32_D192_ED03));
    mix64(h ^ tick.wrapping_mul(0xC2B2_AE3D_27D4_EB4F))
}

/// A counter-based stream.
#[derive(Debug, Clone)]
pub struct Stream {
    key: u64,
    counter: u64,
}

impl Stream {
    /// The stream for (seed, purpose, id, tick).
    #[inline]
    pub fn new(seed: u64, purpose: Purpose, id: u64, tick: u64) -> Self {
        Stream {
            key: key(seed, purpose, id, tick),
            counter: 0,
        }
    }
    /// Next 64 random bits.
    #[inline]
    pub fn next_u64(&mut self) -> u64 {
        self.counter = self.counter.wrapping_add(1);
        mix64(self.key.wrapping_add(self.counter.wrapping_mul(GAMMA)))
    }
    /// Uniform in [0, 1).
    #[inline]
    pub fn uniform(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }
    /// Uniform in (0, 1].
    #[inline]
    pub fn uniform_open0(&mut self) -> f64 {
        1.0 - self.uniform()
    }
    /// A standard normal pair (Box–Muller).
    #[inline]
    pub fn normal_pair(&mut self) -> (f64, f64) {
        let r = (-2.0 * self.uniform_open0().ln()).sqrt();
        let th = std::f64::consts::TAU * self.uniform();
        (r * th.cos(), r * th.sin())
    }
    /// A uniformly distributed unit vector.
    #[inline]
    pub fn unit_vector(&mut self) -> [f64; 3] {
        // Marsaglia (1972): a point uniform in the unit disk mapped onto the sphere; no trig.
        loop {
            let a = 2.0 * self.uniform() - 1.0;
            let b = 2.0 * self.uniform() - 1.0;
            let s = a * a + b * b;
            if s < 1.0 && s > 0.0 {
                let r = 2.0 * (1.0 - s).sqrt();
                return [a * r, b * r, 1.0 - 2.0 * s];
            }
        }
    }
}

impl rand::TryRng for Stream {
    type Error = Infallible;
    fn try_next_u32(&mut self) -> Result<u32, Infallible> {
        Ok((self.next_u64() >> 32) as u32)
    }
    fn try_next_u64(&mut self) -> Result<u64, Infallible> {
        Ok(self.next_u64())
    }
    fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), Infallible> {
        for chunk in dst.chunks_mut(8) {
            let v = self.next_u64().to_le_bytes();
            chunk.copy_from_slice(&v[..chunk.len()]);
        }
        Ok(())
    }
}

/// A ChaCha8 generator for session-level draws, keyed like [`Stream`].
pub fn chacha(seed: u64, purpose: Purpose, id: u64, tick: u64) -> ChaCha8Rng {
    ChaCha8Rng::seed_from_u64(key(seed, purpose, id, tick))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn streams_repeat_and_differ() {
        let a: Vec<u64> = (0..4)
            .map({
                let mut s = Stream::new(7, Purpose::Agent, 3, 10);
                move |_| s.next_u64()
            })
            .collect();
        let mut s = Stream::new(7, Purpose::Agent, 3, 10);
        let b: Vec<u64> = (0..4).map(|_| s.next_u64()).collect();
        assert_eq!(a, b);
        // (seed 1, id 0) and (seed 0, id 1) must not collide.
        assert_ne!(
            key(1, Purpose::Agent, 0, 0),
            key(0, Purpose::Agent, 1, 0),
            "seed and id must not be interchangeable"
        );
        assert_ne!(key(0, Purpose::Agent, 0, 1), key(0, Purpose::Agent, 1, 0));
    }

    #[test]
    fn uniform_moments() {
        let mut s = Stream::new(1, Purpose::Agent, 0, 0);
        let n = 200_000;
        let (mut m1, mut m2) = (0.0, 0.0);
        for _ in 0..n {
            let u = s.uniform();
            assert!((0.0..1.0).contains(&u));
            m1 += u;
            m2 += u * u;
        }
        m1 /= n as f64;
        m2 /= n as f64;
        assert!((m1 - 0.5).abs() < 0.005, "mean {m1}");
        assert!((m2 - 1.0 / 3.0).abs() < 0.005, "second moment {m2}");
        let mut g = 0.0;
        let mut g2 = 0.0;
        for _ in 0..n / 2 {
            let (a, b) = s.normal_pair();
            g += a + b;
            g2 += a * a + b * b;
        }
        assert!((g / n as f64).abs() < 0.01);
        assert!((g2 / n as f64 - 1.0).abs() < 0.02);
    }
}
