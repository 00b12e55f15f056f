//! Tests of the configuration: builder, validation, YAML, environment, precedence.

use super::*;
use std::collections::HashMap;
use std::io::Write;

const ENDPOINT: &str = "https://123.zerobus.us-west-2.cloud.databricks.com";

/// A configuration that passes validation with the writer enabled.
fn valid() -> WrapperConfiguration {
    WrapperConfiguration::new(ENDPOINT, "cat.sch.tbl")
        .with_credentials("id", "secret")
        .with_unity_catalog("https://workspace.cloud.databricks.com")
}

/// The message of a `ConfigurationError`; panics on any other outcome.
fn config_message<T: std::fmt::Debug>(result: Result<T>) -> String {
    match result {
        Err(ZerobusError::ConfigurationError { message, .. }) => message,
        other => panic!("expected a configuration error, got {other:?}"),
    }
}

fn assert_invalid(config: &WrapperConfiguration, field: &str) -> String {
    let message = config_message(config.validate());
    assert!(
        message.starts_with(&format!("{field}:")),
        "message should start with {field}: {message}"
    );
    message
}

fn env(pairs: &[(&str, &str)]) -> HashMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn apply_env(config: WrapperConfiguration, pairs: &[(&str, &str)]) -> Result<WrapperConfiguration> {
    let map = env(pairs);
    config.with_env_overrides_from(|k| map.get(k).cloned())
}

#[test]
fn defaults_of_new() {
    let c = WrapperConfiguration::new("https://e", String::from("t"));
    assert_eq!(c.zerobus_endpoint, "https://e");
    assert_eq!(c.table_name, "t");
    assert!(c.unity_catalog_url.is_none() && c.client_id.is_none());
    assert!(c.client_secret.is_none() && c.observability_config.is_none());
    assert!(!c.observability_enabled && !c.debug_enabled && !c.zerobus_writer_disabled);
    assert_eq!(
        (c.debug_arrow_enabled, c.debug_protobuf_enabled),
        (None, None)
    );
    assert!(c.debug_output_dir.is_none());
    assert_eq!(c.debug_flush_interval_secs, 5);
    assert_eq!(c.debug_max_file_size, Some(10 * 1024 * 1024));
    assert_eq!(c.debug_max_files_retained, Some(10));
    assert_eq!(c.debug_rotation_interval_secs, Some(3600));
    assert_eq!(
        (
            c.retry_max_attempts,
            c.retry_base_delay_ms,
            c.retry_max_delay_ms
        ),
        (5, 100, 30_000)
    );
    assert_eq!(c.max_record_size_bytes, DEFAULT_MAX_RECORD_SIZE_BYTES);
    assert_eq!(DEFAULT_MAX_RECORD_SIZE_BYTES, 10_420_224);
}

#[test]
fn builder_sets_every_field() {
    let otlp = OtlpConfig {
        endpoint: Some("http://localhost:4317".into()),
        service_name: Some("svc".into()),
    };
    let c = WrapperConfiguration::new("https://e".to_string(), "t".to_string())
        .with_credentials("id".to_string(), "pw".to_string())
        .with_unity_catalog("https://uc")
        .with_observability(otlp.clone())
        .with_debug_output(PathBuf::from("/tmp/d"))
        .with_debug_enabled(false)
        .with_debug_arrow_enabled(true)
        .with_debug_protobuf_enabled(false)
        .with_debug_max_files_retained(None)
        .with_debug_flush_interval_secs(7)
        .with_debug_max_file_size(Some(99))
        .with_debug_rotation_interval_secs(None)
        .with_retry_config(3, 10, 20)
        .with_zerobus_writer_disabled(true)
        .with_max_record_size_bytes(1234);
    assert_eq!(c.client_id.as_deref(), Some("id"));
    assert_eq!(c.client_secret_str(), Some("pw"));
    assert_eq!(c.unity_catalog_url.as_deref(), Some("https://uc"));
    assert!(c.observability_enabled);
    assert_eq!(c.observability_config, Some(otlp));
    assert_eq!(c.debug_output_dir, Some(PathBuf::from("/tmp/d")));
    assert!(!c.debug_enabled);
    assert_eq!(
        (c.debug_arrow_enabled, c.debug_protobuf_enabled),
        (Some(true), Some(false))
    );
    assert_eq!(c.debug_max_files_retained, None);
    assert_eq!(c.debug_flush_interval_secs, 7);
    assert_eq!(c.debug_max_file_size, Some(99));
    assert_eq!(c.debug_rotation_interval_secs, None);
    assert_eq!(
        (
            c.retry_max_attempts,
            c.retry_base_delay_ms,
            c.retry_max_delay_ms
        ),
        (3, 10, 20)
    );
    assert!(c.zerobus_writer_disabled);
    assert_eq!(c.max_record_size_bytes, 1234);
}

#[test]
fn with_debug_output_turns_on_legacy_flag() {
    let c = WrapperConfiguration::new(ENDPOINT, "t").with_debug_output(PathBuf::from("d"));
    assert!(c.debug_enabled);
    assert!(c.debug_arrow_active() && c.debug_protobuf_active());
}

#[test]
fn legacy_debug_rule_all_combinations() {
    // (debug_enabled, arrow, protobuf) -> (arrow active, protobuf active)
    let cases = [
        (false, None, None, (false, false)),
        (true, None, None, (true, true)),
        (false, Some(true), None, (true, false)),
        (true, Some(true), None, (true, false)),
        (false, Some(false), None, (false, false)),
        (true, Some(false), None, (false, false)),
        (false, None, Some(true), (false, true)),
        (true, None, Some(true), (false, true)),
        (false, None, Some(false), (false, false)),
        (true, None, Some(false), (false, false)),
        (false, Some(true), Some(true), (true, true)),
        (true, Some(true), Some(true), (true, true)),
        (false, Some(true), Some(false), (true, false)),
        (true, Some(true), Some(false), (true, false)),
        (false, Some(false), Some(true), (false, true)),
        (true, Some(false), Some(true), (false, true)),
        (false, Some(false), Some(false), (false, false)),
        (true, Some(false), Some(false), (false, false)),
    ];
    for (legacy, arrow, protobuf, expected) in cases {
        let mut c = WrapperConfiguration::new(ENDPOINT, "t").with_debug_enabled(legacy);
        c.debug_arrow_enabled = arrow;
        c.debug_protobuf_enabled = protobuf;
        assert_eq!(
            (c.debug_arrow_active(), c.debug_protobuf_active()),
            expected,
            "debug_enabled={legacy} arrow={arrow:?} protobuf={protobuf:?}"
        );
    }
}

#[test]
fn secret_is_redacted_in_debug_output() {
    let c = valid().with_credentials("id", "hunter2-very-secret");
    let debug = format!("{c:?}");
    assert!(!debug.contains("hunter2-very-secret"), "{debug}");
    assert!(debug.contains("REDACTED"), "{debug}");
    let pretty = format!("{:#?}", c.clone());
    assert!(!pretty.contains("hunter2-very-secret"));
    assert_eq!(c.client_secret_str(), Some("hunter2-very-secret"));
    assert_eq!(
        WrapperConfiguration::new(ENDPOINT, "t").client_secret_str(),
        None
    );
}

#[test]
fn valid_configurations() {
    valid().validate().expect("full configuration");
    // Writer disabled: no credentials needed.
    WrapperConfiguration::new(ENDPOINT, "t")
        .with_debug_output(PathBuf::from("d"))
        .with_zerobus_writer_disabled(true)
        .validate()
        .expect("writer disabled");
    WrapperConfiguration::new(ENDPOINT, "t")
        .with_debug_protobuf_enabled(true)
        .with_debug_output(PathBuf::from("d"))
        .with_zerobus_writer_disabled(true)
        .validate()
        .expect("writer disabled, protobuf only");
    // Loopback plain http: no credentials needed.
    for endpoint in [
        "http://127.0.0.1",
        "http://127.0.0.1:50051",
        "http://localhost:8080/path",
        "http://LOCALHOST",
        "http://[::1]:50051",
    ] {
        WrapperConfiguration::new(endpoint, "t")
            .validate()
            .unwrap_or_else(|e| panic!("{endpoint}: {e}"));
    }
    // Boundaries.
    valid()
        .with_retry_config(1, 100, 100)
        .with_max_record_size_bytes(1)
        .with_debug_max_files_retained(Some(1))
        .with_debug_max_file_size(None)
        .with_debug_rotation_interval_secs(None)
        .validate()
        .expect("boundaries");
}

#[test]
fn endpoint_must_be_an_http_url() {
    for endpoint in [
        "",
        "ftp://x",
        "grpc://x",
        "x.databricks.com",
        "https://",
        "http:///x",
    ] {
        let message = assert_invalid(&valid_with_endpoint(endpoint), "zerobus_endpoint");
        assert!(message.contains("http://"), "{message}");
    }
}

fn valid_with_endpoint(endpoint: &str) -> WrapperConfiguration {
    let mut c = valid();
    c.zerobus_endpoint = endpoint.to_string();
    c
}

#[test]
fn urls_are_checked_by_a_url_parser_naming_the_option() {
    let cases = [
        ("http://host:notaport", "invalid port number"),
        ("https://host:99999", "invalid port number"),
        ("http://ho st", "invalid"),
        ("http://[::1", "invalid"),
        ("http://host/x?q=1", "query or fragment"),
        ("http://host#frag", "query or fragment"),
    ];
    for (url, why) in cases {
        let message = assert_invalid(&valid_with_endpoint(url), "zerobus_endpoint");
        assert!(message.contains(why), "{url}: {message}");
        let message = assert_invalid(&valid().with_unity_catalog(url), "unity_catalog_url");
        assert!(message.contains(why), "{url}: {message}");
    }
    // Credentials in the URL are refused without echoing them.
    let message = assert_invalid(
        &valid().with_unity_catalog("https://user:s3cret@uc.example.com"),
        "unity_catalog_url",
    );
    assert!(!message.contains("s3cret"), "{message}");
    for url in [
        "http://127.0.0.1:50051",
        "http://[::1]:1",
        "https://x.cloud.databricks.com/",
        "https://uc.example.com/prefix/path",
    ] {
        valid_with_endpoint(url)
            .with_unity_catalog(url)
            .validate()
            .unwrap_or_else(|e| panic!("{url}: {e}"));
    }
}

#[test]
fn unity_catalog_url_must_be_an_http_url() {
    assert_invalid(
        &valid().with_unity_catalog("workspace.com"),
        "unity_catalog_url",
    );
    assert_invalid(&valid().with_unity_catalog(""), "unity_catalog_url");
    valid()
        .with_unity_catalog("http://uc")
        .validate()
        .expect("http is fine");
}

#[test]
fn table_name_parts_have_at_most_255_characters() {
    let longest = format!("c.s.{}", "t".repeat(255));
    validate_table_name(&longest).expect("255 characters");
    let message = config_message(validate_table_name(&format!("c.{}.t", "s".repeat(300))));
    assert!(
        message.starts_with("table_name: part 2 has 300 characters"),
        "{message}"
    );
    assert!(message.len() < 400, "the name is not echoed: {message}");
}

#[test]
fn table_names() {
    for name in ["my_table", "s.t", "c.s.t", "Cat_1.sch_2.T3", "_", "123"] {
        validate_table_name(name).unwrap_or_else(|e| panic!("{name}: {e}"));
    }
    let cases = [
        ("", "must not be empty"),
        ("table-name", "part 1 ('table-name')"),
        ("schema..table", "part 2 of 'schema..table' is empty"),
        (".t", "part 1 of '.t' is empty"),
        ("s.t.", "part 3 of 's.t.' is empty"),
        ("a.b.c.d", "4 dot-separated parts"),
        ("tab le", "' '"),
        ("s.täble", "part 2 ('täble')"),
    ];
    for (name, expected) in cases {
        let message = config_message(validate_table_name(name));
        assert!(message.starts_with("table_name:"), "{message}");
        assert!(message.contains(expected), "{name}: {message}");
        let mut c = valid();
        c.table_name = name.to_string();
        assert_invalid(&c, "table_name");
    }
}

#[test]
fn writer_disabled_needs_a_debug_format() {
    let c = WrapperConfiguration::new(ENDPOINT, "t").with_zerobus_writer_disabled(true);
    let message = assert_invalid(&c, "zerobus_writer_disabled");
    assert!(message.contains("debug_arrow_enabled") && message.contains("debug_protobuf_enabled"));
    // Explicit flags both false override the legacy flag.
    let c = WrapperConfiguration::new(ENDPOINT, "t")
        .with_debug_output(PathBuf::from("d"))
        .with_debug_arrow_enabled(false)
        .with_debug_protobuf_enabled(false)
        .with_zerobus_writer_disabled(true);
    assert_invalid(&c, "zerobus_writer_disabled");
}

#[test]
fn writer_enabled_needs_credentials() {
    let mut c = valid();
    c.client_id = None;
    assert_invalid(&c, "client_id");
    c.client_id = Some(String::new());
    assert_invalid(&c, "client_id");

    let mut c = valid();
    c.client_secret = None;
    assert_invalid(&c, "client_secret");
    c.client_secret = Some(SecretString::from(""));
    assert_invalid(&c, "client_secret");

    let mut c = valid();
    c.unity_catalog_url = None;
    assert_invalid(&c, "unity_catalog_url");
}

#[test]
fn loopback_lookalikes_still_need_credentials() {
    for endpoint in [
        "https://localhost",
        "https://127.0.0.1:443",
        "http://localhost.evil.com",
        "http://127.0.0.1.nip.io",
        "http://10.0.0.1",
    ] {
        let c = WrapperConfiguration::new(endpoint, "t");
        assert_invalid(&c, "client_id");
    }
    // Not loopback, and not even valid endpoints.
    for endpoint in ["http://localhost@evil.com", "http://[::1.evil.com"] {
        let c = WrapperConfiguration::new(endpoint, "t");
        assert_invalid(&c, "zerobus_endpoint");
    }
}

#[test]
fn active_debug_format_needs_output_dir() {
    let c = valid().with_debug_enabled(true);
    assert_invalid(&c, "debug_output_dir");
    let c = valid().with_debug_protobuf_enabled(true);
    assert_invalid(&c, "debug_output_dir");
    let c = valid().with_debug_output(PathBuf::new());
    assert_invalid(&c, "debug_output_dir");
    // Inactive formats need no directory.
    valid()
        .with_debug_arrow_enabled(false)
        .validate()
        .expect("no debug");
}

#[test]
fn numeric_rules() {
    assert_invalid(&valid().with_retry_config(0, 1, 1), "retry_max_attempts");
    let message = assert_invalid(
        &valid().with_retry_config(3, 200, 100),
        "retry_max_delay_ms",
    );
    assert!(message.contains("retry_base_delay_ms"), "{message}");
    assert_invalid(
        &valid().with_max_record_size_bytes(0),
        "max_record_size_bytes",
    );
    assert_invalid(
        &valid().with_debug_flush_interval_secs(0),
        "debug_flush_interval_secs",
    );
    assert_invalid(
        &valid().with_debug_max_files_retained(Some(0)),
        "debug_max_files_retained",
    );
    assert_invalid(
        &valid().with_debug_max_file_size(Some(0)),
        "debug_max_file_size",
    );
    assert_invalid(
        &valid().with_debug_rotation_interval_secs(Some(0)),
        "debug_rotation_interval_secs",
    );
}

const FULL_YAML: &str = r#"
endpoint: https://e.example.com
table_name: cat.sch.tbl
unity_catalog_url: https://uc.example.com
client_id: my-id
client_secret: my-yaml-secret
writer_disabled: true
max_record_size_bytes: 4096
retry: { max_attempts: 7, base_delay_ms: 50, max_delay_ms: 900 }
observability: { enabled: true, endpoint: "http://otel:4317", service_name: svc }
debug:
  enabled: true
  arrow_enabled: true
  protobuf_enabled: false
  output_dir: "/tmp/debug"
  max_files_retained: 20
  flush_interval_secs: 9
  max_file_size: 1000
  rotation_interval_secs: 60
"#;

#[test]
fn yaml_full() {
    let c = WrapperConfiguration::from_yaml_str(FULL_YAML).expect("parse");
    assert_eq!(c.zerobus_endpoint, "https://e.example.com");
    assert_eq!(c.table_name, "cat.sch.tbl");
    assert_eq!(
        c.unity_catalog_url.as_deref(),
        Some("https://uc.example.com")
    );
    assert_eq!(c.client_id.as_deref(), Some("my-id"));
    assert_eq!(c.client_secret_str(), Some("my-yaml-secret"));
    assert!(c.zerobus_writer_disabled);
    assert_eq!(c.max_record_size_bytes, 4096);
    assert_eq!(
        (
            c.retry_max_attempts,
            c.retry_base_delay_ms,
            c.retry_max_delay_ms
        ),
        (7, 50, 900)
    );
    assert!(c.observability_enabled);
    assert_eq!(
        c.observability_config,
        Some(OtlpConfig {
            endpoint: Some("http://otel:4317".into()),
            service_name: Some("svc".into())
        })
    );
    assert!(c.debug_enabled);
    assert_eq!(
        (c.debug_arrow_enabled, c.debug_protobuf_enabled),
        (Some(true), Some(false))
    );
    assert_eq!(c.debug_output_dir, Some(PathBuf::from("/tmp/debug")));
    assert_eq!(c.debug_max_files_retained, Some(20));
    assert_eq!(c.debug_flush_interval_secs, 9);
    assert_eq!(c.debug_max_file_size, Some(1000));
    assert_eq!(c.debug_rotation_interval_secs, Some(60));
    c.validate().expect("valid");
}

#[test]
fn yaml_partial_keeps_defaults() {
    let c =
        WrapperConfiguration::from_yaml_str("endpoint: https://e\ntable_name: t\n").expect("parse");
    let d = WrapperConfiguration::new("https://e", "t");
    assert_eq!(format!("{c:?}"), format!("{d:?}"));

    let c = WrapperConfiguration::from_yaml_str(
        "endpoint: https://e\ntable_name: t\nretry: { max_attempts: 2 }\n\
         debug: { max_files_retained: null, rotation_interval_secs: null }\n\
         observability: { enabled: false }\n",
    )
    .expect("parse");
    assert_eq!(c.retry_max_attempts, 2);
    assert_eq!(c.retry_base_delay_ms, 100);
    assert_eq!(c.debug_max_files_retained, None, "null = unlimited");
    assert_eq!(c.debug_rotation_interval_secs, None);
    assert_eq!(
        c.debug_max_file_size,
        Some(10 * 1024 * 1024),
        "missing = default"
    );
    assert!(!c.observability_enabled && c.observability_config.is_none());
}

#[test]
fn yaml_errors_name_key_and_location() {
    let message = config_message(WrapperConfiguration::from_yaml_str(
        "endpoint: https://e\ntable_name: t\ntable_nmae: x\n",
    ));
    assert!(
        message.contains("table_nmae") && message.contains("line 3"),
        "{message}"
    );

    let message = config_message(WrapperConfiguration::from_yaml_str(
        "endpoint: https://e\ntable_name: t\ndebug:\n  outptu_dir: /x\n",
    ));
    assert!(
        message.contains("outptu_dir") && message.contains("line 4"),
        "{message}"
    );

    let message = config_message(WrapperConfiguration::from_yaml_str(
        "endpoint: https://e\ntable_name: t\nretry:\n  max_attempts: many\n",
    ));
    assert!(
        message.contains("line 4, column") && message.contains("u32"),
        "{message}"
    );
    assert!(
        !message.ends_with("column 17"),
        "location not repeated: {message}"
    );

    let message = config_message(WrapperConfiguration::from_yaml_str("table_name: t\n"));
    assert!(message.contains("endpoint"), "{message}");

    let message = config_message(WrapperConfiguration::from_yaml_str(
        "endpoint: https://e\ntable_name: t\nclient_secret: [hunter2]\n",
    ));
    assert!(
        message.contains("client_secret") && !message.contains("hunter2"),
        "{message}"
    );
    // An unquoted number is kept as its raw text.
    let c = WrapperConfiguration::from_yaml_str(
        "endpoint: https://e\ntable_name: t\nclient_secret: 00987654321\n",
    )
    .expect("numeric secret");
    assert_eq!(c.client_secret_str(), Some("00987654321"));
}

#[test]
fn yaml_file_errors() {
    let missing = std::env::temp_dir().join("no-such-dir-zerobus/config.yaml");
    match WrapperConfiguration::from_yaml_file(&missing) {
        Err(ZerobusError::IoError { path, .. }) => assert_eq!(path, missing),
        other => panic!("expected an IoError, got {other:?}"),
    }
    let mut file = tempfile::NamedTempFile::new().expect("temp file");
    writeln!(file, "endpoint: https://e\ntable_name: [").expect("write");
    let message = config_message(WrapperConfiguration::from_yaml_file(file.path()));
    assert!(
        message.starts_with(&file.path().display().to_string()),
        "{message}"
    );
    assert!(message.contains("line"), "{message}");
}

const ALL_ENV: &[(&str, &str)] = &[
    ("ZEROBUS_ENDPOINT", "https://env.example.com"),
    ("ZEROBUS_TABLE_NAME", "env.sch.tbl"),
    ("ZEROBUS_CLIENT_ID", "env-id"),
    ("ZEROBUS_CLIENT_SECRET", "env-secret"),
    ("ZEROBUS_UNITY_CATALOG_URL", "https://env-uc"),
    ("ZEROBUS_WRITER_DISABLED", "yes"),
    ("ZEROBUS_MAX_RECORD_SIZE_BYTES", "2048"),
    ("DEBUG_ENABLED", "1"),
    ("DEBUG_ARROW_ENABLED", "false"),
    ("DEBUG_PROTOBUF_ENABLED", "TRUE"),
    ("DEBUG_OUTPUT_DIR", "/env/debug"),
    ("DEBUG_MAX_FILES_RETAINED", "unlimited"),
    ("DEBUG_FLUSH_INTERVAL_SECS", " 3 "),
    ("DEBUG_MAX_FILE_SIZE", "4096"),
    ("DEBUG_ROTATION_INTERVAL_SECS", "none"),
];

#[test]
fn env_sets_every_variable() {
    let c = apply_env(WrapperConfiguration::new("https://e", "t"), ALL_ENV).expect("env");
    assert_eq!(c.zerobus_endpoint, "https://env.example.com");
    assert_eq!(c.table_name, "env.sch.tbl");
    assert_eq!(c.client_id.as_deref(), Some("env-id"));
    assert_eq!(c.client_secret_str(), Some("env-secret"));
    assert_eq!(c.unity_catalog_url.as_deref(), Some("https://env-uc"));
    assert!(c.zerobus_writer_disabled);
    assert_eq!(c.max_record_size_bytes, 2048);
    assert!(c.debug_enabled);
    assert_eq!(
        (c.debug_arrow_enabled, c.debug_protobuf_enabled),
        (Some(false), Some(true))
    );
    assert_eq!(c.debug_output_dir, Some(PathBuf::from("/env/debug")));
    assert_eq!(c.debug_max_files_retained, None);
    assert_eq!(c.debug_flush_interval_secs, 3);
    assert_eq!(c.debug_max_file_size, Some(4096));
    assert_eq!(c.debug_rotation_interval_secs, None);

    let c = apply_env(
        WrapperConfiguration::new("https://e", "t"),
        &[
            ("DEBUG_MAX_FILES_RETAINED", "20"),
            ("DEBUG_MAX_FILE_SIZE", "None"),
        ],
    )
    .expect("env");
    assert_eq!(c.debug_max_files_retained, Some(20));
    assert_eq!(c.debug_max_file_size, None);
}

#[test]
fn env_booleans() {
    for (value, expected) in [
        ("true", true),
        ("TRUE", true),
        ("1", true),
        ("yes", true),
        ("Yes", true),
        ("false", false),
        ("False", false),
        ("0", false),
        ("no", false),
        ("NO", false),
    ] {
        let c = apply_env(valid(), &[("ZEROBUS_WRITER_DISABLED", value)]).expect(value);
        assert_eq!(c.zerobus_writer_disabled, expected, "{value}");
    }
}

#[test]
fn env_bad_values_name_variable_and_value() {
    let cases = [
        ("ZEROBUS_WRITER_DISABLED", "maybe"),
        ("ZEROBUS_MAX_RECORD_SIZE_BYTES", "10MB"),
        ("DEBUG_ENABLED", "on"),
        ("DEBUG_ARROW_ENABLED", "2"),
        ("DEBUG_PROTOBUF_ENABLED", "y"),
        ("DEBUG_MAX_FILES_RETAINED", "-1"),
        ("DEBUG_FLUSH_INTERVAL_SECS", "5s"),
        ("DEBUG_MAX_FILE_SIZE", "big"),
        ("DEBUG_ROTATION_INTERVAL_SECS", "1h"),
        ("ZEROBUS_TRANSPORT", "carrier_pigeon"),
    ];
    for (name, value) in cases {
        let message = config_message(apply_env(
            valid(),
            &[(name, value), ("ZEROBUS_CLIENT_SECRET", "top-secret-env")],
        ));
        assert!(message.starts_with(&format!("{name}:")), "{message}");
        assert!(message.contains(&format!("'{value}'")), "{message}");
        assert!(!message.contains("top-secret-env"), "{message}");
    }
}

#[test]
fn env_empty_value_counts_as_unset() {
    let c = apply_env(
        valid(),
        &[("ZEROBUS_CLIENT_ID", "  "), ("DEBUG_ENABLED", "")],
    )
    .expect("env");
    assert_eq!(c.client_id.as_deref(), Some("id"));
    assert!(!c.debug_enabled);
}

#[test]
fn from_env_requires_endpoint_and_table() {
    let map = env(&[("ZEROBUS_TABLE_NAME", "t")]);
    let message = config_message(WrapperConfiguration::from_env_lookup(|k| {
        map.get(k).cloned()
    }));
    assert!(message.starts_with("ZEROBUS_ENDPOINT:"), "{message}");

    let map = env(&[
        ("ZEROBUS_ENDPOINT", "https://e"),
        ("ZEROBUS_TABLE_NAME", ""),
    ]);
    let message = config_message(WrapperConfiguration::from_env_lookup(|k| {
        map.get(k).cloned()
    }));
    assert!(message.starts_with("ZEROBUS_TABLE_NAME:"), "{message}");

    let map = env(ALL_ENV);
    let c = WrapperConfiguration::from_env_lookup(|k| map.get(k).cloned()).expect("env");
    assert_eq!(c.zerobus_endpoint, "https://env.example.com");
    assert_eq!(c.debug_flush_interval_secs, 3);
}

#[test]
fn precedence_defaults_yaml_env_builder() {
    let mut file = tempfile::NamedTempFile::new().expect("temp file");
    write!(
        file,
        "endpoint: https://yaml\ntable_name: yaml_table\nclient_id: yaml-id\n\
         retry: {{ max_attempts: 9 }}\ndebug: {{ flush_interval_secs: 8, max_file_size: 77 }}\n"
    )
    .expect("write");
    let env_pairs = [
        ("ZEROBUS_TABLE_NAME", "env_table"),
        ("DEBUG_FLUSH_INTERVAL_SECS", "4"),
    ];

    let c = WrapperConfiguration::from_yaml_file(file.path())
        .and_then(|c| apply_env(c, &env_pairs))
        .expect("load")
        .with_debug_max_file_size(Some(55));
    assert_eq!(c.zerobus_endpoint, "https://yaml", "YAML over default");
    assert_eq!(c.client_id.as_deref(), Some("yaml-id"));
    assert_eq!(c.retry_max_attempts, 9);
    assert_eq!(c.retry_base_delay_ms, 100, "default kept");
    assert_eq!(c.table_name, "env_table", "env over YAML");
    assert_eq!(c.debug_flush_interval_secs, 4, "env over YAML");
    assert_eq!(c.debug_max_file_size, Some(55), "builder over YAML");

    let map = env(&env_pairs);
    let c = WrapperConfiguration::load_with(Some(file.path()), |k| map.get(k).cloned())
        .expect("load_with");
    assert_eq!(
        (c.table_name.as_str(), c.debug_flush_interval_secs),
        ("env_table", 4)
    );
    assert_eq!(c.debug_max_file_size, Some(77));

    let map = env(&[
        ("ZEROBUS_ENDPOINT", "https://e"),
        ("ZEROBUS_TABLE_NAME", "t"),
    ]);
    let c = WrapperConfiguration::load_with(None, |k| map.get(k).cloned()).expect("env only");
    assert_eq!(c.zerobus_endpoint, "https://e");
}

#[test]
fn transport_from_builder_yaml_and_env() {
    assert_eq!(valid().transport, TransportKind::Protobuf);
    let built = valid().with_transport(TransportKind::ArrowFlight);
    assert_eq!(built.transport, TransportKind::ArrowFlight);

    let yaml = "endpoint: https://e.example.com\ntable_name: t\ntransport: arrow_flight\n";
    let from_yaml = WrapperConfiguration::from_yaml_str(yaml).expect("yaml");
    assert_eq!(from_yaml.transport, TransportKind::ArrowFlight);
    let bad = "endpoint: https://e.example.com\ntable_name: t\ntransport: pigeon\n";
    assert!(config_message(WrapperConfiguration::from_yaml_str(bad)).contains("pigeon"));

    let from_env = apply_env(from_yaml, &[("ZEROBUS_TRANSPORT", " Protobuf ")]).expect("env");
    assert_eq!(from_env.transport, TransportKind::Protobuf);
    for (text, kind) in [
        ("arrow-flight", TransportKind::ArrowFlight),
        ("ARROW_FLIGHT", TransportKind::ArrowFlight),
        ("protobuf", TransportKind::Protobuf),
    ] {
        assert_eq!(text.parse::<TransportKind>().expect(text), kind);
        assert_eq!(
            kind.as_str().parse::<TransportKind>().expect("round trip"),
            kind
        );
    }
}

#[test]
fn schema_check_from_builder_yaml_and_env() {
    assert!(!valid().schema_check, "off by default");
    assert!(valid().with_schema_check(true).schema_check);

    let yaml = "endpoint: https://e.example.com\ntable_name: t\nschema_check: true\n";
    let from_yaml = WrapperConfiguration::from_yaml_str(yaml).expect("yaml");
    assert!(from_yaml.schema_check);
    let from_env = apply_env(from_yaml, &[("ZEROBUS_SCHEMA_CHECK", "no")]).expect("env");
    assert!(!from_env.schema_check);

    let mut no_catalog = valid().with_schema_check(true);
    no_catalog.unity_catalog_url = None;
    no_catalog.zerobus_endpoint = "http://127.0.0.1:5000".into();
    let message = config_message(no_catalog.validate());
    assert!(message.starts_with("schema_check:"), "{message}");
}

#[test]
fn max_open_schemas_from_builder_yaml_and_env_and_its_bound() {
    assert_eq!(valid().max_open_schemas(), DEFAULT_MAX_OPEN_SCHEMAS);
    assert_eq!(valid().with_max_open_schemas(3).max_open_schemas(), 3);
    let yaml = "endpoint: https://e.example.com\ntable_name: t\nmax_open_schemas: 2\n";
    assert_eq!(
        WrapperConfiguration::from_yaml_str(yaml)
            .unwrap()
            .max_open_schemas(),
        2
    );
    let from_env = valid()
        .with_env_overrides_from(|name| (name == "ZEROBUS_MAX_OPEN_SCHEMAS").then(|| "5".into()))
        .unwrap();
    assert_eq!(from_env.max_open_schemas(), 5);
    valid()
        .with_max_open_schemas(1)
        .validate()
        .expect("1 is fine");
    let message = config_message(valid().with_max_open_schemas(0).validate());
    assert!(
        message.starts_with("max_open_schemas: must be at least 1"),
        "{message}"
    );
}

#[test]
fn multiplexed_streams_from_builder_yaml_and_env_and_their_bounds() {
    assert_eq!(valid().multiplexed_streams, 1, "one stream by default");
    assert_eq!(valid().with_multiplexed_streams(8).multiplexed_streams, 8);

    let yaml = "endpoint: https://e.example.com\ntable_name: t\nmultiplexed_streams: 3\n";
    let from_yaml = WrapperConfiguration::from_yaml_str(yaml).expect("yaml");
    assert_eq!(from_yaml.multiplexed_streams, 3);
    let from_env =
        apply_env(from_yaml, &[("ZEROBUS_MULTIPLEXED_STREAMS", " 5 ")]).expect("env wins");
    assert_eq!(from_env.multiplexed_streams, 5);
    let bad_env = apply_env(valid(), &[("ZEROBUS_MULTIPLEXED_STREAMS", "many")]);
    assert!(config_message(bad_env).contains("ZEROBUS_MULTIPLEXED_STREAMS"));

    valid()
        .with_multiplexed_streams(MAX_MULTIPLEXED_STREAMS)
        .validate()
        .expect("the SDK's bound is allowed");
    for streams in [0, MAX_MULTIPLEXED_STREAMS + 1] {
        let message = config_message(valid().with_multiplexed_streams(streams).validate());
        assert!(
            message.starts_with("multiplexed_streams:") && message.contains("between 1 and 64"),
            "{message}"
        );
    }
}

#[test]
fn max_request_bytes_from_builder_yaml_and_env_within_the_sdk_limit() {
    assert_eq!(valid().max_request_bytes, DEFAULT_MAX_REQUEST_BYTES);
    let yaml = "endpoint: https://e.example.com\ntable_name: t\nmax_request_bytes: 65536\n";
    let from_yaml = WrapperConfiguration::from_yaml_str(yaml).expect("yaml");
    assert_eq!(from_yaml.max_request_bytes, 65_536);
    let from_env = apply_env(from_yaml, &[("ZEROBUS_MAX_REQUEST_BYTES", "1048576")]).expect("env");
    assert_eq!(
        from_env.max_request_bytes, 1_048_576,
        "the environment wins over YAML"
    );

    for bound in [MIN_MAX_REQUEST_BYTES, MAX_INGEST_PAYLOAD_BYTES] {
        valid()
            .with_max_request_bytes(bound)
            .validate()
            .expect("the bounds are allowed");
    }
    for bytes in [0, MIN_MAX_REQUEST_BYTES - 1, MAX_INGEST_PAYLOAD_BYTES + 1] {
        let message = config_message(valid().with_max_request_bytes(bytes).validate());
        assert!(
            message.starts_with("max_request_bytes:")
                && message.contains("between 1024 and 10420224")
                && message.ends_with(&format!("got {bytes}")),
            "{message}"
        );
    }
}

#[test]
fn flight_ipc_compression_from_builder_yaml_and_env() {
    assert_eq!(valid().flight_ipc_compression, FlightCompression::Zstd);
    assert_eq!(
        valid()
            .with_flight_ipc_compression(FlightCompression::None)
            .flight_ipc_compression
            .codec(),
        None
    );
    let yaml = "endpoint: https://e.example.com\ntable_name: t\nflight_ipc_compression: lz4\n";
    let from_yaml = WrapperConfiguration::from_yaml_str(yaml).expect("yaml");
    assert_eq!(from_yaml.flight_ipc_compression, FlightCompression::Lz4);
    let from_env =
        apply_env(from_yaml, &[("ZEROBUS_FLIGHT_IPC_COMPRESSION", "None")]).expect("env wins");
    assert_eq!(from_env.flight_ipc_compression, FlightCompression::None);
    let bad_env = apply_env(valid(), &[("ZEROBUS_FLIGHT_IPC_COMPRESSION", "gzip")]);
    let message = config_message(bad_env);
    assert!(
        message.contains("ZEROBUS_FLIGHT_IPC_COMPRESSION") && message.contains("zstd, lz4 or none"),
        "{message}"
    );
    let bad_yaml = "endpoint: https://e.example.com\ntable_name: t\nflight_ipc_compression: gzip\n";
    assert!(WrapperConfiguration::from_yaml_str(bad_yaml).is_err());
    let parsed: Result<FlightCompression, _> = "brotli".parse();
    let message = parsed.unwrap_err().to_string();
    assert!(message.contains("flight_ipc_compression"), "{message}");
}
