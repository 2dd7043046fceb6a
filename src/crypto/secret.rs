//! A wrapper for key material, tokens and passwords that cannot leak by accident.

use std::fmt;

use zeroize::{Zeroize, Zeroizing};

/// Keys, tokens, TOTP seeds, database URLs with passwords.
///
/// No `Serialize`, `Display` or `Clone`, and zeroed on drop. `Debug` prints a placeholder so
/// structs holding one can still derive it. Reading the value takes an explicit `expose()`,
/// so every use is a line a reviewer can find.
pub struct Secret<T: Zeroize>(Zeroizing<T>);

impl<T: Zeroize> Secret<T> {
    pub fn new(value: T) -> Self {
        Self(Zeroizing::new(value))
    }

    /// Every call is a line a reviewer should read.
    pub fn expose(&self) -> &T {
        &self.0
    }
}

impl<T: Zeroize> fmt::Debug for Secret<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

impl<T: Zeroize> From<T> for Secret<T> {
    fn from(value: T) -> Self {
        Self::new(value)
    }
}

/// Request bodies may carry secrets (passwords, tokens): they deserialize straight into a
/// `Secret`, never into a plain `String` that outlives the request.
impl<'de> serde::Deserialize<'de> for Secret<String> {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        String::deserialize(deserializer).map(Secret::new)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_the_value() {
        let secret = Secret::new(String::from("hunter2-hunter2"));
        let printed = format!("{secret:?} {:#?}", Some(&secret));
        assert!(!printed.contains("hunter2"), "{printed}");
        assert_eq!(secret.expose(), "hunter2-hunter2");
    }
}
