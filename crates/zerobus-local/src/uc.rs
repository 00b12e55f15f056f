//! A table's Arrow schema in the shape of the Unity Catalog REST API
//! (`GET /api/2.1/unity-catalog/tables/{full_name}`), which the SDK's `schema` module
//! (`UcTableSchema`, `descriptor_from_uc_columns`, `arrow_schema_from_uc_columns`) reads.
//!
//! Per column: `type_name` (`LONG`, `DECIMAL`, `ARRAY`, ...), `type_text` (the Spark SQL
//! spelling, `bigint`, `decimal(10,2)`, `array<int>`) and `type_json` (the Spark
//! `StructField` JSON, `{"name":..,"type":..,"nullable":..,"metadata":{}}`, whose `type` is
//! `"long"`, `"decimal(10,2)"` or `{"type":"array","elementType":..,"containsNull":..}`).

use arrow::datatypes::{DataType, Field, Schema};
use serde::Serialize;
use serde_json::{json, Value};

/// One table, as the Unity Catalog tables API returns it (the fields the SDK reads, plus a
/// few that make it look like the real thing).
#[derive(Debug, Serialize)]
pub(crate) struct UcTable {
    name: String,
    catalog_name: String,
    schema_name: String,
    full_name: String,
    table_type: &'static str,
    data_source_format: &'static str,
    columns: Vec<UcColumn>,
}

/// One column of a [`UcTable`].
#[derive(Debug, Serialize)]
struct UcColumn {
    name: String,
    type_name: &'static str,
    type_text: String,
    type_json: String,
    type_precision: u8,
    type_scale: i8,
    nullable: bool,
    position: usize,
}

/// A type in its three Unity Catalog spellings.
struct UcType {
    name: &'static str,
    text: String,
    json: Value,
}

impl UcTable {
    /// The description of `full_name` (`catalog.schema.table`) with `schema`.
    ///
    /// # Errors
    /// Names the column whose Arrow type has no Unity Catalog type.
    pub(crate) fn new(full_name: &str, schema: &Schema) -> Result<Self, String> {
        let mut parts = full_name.splitn(3, '.');
        let catalog_name = parts.next().unwrap_or_default().to_string();
        let schema_name = parts.next().unwrap_or_default().to_string();
        let name = parts.next().unwrap_or_default().to_string();
        let columns = schema
            .fields()
            .iter()
            .enumerate()
            .map(|(position, field)| column(position, field))
            .collect::<Result<_, _>>()?;
        Ok(Self {
            name,
            catalog_name,
            schema_name,
            full_name: full_name.to_string(),
            table_type: "MANAGED",
            data_source_format: "DELTA",
            columns,
        })
    }
}

fn column(position: usize, field: &Field) -> Result<UcColumn, String> {
    let ty = uc_type(field.data_type()).map_err(|e| format!("column {}: {e}", field.name()))?;
    let (type_precision, type_scale) = match field.data_type() {
        DataType::Decimal128(p, s) => (*p, *s),
        _ => (0, 0),
    };
    Ok(UcColumn {
        name: field.name().clone(),
        type_name: ty.name,
        type_text: ty.text,
        type_json: struct_field_json(field.name(), ty.json, field.is_nullable()).to_string(),
        type_precision,
        type_scale,
        nullable: field.is_nullable(),
        position,
    })
}

/// A Spark `StructField` in JSON.
fn struct_field_json(name: &str, ty: Value, nullable: bool) -> Value {
    json!({"name": name, "type": ty, "nullable": nullable, "metadata": {}})
}

/// A primitive type: UC `type_name`, and the Spark name used for both text and JSON.
fn primitive(name: &'static str, spark: &str) -> UcType {
    UcType {
        name,
        text: spark.to_string(),
        json: Value::String(spark.to_string()),
    }
}

fn uc_type(data_type: &DataType) -> Result<UcType, String> {
    use DataType as A;
    Ok(match data_type {
        A::Int8 => UcType {
            json: "byte".into(),
            ..primitive("BYTE", "tinyint")
        },
        A::Int16 => UcType {
            json: "short".into(),
            ..primitive("SHORT", "smallint")
        },
        A::Int32 => UcType {
            json: "integer".into(),
            ..primitive("INT", "int")
        },
        A::Int64 => UcType {
            json: "long".into(),
            ..primitive("LONG", "bigint")
        },
        A::Float32 => primitive("FLOAT", "float"),
        A::Float64 => primitive("DOUBLE", "double"),
        A::Boolean => primitive("BOOLEAN", "boolean"),
        A::Utf8 | A::LargeUtf8 | A::Utf8View => primitive("STRING", "string"),
        A::Binary | A::LargeBinary | A::BinaryView => primitive("BINARY", "binary"),
        A::Date32 => primitive("DATE", "date"),
        A::Timestamp(_, Some(_)) => primitive("TIMESTAMP", "timestamp"),
        A::Timestamp(_, None) => primitive("TIMESTAMP_NTZ", "timestamp_ntz"),
        A::Decimal128(p, s) => primitive("DECIMAL", &format!("decimal({p},{s})")),
        A::List(item) | A::LargeList(item) => {
            let element = uc_type(item.data_type())?;
            UcType {
                name: "ARRAY",
                text: format!("array<{}>", element.text),
                json: json!({
                    "type": "array",
                    "elementType": element.json,
                    "containsNull": item.is_nullable(),
                }),
            }
        }
        A::Struct(fields) => {
            let mut texts = Vec::with_capacity(fields.len());
            let mut jsons = Vec::with_capacity(fields.len());
            for f in fields {
                let ty = uc_type(f.data_type()).map_err(|e| format!("field {}: {e}", f.name()))?;
                texts.push(format!("{}:{}", f.name(), ty.text));
                jsons.push(struct_field_json(f.name(), ty.json, f.is_nullable()));
            }
            UcType {
                name: "STRUCT",
                text: format!("struct<{}>", texts.join(",")),
                json: json!({"type": "struct", "fields": jsons}),
            }
        }
        A::Map(entries, _) => {
            let A::Struct(kv) = entries.data_type() else {
                return Err(format!("map entries of type {}", entries.data_type()));
            };
            let [k, v] = kv.iter().collect::<Vec<_>>()[..] else {
                return Err(format!("map entries with {} fields", kv.len()));
            };
            let (key, value) = (uc_type(k.data_type())?, uc_type(v.data_type())?);
            UcType {
                name: "MAP",
                text: format!("map<{},{}>", key.text, value.text),
                json: json!({
                    "type": "map",
                    "keyType": key.json,
                    "valueType": value.json,
                    "valueContainsNull": v.is_nullable(),
                }),
            }
        }
        other => return Err(format!("Arrow type {other} has no Unity Catalog type")),
    })
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow::datatypes::{Fields, TimeUnit};

    use super::*;

    fn columns(schema: &Schema) -> Vec<Value> {
        let table = serde_json::to_value(UcTable::new("c.s.t", schema).unwrap()).unwrap();
        assert_eq!(table["catalog_name"], "c");
        assert_eq!(table["schema_name"], "s");
        assert_eq!(table["name"], "t");
        table["columns"].as_array().unwrap().clone()
    }

    #[test]
    fn primitive_columns_use_uc_names_and_spark_text() {
        let schema = Schema::new(vec![
            Field::new("a", DataType::Int64, false),
            Field::new("b", DataType::Decimal128(10, 2), true),
            Field::new("c", DataType::Timestamp(TimeUnit::Microsecond, None), true),
        ]);
        let cols = columns(&schema);
        assert_eq!(cols[0]["type_name"], "LONG");
        assert_eq!(cols[0]["type_text"], "bigint");
        assert_eq!(cols[0]["nullable"], false);
        assert_eq!(cols[0]["position"], 0);
        let json: Value = serde_json::from_str(cols[0]["type_json"].as_str().unwrap()).unwrap();
        assert_eq!(
            json,
            json!({"name":"a","type":"long","nullable":false,"metadata":{}})
        );
        assert_eq!(cols[1]["type_text"], "decimal(10,2)");
        assert_eq!(cols[1]["type_precision"], 10);
        assert_eq!(cols[1]["type_scale"], 2);
        assert_eq!(cols[2]["type_name"], "TIMESTAMP_NTZ");
    }

    #[test]
    fn nested_columns_carry_spark_type_json() {
        let entries = Field::new(
            "key_value",
            DataType::Struct(Fields::from(vec![
                Field::new("key", DataType::Utf8, false),
                Field::new("value", DataType::Int32, true),
            ])),
            false,
        );
        let schema = Schema::new(vec![
            Field::new("m", DataType::Map(Arc::new(entries), false), true),
            Field::new(
                "s",
                DataType::Struct(Fields::from(vec![
                    Field::new("x", DataType::Int8, true),
                    Field::new("y", DataType::new_list(DataType::Utf8, true), true),
                ])),
                true,
            ),
        ]);
        let cols = columns(&schema);
        assert_eq!(cols[0]["type_text"], "map<string,int>");
        assert_eq!(cols[1]["type_text"], "struct<x:tinyint,y:array<string>>");
        let json: Value = serde_json::from_str(cols[1]["type_json"].as_str().unwrap()).unwrap();
        assert_eq!(
            json["type"]["fields"][1]["type"],
            json!({"type":"array","elementType":"string","containsNull":true})
        );
    }

    #[test]
    fn unmapped_types_name_the_column() {
        let schema = Schema::new(vec![Field::new("u", DataType::UInt64, true)]);
        let err = UcTable::new("c.s.t", &schema).unwrap_err();
        assert!(err.contains("column u"), "{err}");
    }
}
