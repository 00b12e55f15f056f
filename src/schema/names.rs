//! Names: what Zerobus accepts for columns and tables, and the protobuf message names
//! we derive for nested types.

use std::collections::HashSet;

use crate::error::{ConversionErrorKind, ConversionFailure, ZerobusError};

/// Whether `name` is a valid Zerobus column or struct-field name: `[A-Za-z_][A-Za-z0-9_]*`.
///
/// ```
/// use arrow_zerobus_sdk_wrapper::schema::is_valid_column_name;
///
/// assert!(is_valid_column_name("event_id"));
/// assert!(is_valid_column_name("_x1"));
/// assert!(!is_valid_column_name("1st"));
/// assert!(!is_valid_column_name("user-name"));
/// assert!(!is_valid_column_name("café"));
/// ```
pub fn is_valid_column_name(name: &str) -> bool {
    let mut bytes = name.bytes();
    match bytes.next() {
        Some(b) if b.is_ascii_alphabetic() || b == b'_' => {}
        _ => return false,
    }
    bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

/// Checks a column (or struct field) name; `path` is the full dotted path for the message.
pub(crate) fn check_column_name(name: &str, path: &str) -> Result<(), ZerobusError> {
    if is_valid_column_name(name) {
        return Ok(());
    }
    Err(schema_error(
        ConversionErrorKind::InvalidColumnName,
        path,
        format!(
            "column `{path}`: name {name:?} is not accepted by Zerobus; names must match \
             [A-Za-z_][A-Za-z0-9_]* (ASCII letters, digits and underscores, not starting with a digit)"
        ),
    ))
}

/// Rejects names that are equal ignoring ASCII case: Delta column names are case-insensitive.
pub(crate) fn check_unique_names<'a>(
    names: impl IntoIterator<Item = &'a str>,
    parent: Option<&str>,
) -> Result<(), ZerobusError> {
    let mut seen = HashSet::new();
    for name in names {
        if !seen.insert(name.to_ascii_lowercase()) {
            let path = join_path(parent, name);
            return Err(schema_error(
                ConversionErrorKind::InvalidColumnName,
                &path,
                format!(
                    "column `{path}`: another column has the same name ignoring case; Delta \
                     column names are case-insensitive, so rename one of them"
                ),
            ));
        }
    }
    Ok(())
}

/// A schema-level conversion error about the column at `path`.
pub(crate) fn schema_error(kind: ConversionErrorKind, path: &str, message: String) -> ZerobusError {
    ConversionFailure::new(kind, message)
        .with_column(path)
        .into()
}

/// `parent.name`, or `name` at the top level.
pub(crate) fn join_path(parent: Option<&str>, name: &str) -> String {
    match parent {
        Some(parent) => format!("{parent}.{name}"),
        None => name.to_string(),
    }
}

/// `event_time` -> `EventTime`, `_x` -> `X`: the CamelCase protoc uses for map entry names.
pub(crate) fn camel_case(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    let mut upper = true;
    for c in name.chars() {
        if c == '_' {
            upper = true;
        } else if upper {
            out.push(c.to_ascii_uppercase());
            upper = false;
        } else {
            out.push(c);
        }
    }
    if out.is_empty() {
        out.push('X');
    }
    out
}

/// Hands out message names that are unique within one descriptor, so a bare (unqualified)
/// type name always resolves to exactly one message wherever it is referenced.
#[derive(Debug, Default)]
pub(crate) struct MessageNames {
    taken: HashSet<String>,
}

impl MessageNames {
    /// Reserves `name`, or `name2`, `name3`, ... if it is already taken.
    pub(crate) fn unique(&mut self, name: String) -> String {
        if self.taken.insert(name.clone()) {
            return name;
        }
        (2..)
            .map(|n| format!("{name}{n}"))
            .find(|candidate| self.taken.insert(candidate.clone()))
            .expect("an unbounded range always yields a free name")
    }

    /// Reserves a name that protobuf dictates (map entries); true if it was free.
    pub(crate) fn reserve(&mut self, name: &str) -> bool {
        self.taken.insert(name.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn column_names() {
        for ok in ["a", "A", "_", "a1", "snake_case_99", "_leading"] {
            assert!(is_valid_column_name(ok), "{ok}");
        }
        for bad in ["", "1a", "a-b", "a b", "a.b", "é", "a\u{0}"] {
            assert!(!is_valid_column_name(bad), "{bad:?}");
        }
        let err = check_column_name("a-b", "outer.a-b").unwrap_err();
        assert!(err.to_string().contains("`outer.a-b`"), "{err}");
    }

    #[test]
    fn case_insensitive_duplicates_are_rejected() {
        assert!(check_unique_names(["a", "b"], None).is_ok());
        let err = check_unique_names(["id", "ID"], Some("s")).unwrap_err();
        assert!(err.to_string().contains("`s.ID`"), "{err}");
    }

    #[test]
    fn camel_case_matches_protoc() {
        assert_eq!(camel_case("tags"), "Tags");
        assert_eq!(camel_case("event_time"), "EventTime");
        assert_eq!(camel_case("_x"), "X");
        assert_eq!(camel_case("a__b"), "AB");
    }

    #[test]
    fn unique_names_get_suffixes() {
        let mut names = MessageNames::default();
        assert_eq!(names.unique("A".into()), "A");
        assert_eq!(names.unique("A".into()), "A2");
        assert!(names.reserve("A3"));
        assert_eq!(names.unique("A".into()), "A4");
        assert!(!names.reserve("A"));
    }
}
