//! Tables declared up front from text: [`TableSpec`], `name=COLUMNS` or `name=FILE.parquet`.
//!
//! `COLUMNS` is a column list in Databricks SQL type names, as in a `CREATE TABLE`:
//!
//! ```
//! use arrow::datatypes::{DataType, TimeUnit};
//! use zerobus_local::TableSpec;
//!
//! let spec: TableSpec = "main.demo.events=id BIGINT NOT NULL, name STRING, ts TIMESTAMP"
//!     .parse()?;
//! assert_eq!(spec.name, "main.demo.events");
//! let id = spec.schema.field(0);
//! assert_eq!((id.data_type(), id.is_nullable()), (&DataType::Int64, false));
//! assert_eq!(
//!     spec.schema.field(2).data_type(),
//!     &DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()))
//! );
//! # Ok::<(), String>(())
//! ```
//!
//! Types: `BIGINT`/`LONG`, `INT`/`INTEGER`, `SMALLINT`/`SHORT`, `TINYINT`/`BYTE`,
//! `BOOLEAN`, `FLOAT`/`REAL`, `DOUBLE`, `STRING` (also `VARCHAR(n)`, `CHAR(n)`), `BINARY`,
//! `DATE`, `TIMESTAMP` (UTC), `TIMESTAMP_NTZ`, `DECIMAL(p, s)` (also `DEC`, `NUMERIC`),
//! `ARRAY<T>`, `MAP<K, V>`, `STRUCT<name: T, ...>`; any case. `NOT NULL` after a column
//! or struct field's type makes it non-nullable. With `name=FILE.parquet` the table takes
//! the schema of that Parquet file (only its footer is read).

use std::iter::Peekable;
use std::path::Path;
use std::str::{CharIndices, FromStr};
use std::sync::Arc;

use arrow::datatypes::{DataType, Field, Fields, Schema, SchemaRef, TimeUnit};

use crate::canonical::{LIST_ITEM, MAP_ENTRIES, MAP_KEY, MAP_VALUE};

/// A table to create when the server starts: its `catalog.schema.table` name and schema.
#[derive(Debug, Clone, PartialEq)]
pub struct TableSpec {
    /// `catalog.schema.table`.
    pub name: String,
    /// The table's columns.
    pub schema: SchemaRef,
}

impl FromStr for TableSpec {
    type Err = String;

    /// Parses `name=COLUMNS` or `name=FILE.parquet`; the error names the part at fault.
    fn from_str(text: &str) -> Result<Self, String> {
        let Some((name, columns)) = text.split_once('=') else {
            return Err(format!(
                "`{text}`: expected NAME=COLUMNS (e.g. 'main.demo.events=id BIGINT NOT NULL, \
                 name STRING') or NAME=FILE.parquet"
            ));
        };
        let name = name.trim();
        if name.is_empty() {
            return Err(format!("`{text}`: the table name before `=` is empty"));
        }
        let columns = columns.trim();
        let schema = if columns.to_ascii_lowercase().ends_with(".parquet") {
            parquet_schema(Path::new(columns))?
        } else {
            parse_columns(columns).map_err(|e| format!("table {name}: {e}"))?
        };
        Ok(Self {
            name: name.to_string(),
            schema: Arc::new(schema),
        })
    }
}

/// The Arrow schema of the Parquet file at `path`, from its footer alone.
///
/// # Errors
/// The file cannot be opened or is not Parquet; the message names the file.
pub fn parquet_schema(path: &Path) -> Result<Schema, String> {
    use deltalake::parquet::arrow::arrow_reader::ArrowReaderMetadata;

    let fail = |e: &dyn std::fmt::Display| format!("{}: {e}", path.display());
    let file = std::fs::File::open(path).map_err(|e| fail(&e))?;
    let metadata = ArrowReaderMetadata::load(&file, Default::default()).map_err(|e| fail(&e))?;
    let schema = metadata.schema().as_ref().clone();
    Ok(Schema::new(schema.fields().clone()))
}

/// Parses a column list in Databricks SQL type names (see the [module docs](self)).
///
/// # Errors
/// A message naming the column and the unexpected text.
pub fn parse_columns(text: &str) -> Result<Schema, String> {
    let mut parser = Parser {
        text,
        chars: text.char_indices().peekable(),
    };
    let mut fields = Vec::new();
    loop {
        let number = fields.len() + 1;
        let field = parser
            .field(false)
            .map_err(|e| format!("column {number}: {e}"))?;
        let after = |what: String| {
            format!(
                "column {number} (`{}`): {what} (expected `,` between columns)",
                field.name()
            )
        };
        match parser.punct().map_err(after)? {
            None => {
                fields.push(field);
                break;
            }
            Some(',') => fields.push(field),
            Some(other) => return Err(after(format!("unexpected `{other}`"))),
        }
    }
    Ok(Schema::new(fields))
}

/// A small recursive-descent parser over the column list.
struct Parser<'a> {
    text: &'a str,
    chars: Peekable<CharIndices<'a>>,
}

impl Parser<'_> {
    fn skip_spaces(&mut self) {
        while self.chars.next_if(|(_, c)| c.is_whitespace()).is_some() {}
    }

    /// The next word (letters, digits, `_`), or a `` `quoted` `` name.
    fn word(&mut self) -> Result<String, String> {
        self.skip_spaces();
        if self.chars.next_if(|(_, c)| *c == '`').is_some() {
            let mut name = String::new();
            for (_, c) in self.chars.by_ref() {
                if c == '`' {
                    return Ok(name);
                }
                name.push(c);
            }
            return Err("unterminated `quoted` name".to_string());
        }
        let start = match self.chars.peek() {
            Some((i, c)) if c.is_alphanumeric() || *c == '_' => *i,
            Some((_, c)) => return Err(format!("expected a name or type, found `{c}`")),
            None => return Err("expected a name or type, found the end".to_string()),
        };
        let mut end = start;
        while let Some((i, c)) = self
            .chars
            .next_if(|(_, c)| c.is_alphanumeric() || *c == '_')
        {
            end = i + c.len_utf8();
        }
        Ok(self.text[start..end].to_string())
    }

    /// The next punctuation character (`None` at the end).
    fn punct(&mut self) -> Result<Option<char>, String> {
        self.skip_spaces();
        match self.chars.peek() {
            None => Ok(None),
            Some((_, c)) if c.is_alphanumeric() || *c == '_' || *c == '`' => {
                let word = self.word()?;
                Err(format!("unexpected `{word}`"))
            }
            Some(_) => Ok(self.chars.next().map(|(_, c)| c)),
        }
    }

    fn peek_is(&mut self, expected: char) -> bool {
        self.skip_spaces();
        matches!(self.chars.peek(), Some((_, c)) if *c == expected)
    }

    fn expect(&mut self, expected: char) -> Result<(), String> {
        match self.punct()? {
            Some(c) if c == expected => Ok(()),
            Some(c) => Err(format!("expected `{expected}`, found `{c}`")),
            None => Err(format!("expected `{expected}`, found the end")),
        }
    }

    /// `name [:] TYPE [NOT NULL]`; the `:` only inside a struct.
    fn field(&mut self, in_struct: bool) -> Result<Field, String> {
        let name = self.word()?;
        if in_struct && self.peek_is(':') {
            self.expect(':')?;
        }
        let data_type = self.data_type().map_err(|e| format!("`{name}`: {e}"))?;
        let nullable = !self.not_null().map_err(|e| format!("`{name}`: {e}"))?;
        Ok(Field::new(name, data_type, nullable))
    }

    /// Consumes `NOT NULL` if it comes next.
    fn not_null(&mut self) -> Result<bool, String> {
        let before = self.chars.clone();
        if !self.word().is_ok_and(|w| w.eq_ignore_ascii_case("not")) {
            self.chars = before;
            return Ok(false);
        }
        let null = self.word()?;
        if null.eq_ignore_ascii_case("null") {
            Ok(true)
        } else {
            Err(format!("expected NULL after NOT, found `{null}`"))
        }
    }

    /// An optional `(n)` or `(n, m)`.
    fn arguments(&mut self) -> Result<Vec<u8>, String> {
        if !self.peek_is('(') {
            return Ok(Vec::new());
        }
        self.expect('(')?;
        let mut numbers = Vec::new();
        loop {
            let word = self.word()?;
            let number = word
                .parse::<u8>()
                .map_err(|_| format!("expected a number, found `{word}`"))?;
            numbers.push(number);
            match self.punct()? {
                Some(',') => continue,
                Some(')') => return Ok(numbers),
                other => return Err(format!("expected `,` or `)`, found {other:?}")),
            }
        }
    }

    fn data_type(&mut self) -> Result<DataType, String> {
        let word = self.word()?;
        let upper = word.to_ascii_uppercase();
        Ok(match upper.as_str() {
            "BIGINT" | "LONG" => DataType::Int64,
            "INT" | "INTEGER" => DataType::Int32,
            "SMALLINT" | "SHORT" => DataType::Int16,
            "TINYINT" | "BYTE" => DataType::Int8,
            "BOOLEAN" | "BOOL" => DataType::Boolean,
            "FLOAT" | "REAL" => DataType::Float32,
            "DOUBLE" => DataType::Float64,
            "STRING" | "VARCHAR" | "CHAR" => {
                self.arguments()?;
                DataType::Utf8
            }
            "BINARY" => DataType::Binary,
            "DATE" => DataType::Date32,
            "TIMESTAMP" | "TIMESTAMP_LTZ" => {
                DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()))
            }
            "TIMESTAMP_NTZ" => DataType::Timestamp(TimeUnit::Microsecond, None),
            "DECIMAL" | "DEC" | "NUMERIC" => match self.arguments()?[..] {
                [] => DataType::Decimal128(10, 0),
                [p] => DataType::Decimal128(p, 0),
                [p, s] if s <= p && (1..=38).contains(&p) => DataType::Decimal128(p, s as i8),
                _ => {
                    return Err(format!(
                        "{upper}: expected (precision ≤ 38, scale ≤ precision)"
                    ))
                }
            },
            "ARRAY" => {
                self.expect('<')?;
                let item = self.data_type()?;
                self.expect('>')?;
                DataType::List(Arc::new(Field::new(LIST_ITEM, item, true)))
            }
            "MAP" => {
                self.expect('<')?;
                let key = self.data_type()?;
                self.expect(',')?;
                let value = self.data_type()?;
                self.expect('>')?;
                let entries = Fields::from(vec![
                    Field::new(MAP_KEY, key, false),
                    Field::new(MAP_VALUE, value, true),
                ]);
                let entries = Field::new(MAP_ENTRIES, DataType::Struct(entries), false);
                DataType::Map(Arc::new(entries), false)
            }
            "STRUCT" => {
                self.expect('<')?;
                let mut fields = vec![self.field(true)?];
                while self.peek_is(',') {
                    self.expect(',')?;
                    fields.push(self.field(true)?);
                }
                self.expect('>')?;
                DataType::Struct(fields.into())
            }
            _ => {
                return Err(format!(
                    "unknown type `{word}` (expected BIGINT, INT, SMALLINT, TINYINT, BOOLEAN, \
                     FLOAT, DOUBLE, STRING, BINARY, DATE, TIMESTAMP, TIMESTAMP_NTZ, \
                     DECIMAL(p,s), ARRAY<T>, MAP<K,V> or STRUCT<...>)"
                ))
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scalar_and_nested_columns_parse_to_delta_arrow_types() {
        let schema = parse_columns(
            "id bigint not null, amount DECIMAL(12, 2), tags ARRAY<STRING>, \
             attrs MAP<STRING, INT>, loc STRUCT<lat: DOUBLE NOT NULL, `lon` DOUBLE>, \
             d DATE, ntz TIMESTAMP_NTZ, name VARCHAR(20)",
        )
        .unwrap();
        let types: Vec<_> = schema
            .fields()
            .iter()
            .map(|f| f.data_type().clone())
            .collect();
        assert_eq!(types[0], DataType::Int64);
        assert!(!schema.field(0).is_nullable());
        assert_eq!(types[1], DataType::Decimal128(12, 2));
        assert_eq!(
            types[2],
            DataType::List(Arc::new(Field::new("element", DataType::Utf8, true)))
        );
        let DataType::Map(entries, false) = &types[3] else {
            panic!("{:?}", types[3])
        };
        assert_eq!(entries.name(), "key_value");
        let DataType::Struct(loc) = &types[4] else {
            panic!("{:?}", types[4])
        };
        assert_eq!(loc[0].name(), "lat");
        assert!(!loc[0].is_nullable());
        assert_eq!(loc[1].name(), "lon");
        assert_eq!(types[5], DataType::Date32);
        assert_eq!(types[6], DataType::Timestamp(TimeUnit::Microsecond, None));
        assert_eq!(types[7], DataType::Utf8);
    }

    #[test]
    fn errors_name_the_column_and_the_text_at_fault() {
        let cases = [
            (
                "id BIGINT, ts TIMESTAMPZ",
                "column 2: `ts`: unknown type `TIMESTAMPZ`",
            ),
            (
                "id BIGINT NOT NUL",
                "column 1: `id`: expected NULL after NOT",
            ),
            (
                "id ARRAY<INT",
                "column 1: `id`: expected `>`, found the end",
            ),
            ("id INT name STRING", "column 1 (`id`): unexpected `name`"),
            (
                "d DECIMAL(40, 2)",
                "column 1: `d`: DECIMAL: expected (precision ≤ 38",
            ),
        ];
        for (text, expected) in cases {
            let error = parse_columns(text).unwrap_err();
            assert!(error.starts_with(expected), "{text}: {error}");
        }
        let error = "main.demo.t".parse::<TableSpec>().unwrap_err();
        assert!(error.contains("expected NAME=COLUMNS"), "{error}");
        let error = "t=/no/such/file.parquet".parse::<TableSpec>().unwrap_err();
        assert!(error.starts_with("/no/such/file.parquet: "), "{error}");
    }
}
