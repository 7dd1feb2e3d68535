//! Content fingerprints: the SHA-256 of files and of whole datasets, saved with every run so a
//! result can be tied to the exact data it came from.

use sha2::{Digest, Sha256};

/// Hex SHA-256 of a byte slice.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// Order-independent fingerprint of a labelled dataset: the hash of the sorted
/// `(label, content-hash)` lines. Renaming or moving files keeps it; changing a pixel or a label
/// changes it.
pub fn dataset_fingerprint<'a>(items: impl IntoIterator<Item = (&'a str, &'a str)>) -> String {
    let mut lines: Vec<String> = items
        .into_iter()
        .map(|(label, hash)| format!("{label}\t{hash}\n"))
        .collect();
    lines.sort_unstable();
    let mut h = Sha256::new();
    for l in &lines {
        h.update(l.as_bytes());
    }
    hex::encode(h.finalize())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_sha256() {
        assert_eq!(
            sha256_hex(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn fingerprint_ignores_order_but_not_labels() {
        let a = dataset_fingerprint([("happy", "h1"), ("sad", "h2")]);
        let b = dataset_fingerprint([("sad", "h2"), ("happy", "h1")]);
        let c = dataset_fingerprint([("sad", "h1"), ("happy", "h2")]);
        assert_eq!(a, b);
        assert_ne!(a, c);
    }
}
