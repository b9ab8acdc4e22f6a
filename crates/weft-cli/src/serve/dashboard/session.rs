//! Who looks at the dashboard: a login by API token opens a session (a random id in an
//! HttpOnly, SameSite=Strict cookie; the identity stays on the server), and each session
//! has its own random CSRF token that every state-changing form carries back.
//!
//! A fresh id is made at every login (no session fixation); logging out forgets it. When
//! the server requires no token, a visitor gets an anonymous session on the first page,
//! so that its forms still carry a CSRF token (another site could otherwise make a
//! browser on this machine post to a loopback server).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::http::{HeaderMap, HeaderValue, header};

use crate::identities::constant_time_eq;
use crate::serve::auth::Caller;

/// The session cookie's name.
pub const COOKIE: &str = "weft_session";

/// How long a session lasts after login.
const LIFETIME: Duration = Duration::from_secs(12 * 60 * 60);

/// At most this many sessions are kept: the oldest goes when a new one would exceed it
/// (memory stays bounded however many logins are tried).
const MAX_SESSIONS: usize = 10_000;

/// One logged-in browser.
#[derive(Debug, Clone)]
pub struct Session {
    /// Its id (the cookie's value).
    pub id: String,
    /// Who it is.
    pub caller: Caller,
    /// The token its forms carry.
    pub csrf: String,
    /// Whether it logged in (rather than being the anonymous session of a server that
    /// requires no token).
    pub logged_in: bool,
    expires: Instant,
}

impl Session {
    /// Whether `given` is this session's CSRF token (compared in constant time).
    pub fn csrf_matches(&self, given: &str) -> bool {
        constant_time_eq(self.csrf.as_bytes(), given.as_bytes())
    }
}

/// The server's sessions, by id.
#[derive(Debug, Default)]
pub struct Sessions {
    by_id: Mutex<HashMap<String, Session>>,
}

/// 32 random bytes from the OS, as hex.
fn random_token() -> Result<String, getrandom::Error> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes)?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

impl Sessions {
    /// A new session for `caller`, with a fresh id and CSRF token.
    pub fn open(&self, caller: Caller, logged_in: bool) -> Result<Session, String> {
        let random =
            |what: &str| random_token().map_err(|e| format!("no randomness for a {what}: {e}"));
        let session = Session {
            id: random("session id")?,
            caller,
            csrf: random("CSRF token")?,
            logged_in,
            expires: Instant::now() + LIFETIME,
        };
        let mut sessions = crate::serve::lock(&self.by_id);
        let now = Instant::now();
        sessions.retain(|_, s| s.expires > now);
        if sessions.len() >= MAX_SESSIONS
            && let Some(oldest) = sessions
                .values()
                .min_by_key(|s| s.expires)
                .map(|s| s.id.clone())
        {
            sessions.remove(&oldest);
        }
        sessions.insert(session.id.clone(), session.clone());
        Ok(session)
    }

    /// The live session the request's cookie names.
    pub fn of(&self, headers: &HeaderMap) -> Option<Session> {
        let id = cookie(headers)?;
        let sessions = crate::serve::lock(&self.by_id);
        sessions
            .get(id)
            .filter(|s| s.expires > Instant::now())
            .cloned()
    }

    /// Forgets session `id`.
    pub fn close(&self, id: &str) {
        crate::serve::lock(&self.by_id).remove(id);
    }
}

/// The session id in the request's `Cookie` headers.
fn cookie(headers: &HeaderMap) -> Option<&str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == COOKIE)
        .map(|(_, value)| value)
}

/// The `Set-Cookie` that hands `session` to the browser: not readable by scripts, never
/// sent by another site's requests, for the whole dashboard.
pub fn set_cookie(session: &Session) -> HeaderValue {
    let value = format!(
        "{COOKIE}={}; HttpOnly; SameSite=Strict; Path=/; Max-Age={}",
        session.id,
        LIFETIME.as_secs()
    );
    // Hex and fixed text only: always a valid header value.
    HeaderValue::from_str(&value).unwrap_or_else(|_| HeaderValue::from_static(""))
}

/// The `Set-Cookie` that makes the browser forget its session.
pub fn clear_cookie() -> HeaderValue {
    HeaderValue::from_static("weft_session=; HttpOnly; SameSite=Strict; Path=/; Max-Age=0")
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn caller(name: &str) -> Caller {
        Caller {
            identity: name.into(),
            ..crate::serve::auth::anonymous()
        }
    }

    #[test]
    fn a_session_is_found_by_its_cookie_only_until_closed() {
        let sessions = Sessions::default();
        let alice = sessions.open(caller("alice"), true).unwrap();
        let other = sessions.open(caller("alice"), true).unwrap();
        assert_ne!(alice.id, other.id, "every login gets a fresh id");
        assert_ne!(alice.csrf, other.csrf);
        assert_eq!(alice.id.len(), 64);
        let mut headers = HeaderMap::new();
        headers.insert(
            header::COOKIE,
            HeaderValue::from_str(&format!("a=b; {COOKIE}={}", alice.id)).unwrap(),
        );
        assert_eq!(sessions.of(&headers).unwrap().caller.identity, "alice");
        assert!(alice.csrf_matches(&alice.csrf));
        assert!(!alice.csrf_matches(&other.csrf));
        assert!(!alice.csrf_matches(""));
        sessions.close(&alice.id);
        assert!(sessions.of(&headers).is_none());
        let cookie = set_cookie(&other);
        let cookie = cookie.to_str().unwrap();
        assert!(cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"));
        assert!(cookie.contains("Path=/"));
    }
}
