//! Fuzzing the Flight decode path (this check, then arrow-ipc's decoder) with mutated
//! valid messages: header and body bytes flipped, buffer and node fields, compressed
//! length prefixes and body lengths set to edge values. Every outcome must be a decoded
//! batch or an `INVALID_ARGUMENT`: a panic fails the case, and an allocation as large as
//! a mutated length (up to 2^63 bytes) would abort the test binary.

use arrow::ipc::{self, CompressionType};
use arrow_flight::FlightData;
use proptest::prelude::*;

use super::tests::{decode, messages, patch, struct_at, varied_batch};

#[derive(Debug, Clone, Copy)]
enum Part {
    SchemaHeader,
    BatchHeader,
    Body,
}

#[derive(Debug, Clone)]
enum Mutation {
    /// XORs one byte (at an index taken modulo the part's length).
    Flip { part: Part, at: usize, xor: u8 },
    /// Sets the offset or length of a buffer, or the length or null count of a node.
    Set {
        nodes: bool,
        index: usize,
        second: bool,
        value: i64,
    },
    /// Overwrites the 8 bytes at a buffer's offset: a compressed buffer's length prefix.
    Prefix { index: usize, value: i64 },
    /// Cuts the body short.
    Truncate { keep: usize },
}

fn edge_value() -> impl Strategy<Value = i64> {
    prop_oneof![
        Just(0),
        Just(-1),
        Just(1),
        Just(8),
        Just(1 << 40),
        Just(i64::MAX),
        Just(i64::MIN),
        0i64..4096,
        any::<i64>(),
    ]
}

fn mutation() -> impl Strategy<Value = Mutation> {
    let part = prop_oneof![
        Just(Part::SchemaHeader),
        Just(Part::BatchHeader),
        Just(Part::Body)
    ];
    prop_oneof![
        (part, any::<usize>(), 1u8..=255).prop_map(|(part, at, xor)| Mutation::Flip {
            part,
            at,
            xor
        }),
        (any::<bool>(), 0usize..32, any::<bool>(), edge_value()).prop_map(
            |(nodes, index, second, value)| Mutation::Set {
                nodes,
                index,
                second,
                value
            }
        ),
        (0usize..32, edge_value()).prop_map(|(index, value)| Mutation::Prefix { index, value }),
        any::<usize>().prop_map(|keep| Mutation::Truncate { keep }),
    ]
}

/// The number of buffers (`nodes`: field nodes) of a batch header, if it still is one.
fn count(header: &[u8], nodes: bool) -> Option<usize> {
    let message = ipc::root_as_message(header).ok()?;
    let batch = message.header_as_record_batch()?;
    Some(if nodes {
        batch.nodes()?.len()
    } else {
        batch.buffers()?.len()
    })
}

fn flip(bytes: &[u8], at: usize, xor: u8) -> Vec<u8> {
    let mut bytes = bytes.to_vec();
    if !bytes.is_empty() {
        let at = at % bytes.len();
        bytes[at] ^= xor;
    }
    bytes
}

fn apply(sent: &mut [FlightData], mutation: &Mutation) {
    let (schema, batch) = (0, sent.len() - 1);
    match *mutation {
        Mutation::Flip { part, at, xor } => match part {
            Part::SchemaHeader => {
                sent[schema].data_header = flip(&sent[schema].data_header, at, xor).into()
            }
            Part::BatchHeader => {
                sent[batch].data_header = flip(&sent[batch].data_header, at, xor).into()
            }
            Part::Body => sent[batch].data_body = flip(&sent[batch].data_body, at, xor).into(),
        },
        Mutation::Set {
            nodes,
            index,
            second,
            value,
        } => {
            if count(&sent[batch].data_header, nodes).is_some_and(|n| index < n) {
                patch(&mut sent[batch], nodes, index, second, value);
            }
        }
        Mutation::Prefix { index, value } => {
            let data = &mut sent[batch];
            if count(&data.data_header, false).is_some_and(|n| index < n) {
                let at = struct_at(&data.data_header, false, index);
                let offset = i64::from_le_bytes(data.data_header[at..at + 8].try_into().unwrap());
                let mut body = data.data_body.to_vec();
                if let Some(prefix) = usize::try_from(offset)
                    .ok()
                    .and_then(|offset| body.get_mut(offset..offset.checked_add(8)?))
                {
                    prefix.copy_from_slice(&value.to_le_bytes());
                    data.data_body = body.into();
                }
            }
        }
        Mutation::Truncate { keep } => {
            let body = &sent[batch].data_body;
            let keep = keep % (body.len() + 1);
            sent[batch].data_body = body.slice(..keep);
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 2048,
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn mutated_flight_messages_decode_or_are_refused(
        compression in prop_oneof![
            Just(None),
            Just(Some(CompressionType::LZ4_FRAME)),
            Just(Some(CompressionType::ZSTD)),
        ],
        rows in 0usize..20,
        mutations in proptest::collection::vec(mutation(), 1..4),
    ) {
        let mut sent = messages(&varied_batch(rows), compression);
        for mutation in &mutations {
            apply(&mut sent, mutation);
        }
        if let Err(status) = decode(sent) {
            prop_assert_eq!(status.code(), tonic::Code::InvalidArgument, "{}", status);
        }
    }
}
