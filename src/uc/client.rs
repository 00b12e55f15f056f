//! Fetching a table's columns from Unity Catalog: a bearer token from the SDK's own
//! client-credentials flow (`POST {uc}/oidc/v1/token`), then
//! `GET {uc}/api/2.1/unity-catalog/tables/{name}`. The token is never logged or put in an
//! error message. Each request has a [`TIMEOUT`]; an error answer's body is quoted in the
//! error only up to [`MAX_BODY_IN_MESSAGE`] bytes ([`body_excerpt`]).

use std::time::Duration;

use databricks_zerobus_ingest_sdk::schema::UcTableSchema;
use databricks_zerobus_ingest_sdk::DefaultTokenFactory;

use crate::config::{is_loopback_http, WrapperConfiguration};
use crate::error::ZerobusError;

/// The longest wait for one Unity Catalog request (connection, headers and body).
pub(crate) const TIMEOUT: Duration = Duration::from_secs(30);

/// The most bytes of a response body quoted in an error message.
pub(crate) const MAX_BODY_IN_MESSAGE: usize = 512;

/// The columns of `config.table_name` as Unity Catalog describes them.
///
/// Without credentials (allowed for a loopback endpoint only) no `Authorization` header
/// is sent.
pub(crate) async fn fetch_table(
    config: &WrapperConfiguration,
) -> Result<UcTableSchema, ZerobusError> {
    let (url, text) = fetch_table_json(config).await?;
    serde_json::from_str(&text).map_err(|e| {
        ZerobusError::connection(format!(
            "Unity Catalog GET {url}: unexpected response: {e}: {}",
            body_excerpt(&text)
        ))
        .with_source(e)
    })
}

/// The request URL and the JSON text of Unity Catalog's description of
/// `config.table_name` (see [`fetch_table`]).
///
/// # Errors
/// No `unity_catalog_url` (`ConfigurationError`), the token or the request fails
/// (`TokenRefreshError`, `ConnectionError`, also on [`TIMEOUT`]), or an error answer: 401 /
/// 403 `AuthenticationError`, 404 `ConfigurationError` naming `table_name`, others
/// `ConnectionError`; the message quotes at most [`MAX_BODY_IN_MESSAGE`] bytes of the body.
pub(crate) async fn fetch_table_json(
    config: &WrapperConfiguration,
) -> Result<(String, String), ZerobusError> {
    let uc_url = config
        .unity_catalog_url
        .as_deref()
        .ok_or_else(|| ZerobusError::configuration("schema_check: needs unity_catalog_url"))?
        .trim_end_matches('/');
    let mut client = reqwest::Client::builder().timeout(TIMEOUT);
    if is_loopback_http(uc_url) {
        client = client.no_proxy();
    }
    let client = client.build().map_err(|e| {
        ZerobusError::configuration(format!("unity_catalog_url: {e}")).with_source(e)
    })?;
    let url = format!(
        "{uc_url}/api/2.1/unity-catalog/tables/{}",
        config.table_name
    );
    let mut request = client.get(&url);
    if let (Some(id), Some(secret)) = (&config.client_id, config.client_secret_str()) {
        let token = DefaultTokenFactory::get_token(
            uc_url,
            &config.table_name,
            id,
            secret,
            &workspace_id(&config.zerobus_endpoint),
        )
        .await
        .map_err(|e| {
            ZerobusError::token_refresh(format!("token for Unity Catalog: {e}")).with_source(e)
        })?;
        request = request.bearer_auth(token);
    }
    let response = request.send().await.map_err(|e| {
        let e = e.without_url();
        let why = if e.is_timeout() {
            format!("no answer within {} s", TIMEOUT.as_secs())
        } else {
            e.to_string()
        };
        ZerobusError::connection(format!("Unity Catalog GET {url}: {why}")).with_source(e)
    })?;
    let status = response.status();
    if !status.is_success() {
        let body = body_excerpt(&error_body(response).await);
        let message = format!("Unity Catalog GET {url}: HTTP {status}: {body}");
        return Err(match status.as_u16() {
            401 | 403 => ZerobusError::authentication(message),
            404 => ZerobusError::configuration(format!("table_name: {message}")),
            _ => ZerobusError::connection(message),
        });
    }
    let text = response.text().await.map_err(|e| {
        let e = e.without_url();
        let why = if e.is_timeout() {
            format!("the answer did not arrive within {} s", TIMEOUT.as_secs())
        } else {
            format!("reading the answer: {e}")
        };
        ZerobusError::connection(format!("Unity Catalog GET {url}: {why}")).with_source(e)
    })?;
    Ok((url, text))
}

/// The start of an error answer's body: enough for [`body_excerpt`], without reading
/// (or waiting for) the rest.
async fn error_body(mut response: reqwest::Response) -> String {
    let mut body = Vec::new();
    while body.len() <= MAX_BODY_IN_MESSAGE {
        match response.chunk().await {
            Ok(Some(chunk)) => body.extend_from_slice(&chunk),
            Ok(None) | Err(_) => break,
        }
    }
    String::from_utf8_lossy(&body).into_owned()
}

/// `body` as an error message quotes it: its first [`MAX_BODY_IN_MESSAGE`] bytes (cut at
/// a character boundary), then `…` if there was more.
pub(crate) fn body_excerpt(body: &str) -> String {
    if body.len() <= MAX_BODY_IN_MESSAGE {
        return body.to_string();
    }
    let mut end = MAX_BODY_IN_MESSAGE;
    while !body.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &body[..end])
}

/// The workspace id the SDK derives from the endpoint: the first label of its host.
fn workspace_id(endpoint: &str) -> String {
    let rest = endpoint
        .strip_prefix("https://")
        .or_else(|| endpoint.strip_prefix("http://"))
        .unwrap_or(endpoint);
    rest.split('.').next().unwrap_or_default().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_bodies_are_cut_at_a_character_boundary() {
        assert_eq!(body_excerpt("short"), "short");
        let exact = "x".repeat(MAX_BODY_IN_MESSAGE);
        assert_eq!(body_excerpt(&exact), exact);
        let long = "y".repeat(10_000);
        assert_eq!(
            body_excerpt(&long),
            format!("{}…", &long[..MAX_BODY_IN_MESSAGE])
        );
        // 'é' is two bytes: byte 512 falls inside the 257th one.
        let accents = format!("a{}", "é".repeat(600));
        let cut = body_excerpt(&accents);
        assert_eq!(cut, format!("a{}…", "é".repeat(255)));
    }

    #[test]
    fn workspace_is_the_first_host_label() {
        assert_eq!(workspace_id("https://123.zerobus.cloud"), "123");
        assert_eq!(workspace_id("http://127.0.0.1:5"), "127");
    }
}
