//! Tenants' secrets, encrypted at rest: each key of each secret is sealed with
//! XChaCha20-Poly1305 under the operator's 256-bit key, with a random 192-bit nonce and
//! the row's tenant, name and key as associated data (a sealed value moved to another
//! row does not open). The store keeps only nonce, ciphertext and the id of the key.
//!
//! The key comes from a file (`--secrets-key-file`, 32 raw bytes, or 64 hex / 44 base64
//! characters) or from `WEFT_SECRETS_KEY`; it is never written anywhere by weft. To rotate:
//! make a new key, start with `--secrets-key-file NEW --secrets-old-key-file OLD` (old
//! values still open), run `weft secrets rotate` (every value sealed again under the new
//! key), then drop the old key.

use std::path::Path;

use base64::Engine as _;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{Key, XChaCha20Poly1305, XNonce};
use serde_json::json;
use sha2::{Digest, Sha256};
use weft_engine::runs::{SecretStore, TenantSecrets};
use weft_store::{SecretRecord, TenantStore, Timestamp};

use super::TenancyError;

/// The environment variable that may hold the key (base64 or hex).
pub const KEY_ENV: &str = "WEFT_SECRETS_KEY";

/// Largest value of one key of a secret.
pub const MAX_VALUE_BYTES: usize = 64 * 1024;

/// Most keys one tenant may keep.
const MAX_KEYS_PER_TENANT: usize = 1_000;

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD_NO_PAD;

/// One of the operator's keys.
#[derive(Clone)]
struct SealingKey {
    id: String,
    cipher: XChaCha20Poly1305,
}

impl SealingKey {
    fn new(bytes: &[u8; 32]) -> SealingKey {
        // The id names the key without revealing it.
        let id: String = Sha256::digest([b"weft-secrets-key-id:".as_slice(), bytes].concat())
            .iter()
            .take(8)
            .map(|b| format!("{b:02x}"))
            .collect();
        SealingKey {
            id,
            cipher: XChaCha20Poly1305::new(Key::from_slice(bytes)),
        }
    }
}

/// The keys a server seals and opens tenants' secrets with.
#[derive(Clone)]
pub struct SecretsKeys {
    current: SealingKey,
    old: Vec<SealingKey>,
}

impl std::fmt::Debug for SecretsKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SecretsKeys")
            .field("current", &self.current.id)
            .finish_non_exhaustive()
    }
}

/// A key's bytes from a file's or a variable's text: 32 raw bytes, 64 hex digits or
/// base64 of 32 bytes.
fn key_bytes(raw: &[u8], from: &str) -> Result<[u8; 32], String> {
    if let Ok(bytes) = <[u8; 32]>::try_from(raw) {
        return Ok(bytes);
    }
    let text = String::from_utf8_lossy(raw);
    let text = text.trim();
    let decoded = if text.len() == 64 && text.bytes().all(|b| b.is_ascii_hexdigit()) {
        (0..32)
            .map(|i| u8::from_str_radix(&text[2 * i..2 * i + 2], 16))
            .collect::<Result<Vec<u8>, _>>()
            .ok()
    } else {
        base64::engine::general_purpose::STANDARD
            .decode(text)
            .or_else(|_| B64.decode(text))
            .ok()
    };
    decoded
        .and_then(|bytes| <[u8; 32]>::try_from(bytes.as_slice()).ok())
        .ok_or_else(|| {
            format!("{from}: not a 256-bit key (32 bytes, 64 hex digits or base64 of 32 bytes)")
        })
}

fn read_key(path: &Path) -> Result<[u8; 32], String> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        if let Ok(meta) = std::fs::metadata(path)
            && meta.permissions().mode() & 0o077 != 0
        {
            eprintln!(
                "weft: warning: the secrets key {} is readable by other users; chmod 600 it",
                path.display()
            );
        }
    }
    let raw = std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    key_bytes(&raw, &path.display().to_string())
}

impl SecretsKeys {
    /// The keys from `file` (else `WEFT_SECRETS_KEY`) and `old` files; `None` when no key
    /// is given (tenants' secrets are then off).
    pub fn load(file: Option<&Path>, old: &[std::path::PathBuf]) -> Result<Option<Self>, String> {
        let current = match file {
            Some(path) => read_key(path)?,
            None => match std::env::var(KEY_ENV) {
                Ok(text) if !text.trim().is_empty() => key_bytes(text.as_bytes(), KEY_ENV)?,
                _ => {
                    if !old.is_empty() {
                        return Err("an old secrets key without a current one".into());
                    }
                    return Ok(None);
                }
            },
        };
        let old = old
            .iter()
            .map(|path| read_key(path).map(|bytes| SealingKey::new(&bytes)))
            .collect::<Result<_, _>>()?;
        Ok(Some(SecretsKeys {
            current: SealingKey::new(&current),
            old,
        }))
    }

    /// Keys made from raw bytes (tests).
    #[cfg(test)]
    fn from_bytes(current: [u8; 32], old: &[[u8; 32]]) -> Self {
        SecretsKeys {
            current: SealingKey::new(&current),
            old: old.iter().map(SealingKey::new).collect(),
        }
    }

    fn associated(tenant: &str, name: &str, key: &str) -> Vec<u8> {
        format!("weft-secret\0{tenant}\0{name}\0{key}").into_bytes()
    }

    /// `value` sealed for `tenant`'s secret `name`, key `key`.
    fn seal(
        &self,
        tenant: &str,
        name: &str,
        key: &str,
        value: &str,
    ) -> Result<SecretRecord, String> {
        let mut nonce = [0u8; 24];
        getrandom::fill(&mut nonce).map_err(|e| format!("the OS gave no random bytes: {e}"))?;
        let aad = Self::associated(tenant, name, key);
        let sealed = self
            .current
            .cipher
            .encrypt(
                XNonce::from_slice(&nonce),
                Payload {
                    msg: value.as_bytes(),
                    aad: &aad,
                },
            )
            .map_err(|_| "cannot seal the value".to_string())?;
        Ok(SecretRecord {
            tenant: tenant.to_string(),
            name: name.to_string(),
            key: key.to_string(),
            key_id: self.current.id.clone(),
            nonce: B64.encode(nonce),
            ciphertext: B64.encode(sealed),
            updated_at: Timestamp::now(),
        })
    }

    /// The value `record` seals; why not when its key is not here or it was tampered with.
    fn open(&self, record: &SecretRecord) -> Result<String, String> {
        let what = format!(
            "secret {}.{} of tenant {}",
            record.name, record.key, record.tenant
        );
        let key = std::iter::once(&self.current)
            .chain(&self.old)
            .find(|k| k.id == record.key_id)
            .ok_or_else(|| {
                format!(
                    "{what}: sealed by key {}, which this server does not have",
                    record.key_id
                )
            })?;
        let nonce = B64
            .decode(&record.nonce)
            .ok()
            .filter(|n| n.len() == 24)
            .ok_or_else(|| format!("{what}: a damaged nonce"))?;
        let sealed = B64
            .decode(&record.ciphertext)
            .map_err(|_| format!("{what}: a damaged value"))?;
        let aad = Self::associated(&record.tenant, &record.name, &record.key);
        let opened = key
            .cipher
            .decrypt(
                XNonce::from_slice(&nonce),
                Payload {
                    msg: &sealed,
                    aad: &aad,
                },
            )
            .map_err(|_| format!("{what}: does not open (tampered with, or moved)"))?;
        String::from_utf8(opened).map_err(|_| format!("{what}: not UTF-8"))
    }
}

/// Whether `name` can name a secret: letters, digits, `-`, `_`, `.`, starting with a
/// letter or digit; and `key` a key: the same without `.` (the last `.` of `NAME.KEY`
/// separates them).
fn check_names(name: &str, key: &str) -> Result<(), TenancyError> {
    let plain = |s: &str, dots: bool, max: usize| {
        !s.is_empty()
            && s.len() <= max
            && s.starts_with(|c: char| c.is_ascii_alphanumeric())
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_' || (dots && c == '.'))
    };
    if !plain(name, true, 128) {
        return Err(TenancyError::Invalid(format!(
            "`{name}` cannot name a secret: letters, digits, `-`, `_`, `.`, starting with a letter or digit, at most 128 characters"
        )));
    }
    if !plain(key, false, 64) {
        return Err(TenancyError::Invalid(format!(
            "`{key}` cannot name a secret's key: letters, digits, `-`, `_`, at most 64 characters"
        )));
    }
    Ok(())
}

/// Writes `value` as key `key` of `tenant`'s secret `name`, sealed, as `actor` (audited:
/// never the value).
pub fn write(
    store: &dyn TenantStore,
    keys: &SecretsKeys,
    tenant: &str,
    name: &str,
    key: &str,
    value: &str,
    actor: &str,
) -> Result<(), TenancyError> {
    check_names(name, key)?;
    let min = weft_runtime::masking::MIN_SECRET_CHARS;
    if value.trim().chars().count() < min {
        return Err(TenancyError::Invalid(format!(
            "the value of secret {name}.{key} is shorter than {min} characters: it could not be masked in logs"
        )));
    }
    if value.len() > MAX_VALUE_BYTES {
        return Err(TenancyError::Invalid(format!(
            "the value of secret {name}.{key} is {} bytes, more than {MAX_VALUE_BYTES}",
            value.len()
        )));
    }
    let existing = store.secrets(Some(tenant))?;
    let replaces = existing.iter().any(|s| s.name == name && s.key == key);
    if !replaces && existing.len() >= MAX_KEYS_PER_TENANT {
        return Err(TenancyError::Invalid(format!(
            "tenant {tenant} keeps {MAX_KEYS_PER_TENANT} secret keys already"
        )));
    }
    let record = keys
        .seal(tenant, name, key, value)
        .map_err(TenancyError::Store)?;
    store.put_secret(&record)?;
    super::record(
        store,
        tenant,
        actor,
        "secret.write",
        &format!("{name}.{key}"),
        json!({"replaced": replaces, "keyId": record.key_id}),
    )?;
    Ok(())
}

/// Deletes `tenant`'s secret `name` (every key) as `actor`.
pub fn delete(
    store: &dyn TenantStore,
    tenant: &str,
    name: &str,
    actor: &str,
) -> Result<(), TenancyError> {
    if store.delete_secret(tenant, name)? == 0 {
        return Err(TenancyError::NotFound(format!("no secret `{name}`")));
    }
    super::record(store, tenant, actor, "secret.delete", name, json!({}))?;
    Ok(())
}

/// Seals every value not under the current key again under it; how many.
pub fn rotate(
    store: &dyn TenantStore,
    keys: &SecretsKeys,
    actor: &str,
) -> Result<usize, TenancyError> {
    let mut rotated = 0;
    for record in store.secrets(None)? {
        if record.key_id == keys.current.id {
            continue;
        }
        let value = keys.open(&record).map_err(TenancyError::Invalid)?;
        let sealed = keys
            .seal(&record.tenant, &record.name, &record.key, &value)
            .map_err(TenancyError::Store)?;
        store.put_secret(&sealed)?;
        super::record(
            store,
            &record.tenant,
            actor,
            "secret.rotate",
            &format!("{}.{}", record.name, record.key),
            json!({"from": record.key_id, "to": sealed.key_id}),
        )?;
        rotated += 1;
    }
    Ok(rotated)
}

/// A secret as listed: its name, key and when it was written; never its value.
pub fn listed(record: &SecretRecord) -> serde_json::Value {
    json!({
        "name": record.name,
        "key": record.key,
        "updatedAt": record.updated_at.millis(),
    })
}

/// Tenants' secrets for the engine, opened from the store when a run is set up.
pub struct StoredSecrets {
    /// The store.
    pub store: std::sync::Arc<dyn TenantStore>,
    /// The keys.
    pub keys: SecretsKeys,
}

impl TenantSecrets for StoredSecrets {
    fn secrets_of(&self, tenant: &str) -> Result<SecretStore, String> {
        let mut secrets = SecretStore::new();
        for record in self
            .store
            .secrets(Some(tenant))
            .map_err(|e| e.to_string())?
        {
            let value = self.keys.open(&record)?;
            secrets.insert(&record.name, &record.key, value)?;
        }
        Ok(secrets)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn store() -> (tempfile::TempDir, weft_store::SqliteStore) {
        let (dir, store) = super::super::tests::store();
        super::super::create_tenant(&store, "acme", "op").unwrap();
        (dir, store)
    }

    const VALUE: &str = "s3cr3t-deploy-token-value";

    #[test]
    fn values_are_sealed_bound_to_their_row_and_rotated() {
        let (dir, store) = store();
        let old = SecretsKeys::from_bytes([7; 32], &[]);
        write(&store, &old, "acme", "deploy", "token", VALUE, "ada").unwrap();
        let record = store.secrets(Some("acme")).unwrap().remove(0);
        assert!(!record.ciphertext.contains(VALUE));
        assert_eq!(old.open(&record).unwrap(), VALUE);
        // Moved to another row (tenant, name or key), it does not open.
        for moved in [
            SecretRecord {
                tenant: "beta".into(),
                ..record.clone()
            },
            SecretRecord {
                name: "other".into(),
                ..record.clone()
            },
            SecretRecord {
                key: "user".into(),
                ..record.clone()
            },
        ] {
            assert!(old.open(&moved).is_err());
        }
        let mut tampered = record.clone();
        tampered.ciphertext = B64.encode(b"something else entirely, longer");
        assert!(old.open(&tampered).is_err());
        // Another key does not open it; rotation seals it under the new one.
        let new_only = SecretsKeys::from_bytes([9; 32], &[]);
        assert!(
            new_only
                .open(&record)
                .unwrap_err()
                .contains("does not have")
        );
        let both = SecretsKeys::from_bytes([9; 32], &[[7; 32]]);
        assert_eq!(rotate(&store, &both, "op").unwrap(), 1);
        assert_eq!(rotate(&store, &both, "op").unwrap(), 0);
        let rotated = store.secrets(Some("acme")).unwrap().remove(0);
        assert_eq!(new_only.open(&rotated).unwrap(), VALUE);
        // The database file holds neither the value nor a key.
        drop(store);
        let mut bytes = Vec::new();
        for entry in std::fs::read_dir(dir.path()).unwrap() {
            bytes.extend(std::fs::read(entry.unwrap().path()).unwrap());
        }
        let hay = String::from_utf8_lossy(&bytes);
        assert!(!hay.contains(VALUE));
        assert!(!bytes.windows(32).any(|w| w == [7; 32] || w == [9; 32]));
    }

    #[test]
    fn bad_names_and_values_change_nothing() {
        let (_dir, store) = store();
        let keys = SecretsKeys::from_bytes([1; 32], &[]);
        let huge = "x".repeat(MAX_VALUE_BYTES + 1);
        for (name, key, value) in [
            ("deploy", "token", ""),
            ("deploy", "token", "short"),
            ("deploy", "token", huge.as_str()),
            ("", "token", VALUE),
            ("a/b", "token", VALUE),
            ("deploy", "to.ken", VALUE),
        ] {
            assert!(
                matches!(
                    write(&store, &keys, "acme", name, key, value, "ada"),
                    Err(TenancyError::Invalid(_))
                ),
                "{name}.{key}"
            );
        }
        assert!(matches!(
            write(&store, &keys, "nope", "deploy", "token", VALUE, "ada"),
            Err(TenancyError::NotFound(_))
        ));
        assert!(store.secrets(None).unwrap().is_empty());
        assert!(matches!(
            delete(&store, "acme", "deploy", "ada"),
            Err(TenancyError::NotFound(_))
        ));
    }

    #[test]
    fn a_key_is_read_as_raw_hex_or_base64() {
        let raw = [5u8; 32];
        let hex: String = raw.iter().map(|b| format!("{b:02x}")).collect();
        let b64 = base64::engine::general_purpose::STANDARD.encode(raw);
        for text in [
            raw.to_vec(),
            hex.into_bytes(),
            format!("{b64}\n").into_bytes(),
        ] {
            assert_eq!(key_bytes(&text, "k").unwrap(), raw);
        }
        assert!(key_bytes(b"too short", "k").is_err());
    }
}
