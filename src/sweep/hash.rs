//! Hashes of sweeps: FNV-1a 64 of texts (scenario and sweep identity) and the seed of a run.
//!
//! Seed of a run (documented formula, stable across versions and machines):
//!
//! ```text
//! seed = splitmix64(fnv1a64(le64(base_seed) ‖ le64(point_index) ‖ le64(replicate))) >> 1
//! ```
//!
//! `le64` is the 8-byte little-endian encoding, `‖` concatenation; the shift keeps the seed within
//! 0–2⁶³−1, the range a scenario file accepts. It depends on the point and the replicate only,
//! never on the order in which runs execute, the thread count or the shard.

/// FNV-1a 64-bit offset basis.
const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
/// FNV-1a 64-bit prime.
const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;

/// FNV-1a 64 of `bytes`.
pub fn fnv1a64(bytes: &[u8]) -> u64 {
    let mut h = FNV_OFFSET;
    for &b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(FNV_PRIME);
    }
    h
}

/// The splitmix64 finaliser: spreads every input bit over the output.
pub fn splitmix64(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// The seed of replicate `replicate` at point `point` of a sweep with base seed `base`.
pub fn run_seed(base: u64, point: usize, replicate: usize) -> u64 {
    let mut bytes = [0u8; 24];
    bytes[..8].copy_from_slice(&base.to_le_bytes());
    bytes[8..16].copy_from_slice(&(point as u64).to_le_bytes());
    bytes[16..].copy_from_slice(&(replicate as u64).to_le_bytes());
    splitmix64(fnv1a64(&bytes)) >> 1
}

/// A hash as 16 lower-case hex digits.
pub fn hex(h: u64) -> String {
    format!("{h:016x}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fnv_matches_reference_vectors() {
        assert_eq!(fnv1a64(b""), 0xcbf29ce484222325);
        assert_eq!(fnv1a64(b"a"), 0xaf63dc4c8601ec8c);
        assert_eq!(fnv1a64(b"foobar"), 0x85944171f73967e8);
    }

    #[test]
    fn seeds_fit_a_scenario_and_differ() {
        let a = run_seed(1, 0, 0);
        assert!(a <= i64::MAX as u64);
        assert_ne!(a, run_seed(1, 0, 1));
        assert_ne!(a, run_seed(1, 1, 0));
        assert_ne!(a, run_seed(2, 0, 0));
        assert_eq!(a, run_seed(1, 0, 0));
    }
}
