//! Fuzzing the descriptor → Arrow conversion and the decoder built from it with mutated
//! valid descriptors: field types, type names pointing anywhere (the message itself, its
//! parents, map entries, nowhere), labels, numbers, and extra nesting. Every outcome must
//! be a decoder (which then decodes arbitrary records or refuses them) or an
//! `INVALID_ARGUMENT`: a panic fails the case, and unbounded recursion would abort the
//! test binary.

use proptest::prelude::*;
use prost_types::field_descriptor_proto::Type;
use prost_types::{DescriptorProto, FieldDescriptorProto};
use tonic::Code;
use zerobus_test_support::{data, events};

use crate::decode::ProtoDecoder;

/// The wrapper's descriptors of the events table and of the nested bench batch (a list,
/// a struct and a map).
fn bases() -> Vec<DescriptorProto> {
    [events::schema(), data::nested_batch(1).schema()]
        .into_iter()
        .map(|schema| {
            let table =
                arrow_zerobus_sdk_wrapper::schema::TableSchema::try_new(schema, "a.b.c").unwrap();
            table.descriptor().clone()
        })
        .collect()
}

#[derive(Debug, Clone)]
enum Mutation {
    /// A field's protobuf type.
    Type {
        field: usize,
        ty: i32,
    },
    /// A field's type name: one of the descriptor's message names, or garbage.
    TypeName {
        field: usize,
        name: usize,
    },
    Label {
        field: usize,
        label: i32,
    },
    Number {
        field: usize,
        number: i32,
    },
    /// The root message nested inside one of its messages (deeper and recursive shapes).
    Nest {
        at: usize,
    },
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (any::<usize>(), 0i32..=19).prop_map(|(field, ty)| Mutation::Type { field, ty }),
        (any::<usize>(), any::<usize>())
            .prop_map(|(field, name)| Mutation::TypeName { field, name }),
        (any::<usize>(), 0i32..=4).prop_map(|(field, label)| Mutation::Label { field, label }),
        (
            any::<usize>(),
            prop_oneof![
                Just(0),
                Just(-1),
                Just(1),
                Just(19_000),
                Just(i32::MAX),
                1i32..64
            ]
        )
            .prop_map(|(field, number)| Mutation::Number { field, number }),
        any::<usize>().prop_map(|at| Mutation::Nest { at }),
    ]
}

/// The names a type reference can take: every message's, bare and qualified, and junk.
fn names(root: &DescriptorProto) -> Vec<String> {
    fn walk(message: &DescriptorProto, scope: &str, out: &mut Vec<String>) {
        let name = message.name();
        let qualified = format!("{scope}.{name}");
        out.push(name.to_string());
        out.push(qualified.clone());
        for nested in &message.nested_type {
            walk(nested, &qualified, out);
        }
    }
    let mut out = vec![String::new(), ".".into(), "NoSuchMessage".into()];
    walk(root, "", &mut out);
    out
}

/// Applies `f` to the `index`th field (modulo the count) of the descriptor tree.
fn with_field(root: &mut DescriptorProto, index: usize, f: impl FnOnce(&mut FieldDescriptorProto)) {
    fn count(message: &DescriptorProto) -> usize {
        message.field.len() + message.nested_type.iter().map(count).sum::<usize>()
    }
    fn nth(
        message: &mut DescriptorProto,
        mut n: usize,
    ) -> Result<&mut FieldDescriptorProto, usize> {
        if n < message.field.len() {
            return Ok(&mut message.field[n]);
        }
        n -= message.field.len();
        for nested in &mut message.nested_type {
            match nth(nested, n) {
                Ok(field) => return Ok(field),
                Err(rest) => n = rest,
            }
        }
        Err(n)
    }
    let total = count(root);
    if total > 0 {
        if let Ok(field) = nth(root, index % total) {
            f(field);
        }
    }
}

/// Nests a copy of the root inside the `index`th message (modulo the count).
fn nest(root: &mut DescriptorProto, index: usize) {
    fn count(message: &DescriptorProto) -> usize {
        1 + message.nested_type.iter().map(count).sum::<usize>()
    }
    fn nth(message: &mut DescriptorProto, mut n: usize) -> Result<&mut DescriptorProto, usize> {
        if n == 0 {
            return Ok(message);
        }
        n -= 1;
        for nested in &mut message.nested_type {
            match nth(nested, n) {
                Ok(found) => return Ok(found),
                Err(rest) => n = rest,
            }
        }
        Err(n)
    }
    let copy = root.clone();
    let total = count(root);
    if let Ok(message) = nth(root, index % total) {
        message.nested_type.push(copy);
    }
}

fn apply(root: &mut DescriptorProto, mutation: &Mutation, names: &[String]) {
    match *mutation {
        Mutation::Type { field, ty } => with_field(root, field, |f| f.r#type = Some(ty)),
        Mutation::TypeName { field, name } => {
            let name = names[name % names.len()].clone();
            with_field(root, field, |f| {
                f.type_name = Some(name);
                f.r#type = Some(Type::Message as i32);
            })
        }
        Mutation::Label { field, label } => with_field(root, field, |f| f.label = Some(label)),
        Mutation::Number { field, number } => with_field(root, field, |f| f.number = Some(number)),
        Mutation::Nest { at } => nest(root, at),
    }
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 1024,
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn mutated_descriptors_convert_or_are_refused(
        base in 0usize..2,
        mutations in proptest::collection::vec(mutation(), 1..6),
        records in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..48), 0..4),
    ) {
        let mut descriptor = bases().swap_remove(base);
        for mutation in &mutations {
            let names = names(&descriptor);
            apply(&mut descriptor, mutation, &names);
        }
        let decoder = match ProtoDecoder::new(descriptor) {
            Ok(decoder) => decoder,
            Err(status) => {
                prop_assert_eq!(status.code(), Code::InvalidArgument, "{}", status);
                return Ok(());
            }
        };
        let Ok(schema) = decoder.table_schema() else {
            return Ok(());
        };
        // A table made from the descriptor may still not fit it (a map key made
        // repeated): the stream is then refused.
        let outcome = decoder
            .check(&schema)
            .and_then(|()| decoder.decode(&schema, &records).map(drop));
        if let Err(status) = outcome {
            prop_assert_eq!(status.code(), Code::InvalidArgument, "{}", status);
        }
    }
}
