//! OAuth client credentials, the tokens issued for them, and the bearer-token checks on the
//! gRPC / Flight services and the Unity Catalog endpoint.
//!
//! Tokens are random (a v4 UUID behind a `zbl_` prefix), remembered with the tables their
//! request named in `authorization_details`, and expire after the configured lifetime.
//! Neither the client secret nor a token is ever written to a log or a `Debug` output.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use secrecy::{ExposeSecret, SecretString};
use tonic::metadata::MetadataMap;
use tonic::Status;

/// The default lifetime of an issued token: one hour, as on the service.
pub const DEFAULT_TOKEN_TTL: Duration = Duration::from_secs(3600);

/// The default OAuth client id of a local server.
pub const DEFAULT_CLIENT_ID: &str = "zerobus-local";

/// Expired tokens are still recognised (to say "expired" rather than "unknown") this long.
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
    /// disabled).
    pub(crate) fn verify_client(&self, id: &str, secret: &str) -> bool {
        self.mode == Auth::Disabled
            || (id == self.client_id && secret == self.client_secret.expose_secret())
    }

    /// Issues a new token for `tables`, valid for the current lifetime.
    pub(crate) fn issue(&self, tables: Vec<String>) -> Issued {
        let token = format!("zbl_{}", uuid::Uuid::new_v4().simple());
        let now = Instant::now();
        let mut state = self.state();
        state.tokens.retain(|_, grant| {
            now.saturating_duration_since(grant.expires_at) < FORGET_EXPIRED_AFTER
        });
        let ttl = state.ttl;
        state.tokens.insert(
            token.clone(),
            Grant {
                tables,
                expires_at: now + ttl,
            },
        );
        state.issued += 1;
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

    /// `Ok` if a gRPC / Flight request with `metadata` may open a stream on `table`; else
    /// `UNAUTHENTICATED` saying why (without the token).
    pub(crate) fn check(&self, metadata: &MetadataMap, table: &str) -> Result<(), Status> {
        if self.mode == Auth::Disabled {
            return Ok(());
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

    /// `Ok` if the `authorization` header value `header` carries a known, unexpired token
    /// issued for `table`; else why not (without the token). Always `Ok` with auth disabled.
    pub(crate) fn check_bearer(&self, header: Option<&str>, table: &str) -> Result<(), String> {
        if self.mode == Auth::Disabled {
            return Ok(());
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
        if !grant.tables.iter().any(|t| t == table) {
            return Err(format!(
                "access token was not issued for table {table} (issued for: {})",
                grant.tables.join(", ")
            ));
        }
        Ok(())
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

        let auth = oauth(DEFAULT_TOKEN_TTL);
        assert!(auth.verify_client("id", "s3cret"));
        assert!(!auth.verify_client("id", "wrong"));
        assert!(!auth.verify_client("other", "s3cret"));
        let token = auth.issue(vec!["c.s.t".into()]).token;
        let debug = format!("{auth:?}");
        assert!(!debug.contains("s3cret"), "{debug}");
        assert!(!debug.contains(token.expose_secret()), "{debug}");
    }
}
