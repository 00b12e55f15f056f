//! The type mapping: Arrow [`DataType`] to the Delta / Unity Catalog type a column lands
//! as ([`DeltaType`]), and from there to the protobuf field type on the wire.
//!
//! | Arrow | Delta | protobuf |
//! |---|---|---|
//! | Int8 | TINYINT | int32 |
//! | Int16, UInt8 | SMALLINT | int32 |
//! | Int32, UInt16 | INT | int32 |
//! | Int64, UInt32, UInt64 (range-checked) | BIGINT | int64 |
//! | Float16, Float32 | FLOAT | float |
//! | Float64 | DOUBLE | double |
//! | Boolean | BOOLEAN | bool |
//! | Utf8, LargeUtf8, Utf8View | STRING | string |
//! | Binary, LargeBinary, BinaryView, FixedSizeBinary | BINARY | bytes |
//! | Date32, Date64 | DATE | int32 (days since epoch) |
//! | Timestamp(any unit, Some(tz)) | TIMESTAMP | int64 (µs since epoch, UTC) |
//! | Timestamp(any unit, None) | TIMESTAMP_NTZ | int64 (µs, wall clock) |
//! | Decimal32/64/128/256(p, s), p ≤ 38 | DECIMAL(p, s) | string |
//! | List, LargeList, FixedSizeList, ListView, LargeListView | ARRAY | repeated |
//! | Struct | STRUCT | nested message |
//! | Map | MAP | repeated entry message (`map_entry`) |
//! | Dictionary(_, V), RunEndEncoded(_, V) | as V | as V |
//! | Null | VOID | string (never written) |

use arrow::datatypes::{DataType, Field, Fields, IntervalUnit};
use prost_types::field_descriptor_proto::Type as ProtoType;

use super::names::{check_column_name, check_unique_names, join_path, schema_error};
use super::{field_number, TableColumn, MAX_NESTING_DEPTH, MAX_STRUCT_FIELDS};
use crate::error::{ConversionErrorKind, ZerobusError};

/// Delta's largest decimal precision.
pub const MAX_DECIMAL_PRECISION: u8 = 38;

/// The Delta / Unity Catalog type a column lands as.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum DeltaType {
    /// TINYINT (8-bit signed).
    Byte,
    /// SMALLINT (16-bit signed).
    Short,
    /// INT (32-bit signed).
    Int,
    /// BIGINT (64-bit signed).
    Long,
    /// FLOAT (32-bit IEEE 754).
    Float,
    /// DOUBLE (64-bit IEEE 754).
    Double,
    /// BOOLEAN.
    Boolean,
    /// STRING (UTF-8).
    String,
    /// BINARY.
    Binary,
    /// DATE (days since 1970-01-01).
    Date,
    /// TIMESTAMP (an instant, microseconds since the epoch in UTC).
    Timestamp,
    /// TIMESTAMP_NTZ (a wall-clock time without time zone, microseconds).
    TimestampNtz,
    /// DECIMAL(precision, scale), sent as its decimal string.
    Decimal {
        /// Total digits.
        precision: u8,
        /// Digits after the decimal point.
        scale: i8,
    },
    /// VOID: an Arrow `Null` column, which never carries a value.
    Void,
    /// ARRAY of the element type. Elements are never null on the wire.
    Array(Box<DeltaType>),
    /// STRUCT with the given fields (field numbers 1, 2, ... in order).
    Struct(Vec<TableColumn>),
    /// MAP from key to value.
    Map {
        /// The key type (a scalar type other than FLOAT, DOUBLE and BINARY).
        key: Box<DeltaType>,
        /// The value type (anything but ARRAY and MAP).
        value: Box<DeltaType>,
    },
}

impl DeltaType {
    /// The Databricks SQL spelling, e.g. `BIGINT`, `ARRAY<STRING>`, `DECIMAL(10,2)`.
    ///
    /// ```
    /// use arrow_zerobus_sdk_wrapper::schema::DeltaType;
    ///
    /// let t = DeltaType::Array(Box::new(DeltaType::Decimal { precision: 10, scale: 2 }));
    /// assert_eq!(t.sql_name(), "ARRAY<DECIMAL(10,2)>");
    /// ```
    pub fn sql_name(&self) -> String {
        match self {
            Self::Byte => "TINYINT".into(),
            Self::Short => "SMALLINT".into(),
            Self::Int => "INT".into(),
            Self::Long => "BIGINT".into(),
            Self::Float => "FLOAT".into(),
            Self::Double => "DOUBLE".into(),
            Self::Boolean => "BOOLEAN".into(),
            Self::String => "STRING".into(),
            Self::Binary => "BINARY".into(),
            Self::Date => "DATE".into(),
            Self::Timestamp => "TIMESTAMP".into(),
            Self::TimestampNtz => "TIMESTAMP_NTZ".into(),
            Self::Decimal { precision, scale } => format!("DECIMAL({precision},{scale})"),
            Self::Void => "VOID".into(),
            Self::Array(element) => format!("ARRAY<{}>", element.sql_name()),
            Self::Struct(fields) => {
                let fields: Vec<String> = fields
                    .iter()
                    .map(|f| format!("{}: {}", f.name, f.data_type.sql_name()))
                    .collect();
                format!("STRUCT<{}>", fields.join(", "))
            }
            Self::Map { key, value } => format!("MAP<{}, {}>", key.sql_name(), value.sql_name()),
        }
    }

    /// The protobuf type of one value (for ARRAY: of one element).
    pub(crate) fn proto_type(&self) -> ProtoType {
        match self {
            Self::Byte | Self::Short | Self::Int | Self::Date => ProtoType::Int32,
            Self::Long | Self::Timestamp | Self::TimestampNtz => ProtoType::Int64,
            Self::Float => ProtoType::Float,
            Self::Double => ProtoType::Double,
            Self::Boolean => ProtoType::Bool,
            Self::String | Self::Decimal { .. } | Self::Void => ProtoType::String,
            Self::Binary => ProtoType::Bytes,
            Self::Array(element) => element.proto_type(),
            Self::Struct(_) | Self::Map { .. } => ProtoType::Message,
        }
    }

    fn is_collection(&self) -> bool {
        matches!(self, Self::Array(_) | Self::Map { .. })
    }
}

/// Maps the fields of a struct (or the top-level schema) to columns numbered 1, 2, ...
pub(crate) fn map_fields(
    fields: &Fields,
    parent: Option<&str>,
    depth: usize,
) -> Result<Vec<TableColumn>, ZerobusError> {
    check_unique_names(fields.iter().map(|f| f.name().as_str()), parent)?;
    fields
        .iter()
        .enumerate()
        .map(|(index, field)| {
            let path = join_path(parent, field.name());
            check_column_name(field.name(), &path)?;
            if field.data_type() == &DataType::Null && !field.is_nullable() {
                return Err(schema_error(
                    ConversionErrorKind::UnsupportedType,
                    &path,
                    format!(
                        "column `{path}`: type Null is declared NOT NULL, so it can never hold \
                         a value; make it nullable or cast it to the target column's type"
                    ),
                ));
            }
            let field_number = field_number(index).ok_or_else(|| {
                let owner = parent.map_or("the table".to_string(), |p| format!("struct `{p}`"));
                schema_error(
                    ConversionErrorKind::TooManyColumns,
                    &path,
                    format!(
                        "column `{path}`: {owner} has more than {MAX_STRUCT_FIELDS} fields, \
                         more than protobuf field numbers can number"
                    ),
                )
            })?;
            Ok(TableColumn {
                name: field.name().clone(),
                field_number,
                nullable: field.is_nullable(),
                data_type: delta_type(field.data_type(), &path, depth)?,
            })
        })
        .collect()
}

/// The Delta type of `data_type`, for the column at `path`, `depth` levels deep.
pub(crate) fn delta_type(
    data_type: &DataType,
    path: &str,
    depth: usize,
) -> Result<DeltaType, ZerobusError> {
    use DataType as A;
    Ok(match data_type {
        A::Null => DeltaType::Void,
        A::Boolean => DeltaType::Boolean,
        A::Int8 => DeltaType::Byte,
        A::Int16 | A::UInt8 => DeltaType::Short,
        A::Int32 | A::UInt16 => DeltaType::Int,
        A::Int64 | A::UInt32 | A::UInt64 => DeltaType::Long,
        A::Float16 | A::Float32 => DeltaType::Float,
        A::Float64 => DeltaType::Double,
        A::Utf8 | A::LargeUtf8 | A::Utf8View => DeltaType::String,
        A::Binary | A::LargeBinary | A::BinaryView | A::FixedSizeBinary(_) => DeltaType::Binary,
        A::Date32 | A::Date64 => DeltaType::Date,
        A::Timestamp(_, Some(_)) => DeltaType::Timestamp,
        A::Timestamp(_, None) => DeltaType::TimestampNtz,
        A::Decimal32(p, s) | A::Decimal64(p, s) | A::Decimal128(p, s) | A::Decimal256(p, s) => {
            decimal(*p, *s, data_type, path)?
        }
        A::Dictionary(_, values) => delta_type(values, path, depth)?,
        A::RunEndEncoded(_, values) => delta_type(values.data_type(), path, depth)?,
        A::List(element)
        | A::LargeList(element)
        | A::FixedSizeList(element, _)
        | A::ListView(element)
        | A::LargeListView(element) => array(element, path, nested(depth, path)?)?,
        A::Struct(fields) => {
            if fields.is_empty() {
                return Err(unsupported(
                    path,
                    data_type,
                    "a struct needs at least one field",
                ));
            }
            DeltaType::Struct(map_fields(fields, Some(path), nested(depth, path)?)?)
        }
        A::Map(entries, _) => map(entries, path, nested(depth, path)?)?,
        A::Time32(_) | A::Time64(_) => {
            return Err(unsupported(
                path,
                data_type,
                "Delta has no TIME type; cast to Int64 (e.g. microseconds since midnight) or Utf8",
            ))
        }
        A::Duration(_) => {
            return Err(unsupported(
                path,
                data_type,
                "Delta has no DURATION type; cast to Int64 in a unit of your choice",
            ))
        }
        A::Interval(unit) => {
            let hint = match unit {
                IntervalUnit::YearMonth => "cast to Int32 months",
                _ => "cast to Int64 or to a struct of its parts",
            };
            return Err(unsupported(
                path,
                data_type,
                &format!("Delta has no INTERVAL type for Zerobus; {hint}"),
            ));
        }
        A::Union(_, _) => {
            return Err(unsupported(
                path,
                data_type,
                "Delta has no UNION type; split it into one nullable column per variant",
            ))
        }
    })
}

fn decimal(p: u8, s: i8, data_type: &DataType, path: &str) -> Result<DeltaType, ZerobusError> {
    if p > MAX_DECIMAL_PRECISION {
        return Err(unsupported(
            path,
            data_type,
            &format!(
                "precision {p} exceeds Delta's maximum of {MAX_DECIMAL_PRECISION}; \
                 cast to Decimal128({MAX_DECIMAL_PRECISION}, s) or to Utf8"
            ),
        ));
    }
    Ok(DeltaType::Decimal {
        precision: p,
        scale: s,
    })
}

fn array(element: &Field, path: &str, depth: usize) -> Result<DeltaType, ZerobusError> {
    let element_type = delta_type(element.data_type(), path, depth)?;
    if element_type.is_collection() {
        return Err(unsupported(
            path,
            element.data_type(),
            "a list element cannot itself be a list or a map (protobuf repeated fields do not \
             nest); wrap the inner value in a struct or serialize it to a string",
        ));
    }
    Ok(DeltaType::Array(Box::new(element_type)))
}

fn map(entries: &Field, path: &str, depth: usize) -> Result<DeltaType, ZerobusError> {
    let DataType::Struct(kv) = entries.data_type() else {
        return Err(unsupported(
            path,
            entries.data_type(),
            "map entries must be a struct",
        ));
    };
    if kv.len() != 2 {
        return Err(unsupported(
            path,
            entries.data_type(),
            "map entries need exactly a key and a value",
        ));
    }
    let key = delta_type(kv[0].data_type(), path, depth)?;
    let value = delta_type(kv[1].data_type(), path, depth)?;
    let bad_key = matches!(
        key,
        DeltaType::Float
            | DeltaType::Double
            | DeltaType::Binary
            | DeltaType::Void
            | DeltaType::Array(_)
            | DeltaType::Struct(_)
            | DeltaType::Map { .. }
    );
    if bad_key {
        return Err(unsupported(
            path,
            kv[0].data_type(),
            "protobuf map keys must be integers, booleans, strings, dates, timestamps or \
             decimals; cast the key to Utf8",
        ));
    }
    if value.is_collection() {
        return Err(unsupported(
            path,
            kv[1].data_type(),
            "a map value cannot be a list or a map (protobuf map values cannot be repeated); \
             wrap it in a struct",
        ));
    }
    Ok(DeltaType::Map {
        key: Box::new(key),
        value: Box::new(value),
    })
}

/// One level deeper, or an error past [`MAX_NESTING_DEPTH`].
fn nested(depth: usize, path: &str) -> Result<usize, ZerobusError> {
    if depth >= MAX_NESTING_DEPTH {
        return Err(schema_error(
            ConversionErrorKind::NestingTooDeep,
            path,
            format!(
                "column `{path}`: nesting deeper than {MAX_NESTING_DEPTH} levels of \
                 struct/list/map is not supported"
            ),
        ));
    }
    Ok(depth + 1)
}

fn unsupported(path: &str, data_type: &DataType, hint: &str) -> ZerobusError {
    schema_error(
        ConversionErrorKind::UnsupportedType,
        path,
        format!("column `{path}`: Arrow type {data_type} is not supported by Zerobus: {hint}"),
    )
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow::datatypes::TimeUnit;

    use super::*;

    fn map_type(data_type: DataType) -> Result<DeltaType, ZerobusError> {
        delta_type(&data_type, "c", 0)
    }

    #[test]
    fn scalars_follow_the_delta_mapping() {
        use DataType as A;
        let cases = [
            (A::Int8, "TINYINT"),
            (A::UInt8, "SMALLINT"),
            (A::Int16, "SMALLINT"),
            (A::UInt16, "INT"),
            (A::Int32, "INT"),
            (A::UInt32, "BIGINT"),
            (A::UInt64, "BIGINT"),
            (A::Int64, "BIGINT"),
            (A::Float16, "FLOAT"),
            (A::Float64, "DOUBLE"),
            (A::Utf8View, "STRING"),
            (A::FixedSizeBinary(3), "BINARY"),
            (A::Date64, "DATE"),
            (
                A::Timestamp(TimeUnit::Nanosecond, Some("+02:00".into())),
                "TIMESTAMP",
            ),
            (A::Timestamp(TimeUnit::Second, None), "TIMESTAMP_NTZ"),
            (A::Decimal256(38, 4), "DECIMAL(38,4)"),
            (A::Null, "VOID"),
            (
                A::Dictionary(Box::new(A::Int16), Box::new(A::LargeUtf8)),
                "STRING",
            ),
        ];
        for (arrow, sql) in cases {
            assert_eq!(map_type(arrow.clone()).unwrap().sql_name(), sql, "{arrow}");
        }
    }

    #[test]
    fn unsupported_types_name_the_column_and_suggest_a_cast() {
        use DataType as A;
        for (arrow, hint) in [
            (A::Time64(TimeUnit::Microsecond), "cast to Int64"),
            (A::Duration(TimeUnit::Second), "cast to Int64"),
            (A::Interval(IntervalUnit::YearMonth), "Int32 months"),
            (A::Decimal256(50, 2), "maximum of 38"),
        ] {
            let err = delta_type(&arrow, "outer.when", 0).unwrap_err();
            let failure = err.conversion_failure().unwrap();
            assert_eq!(failure.kind, ConversionErrorKind::UnsupportedType);
            assert_eq!(failure.column.as_deref(), Some("outer.when"));
            assert!(failure.message.contains("`outer.when`"), "{err}");
            assert!(failure.message.contains(hint), "{err}");
        }
    }

    #[test]
    fn nested_collections_are_rejected() {
        let inner = DataType::List(Arc::new(Field::new_list_field(DataType::Int32, true)));
        let nested_list = DataType::List(Arc::new(Field::new_list_field(inner, true)));
        let err = map_type(nested_list).unwrap_err();
        assert!(err.to_string().contains("cannot itself be a list"), "{err}");

        let float_key = DataType::Map(
            Arc::new(Field::new(
                "entries",
                DataType::Struct(
                    vec![
                        Field::new("key", DataType::Float64, false),
                        Field::new("value", DataType::Int32, true),
                    ]
                    .into(),
                ),
                false,
            )),
            false,
        );
        let err = map_type(float_key).unwrap_err();
        assert!(err.to_string().contains("map keys"), "{err}");
    }

    #[test]
    fn a_not_null_column_of_type_null_is_rejected() {
        let fields = Fields::from(vec![Field::new("nothing", DataType::Null, false)]);
        let err = map_fields(&fields, None, 0).unwrap_err();
        assert!(
            err.to_string()
                .contains("`nothing`: type Null is declared NOT NULL"),
            "{err}"
        );
        let fields = Fields::from(vec![Field::new("nothing", DataType::Null, true)]);
        assert_eq!(
            map_fields(&fields, None, 0).unwrap()[0].data_type,
            DeltaType::Void
        );
    }

    #[test]
    fn depth_is_bounded() {
        let mut data_type = DataType::Int32;
        for _ in 0..=MAX_NESTING_DEPTH {
            data_type = DataType::Struct(vec![Field::new("s", data_type, true)].into());
        }
        let err = map_type(data_type).unwrap_err();
        assert_eq!(
            err.conversion_failure().unwrap().kind,
            ConversionErrorKind::NestingTooDeep
        );
    }
}
