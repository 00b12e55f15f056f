//! OAuth client credentials, the tokens issued for them, and the bearer-token checks on the
//! gRPC / Flight services and the Unity Catalog endpoint.
//!
//! Tokens are random (a v4 UUID behind a `zbl_` prefix), remembered with the tables their
//! request named in `authorization_details`, and expire after the configured lifetime.
//! At most [`MAX_TOKENS`] are remembered (the ones closest to expiry are forgotten
//! first), and none with auth disabled, where no token is ever checked: minting tokens
//! costs the server no memory. Neither the client secret nor a token is ever written to a
//! log or a `Debug` output; the secret is compared in constant time.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use secrecy::{ExposeSecret, SecretString};
use subtle::ConstantTimeEq;
use tonic::metadata::MetadataMap;
use tonic::Status;

/// The default lifetime of an issued token: one hour, as on the service.
pub const DEFAULT_TOKEN_TTL: Duration = Duration::from_secs(3600);

/// The default OAuth client id of a local server.
pub const DEFAULT_CLIENT_ID: &str = "zerobus-local";

/// The most tokens a server remembers at a time (with [`Auth::OAuth`]); past it, the token
/// closest to expiry is forgotten (a stream presenting it is refused as "unknown", and the
/// client mints a new one).
pub const MAX_TOKENS: usize = 10_000;

/// Expired tokens are recognised (to say "expired" rather than "unknown") at least this
/// long; once the map is full, those expired longer ago are forgotten first.
const FORGET_EXPIRED_AFTER: Duration = Duration::from_secs(600);

/// A random client secret, for servers started without one.
pub(crate) fn generate_secret() -> SecretString {
    format!("zbls_{}", uuid::Uuid::new_v4().simple()).into()
}

/// Whether the local server checks bearer tokens.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum Auth {
    /// Every request is accepted, with or without an `authorization` header (use the SDK's
    /// `.no_auth()`). The token endpoint still answers, and issues tokens to any client.
    #[default]
    Disabled,
    /// Streams and Unity Catalog requests need `authorization: Bearer <token>` with a token
    /// from `POST /oidc/v1/token` that is unexpired and was issued for the table (use the
    /// SDK's `.oauth(client_id, client_secret)` and `.unity_catalog_url(..)`).
    OAuth,
}

/// A freshly issued access token.
pub(crate) struct Issued {
    /// The token itself.
    pub(crate) token: SecretString,
    /// Its lifetime.
    pub(crate) ttl: Duration,
}

/// What one token grants.
struct Grant {
    tables: Vec<String>,
    expires_at: Instant,
}

struct TokenState {
    ttl: Duration,
    /// Keyed by the token text.
    tokens: HashMap<String, Grant>,
    issued: u64,
}

/// The client credentials and the tokens issued for them.
pub(crate) struct Authenticator {
    mode: Auth,
    client_id: String,
    client_secret: SecretString,
    state: Mutex<TokenState>,
}

impl fmt::Debug for Authenticator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = self.state();
        f.debug_struct("Authenticator")
            .field("mode", &self.mode)
            .field("client_id", &self.client_id)
            .field("client_secret", &self.client_secret)
            .field("ttl", &state.ttl)
            .field("tokens_known", &state.tokens.len())
            .field("tokens_issued", &state.issued)
            .finish()
    }
}

impl Authenticator {
    /// An authenticator for one client.
    pub(crate) fn new(
        mode: Auth,
        client_id: String,
        client_secret: SecretString,
        ttl: Duration,
    ) -> Self {
        Self {
            mode,
            client_id,
            client_secret,
            state: Mutex::new(TokenState {
                ttl,
                tokens: HashMap::new(),
                issued: 0,
            }),
        }
    }

    fn state(&self) -> MutexGuard<'_, TokenState> {
        crate::lock(&self.state)
    }

    /// Whether tokens are checked.
    pub(crate) fn mode(&self) -> Auth {
        self.mode
    }

    /// The OAuth client id.
    pub(crate) fn client_id(&self) -> &str {
        &self.client_id
    }

    /// The OAuth client secret.
    pub(crate) fn client_secret(&self) -> &SecretString {
        &self.client_secret
    }

    /// Whether `id` / `secret` are this server's client credentials (always, with auth
    /// disabled). Both are compared in constant time (a mismatch takes as long wherever it
    /// is; only the lengths may show).
    pub(crate) fn verify_client(&self, id: &str, secret: &str) -> bool {
        if self.mode == Auth::Disabled {
            return true;
        }
        let id_ok = id.as_bytes().ct_eq(self.client_id.as_bytes());
        let secret_ok = secret
            .as_bytes()
            .ct_eq(self.client_secret.expose_secret().as_bytes());
        (id_ok & secret_ok).into()
    }

    /// Issues a new token for `tables`, valid for the current lifetime. With auth disabled
    /// the token is not remembered (it is never checked).
    pub(crate) fn issue(&self, tables: Vec<String>) -> Issued {
        let token = format!("zbl_{}", uuid::Uuid::new_v4().simple());
        let now = Instant::now();
        let mut state = self.state();
        let ttl = state.ttl;
        state.issued += 1;
        if self.mode == Auth::OAuth {
            if state.tokens.len() >= MAX_TOKENS {
                state.tokens.retain(|_, grant| {
                    now.saturating_duration_since(grant.expires_at) < FORGET_EXPIRED_AFTER
                });
            }
            if state.tokens.len() >= MAX_TOKENS {
                forget_closest_to_expiry(&mut state.tokens);
            }
            state.tokens.insert(
                token.clone(),
                Grant {
                    tables,
                    expires_at: now + ttl,
                },
            );
        }
        Issued {
            token: token.into(),
            ttl,
        }
    }

    /// The lifetime of tokens issued from now on.
    pub(crate) fn set_token_ttl(&self, ttl: Duration) {
        self.state().ttl = ttl;
    }

    /// Makes every token issued so far expired.
    pub(crate) fn expire_all(&self) {
        let now = Instant::now();
        for grant in self.state().tokens.values_mut() {
            grant.expires_at = grant.expires_at.min(now);
        }
    }

    /// How many tokens have been issued.
    pub(crate) fn issued(&self) -> u64 {
        self.state().issued
    }

    /// How many tokens are remembered now (at most [`MAX_TOKENS`]).
    pub(crate) fn remembered(&self) -> usize {
        self.state().tokens.len()
    }

    /// `Ok` with the expiry of the token if a gRPC / Flight request with `metadata` may
    /// open a stream on `table` (`Ok(None)` with auth disabled); else `UNAUTHENTICATED`
    /// saying why (without the token).
    pub(crate) fn check(
        &self,
        metadata: &MetadataMap,
        table: &str,
    ) -> Result<Option<Instant>, Status> {
        if self.mode == Auth::Disabled {
            return Ok(None);
        }
        let header = match metadata.get("authorization") {
            None => None,
            Some(value) => Some(value.to_str().map_err(|_| {
                Status::unauthenticated("the `authorization` metadata is not ASCII text")
            })?),
        };
        self.check_bearer(header, table)
            .map_err(Status::unauthenticated)
    }

    /// `Ok` with the token's expiry if the `authorization` header value `header` carries a
    /// known, unexpired token issued for `table`; else why not (without the token). Always
    /// `Ok(None)` with auth disabled.
    pub(crate) fn check_bearer(
        &self,
        header: Option<&str>,
        table: &str,
    ) -> Result<Option<Instant>, String> {
        if self.mode == Auth::Disabled {
            return Ok(None);
        }
        let header = header.ok_or_else(|| {
            "missing `authorization: Bearer <token>`: this local Zerobus server requires OAuth \
             (get a token from POST /oidc/v1/token, e.g. with the SDK's `.oauth(..)`)"
                .to_string()
        })?;
        let token = bearer_token(header).ok_or_else(|| {
            "the `authorization` header is not a bearer token (expected `Bearer <token>`)"
                .to_string()
        })?;
        let state = self.state();
        let grant = state
            .tokens
            .get(token)
            .ok_or_else(|| "unknown access token (not issued by this server)".to_string())?;
        if Instant::now() >= grant.expires_at {
            return Err("access token expired: get a new one from /oidc/v1/token".into());
        }
        // Table names are case-insensitive, as in Unity Catalog.
        if !grant.tables.iter().any(|t| t.eq_ignore_ascii_case(table)) {
            return Err(format!(
                "access token was not issued for table {table} (issued for: {})",
                grant.tables.join(", ")
            ));
        }
        Ok(Some(grant.expires_at))
    }
}

/// Forgets the token that expires first (the map is full).
fn forget_closest_to_expiry(tokens: &mut HashMap<String, Grant>) {
    let first = tokens
        .iter()
        .min_by_key(|(_, grant)| grant.expires_at)
        .map(|(token, _)| token.clone());
    if let Some(token) = first {
        tokens.remove(&token);
    }
}

/// The token of an `authorization: Bearer <token>` value (the scheme is case-insensitive).
fn bearer_token(header: &str) -> Option<&str> {
    let (scheme, token) = header.trim().split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn oauth(ttl: Duration) -> Authenticator {
        Authenticator::new(Auth::OAuth, "id".into(), "s3cret".into(), ttl)
    }

    fn metadata(token: &str) -> MetadataMap {
        let mut m = MetadataMap::new();
        m.insert("authorization", format!("Bearer {token}").parse().unwrap());
        m
    }

    #[test]
    fn issued_tokens_open_their_tables_only() {
        let auth = oauth(DEFAULT_TOKEN_TTL);
        let issued = auth.issue(vec!["c.s.t".into()]);
        let token = issued.token.expose_secret();
        assert!(auth.check(&metadata(token), "c.s.t").is_ok());
        // Another spelling of the same table (names are case-insensitive).
        assert!(auth.check(&metadata(token), "C.S.T").is_ok());
        let err = auth.check(&metadata(token), "c.s.other").unwrap_err();
        assert_eq!(err.code(), tonic::Code::Unauthenticated);
        assert!(err.message().contains("c.s.other"), "{}", err.message());
        assert!(!err.message().contains(token));
        assert_eq!(auth.issued(), 1);
    }

    #[test]
    fn missing_unknown_malformed_and_expired_tokens_are_refused() {
        let auth = oauth(DEFAULT_TOKEN_TTL);
        let missing = auth.check(&MetadataMap::new(), "c.s.t").unwrap_err();
        assert!(
            missing.message().contains("missing"),
            "{}",
            missing.message()
        );
        let unknown = auth.check(&metadata("zbl_nope"), "c.s.t").unwrap_err();
        assert!(
            unknown.message().contains("unknown"),
            "{}",
            unknown.message()
        );
        assert!(!unknown.message().contains("zbl_nope"));
        assert!(auth.check_bearer(Some("Basic abc"), "c.s.t").is_err());
        assert!(auth.check_bearer(Some("Bearer "), "c.s.t").is_err());

        let token = auth.issue(vec!["c.s.t".into()]).token;
        auth.expire_all();
        let expired = auth
            .check(&metadata(token.expose_secret()), "c.s.t")
            .unwrap_err();
        assert!(
            expired.message().contains("expired"),
            "{}",
            expired.message()
        );
    }

    #[test]
    fn ttl_applies_to_new_tokens() {
        let auth = oauth(Duration::ZERO);
        let dead = auth.issue(vec!["c.s.t".into()]).token;
        assert_eq!(auth.remembered(), 1);
        assert!(auth
            .check_bearer(Some(&format!("Bearer {}", dead.expose_secret())), "c.s.t")
            .is_err());
        auth.set_token_ttl(Duration::from_secs(60));
        let live = auth.issue(vec!["c.s.t".into()]);
        assert_eq!(live.ttl, Duration::from_secs(60));
        let header = format!("bearer {}", live.token.expose_secret());
        assert!(auth.check_bearer(Some(&header), "c.s.t").is_ok());
    }

    #[test]
    fn disabled_accepts_anything_and_debug_hides_secrets() {
        let auth = Authenticator::new(
            Auth::Disabled,
            "id".into(),
            "s3cret".into(),
            DEFAULT_TOKEN_TTL,
        );
        assert!(auth.check(&MetadataMap::new(), "c.s.t").is_ok());
        assert!(auth.verify_client("anyone", "anything"));
        // Tokens minted with auth disabled cost nothing: none is remembered.
        for _ in 0..100 {
            auth.issue(vec!["c.s.t".into(); 50]);
        }
        assert_eq!((auth.issued(), auth.remembered()), (100, 0));

        let auth = oauth(DEFAULT_TOKEN_TTL);
        assert!(auth.verify_client("id", "s3cret"));
        assert!(!auth.verify_client("id", "wrong"));
        assert!(!auth.verify_client("other", "s3cret"));
        assert!(!auth.verify_client("id", "s3cre"));
        assert!(!auth.verify_client("id", "s3cret "));
        let token = auth.issue(vec!["c.s.t".into()]).token;
        let debug = format!("{auth:?}");
        assert!(!debug.contains("s3cret"), "{debug}");
        assert!(!debug.contains(token.expose_secret()), "{debug}");
    }

    #[test]
    fn at_most_max_tokens_are_remembered_and_the_newest_stay_valid() {
        let auth = oauth(DEFAULT_TOKEN_TTL);
        let first = auth.issue(vec!["c.s.t".into()]).token;
        // Issued later, so expiring later: the first token is the one forgotten.
        std::thread::sleep(Duration::from_millis(2));
        let mut last = None;
        for _ in 0..MAX_TOKENS + 50 {
            last = Some(auth.issue(vec!["c.s.t".into()]).token);
        }
        assert_eq!(auth.remembered(), MAX_TOKENS);
        assert_eq!(auth.issued(), MAX_TOKENS as u64 + 51);
        let header = |t: &SecretString| format!("Bearer {}", t.expose_secret());
        let newest = last.unwrap();
        let expiry = auth.check_bearer(Some(&header(&newest)), "c.s.t").unwrap();
        assert!(expiry.is_some_and(|at| at > Instant::now()));
        let forgotten = auth.check_bearer(Some(&header(&first)), "c.s.t");
        assert!(forgotten.unwrap_err().contains("unknown"));
    }
}
