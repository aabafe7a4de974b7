//! The one sha256 helper: blobs, inbox batches and upload headers all record hex digests.

use sha2::{Digest, Sha256};

/// Lower-case hex sha256 of `bytes`.
pub fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// From this size a digest is worth a thread of its own: a 4 MB photo's sha256 costs about as
/// much as its fdatasync (~2 ms here), far more than spawning a thread (~30 us).
const HASH_ASIDE_MIN_BYTES: usize = 256 * 1024;

/// Runs `io` (writing `bytes` somewhere, say) and returns its result with `bytes`' digest,
/// hashed on a helper thread meanwhile when `bytes` is large, so a capture waits for the slower
/// of the two, not for both. Small inputs, or no thread to be had, hash on this thread.
pub fn sha256_hex_during<T>(bytes: &[u8], io: impl FnOnce() -> T) -> (T, String) {
    if bytes.len() < HASH_ASIDE_MIN_BYTES {
        return (io(), sha256_hex(bytes));
    }
    std::thread::scope(|scope| {
        let hasher = std::thread::Builder::new()
            .name("upn-hash".into())
            .spawn_scoped(scope, || sha256_hex(bytes));
        let out = io();
        let digest = match hasher {
            Ok(hasher) => hasher.join().unwrap_or_else(|_| sha256_hex(bytes)),
            Err(_) => sha256_hex(bytes),
        };
        (out, digest)
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_digest_made_beside_the_io_is_the_digest_and_the_io_result_passes_through() {
        for len in [
            0,
            3,
            super::HASH_ASIDE_MIN_BYTES - 1,
            super::HASH_ASIDE_MIN_BYTES,
            3 << 20,
        ] {
            let bytes: Vec<u8> = (0..len).map(|i| (i * 7 % 251) as u8).collect();
            let (out, digest) = super::sha256_hex_during(&bytes, || Err::<(), _>(len));
            assert_eq!(out, Err(len));
            assert_eq!(digest, super::sha256_hex(&bytes), "{len} bytes");
        }
    }

    #[test]
    fn known_digest() {
        assert_eq!(
            super::sha256_hex(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
