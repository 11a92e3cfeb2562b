//! Encryption of credentials at rest: AES-256-GCM with named keys.
//!
//! A [`Keyring`] holds one *active* key, used for every new encryption, and
//! any number of older keys kept for decryption until every row has been
//! re-encrypted ([`crate::store::Store::rotate_key`]). Each encryption draws a
//! fresh random 96-bit nonce, and returns a [`Sealed`] value carrying the key
//! id beside the ciphertext so the right key can be found later.
//!
//! The caller passes *associated data* (AAD) that names what the ciphertext
//! belongs to (the store uses the credential's owner, such as
//! `cluster/prod`): decryption with any other AAD fails, so a ciphertext
//! copied onto another owner's row cannot be read there. Decryption is
//! authenticated: a wrong key, a flipped bit or a swapped row is an
//! [`Error::Decrypt`], never garbage.
//!
//! ```
//! use kubepkg_platform::crypto::Keyring;
//!
//! let keys = Keyring::new("k1", Keyring::generate_key())?;
//! let sealed = keys.encrypt(b"cluster/prod", b"token-value")?;
//! assert_eq!(sealed.key_id, "k1");
//! let plain = keys.decrypt("cluster/prod", b"cluster/prod", &sealed)?;
//! assert_eq!(plain.as_slice(), b"token-value");
//! // Bound to its owner: the same ciphertext is refused for another one.
//! assert!(keys.decrypt("cluster/dev", b"cluster/dev", &sealed).is_err());
//! # Ok::<(), kubepkg_platform::Error>(())
//! ```
//!
//! Keys are 32 random bytes, written in configuration as standard base64
//! (44 characters) or as 64 hexadecimal digits; see [`Keyring::parse_key`].
//! Key bytes live in zeroised buffers and never appear in `Debug` output or
//! error messages.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use aes_gcm::aead::rand_core::RngCore;
use aes_gcm::aead::{Aead, AeadCore, KeyInit, OsRng, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::Engine as _;
use kubepkg_util::secret::Secret;
use zeroize::Zeroize;

pub use zeroize::Zeroizing;

use crate::error::{Error, Result};

/// Length of a key, in bytes (AES-256).
pub const KEY_LEN: usize = 32;
/// Length of a nonce, in bytes (96 bits, the GCM standard size).
pub const NONCE_LEN: usize = 12;
/// Longest key id accepted.
pub const MAX_KEY_ID_LEN: usize = 64;

/// An encrypted value: the id of the key, the nonce and the ciphertext
/// (which ends with the 16-byte authentication tag).
///
/// None of it is secret; `Debug` still shows only the key id and sizes.
#[derive(Clone, PartialEq, Eq)]
pub struct Sealed {
    /// The id of the key it was encrypted with.
    pub key_id: String,
    /// The random nonce drawn for this encryption.
    pub nonce: [u8; NONCE_LEN],
    /// The ciphertext followed by the authentication tag.
    pub ciphertext: Vec<u8>,
}

impl fmt::Debug for Sealed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sealed")
            .field("key_id", &self.key_id)
            .field("ciphertext_len", &self.ciphertext.len())
            .finish_non_exhaustive()
    }
}

/// Named AES-256-GCM keys: one active key that encrypts, older ones that
/// still decrypt. Cheap to clone (the keys are shared).
///
/// `Debug` shows the key ids only.
#[derive(Clone)]
pub struct Keyring {
    active: String,
    keys: Arc<BTreeMap<String, Arc<Aes256Gcm>>>,
}

impl fmt::Debug for Keyring {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Keyring")
            .field("active", &self.active)
            .field("key_ids", &self.key_ids())
            .finish()
    }
}

/// Checks a key id: non-empty, at most [`MAX_KEY_ID_LEN`] characters of
/// `[A-Za-z0-9._-]`. Returns what is wrong.
fn key_id_problem(id: &str) -> Option<String> {
    if id.is_empty() {
        return Some("a key id must not be empty".to_owned());
    }
    if id.len() > MAX_KEY_ID_LEN {
        return Some(format!(
            "a key id must be at most {MAX_KEY_ID_LEN} characters"
        ));
    }
    if !id
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
    {
        let shown: String = id.chars().take(MAX_KEY_ID_LEN).collect();
        return Some(format!(
            "key id {shown:?} may contain only letters, digits, '.', '_' and '-'"
        ));
    }
    None
}

fn cipher(key: &[u8; KEY_LEN]) -> Arc<Aes256Gcm> {
    Arc::new(Aes256Gcm::new(key.into()))
}

/// Decodes hexadecimal digits into `out`; `false` on any non-hex digit.
fn decode_hex(text: &[u8], out: &mut [u8; KEY_LEN]) -> bool {
    fn nibble(c: u8) -> Option<u8> {
        match c {
            b'0'..=b'9' => Some(c - b'0'),
            b'a'..=b'f' => Some(c - b'a' + 10),
            b'A'..=b'F' => Some(c - b'A' + 10),
            _ => None,
        }
    }
    if text.len() != 2 * KEY_LEN {
        return false;
    }
    for (i, pair) in text.chunks_exact(2).enumerate() {
        match (nibble(pair[0]), nibble(pair[1])) {
            (Some(hi), Some(lo)) => out[i] = (hi << 4) | lo,
            _ => {
                out.zeroize();
                return false;
            }
        }
    }
    true
}

impl Keyring {
    /// A keyring with one key, `active_id`, which encrypts.
    ///
    /// The id must be non-empty, at most 64 characters of `[A-Za-z0-9._-]`
    /// (it is stored beside every ciphertext); otherwise
    /// [`Error::Invalid`].
    pub fn new(active_id: &str, key: [u8; KEY_LEN]) -> Result<Keyring> {
        let key = Zeroizing::new(key);
        if let Some(problem) = key_id_problem(active_id) {
            return Err(Error::Invalid(problem));
        }
        let mut keys = BTreeMap::new();
        keys.insert(active_id.to_owned(), cipher(&key));
        Ok(Keyring {
            active: active_id.to_owned(),
            keys: Arc::new(keys),
        })
    }

    /// Adds a key that decrypts (an older one, or the next one before a
    /// rotation). The active key stays as it was.
    ///
    /// The id follows the rules of [`Keyring::new`]; an id already in the
    /// keyring is [`Error::Invalid`].
    pub fn with_key(self, id: &str, key: [u8; KEY_LEN]) -> Result<Keyring> {
        let key = Zeroizing::new(key);
        if let Some(problem) = key_id_problem(id) {
            return Err(Error::Invalid(problem));
        }
        if self.keys.contains_key(id) {
            return Err(Error::Invalid(format!(
                "key id {id:?} is already in the keyring"
            )));
        }
        let mut keys = (*self.keys).clone();
        keys.insert(id.to_owned(), cipher(&key));
        Ok(Keyring {
            active: self.active,
            keys: Arc::new(keys),
        })
    }

    /// Parses a key as written in configuration: standard base64 of 32 bytes
    /// (padding optional) or 64 hexadecimal digits, surrounding whitespace
    /// ignored.
    ///
    /// The error is an [`Error::Config`] naming `setting`; it never repeats
    /// the text.
    ///
    /// ```
    /// use kubepkg_platform::crypto::Keyring;
    ///
    /// let hex = "00".repeat(32);
    /// assert_eq!(Keyring::parse_key("encryption.keys.k1", &hex)?, [0u8; 32]);
    /// let err = Keyring::parse_key("encryption.keys.k1", "not-a-key").unwrap_err();
    /// assert!(err.to_string().contains("encryption.keys.k1"));
    /// assert!(!err.to_string().contains("not-a-key"));
    /// # Ok::<(), kubepkg_platform::Error>(())
    /// ```
    pub fn parse_key(setting: &str, text: &str) -> Result<[u8; KEY_LEN]> {
        let text = text.trim();
        if text.is_empty() {
            return Err(Error::config(setting, "the key is empty"));
        }
        let mut key = [0u8; KEY_LEN];
        if decode_hex(text.as_bytes(), &mut key) {
            return Ok(key);
        }
        let engine = base64::engine::GeneralPurpose::new(
            &base64::alphabet::STANDARD,
            base64::engine::GeneralPurposeConfig::new()
                .with_decode_padding_mode(base64::engine::DecodePaddingMode::Indifferent),
        );
        let decoded = Zeroizing::new(engine.decode(text).map_err(|_| {
            Error::config(
                setting,
                "the key is neither standard base64 nor 64 hexadecimal digits",
            )
        })?);
        if decoded.len() != KEY_LEN {
            return Err(Error::config(
                setting,
                format!(
                    "the key must be {KEY_LEN} bytes (base64 of 32 bytes, or 64 hexadecimal digits); it decodes to {} bytes",
                    decoded.len()
                ),
            ));
        }
        key.copy_from_slice(&decoded);
        Ok(key)
    }

    /// Builds a keyring from configuration: `keys` maps key ids to key text
    /// (see [`Keyring::parse_key`]) and `active_id` names the one that
    /// encrypts.
    ///
    /// Errors are [`Error::Config`] naming `setting` (for a key,
    /// `<setting>.<id>`): no keys, a malformed id or key, or an active id
    /// that is not among the keys.
    pub fn from_settings(
        active_id: &str,
        keys: &BTreeMap<String, Secret<String>>,
        setting: &str,
    ) -> Result<Keyring> {
        if keys.is_empty() {
            return Err(Error::config(setting, "no encryption key is configured"));
        }
        if let Some(problem) = key_id_problem(active_id) {
            return Err(Error::config(setting, format!("the active key: {problem}")));
        }
        if !keys.contains_key(active_id) {
            let ids: Vec<&str> = keys.keys().map(String::as_str).collect();
            return Err(Error::config(
                setting,
                format!(
                    "the active key id {active_id:?} is not among the configured keys ({})",
                    ids.join(", ")
                ),
            ));
        }
        let mut map = BTreeMap::new();
        for (id, text) in keys {
            if let Some(problem) = key_id_problem(id) {
                return Err(Error::config(setting, problem));
            }
            let key = Zeroizing::new(Self::parse_key(&format!("{setting}.{id}"), text.expose())?);
            map.insert(id.clone(), cipher(&key));
        }
        Ok(Keyring {
            active: active_id.to_owned(),
            keys: Arc::new(map),
        })
    }

    /// Draws a new random key from the operating system's generator.
    pub fn generate_key() -> [u8; KEY_LEN] {
        let mut key = [0u8; KEY_LEN];
        OsRng.fill_bytes(&mut key);
        key
    }

    /// The id of the key that encrypts.
    pub fn active_id(&self) -> &str {
        &self.active
    }

    /// Every key id, sorted.
    pub fn key_ids(&self) -> Vec<String> {
        self.keys.keys().cloned().collect()
    }

    /// Whether the keyring holds a key of this id.
    pub fn contains(&self, id: &str) -> bool {
        self.keys.contains_key(id)
    }

    /// The same keys with `id` as the active one; [`Error::Invalid`] if the
    /// keyring has no such key.
    pub fn with_active(&self, id: &str) -> Result<Keyring> {
        if !self.keys.contains_key(id) {
            return Err(Error::Invalid(format!(
                "key id {id:?} is not in the keyring"
            )));
        }
        Ok(Keyring {
            active: id.to_owned(),
            keys: Arc::clone(&self.keys),
        })
    }

    /// Encrypts `plaintext` with the active key and a fresh random nonce,
    /// bound to `aad`.
    pub fn encrypt(&self, aad: &[u8], plaintext: &[u8]) -> Result<Sealed> {
        self.encrypt_with(&self.active, aad, plaintext)
    }

    /// Encrypts with the key `id` (which must be in the keyring).
    pub(crate) fn encrypt_with(&self, id: &str, aad: &[u8], plaintext: &[u8]) -> Result<Sealed> {
        let cipher = self
            .keys
            .get(id)
            .ok_or_else(|| Error::Invalid(format!("key id {id:?} is not in the keyring")))?;
        let nonce = Aes256Gcm::generate_nonce(&mut OsRng);
        let ciphertext = cipher
            .encrypt(
                &nonce,
                Payload {
                    msg: plaintext,
                    aad,
                },
            )
            .map_err(|_| Error::Invalid("the value is too long to encrypt".to_owned()))?;
        let mut out = [0u8; NONCE_LEN];
        out.copy_from_slice(nonce.as_slice());
        Ok(Sealed {
            key_id: id.to_owned(),
            nonce: out,
            ciphertext,
        })
    }

    /// Decrypts `sealed` with the key its id names, checking it against
    /// `aad`. `owner` only labels the error.
    ///
    /// An unknown key id, a wrong key, or a ciphertext, nonce or AAD that was
    /// altered is an [`Error::Decrypt`]. The plaintext is zeroised when the
    /// returned buffer is dropped.
    pub fn decrypt(&self, owner: &str, aad: &[u8], sealed: &Sealed) -> Result<Zeroizing<Vec<u8>>> {
        let fail = |message: String| Error::Decrypt {
            owner: owner.to_owned(),
            key_id: sealed.key_id.clone(),
            message,
        };
        let cipher = self.keys.get(&sealed.key_id).ok_or_else(|| {
            fail(format!(
                "the key is not in the keyring (it has {})",
                self.key_ids().join(", ")
            ))
        })?;
        let plaintext = cipher
            .decrypt(
                Nonce::from_slice(&sealed.nonce),
                Payload {
                    msg: &sealed.ciphertext,
                    aad,
                },
            )
            .map_err(|_| {
                fail(
                    "authentication failed: a different key under this id, or the ciphertext, \
                     nonce or owner was altered"
                        .to_owned(),
                )
            })?;
        Ok(Zeroizing::new(plaintext))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_fresh_nonces() {
        let keys = Keyring::new("k1", Keyring::generate_key()).expect("keyring");
        let a = keys.encrypt(b"x", b"secret").expect("encrypt");
        let b = keys.encrypt(b"x", b"secret").expect("encrypt");
        assert_ne!(a.nonce, b.nonce);
        assert_ne!(a.ciphertext, b.ciphertext);
        assert_eq!(
            keys.decrypt("x", b"x", &a).expect("decrypt").as_slice(),
            b"secret"
        );
    }

    #[test]
    fn key_ids_are_checked() {
        for bad in ["", "a b", "k/1", "é", &"k".repeat(65)] {
            assert!(Keyring::new(bad, [1; 32]).is_err(), "{bad:?}");
        }
        let keys = Keyring::new("a.b_c-1", [1; 32]).expect("valid id");
        assert!(keys.clone().with_key("a.b_c-1", [2; 32]).is_err());
        let keys = keys.with_key("old", [2; 32]).expect("second key");
        assert_eq!(keys.key_ids(), ["a.b_c-1", "old"]);
        assert_eq!(keys.active_id(), "a.b_c-1");
    }

    #[test]
    fn hex_decoding_rejects_bad_digits() {
        let mut out = [0u8; 32];
        assert!(!decode_hex(&[b'g'; 64], &mut out));
        assert!(decode_hex(&[b'F'; 64], &mut out));
        assert_eq!(out, [0xff; 32]);
    }
}
