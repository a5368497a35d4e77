//! A SHA-256 whose running state can be saved between requests, so an upload whose chunks
//! arrive at different Berth nodes is still hashed once, as its bytes stream past.
//!
//! The `sha2` crate's hasher cannot be serialised, so this one drives its block function
//! ([`sha2::compress256`]) itself and keeps the eight state words, the unprocessed tail and
//! the length. [`HashState::to_bytes`] writes them in the format of Go's
//! `crypto/sha256` `MarshalBinary` (108 bytes, magic `sha\x03`), which is what the CNCF
//! registry stores under `_uploads/<id>/hashstates/sha256/<offset>`: an upload the CNCF
//! registry started can be continued here, and the other way round.

use sha2::digest::generic_array::GenericArray;

use super::Digest;

/// The running SHA-256 of an upload's first `length` bytes.
#[derive(Clone)]
pub struct HashState {
    words: [u32; 8],
    tail: [u8; BLOCK],
    length: u64,
}

impl HashState {
    /// The state before any byte.
    pub fn new() -> Self {
        HashState {
            words: INITIAL,
            tail: [0; BLOCK],
            length: 0,
        }
    }

    /// Bytes hashed so far.
    pub fn length(&self) -> u64 {
        self.length
    }

    /// Hashes `bytes` after what came before.
    pub fn update(&mut self, mut bytes: &[u8]) {
        let buffered = (self.length % BLOCK as u64) as usize;
        self.length += bytes.len() as u64;

        // Complete a partly filled block first.
        if buffered > 0 {
            let take = (BLOCK - buffered).min(bytes.len());
            self.tail[buffered..buffered + take].copy_from_slice(&bytes[..take]);
            bytes = &bytes[take..];
            if buffered + take < BLOCK {
                return;
            }
            let block = self.tail;
            self.compress(&block);
        }

        let mut blocks = bytes.chunks_exact(BLOCK);
        for block in &mut blocks {
            self.compress(block);
        }
        let rest = blocks.remainder();
        self.tail[..rest.len()].copy_from_slice(rest);
    }

    /// The digest of everything hashed so far (the state itself is left as it is).
    pub fn digest(&self) -> Digest {
        let mut done = self.clone();
        let bit_length = self.length.wrapping_mul(8);
        let buffered = (self.length % BLOCK as u64) as usize;
        // Padding: 0x80, zeros up to 56 mod 64, then the length in bits.
        let zeros = (BLOCK + 55 - buffered) % BLOCK;
        let mut padding = Vec::with_capacity(1 + zeros + 8);
        padding.push(0x80);
        padding.resize(1 + zeros, 0);
        padding.extend_from_slice(&bit_length.to_be_bytes());
        done.update(&padding);

        let mut out = [0u8; 32];
        for (chunk, word) in out.chunks_exact_mut(4).zip(done.words) {
            chunk.copy_from_slice(&word.to_be_bytes());
        }
        Digest::from_sha256(out)
    }

    /// The state in Go's `MarshalBinary` format.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut bytes = Vec::with_capacity(MARSHALED_SIZE);
        bytes.extend_from_slice(MAGIC);
        for word in self.words {
            bytes.extend_from_slice(&word.to_be_bytes());
        }
        let buffered = (self.length % BLOCK as u64) as usize;
        bytes.extend_from_slice(&self.tail[..buffered]);
        bytes.resize(4 + 32 + BLOCK, 0);
        bytes.extend_from_slice(&self.length.to_be_bytes());
        bytes
    }

    /// Reads a state written by [`HashState::to_bytes`] (or by Go); `None` when `bytes` is
    /// not one.
    pub fn from_bytes(bytes: &[u8]) -> Option<Self> {
        if bytes.len() != MARSHALED_SIZE || !bytes.starts_with(MAGIC) {
            return None;
        }
        let mut words = [0u32; 8];
        for (index, word) in words.iter_mut().enumerate() {
            let at = 4 + index * 4;
            *word = u32::from_be_bytes(bytes[at..at + 4].try_into().ok()?);
        }
        let mut tail = [0u8; BLOCK];
        tail.copy_from_slice(&bytes[36..36 + BLOCK]);
        let length = u64::from_be_bytes(bytes[36 + BLOCK..].try_into().ok()?);
        Some(HashState {
            words,
            tail,
            length,
        })
    }

    fn compress(&mut self, block: &[u8]) {
        sha2::compress256(
            &mut self.words,
            std::slice::from_ref(GenericArray::from_slice(block)),
        );
    }
}

impl Default for HashState {
    fn default() -> Self {
        Self::new()
    }
}

const BLOCK: usize = 64;
const MAGIC: &[u8] = b"sha\x03";
const MARSHALED_SIZE: usize = 4 + 32 + BLOCK + 8;
const INITIAL: [u32; 8] = [
    0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19,
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_sha2_across_any_split_and_a_save_in_between() {
        let data: Vec<u8> = (0..1000u32).map(|i| (i * 7 + i / 3) as u8).collect();
        for length in [0, 1, 55, 56, 63, 64, 65, 127, 128, 999] {
            let bytes = &data[..length];
            let expected = Digest::sha256_of(bytes);
            for split in [0, 1.min(length), length / 2, length] {
                let mut state = HashState::new();
                state.update(&bytes[..split]);
                let mut resumed = HashState::from_bytes(&state.to_bytes()).unwrap();
                resumed.update(&bytes[split..]);
                assert_eq!(resumed.digest(), expected, "length {length} split {split}");
                assert_eq!(resumed.length(), length as u64);
            }
        }
    }

    #[test]
    fn garbage_is_not_a_state() {
        assert!(HashState::from_bytes(b"sha\x03short").is_none());
        assert!(HashState::from_bytes(&[0u8; MARSHALED_SIZE]).is_none());
    }
}
