//! [`Secret<T>`]: a wrapper that keeps credentials out of logs and memory.
//!
//! - `Debug` and `Display` print `[redacted]`, so a secret inside a config
//!   struct can be logged with `{:?}` safely;
//! - the value is read only through [`Secret::expose`], which makes every
//!   use visible in review;
//! - the value is overwritten with zeros when dropped (via [`zeroize`]);
//! - `Deserialize` is transparent (a `Secret<String>` field reads a plain
//!   string), but **`Serialize` is deliberately not implemented**, so a
//!   config or API response containing a secret cannot be written out by
//!   accident.
//!
//! When a secret must be written back (saving a config file, sending a
//! credential to the server that needs it), opt in per field:
//!
//! ```
//! use kubepkg_util::secret::{Secret, serde_expose};
//!
//! #[derive(serde::Serialize, serde::Deserialize, Debug)]
//! struct Registry {
//!     username: String,
//!     // Written out: the caller means to persist it.
//!     #[serde(serialize_with = "serde_expose::serialize")]
//!     password: Secret<String>,
//! }
//!
//! #[derive(serde::Serialize, serde::Deserialize, Debug)]
//! struct PublicView {
//!     username: String,
//!     // The usual choice for anything shown to users: never serialised.
//!     #[serde(skip_serializing)]
//!     password: Option<Secret<String>>,
//! }
//!
//! let r: Registry = serde_json::from_str(r#"{"username":"bot","password":"hunter2"}"#)?;
//! assert_eq!(format!("{r:?}"), r#"Registry { username: "bot", password: [redacted] }"#);
//! assert_eq!(r.password.expose(), "hunter2");
//! assert_eq!(serde_json::to_string(&r)?, r#"{"username":"bot","password":"hunter2"}"#);
//!
//! let v: PublicView = serde_json::from_str(r#"{"username":"bot","password":"hunter2"}"#)?;
//! assert_eq!(serde_json::to_string(&v)?, r#"{"username":"bot"}"#);
//! # Ok::<(), serde_json::Error>(())
//! ```
//!
//! Zeroising on drop clears the final copy; it cannot reach copies the
//! program made itself (a `String` that was cloned, or reallocated while it
//! grew before being wrapped). Wrap secrets as early as possible.

use std::fmt;

use zeroize::{Zeroize, ZeroizeOnDrop};

/// The text `Debug` and `Display` print instead of a secret.
pub const REDACTED: &str = "[redacted]";

/// A value that is redacted in `Debug`/`Display` and zeroised on drop.
/// See the [module docs](self).
pub struct Secret<T: Zeroize>(T);

/// A secret string, the most common case.
pub type SecretString = Secret<String>;

impl<T: Zeroize> Secret<T> {
    /// Wraps a value.
    pub fn new(value: T) -> Self {
        Secret(value)
    }

    /// Reads the secret value. Keep the borrow short, and never log it.
    pub fn expose(&self) -> &T {
        &self.0
    }

    /// Mutable access to the secret value (e.g. to rotate it in place).
    pub fn expose_mut(&mut self) -> &mut T {
        &mut self.0
    }
}

impl<T: Zeroize> From<T> for Secret<T> {
    fn from(value: T) -> Self {
        Secret(value)
    }
}

impl From<&str> for Secret<String> {
    fn from(value: &str) -> Self {
        Secret(value.to_owned())
    }
}

impl<T: Zeroize + Clone> Clone for Secret<T> {
    fn clone(&self) -> Self {
        Secret(self.0.clone())
    }
}

impl<T: Zeroize + Default> Default for Secret<T> {
    fn default() -> Self {
        Secret(T::default())
    }
}

impl<T: Zeroize> Drop for Secret<T> {
    fn drop(&mut self) {
        self.0.zeroize();
    }
}

impl<T: Zeroize> ZeroizeOnDrop for Secret<T> {}

impl<T: Zeroize> fmt::Debug for Secret<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(REDACTED)
    }
}

impl<T: Zeroize> fmt::Display for Secret<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(REDACTED)
    }
}

impl<'de, T: Zeroize + serde::Deserialize<'de>> serde::Deserialize<'de> for Secret<T> {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        T::deserialize(deserializer).map(Secret)
    }
}

/// Opt-in serialisation of a [`Secret`] field, for
/// `#[serde(serialize_with = "kubepkg_util::secret::serde_expose::serialize")]`
/// (and `with = "kubepkg_util::secret::serde_expose"` if you like symmetry).
pub mod serde_expose {
    use zeroize::Zeroize;

    use super::Secret;

    /// Serialises the exposed value.
    pub fn serialize<T, S>(secret: &Secret<T>, serializer: S) -> Result<S::Ok, S::Error>
    where
        T: Zeroize + serde::Serialize,
        S: serde::Serializer,
    {
        secret.expose().serialize(serializer)
    }

    /// Deserialises the value (the same as `Secret`'s own `Deserialize`).
    pub fn deserialize<'de, T, D>(deserializer: D) -> Result<Secret<T>, D::Error>
    where
        T: Zeroize + serde::Deserialize<'de>,
        D: serde::Deserializer<'de>,
    {
        T::deserialize(deserializer).map(Secret)
    }

    /// The same for `Option<Secret<T>>`.
    pub mod option {
        use zeroize::Zeroize;

        use super::Secret;

        /// Serialises `Some` as the exposed value, `None` as null.
        pub fn serialize<T, S>(secret: &Option<Secret<T>>, serializer: S) -> Result<S::Ok, S::Error>
        where
            T: Zeroize + serde::Serialize,
            S: serde::Serializer,
        {
            match secret {
                Some(s) => serializer.serialize_some(s.expose()),
                None => serializer.serialize_none(),
            }
        }

        /// Deserialises null as `None`.
        pub fn deserialize<'de, T, D>(deserializer: D) -> Result<Option<Secret<T>>, D::Error>
        where
            T: Zeroize + serde::Deserialize<'de>,
            D: serde::Deserializer<'de>,
        {
            <Option<T> as serde::Deserialize>::deserialize(deserializer).map(|o| o.map(Secret))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redacts_debug_and_display() {
        let s = SecretString::from("hunter2");
        assert_eq!(format!("{s:?}"), "[redacted]");
        assert_eq!(format!("{s}"), "[redacted]");
        assert_eq!(format!("{:?}", Some(&s)), "Some([redacted])");
        assert!(!format!("{s:#?}").contains("hunter2"));
        assert_eq!(s.expose(), "hunter2");
    }

    #[test]
    fn zeroizes_on_request_and_drop() {
        let mut s = Secret::new(vec![1u8, 2, 3]);
        s.expose_mut().push(4);
        assert_eq!(s.expose(), &[1, 2, 3, 4]);
        // `Drop` calls the same `zeroize` on the inner value.
        s.expose_mut().zeroize();
        assert!(s.expose().is_empty());
        let mut a = [7u8; 4];
        a.zeroize();
        assert_eq!(a, [0; 4]);
    }

    #[test]
    fn deserializes_transparently() {
        let s: Secret<String> = serde_json::from_str("\"tok\"").expect("de");
        assert_eq!(s.expose(), "tok");
        #[derive(serde::Serialize)]
        struct Out {
            #[serde(with = "serde_expose::option")]
            token: Option<Secret<String>>,
        }
        let out = Out {
            token: Some("abc".into()),
        };
        assert_eq!(
            serde_json::to_string(&out).expect("ser"),
            r#"{"token":"abc"}"#
        );
    }
}
