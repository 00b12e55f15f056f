//! The HTTP/1.1 side of the local server, on its own port (the SDK's `unity_catalog_url`):
//!
//! - `POST /oidc/v1/token`: the OAuth client-credentials grant as the SDK sends it (Basic
//!   auth; form `scope`, `resource`, `authorization_details`, `grant_type`), answering
//!   `{"access_token", "expires_in", "token_type": "Bearer", "scope"}`. Errors use the OAuth
//!   shape `{"error", "error_description"}`: 401 for an unknown client or a wrong secret, 400
//!   for a malformed request (both terminal for the client).
//! - `GET /api/2.1/unity-catalog/tables/{full_name}`: the table's columns in the Unity
//!   Catalog REST shape (see [`super::uc`]); needs a bearer token for the table unless auth
//!   is disabled. Names are case-insensitive and answered in lowercase, as Unity Catalog
//!   stores them; an invalid name is a 400 `INVALID_PARAMETER_VALUE`. Errors use the
//!   Databricks shape `{"error_code", "message"}`.

use std::sync::Arc;

use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::header::{AUTHORIZATION, WWW_AUTHENTICATE};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Form, Json, Router};
use base64::Engine as _;
use secrecy::ExposeSecret;
use serde_json::{json, Value};
use tokio::sync::oneshot;

use tokio_util::sync::CancellationToken;

use super::names::{table_key, validate_table_name};
use super::running::{self, CuttableListener, Running};
use super::uc::UcTable;
use super::Shared;
use crate::error::LocalError;

/// The largest request body accepted (a token request from the SDK is under 1 KiB);
/// larger ones are answered 413 before they are read.
pub(crate) const MAX_BODY_BYTES: usize = 64 << 10;

/// The most tables one token may be issued for (the SDK asks for one).
pub(crate) const MAX_TOKEN_TABLES: usize = 16;

/// Binds `127.0.0.1:port` and serves the HTTP endpoints until stopped.
pub(crate) async fn serve(shared: Arc<Shared>, port: u16) -> Result<Running, LocalError> {
    let (listener, addr) = running::bind("HTTP", port).await?;
    let (stop, stopped) = oneshot::channel::<()>();
    let cut = CancellationToken::new();
    let listener = CuttableListener {
        listener,
        cut: cut.clone(),
    };
    let task = tokio::spawn(async move {
        let result = axum::serve(listener, router(shared))
            .with_graceful_shutdown(async {
                let _ = stopped.await;
            })
            .await;
        if let Err(e) = result {
            tracing::warn!(error = %e, "local Zerobus HTTP server failed");
        }
    });
    tracing::debug!(%addr, "local Zerobus HTTP server listening");
    Ok(Running::new(addr, stop, task, cut))
}

fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/oidc/v1/token", post(token))
        .route("/api/2.1/unity-catalog/tables/{full_name}", get(table))
        .fallback(|| async {
            databricks_error(
                StatusCode::NOT_FOUND,
                "ENDPOINT_NOT_FOUND",
                "no such endpoint on the local Zerobus server",
            )
        })
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(shared)
}

/// An OAuth error response (RFC 6749 §5.2).
fn oauth_error(status: StatusCode, error: &str, description: impl Into<String>) -> Response {
    let body = Json(json!({"error": error, "error_description": description.into()}));
    if status == StatusCode::UNAUTHORIZED {
        let challenge = [(WWW_AUTHENTICATE, "Basic realm=\"zerobus-local\"")];
        (status, challenge, body).into_response()
    } else {
        (status, body).into_response()
    }
}

/// A Databricks REST API error response.
fn databricks_error(status: StatusCode, code: &str, message: impl Into<String>) -> Response {
    (
        status,
        Json(json!({"error_code": code, "message": message.into()})),
    )
        .into_response()
}

/// `POST /oidc/v1/token`.
async fn token(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    Form(form): Form<Vec<(String, String)>>,
) -> Response {
    let auth = &shared.auth;
    let Some((client_id, secret)) = basic_credentials(&headers) else {
        return oauth_error(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            "client authentication failed: expected `Authorization: Basic \
             base64(client_id:client_secret)`",
        );
    };
    if !auth.verify_client(&client_id, secret.expose_secret()) {
        tracing::debug!(%client_id, "local Zerobus: token refused, unknown client or wrong secret");
        return oauth_error(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            "client authentication failed: unknown client_id or wrong client_secret",
        );
    }
    let tables = match token_request_tables(&form) {
        Ok(tables) => tables,
        Err((error, description)) => {
            return oauth_error(StatusCode::BAD_REQUEST, error, description)
        }
    };
    tracing::debug!(%client_id, ?tables, "local Zerobus: token issued");
    let issued = auth.issue(tables);
    let mut body = json!({
        "access_token": issued.token.expose_secret(),
        "token_type": "Bearer",
        "scope": "all-apis",
    });
    // Whole seconds; a lifetime under one second is left out, so the client does not cache.
    if issued.ttl.as_secs() > 0 {
        body["expires_in"] = json!(issued.ttl.as_secs());
    }
    Json(body).into_response()
}

/// The client id and secret of an `Authorization: Basic ..` header.
fn basic_credentials(headers: &HeaderMap) -> Option<(String, secrecy::SecretString)> {
    let value = headers.get(AUTHORIZATION)?.to_str().ok()?;
    let (scheme, encoded) = value.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .ok()?;
    let decoded = String::from_utf8(decoded).ok()?;
    let (id, secret) = decoded.split_once(':')?;
    Some((id.to_string(), secret.into()))
}

/// Checks the form of a client-credentials request and returns the tables it names in
/// `authorization_details` (objects of type `TABLE`). The error is `(error, description)`.
fn token_request_tables(form: &[(String, String)]) -> Result<Vec<String>, (&'static str, String)> {
    let field = |name: &str| {
        form.iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    };
    let invalid = |description: String| ("invalid_request", description);
    match field("grant_type") {
        Some("client_credentials") => {}
        Some(other) => {
            return Err((
                "unsupported_grant_type",
                format!("grant_type {other:?} is not supported (only client_credentials)"),
            ))
        }
        None => return Err(invalid("missing form field grant_type".into())),
    }
    if !field("scope").is_some_and(|s| s.split(' ').any(|s| s == "all-apis")) {
        return Err(("invalid_scope", "scope must include all-apis".into()));
    }
    let resource = field("resource").unwrap_or_default();
    if !(resource.starts_with("api://databricks/workspaces/")
        && resource.ends_with("/zerobusDirectWriteApi"))
    {
        return Err(invalid(format!(
            "resource must be api://databricks/workspaces/<workspace>/zerobusDirectWriteApi, \
             got {resource:?}"
        )));
    }
    let details = field("authorization_details")
        .ok_or_else(|| invalid("missing form field authorization_details".into()))?;
    let details: Value = serde_json::from_str(details)
        .map_err(|e| invalid(format!("authorization_details is not JSON: {e}")))?;
    let tables: Vec<String> = details
        .as_array()
        .into_iter()
        .flatten()
        .filter(|d| d["object_type"] == "TABLE")
        .filter_map(|d| d["object_full_path"].as_str().map(str::to_string))
        .collect();
    if tables.is_empty() {
        return Err(invalid(
            "authorization_details names no object of type TABLE".into(),
        ));
    }
    if tables.len() > MAX_TOKEN_TABLES {
        return Err(invalid(format!(
            "authorization_details names {} tables; a token is issued for at most \
             {MAX_TOKEN_TABLES}",
            tables.len()
        )));
    }
    for table in &tables {
        validate_table_name(table)
            .map_err(|status| invalid(format!("authorization_details: {}", status.message())))?;
    }
    Ok(tables)
}

/// `GET /api/2.1/unity-catalog/tables/{full_name}`.
async fn table(
    State(shared): State<Arc<Shared>>,
    Path(full_name): Path<String>,
    headers: HeaderMap,
) -> Response {
    let header = headers.get(AUTHORIZATION).and_then(|v| v.to_str().ok());
    if let Err(message) = shared.auth.check_bearer(header, &full_name) {
        return databricks_error(StatusCode::UNAUTHORIZED, "UNAUTHENTICATED", message);
    }
    let key = match table_key(&full_name) {
        Ok(key) => key,
        Err(status) => {
            return databricks_error(
                StatusCode::BAD_REQUEST,
                "INVALID_PARAMETER_VALUE",
                status.message(),
            )
        }
    };
    let Some(table) = shared.catalog.get(&key) else {
        return databricks_error(
            StatusCode::NOT_FOUND,
            "TABLE_DOES_NOT_EXIST",
            format!("Table '{key}' does not exist."),
        );
    };
    match UcTable::new(&key, table.schema()) {
        Ok(uc) => Json(uc).into_response(),
        Err(e) => databricks_error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "INTERNAL_ERROR",
            format!("table {key}: {e}"),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn form(details: &str) -> Vec<(String, String)> {
        [
            ("scope", "all-apis"),
            (
                "resource",
                "api://databricks/workspaces/127/zerobusDirectWriteApi",
            ),
            ("authorization_details", details),
            ("grant_type", "client_credentials"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
    }

    #[test]
    fn token_requests_name_their_tables() {
        let details = r#"[{"object_full_path":"cat","object_type":"CATALOG","privileges":["USE CATALOG"],"type":"unity_catalog_privileges"},{"object_full_path":"cat.sch","object_type":"SCHEMA","privileges":["USE SCHEMA"],"type":"unity_catalog_privileges"},{"object_full_path":"cat.sch.tbl","object_type":"TABLE","operations":["zerobuswrite"],"privileges":["SELECT","MODIFY"],"type":"unity_catalog_privileges"}]"#;
        assert_eq!(
            token_request_tables(&form(details)).unwrap(),
            ["cat.sch.tbl"]
        );
        assert_eq!(
            token_request_tables(&form("[]")).unwrap_err().0,
            "invalid_request"
        );
        let table = r#"{"object_full_path":"c.s.t","object_type":"TABLE"}"#;
        let many = format!("[{}]", vec![table; MAX_TOKEN_TABLES + 1].join(","));
        let (error, description) = token_request_tables(&form(&many)).unwrap_err();
        assert_eq!(error, "invalid_request");
        assert!(description.contains("at most 16"), "{description}");
        let mut wrong_grant = form(details);
        wrong_grant[3].1 = "password".into();
        assert_eq!(
            token_request_tables(&wrong_grant).unwrap_err().0,
            "unsupported_grant_type"
        );
    }

    #[test]
    fn basic_credentials_are_decoded() {
        let mut headers = HeaderMap::new();
        let encoded = base64::engine::general_purpose::STANDARD.encode("id:se:cret");
        headers.insert(AUTHORIZATION, format!("Basic {encoded}").parse().unwrap());
        let (id, secret) = basic_credentials(&headers).unwrap();
        assert_eq!((id.as_str(), secret.expose_secret()), ("id", "se:cret"));
        headers.insert(AUTHORIZATION, "Bearer x".parse().unwrap());
        assert!(basic_credentials(&headers).is_none());
    }
}
