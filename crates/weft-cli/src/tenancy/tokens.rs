//! API tokens: `weft_<id>_<secret>`, 256 random bits of secret from the OS. Only a
//! SHA-256 of the whole token is stored (the token is high-entropy, so a fast hash is
//! enough, as for GitHub's and GitLab's tokens); the id finds the row, the hash is
//! compared in constant time, then expiry, revocation and membership are checked.

use base64::Engine as _;
use sha2::{Digest, Sha256};
use weft_store::{MemberRecord, TenantStore, Timestamp, TokenRecord};

use crate::identities::constant_time_eq;

/// What every token starts with (so it is recognised, and secret scanners can find it).
pub const PREFIX: &str = "weft_";

/// Random bytes in a token's id (hex) and secret (base64url).
const ID_BYTES: usize = 8;
const SECRET_BYTES: usize = 32;

/// A freshly issued token: the only time the token itself exists outside its holder.
pub struct Issued {
    /// The token, to show once.
    pub token: String,
    /// What is stored of it.
    pub record: TokenRecord,
}

/// A new token of `identity` in `tenant`, created at `now` and expiring at `expires_at`.
pub fn issue(
    tenant: &str,
    identity: &str,
    now: Timestamp,
    expires_at: Option<Timestamp>,
) -> Result<Issued, String> {
    let mut id = [0u8; ID_BYTES];
    let mut secret = [0u8; SECRET_BYTES];
    getrandom::fill(&mut id)
        .and_then(|()| getrandom::fill(&mut secret))
        .map_err(|e| format!("the OS gave no random bytes: {e}"))?;
    let id: String = id.iter().map(|b| format!("{b:02x}")).collect();
    let token = format!(
        "{PREFIX}{id}_{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(secret)
    );
    Ok(Issued {
        record: TokenRecord {
            id,
            tenant: tenant.to_string(),
            identity: identity.to_string(),
            hash: hash(&token),
            created_at: now,
            expires_at,
            revoked_at: None,
        },
        token,
    })
}

/// The stored hash of `token` (hex SHA-256).
pub fn hash(token: &str) -> String {
    Sha256::digest(token.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The id of a token-shaped string, if it is one.
pub fn id_of(given: &str) -> Option<&str> {
    let rest = given.strip_prefix(PREFIX)?;
    let (id, secret) = rest.split_once('_')?;
    (id.len() == ID_BYTES * 2 && id.bytes().all(|b| b.is_ascii_hexdigit()) && !secret.is_empty())
        .then_some(id)
}

/// Why a token-shaped string did not authenticate (logged, never told to the caller).
#[derive(Debug, PartialEq, Eq)]
pub enum Rejected {
    /// Not a token, or no such token, or the wrong secret.
    Unknown,
    /// Revoked.
    Revoked,
    /// Past its expiry.
    Expired,
    /// Its identity is no longer a member of its tenant.
    NoMember,
}

/// The token and membership `given` authenticates at `now`.
pub fn authenticate(
    store: &dyn TenantStore,
    given: &str,
    now: Timestamp,
) -> Result<Result<(TokenRecord, MemberRecord), Rejected>, weft_store::StoreError> {
    let Some(id) = id_of(given) else {
        return Ok(Err(Rejected::Unknown));
    };
    let Some(record) = store.token(id)? else {
        return Ok(Err(Rejected::Unknown));
    };
    if !constant_time_eq(record.hash.as_bytes(), hash(given).as_bytes()) {
        return Ok(Err(Rejected::Unknown));
    }
    if record.revoked_at.is_some() {
        return Ok(Err(Rejected::Revoked));
    }
    if !record.is_live(now) {
        return Ok(Err(Rejected::Expired));
    }
    match store.member(&record.tenant, &record.identity)? {
        Some(member) => Ok(Ok((record, member))),
        None => Ok(Err(Rejected::NoMember)),
    }
}

/// When a token made at `now` expires: a duration from now (`30d`, `12h`, `90m`, Go
/// durations) or a time (RFC 3339).
pub fn expiry(text: &str, now: Timestamp) -> Result<Timestamp, String> {
    let text = text.trim();
    let days = text
        .strip_suffix('d')
        .and_then(|n| n.parse::<u64>().ok())
        .map(|n| std::time::Duration::from_secs(n.saturating_mul(86_400)));
    let duration = match days {
        Some(days) => Some(days),
        None => weft_core::duration::parse_go_duration(text).ok(),
    };
    if let Some(duration) = duration {
        if duration.is_zero() {
            return Err(format!("expiry `{text}`: a token must live a while"));
        }
        if duration > std::time::Duration::from_secs(10 * 366 * 86_400) {
            return Err(format!("expiry `{text}`: more than ten years"));
        }
        return Ok(now.plus(duration));
    }
    let at = crate::decide::parse_time(text).map_err(|_| {
        format!("expiry `{text}`: expected a duration (`30d`, `12h`) or an RFC 3339 time")
    })?;
    if at <= now.0 {
        return Err(format!("expiry `{text}` is in the past"));
    }
    Ok(Timestamp(at))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn a_token_is_prefixed_random_and_stored_only_as_its_hash() {
        let a = issue("acme", "ci", Timestamp(0), None).unwrap();
        let b = issue("acme", "ci", Timestamp(0), None).unwrap();
        assert_ne!(a.token, b.token);
        assert!(a.token.starts_with(PREFIX));
        assert_eq!(id_of(&a.token), Some(a.record.id.as_str()));
        assert_eq!(a.record.hash, hash(&a.token));
        assert!(!a.record.hash.contains(&a.token[PREFIX.len() + 17..]));
        assert!(a.token.len() > 60, "{}", a.token);
        for not_one in [
            "",
            "weft_",
            "weft_xyz_abc",
            "bearer",
            "weft_0123456789abcdef_",
        ] {
            assert_eq!(id_of(not_one), None, "{not_one}");
        }
    }

    #[test]
    fn expiry_is_a_duration_or_a_time_in_the_future() {
        let now = Timestamp(1_000_000);
        assert_eq!(
            expiry("30d", now).unwrap(),
            Timestamp(1_000_000 + 30 * 86_400_000)
        );
        assert_eq!(
            expiry("12h", now).unwrap(),
            Timestamp(1_000_000 + 12 * 3_600_000)
        );
        assert!(expiry("0s", now).is_err());
        assert!(expiry("soon", now).is_err());
        assert!(expiry("1970-01-01T00:00:00Z", now).is_err());
        assert!(expiry("2999-01-01T00:00:00Z", now).is_ok());
        assert!(expiry("9999d", now).is_err());
    }
}
