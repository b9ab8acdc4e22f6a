//! The on-disk cache of pulled artifacts: content-addressed blobs (`blobs/sha256/HEX`, as
//! an OCI image layout keeps them), manifests and components alike. A blob is checked
//! against its name every time it is read; one that does not match is removed and
//! fetched again.

use std::path::{Path, PathBuf};

use crate::sha256_digest;

/// A directory of blobs named by their digests.
#[derive(Debug, Clone)]
pub(crate) struct BlobCache {
    dir: PathBuf,
}

impl BlobCache {
    pub(crate) fn new(dir: &Path) -> Self {
        BlobCache {
            dir: dir.to_path_buf(),
        }
    }

    fn path(&self, digest: &str) -> Option<PathBuf> {
        let hex = digest.strip_prefix("sha256:")?;
        // Digests were checked before (64 hex digits); refuse anything else outright so
        // no name can climb out of the directory.
        if hex.len() != 64 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            return None;
        }
        Some(self.dir.join("blobs/sha256").join(hex))
    }

    /// The blob with `digest`, if cached and intact.
    pub(crate) fn get(&self, digest: &str) -> Option<Vec<u8>> {
        let path = self.path(digest)?;
        let bytes = std::fs::read(&path).ok()?;
        if sha256_digest(&bytes) == digest {
            Some(bytes)
        } else {
            tracing::warn!(
                path = %path.display(),
                "a cached blob does not match its digest; removing it and fetching it again"
            );
            let _ = std::fs::remove_file(&path);
            None
        }
    }

    /// Keeps `bytes` under `digest` (which they were checked against). A cache that
    /// cannot be written only costs a later fetch.
    pub(crate) fn put(&self, digest: &str, bytes: &[u8]) {
        let Some(path) = self.path(digest) else {
            return;
        };
        if sha256_digest(bytes) != digest {
            return;
        }
        let written = (|| -> std::io::Result<()> {
            let parent = path.parent().unwrap_or(&self.dir);
            std::fs::create_dir_all(parent)?;
            let tmp = parent.join(format!(
                ".{}.{}.tmp",
                path.file_name()
                    .map(|n| n.to_string_lossy())
                    .unwrap_or_default(),
                std::process::id()
            ));
            std::fs::write(&tmp, bytes)?;
            std::fs::rename(&tmp, &path)
        })();
        if let Err(e) = written {
            tracing::warn!(dir = %self.dir.display(), "cannot cache a pulled blob: {e}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blobs_come_back_only_when_intact() {
        let dir = tempfile::tempdir().expect("tempdir");
        let cache = BlobCache::new(dir.path());
        let digest = sha256_digest(b"component");
        assert_eq!(cache.get(&digest), None);
        cache.put(&digest, b"component");
        assert_eq!(cache.get(&digest).as_deref(), Some(&b"component"[..]));
        // Not stored under a digest it does not have.
        let other = sha256_digest(b"other");
        cache.put(&other, b"component");
        assert_eq!(cache.get(&other), None);
        // Tampered on disk: refused and removed.
        let path = cache.path(&digest).expect("path");
        std::fs::write(&path, b"tampered").expect("write");
        assert_eq!(cache.get(&digest), None);
        assert!(!path.exists());
        assert_eq!(cache.get("sha256:../../etc/passwd"), None);
    }
}
