//! A Unity Catalog column's type as a [`DeltaType`]: from `type_json` (the Spark
//! `StructField` JSON) when present, else from `type_text` / `type_name`.

use databricks_zerobus_ingest_sdk::schema::UcColumn;
use serde_json::Value;

use crate::schema::{DeltaType, TableColumn};

/// The Delta type of `column`, or a message saying what could not be read.
pub(crate) fn column_type(column: &UcColumn) -> Result<DeltaType, String> {
    if !column.type_json.is_empty() {
        let json: Value = serde_json::from_str(&column.type_json)
            .map_err(|e| format!("type_json is not JSON: {e}"))?;
        return json_type(json.get("type").unwrap_or(&json));
    }
    let text = if column.type_text.is_empty() {
        &column.type_name
    } else {
        &column.type_text
    };
    primitive(text)
}

fn json_type(value: &Value) -> Result<DeltaType, String> {
    let Some(object) = value.as_object() else {
        return primitive(
            value
                .as_str()
                .ok_or("a type is neither a string nor an object")?,
        );
    };
    let field = |name: &str| object.get(name).ok_or(format!("type has no {name}"));
    match object.get("type").and_then(Value::as_str) {
        Some("array") => Ok(DeltaType::Array(Box::new(json_type(field(
            "elementType",
        )?)?))),
        Some("map") => Ok(DeltaType::Map {
            key: Box::new(json_type(field("keyType")?)?),
            value: Box::new(json_type(field("valueType")?)?),
        }),
        Some("struct") => {
            let fields = field("fields")?
                .as_array()
                .ok_or("struct fields are not a list")?;
            let columns = fields
                .iter()
                .enumerate()
                .map(|(index, f)| {
                    let name = f.get("name").and_then(Value::as_str).unwrap_or_default();
                    Ok(TableColumn {
                        name: name.to_string(),
                        field_number: crate::schema::field_number(index).unwrap_or(u32::MAX),
                        nullable: f.get("nullable").and_then(Value::as_bool).unwrap_or(true),
                        data_type: json_type(f.get("type").ok_or("struct field has no type")?)?,
                    })
                })
                .collect::<Result<_, String>>()?;
            Ok(DeltaType::Struct(columns))
        }
        other => Err(format!("unknown complex type {other:?}")),
    }
}

/// A scalar type in Spark / Unity Catalog spelling (`long`, `BIGINT`, `decimal(10,2)`).
fn primitive(text: &str) -> Result<DeltaType, String> {
    let lower = text.trim().to_ascii_lowercase();
    if let Some(args) = lower
        .strip_prefix("decimal(")
        .and_then(|rest| rest.strip_suffix(')'))
    {
        let (p, s) = args
            .split_once(',')
            .ok_or(format!("bad decimal type {text}"))?;
        let precision = p
            .trim()
            .parse()
            .map_err(|_| format!("bad decimal type {text}"))?;
        let scale = s
            .trim()
            .parse()
            .map_err(|_| format!("bad decimal type {text}"))?;
        return Ok(DeltaType::Decimal { precision, scale });
    }
    Ok(match lower.as_str() {
        "byte" | "tinyint" => DeltaType::Byte,
        "short" | "smallint" => DeltaType::Short,
        "int" | "integer" => DeltaType::Int,
        "long" | "bigint" => DeltaType::Long,
        "float" | "real" => DeltaType::Float,
        "double" => DeltaType::Double,
        "boolean" => DeltaType::Boolean,
        "string" => DeltaType::String,
        "binary" => DeltaType::Binary,
        "date" => DeltaType::Date,
        "timestamp" => DeltaType::Timestamp,
        "timestamp_ntz" => DeltaType::TimestampNtz,
        "decimal" => DeltaType::Decimal {
            precision: 10,
            scale: 0,
        },
        "void" | "null" => DeltaType::Void,
        _ => return Err(format!("unsupported Unity Catalog type {text}")),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn column(type_text: &str, type_json: &str) -> UcColumn {
        UcColumn {
            name: "c".into(),
            type_name: String::new(),
            type_text: type_text.into(),
            type_json: type_json.into(),
            nullable: true,
            position: 0,
        }
    }

    #[test]
    fn scalar_and_nested_types_are_read() {
        assert_eq!(column_type(&column("bigint", "")).unwrap(), DeltaType::Long);
        assert_eq!(
            column_type(&column("decimal(10,2)", ""))
                .unwrap()
                .sql_name(),
            "DECIMAL(10,2)"
        );
        let json = r#"{"name":"c","type":{"type":"array","elementType":"decimal(5,1)","containsNull":true},"nullable":true,"metadata":{}}"#;
        assert_eq!(
            column_type(&column("array<decimal(5,1)>", json))
                .unwrap()
                .sql_name(),
            "ARRAY<DECIMAL(5,1)>"
        );
        let json = r#"{"name":"c","type":{"type":"struct","fields":[{"name":"a","type":"integer","nullable":false,"metadata":{}}]},"nullable":true,"metadata":{}}"#;
        assert_eq!(
            column_type(&column("struct<a:int>", json))
                .unwrap()
                .sql_name(),
            "STRUCT<a: INT>"
        );
        assert!(column_type(&column("interval", ""))
            .unwrap_err()
            .contains("interval"));
    }
}
