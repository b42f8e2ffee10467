//! Identifiers: unguessable where they must be, checked where they come in.

const ALPHABET: &[u8; 32] = b"abcdefghijklmnopqrstuvwxyz234567";

/// `n` bytes from the system CSPRNG as lowercase base32 (no padding).
pub fn random_base32(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    aws_lc_rs::rand::fill(&mut buf).expect("the system CSPRNG is available");
    let mut out = String::with_capacity(bytes * 8 / 5 + 1);
    let (mut acc, mut bits) = (0u32, 0u32);
    for b in buf {
        acc = (acc << 8) | u32::from(b);
        bits += 8;
        while bits >= 5 {
            bits -= 5;
            out.push(ALPHABET[((acc >> bits) & 31) as usize] as char);
        }
    }
    if bits > 0 {
        out.push(ALPHABET[((acc << (5 - bits)) & 31) as usize] as char);
    }
    out
}

/// A random number from the system CSPRNG (for jitter).
pub fn random_u64() -> u64 {
    let mut buf = [0u8; 8];
    aws_lc_rs::rand::fill(&mut buf).expect("the system CSPRNG is available");
    u64::from_le_bytes(buf)
}

/// A new room id: `rm_` and 128 random bits.
pub fn room_id() -> String {
    format!("rm_{}", random_base32(16))
}

/// A Jitsi room name: 160 random bits, lowercase letters and digits only —
/// never derived from names, ids or times, so it cannot be guessed.
pub fn jitsi_room() -> String {
    random_base32(20)
}

/// A new id with a prefix (`img_`, `iss_`, ...), 128 random bits.
pub fn prefixed(prefix: &str) -> String {
    format!("{prefix}_{}", random_base32(16))
}

/// Ids from outside (appointment ids, user ids, path parameters): 1 to 128
/// characters of `A-Z a-z 0-9 . _ : @ -`.
pub fn is_valid_external_id(id: &str) -> bool {
    (1..=128).contains(&id.len())
        && id.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b':' | b'@' | b'-'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jitsi_rooms_are_lowercase_long_and_distinct() {
        let a = jitsi_room();
        assert_eq!(a.len(), 32);
        assert!(a.bytes().all(|b| b.is_ascii_lowercase() || (b'2'..=b'7').contains(&b)));
        assert_ne!(a, jitsi_room());
        assert_eq!(room_id().len(), 3 + 26);
    }

    #[test]
    fn external_ids() {
        assert!(is_valid_external_id("apt-123"));
        assert!(is_valid_external_id("u:42@clinic.example"));
        for bad in ["", "a b", "../x", "x/y", "ü", &"a".repeat(129)] {
            assert!(!is_valid_external_id(bad), "{bad}");
        }
    }
}
