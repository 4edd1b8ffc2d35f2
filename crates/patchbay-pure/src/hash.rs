//! FNV-1a (64-bit): a fast, dependency-free fingerprint of memory regions, used to prove that
//! text is byte-identical after a failed or reverted patch. Not a cryptographic hash.

pub const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
pub const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;

/// Hash `bytes`, continuing from `state` (start with [`FNV_OFFSET`]).
pub fn fnv1a64_update(mut state: u64, bytes: &[u8]) -> u64 {
    for &b in bytes {
        state ^= u64::from(b);
        state = state.wrapping_mul(FNV_PRIME);
    }
    state
}

pub fn fnv1a64(bytes: &[u8]) -> u64 {
    fnv1a64_update(FNV_OFFSET, bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_vectors() {
        // Reference values of FNV-1a 64.
        assert_eq!(fnv1a64(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a64(b"a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(fnv1a64(b"foobar"), 0x8594_4171_f739_67e8);
    }

    #[test]
    fn one_flipped_bit_changes_the_hash() {
        let a = [0u8; 4096];
        let mut b = a;
        b[2049] ^= 0x10;
        assert_ne!(fnv1a64(&a), fnv1a64(&b));
        assert_eq!(fnv1a64_update(fnv1a64(&a[..100]), &a[100..]), fnv1a64(&a));
    }
}
