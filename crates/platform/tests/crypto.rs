//! The credential encryption: key parsing, keyrings, authenticated
//! decryption, and interoperability with the AES-GCM standard.

use std::collections::BTreeMap;

use base64::Engine as _;
use kubepkg_platform::Error;
use kubepkg_platform::crypto::{Keyring, Sealed};
use kubepkg_util::ErrorKind;
use kubepkg_util::secret::Secret;

const SETTING: &str = "encryption.keys";

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(text: &str) -> Vec<u8> {
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).expect("hex"))
        .collect()
}

#[test]
fn parses_base64_and_hex_keys() {
    let key: [u8; 32] = std::array::from_fn(|i| (i * 7 + 3) as u8);
    let b64 = base64::engine::general_purpose::STANDARD.encode(key);
    assert_eq!(Keyring::parse_key(SETTING, &b64).expect("base64"), key);
    assert_eq!(
        Keyring::parse_key(SETTING, b64.trim_end_matches('=')).expect("unpadded"),
        key
    );
    assert_eq!(
        Keyring::parse_key(SETTING, &format!("  {b64}\n")).expect("whitespace"),
        key
    );
    assert_eq!(Keyring::parse_key(SETTING, &hex(&key)).expect("hex"), key);
    assert_eq!(
        Keyring::parse_key(SETTING, &hex(&key).to_uppercase()).expect("HEX"),
        key
    );
}

#[test]
fn malformed_keys_name_the_setting_and_never_echo_the_text() {
    let short = base64::engine::general_purpose::STANDARD.encode([9u8; 16]);
    let long = base64::engine::general_purpose::STANDARD.encode([9u8; 33]);
    let almost_hex = format!("{}zz", "ab".repeat(31));
    for text in [
        "",
        "   ",
        "sk_live_definitely_not_base64!!",
        short.as_str(),
        long.as_str(),
        almost_hex.as_str(),
    ] {
        let e = Keyring::parse_key("encryption.keys.prod", text).expect_err(text);
        assert_eq!(e.kind(), ErrorKind::Invalid);
        match &e {
            Error::Config { setting, message } => {
                assert_eq!(setting, "encryption.keys.prod");
                if !text.trim().is_empty() {
                    assert!(!message.contains(text.trim()), "{message}");
                }
            }
            other => panic!("expected a Config error, got {other:?}"),
        }
    }
}

#[test]
fn keyrings_from_settings() {
    let a = Keyring::generate_key();
    let b = Keyring::generate_key();
    assert_ne!(a, b, "generated keys are random");
    let keys = BTreeMap::from([
        ("2025-01".to_owned(), Secret::new(hex(&a))),
        (
            "2026-01".to_owned(),
            Secret::new(base64::engine::general_purpose::STANDARD.encode(b)),
        ),
    ]);
    let ring = Keyring::from_settings("2026-01", &keys, SETTING).expect("keyring");
    assert_eq!(ring.active_id(), "2026-01");
    assert_eq!(ring.key_ids(), ["2025-01", "2026-01"]);

    // The same keys built by hand decrypt what it encrypts.
    let by_hand = Keyring::new("2026-01", b)
        .and_then(|r| r.with_key("2025-01", a))
        .expect("keyring");
    let sealed = ring.encrypt(b"aad", b"hello").expect("encrypt");
    assert_eq!(
        by_hand
            .decrypt("x", b"aad", &sealed)
            .expect("decrypt")
            .as_slice(),
        b"hello"
    );

    let missing = Keyring::from_settings("2027-01", &keys, SETTING).expect_err("missing");
    assert!(
        matches!(&missing, Error::Config { setting, message } if setting == SETTING && message.contains("2027-01")),
        "{missing:?}"
    );
    let none = Keyring::from_settings("k", &BTreeMap::new(), SETTING).expect_err("empty");
    assert!(matches!(&none, Error::Config { setting, .. } if setting == SETTING));
    let bad_id = BTreeMap::from([("bad id".to_owned(), Secret::new(hex(&a)))]);
    assert!(matches!(
        Keyring::from_settings("bad id", &bad_id, SETTING),
        Err(Error::Config { .. })
    ));
    let bad_key = BTreeMap::from([("k".to_owned(), Secret::new("c2VjcmV0".to_owned()))]);
    let e = Keyring::from_settings("k", &bad_key, SETTING).expect_err("bad key");
    assert!(
        matches!(&e, Error::Config { setting, message } if setting == "encryption.keys.k" && !message.contains("c2VjcmV0")),
        "{e:?}"
    );
}

#[test]
fn debug_shows_key_ids_only() {
    let key = [0x5Au8; 32];
    let ring = Keyring::new("active", key)
        .and_then(|r| r.with_key("old", [0x6B; 32]))
        .expect("keyring");
    let shown = format!("{ring:?} {ring:#?}");
    assert!(shown.contains("active") && shown.contains("old"), "{shown}");
    assert!(!shown.contains(&hex(&key)), "{shown}");
    assert!(!shown.contains("5a5a"), "{shown}");
    assert!(!shown.contains("90, 90"), "{shown}");
    assert!(
        !shown.contains(&base64::engine::general_purpose::STANDARD.encode(key)),
        "{shown}"
    );
    let sealed = ring.encrypt(b"", b"plain").expect("encrypt");
    assert!(format!("{sealed:?}").contains("active"));
}

#[test]
fn decryption_is_authenticated() {
    let ring = Keyring::new("k1", Keyring::generate_key()).expect("keyring");
    let sealed = ring
        .encrypt(b"cluster/a", b"bearer-token")
        .expect("encrypt");
    assert_eq!(sealed.key_id, "k1");
    assert_eq!(sealed.ciphertext.len(), b"bearer-token".len() + 16);

    let decrypt_error = |r: Result<_, Error>| match r {
        Err(Error::Decrypt { owner, key_id, .. }) => (owner, key_id),
        other => panic!("expected a Decrypt error, got {:?}", other.map(|_| ())),
    };
    // Other associated data (another owner).
    let (owner, key_id) = decrypt_error(ring.decrypt("cluster/b", b"cluster/b", &sealed));
    assert_eq!((owner.as_str(), key_id.as_str()), ("cluster/b", "k1"));
    // A flipped bit anywhere: ciphertext, tag, nonce.
    for i in [0, sealed.ciphertext.len() - 1] {
        let mut t = sealed.clone();
        t.ciphertext[i] ^= 0x10;
        decrypt_error(ring.decrypt("a", b"cluster/a", &t));
    }
    let mut t = sealed.clone();
    t.nonce[3] ^= 1;
    decrypt_error(ring.decrypt("a", b"cluster/a", &t));
    // A truncated ciphertext, shorter than a tag.
    let mut t = sealed.clone();
    t.ciphertext.truncate(4);
    decrypt_error(ring.decrypt("a", b"cluster/a", &t));
    // Another key under the same id; an id the keyring lacks.
    let other = Keyring::new("k1", Keyring::generate_key()).expect("keyring");
    decrypt_error(other.decrypt("a", b"cluster/a", &sealed));
    let stranger = Keyring::new("k2", Keyring::generate_key()).expect("keyring");
    let (_, key_id) = decrypt_error(stranger.decrypt("a", b"cluster/a", &sealed));
    assert_eq!(key_id, "k1");
    // And the untouched value still decrypts.
    assert_eq!(
        ring.decrypt("a", b"cluster/a", &sealed)
            .expect("decrypt")
            .as_slice(),
        b"bearer-token"
    );
}

#[test]
fn nonces_do_not_repeat() {
    let ring = Keyring::new("k1", Keyring::generate_key()).expect("keyring");
    let mut seen = std::collections::HashSet::new();
    for _ in 0..2000 {
        assert!(seen.insert(ring.encrypt(b"", b"x").expect("encrypt").nonce));
    }
}

#[test]
fn old_keys_decrypt_the_active_key_encrypts() {
    let old = Keyring::new("old", [1; 32]).expect("keyring");
    let sealed_old = old.encrypt(b"aad", b"from before").expect("encrypt");
    let ring = Keyring::new("new", [2; 32])
        .and_then(|r| r.with_key("old", [1; 32]))
        .expect("keyring");
    assert_eq!(ring.active_id(), "new");
    assert_eq!(
        ring.decrypt("x", b"aad", &sealed_old)
            .expect("old key")
            .as_slice(),
        b"from before"
    );
    assert_eq!(ring.encrypt(b"aad", b"now").expect("encrypt").key_id, "new");
    assert!(
        ring.clone().with_key("new", [3; 32]).is_err(),
        "duplicate id"
    );
    assert!(Keyring::new("", [0; 32]).is_err());
    assert!(Keyring::new("white space", [0; 32]).is_err());
}

/// Test cases 13 and 14 of McGrew and Viega, "The Galois/Counter Mode of
/// Operation (GCM)" (the AES-256 vectors with an all-zero key and IV): the
/// keyring speaks standard AES-256-GCM, so anything else can read what it
/// writes and the other way round.
#[test]
fn standard_test_vectors() {
    let ring = Keyring::new("zero", [0; 32]).expect("keyring");
    let empty = Sealed {
        key_id: "zero".into(),
        nonce: [0; 12],
        ciphertext: unhex("530f8afbc74536b9a963b4f1c4cb738b"),
    };
    assert!(ring.decrypt("tc13", b"", &empty).expect("tc13").is_empty());
    let block = Sealed {
        key_id: "zero".into(),
        nonce: [0; 12],
        ciphertext: unhex("cea7403d4d606b6e074ec5d3baf39d18d0d1c8a799996bf0265b98b5d48ab919"),
    };
    assert_eq!(
        ring.decrypt("tc14", b"", &block).expect("tc14").as_slice(),
        [0u8; 16]
    );
}
