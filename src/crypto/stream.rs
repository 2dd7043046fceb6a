//! Large contents (documents) as a STREAM of AES-256-GCM chunks (RustCrypto's
//! `aead-stream`, the construction of Hoang, Reyhanitabar, Rogaway and Vizár): each chunk is
//! sealed under the content's own key with a nonce of a random 7-byte prefix, the chunk's
//! position and a last-chunk flag. So every chunk is authenticated on its own (bounded memory
//! both ways, any chunk decryptable alone), and reordering, dropping or truncating chunks
//! fails: a chunk opens only at its own position, and a stream without its last chunk never
//! completes. The associated data names what the content is (the document and its tenant),
//! so moving an object under another name fails too.

use aead_stream::StreamPrimitive as _;
use aes_gcm::Aes256Gcm;
use aes_gcm::aead::{KeyInit as _, Payload};

use super::aead::{AeadError, TAG_LEN};
use super::{Secret, random_bytes};

/// Plaintext bytes per chunk.
pub const CHUNK: usize = 64 * 1024;
/// Ciphertext bytes per full chunk.
pub const SEALED_CHUNK: usize = CHUNK + TAG_LEN;
pub const PREFIX_LEN: usize = 7;

type Stream = aead_stream::StreamBE32<Aes256Gcm>;

/// The key and nonce prefix of one content. The prefix is random although each content has
/// its own key, so that a key reused by mistake still never repeats a nonce.
pub struct ContentKey {
    stream: Stream,
    pub prefix: [u8; PREFIX_LEN],
}

impl ContentKey {
    /// A fresh random key (returned for wrapping) and prefix.
    pub fn generate() -> (ContentKey, Secret<[u8; 32]>) {
        let key = Secret::new(random_bytes::<32>());
        let prefix = random_bytes::<PREFIX_LEN>();
        (ContentKey::new(&key, prefix), key)
    }

    pub fn new(key: &Secret<[u8; 32]>, prefix: [u8; PREFIX_LEN]) -> ContentKey {
        let aead = Aes256Gcm::new(key.expose().into());
        let stream = <Stream as aead_stream::NewStream<Aes256Gcm>>::from_aead(aead, &prefix.into());
        ContentKey { stream, prefix }
    }

    /// Seals chunk `position` (`last` for the final one, which may be short or empty).
    pub fn seal(
        &self,
        position: u32,
        last: bool,
        aad: &[u8],
        chunk: &[u8],
    ) -> Result<Vec<u8>, AeadError> {
        self.stream
            .encrypt(position, last, Payload { msg: chunk, aad })
            .map_err(|_| AeadError::Malformed)
    }

    /// Opens chunk `position`; fails unless it is that chunk of this content, unaltered,
    /// with the same last-chunk flag.
    pub fn open(
        &self,
        position: u32,
        last: bool,
        aad: &[u8],
        sealed: &[u8],
    ) -> Result<Vec<u8>, AeadError> {
        self.stream
            .decrypt(position, last, Payload { msg: sealed, aad })
            .map_err(|_| AeadError::Unauthentic)
    }
}

/// How many chunks a content of `plain` bytes has: full ones, then a last one of 1 to
/// `CHUNK` bytes (an empty content is one empty last chunk, so its end is marked too).
pub fn chunks(plain: u64) -> u64 {
    plain.div_ceil(CHUNK as u64).max(1)
}

/// The sealed size of a content of `plain` bytes.
pub fn sealed_len(plain: u64) -> u64 {
    plain + chunks(plain) * TAG_LEN as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seal_all(key: &ContentKey, aad: &[u8], data: &[u8]) -> Vec<Vec<u8>> {
        let mut chunks: Vec<&[u8]> = data.chunks(CHUNK).collect();
        if chunks.is_empty() {
            chunks.push(&[]);
        }
        let last = chunks.len() - 1;
        chunks
            .iter()
            .enumerate()
            .map(|(i, c)| key.seal(i as u32, i == last, aad, c).expect("seal"))
            .collect()
    }

    #[test]
    fn chunks_open_only_in_place_whole_and_under_their_name() {
        let (key, raw) = ContentKey::generate();
        let data = vec![7u8; CHUNK * 2 + 5];
        let sealed = seal_all(&key, b"doc-1", &data);
        assert_eq!(sealed.len(), 3);
        assert_eq!(
            sealed.iter().map(Vec::len).sum::<usize>() as u64,
            sealed_len(data.len() as u64)
        );
        let again = ContentKey::new(&raw, key.prefix);
        let opened: Vec<u8> = sealed
            .iter()
            .enumerate()
            .flat_map(|(i, c)| again.open(i as u32, i == 2, b"doc-1", c).expect("open"))
            .collect();
        assert_eq!(opened, data);
        // Swapped chunks, a missing last flag (truncation), another name, a flipped bit.
        assert!(again.open(0, false, b"doc-1", &sealed[1]).is_err());
        assert!(again.open(1, true, b"doc-1", &sealed[1]).is_err());
        assert!(again.open(0, false, b"doc-2", &sealed[0]).is_err());
        let mut flipped = sealed[0].clone();
        flipped[10] ^= 1;
        assert!(again.open(0, false, b"doc-1", &flipped).is_err());
        // An empty content is one empty last chunk: its end is still authenticated.
        let empty = seal_all(&key, b"doc-1", &[]);
        assert_eq!(empty.len(), 1);
        assert_eq!(empty[0].len(), TAG_LEN);
        assert_eq!(sealed_len(0), TAG_LEN as u64);
        assert_eq!(sealed_len(CHUNK as u64), SEALED_CHUNK as u64);
        assert_eq!(chunks(CHUNK as u64 + 1), 2);
    }
}
