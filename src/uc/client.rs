//! Fetching a table's columns from Unity Catalog: a bearer token from the SDK's own
//! client-credentials flow (`POST {uc}/oidc/v1/token`), then
//! `GET {uc}/api/2.1/unity-catalog/tables/{name}`. The token is never logged or put in an
//! error message.

use std::time::Duration;

use databricks_zerobus_ingest_sdk::schema::UcTableSchema;
use databricks_zerobus_ingest_sdk::DefaultTokenFactory;

use crate::config::{is_loopback_http, WrapperConfiguration};
use crate::error::ZerobusError;

const TIMEOUT: Duration = Duration::from_secs(30);

/// The columns of `config.table_name` as Unity Catalog describes them.
///
/// Without credentials (allowed for a loopback endpoint only) no `Authorization` header
/// is sent.
pub(crate) async fn fetch_table(
    config: &WrapperConfiguration,
) -> Result<UcTableSchema, ZerobusError> {
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
            ZerobusError::token_refresh(format!("token for the Unity Catalog schema check: {e}"))
                .with_source(e)
        })?;
        request = request.bearer_auth(token);
    }
    let response = request.send().await.map_err(|e| {
        let e = e.without_url();
        ZerobusError::connection(format!("Unity Catalog GET {url}: {e}")).with_source(e)
    })?;
    let status = response.status();
    if !status.is_success() {
        let body = response.text().await.unwrap_or_default();
        let message = format!("Unity Catalog GET {url}: HTTP {status}: {body}");
        return Err(match status.as_u16() {
            401 | 403 => ZerobusError::authentication(message),
            404 => ZerobusError::configuration(format!("table_name: {message}")),
            _ => ZerobusError::connection(message),
        });
    }
    response.json().await.map_err(|e| {
        let e = e.without_url();
        ZerobusError::connection(format!("Unity Catalog GET {url}: unexpected response: {e}"))
            .with_source(e)
    })
}

/// The workspace id the SDK derives from the endpoint: the first label of its host.
fn workspace_id(endpoint: &str) -> String {
    let rest = endpoint
        .strip_prefix("https://")
        .or_else(|| endpoint.strip_prefix("http://"))
        .unwrap_or(endpoint);
    rest.split('.').next().unwrap_or_default().to_string()
}
