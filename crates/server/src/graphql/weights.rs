//! What each field costs, declared next to the schema it prices. Every field has a base cost
//! (fields returning objects 1, scalars and enums 0, mutations 10); lists and connections
//! multiply their items by `first`/`last` (or the default page size, or `assumed_size`); the
//! fields below add what they make the server do: statements, full-text search, model rows.
//! `rentgraph cost-table` and docs/OPERATIONS.md print this table.
use crate::limits::cost::FieldWeight;

const fn w(
    type_name: &'static str,
    field: &'static str,
    cost: u64,
    why: &'static str,
) -> FieldWeight {
    FieldWeight {
        type_name,
        field,
        cost,
        assumed_size: None,
        why,
    }
}

const fn list(
    type_name: &'static str,
    field: &'static str,
    cost: u64,
    assumed_size: u64,
    why: &'static str,
) -> FieldWeight {
    FieldWeight {
        assumed_size: Some(assumed_size),
        ..w(type_name, field, cost, why)
    }
}

pub const WEIGHTS: &[FieldWeight] = &[
    w(
        "Query",
        "properties",
        5,
        "a statement over the filtered listings, whatever the page size",
    ),
    w(
        "PropertyConnection",
        "totalCount",
        10,
        "a COUNT over the filtered listings",
    ),
    w(
        "InteractionConnection",
        "totalCount",
        5,
        "a COUNT over the user's history",
    ),
    w("Query", "searchProperties", 20, "a full-text search"),
    w(
        "Query",
        "recommendations",
        50,
        "retrieval and ~300 model rows",
    ),
    w(
        "User",
        "recommendations",
        50,
        "retrieval and ~300 model rows",
    ),
    w("Property", "matchScore", 2, "a model row per listing"),
    w(
        "Property",
        "similarProperties",
        5,
        "a ranked self-join per listing",
    ),
    w("Property", "stats", 1, "a counter lookup"),
    list(
        "Query",
        "mapClusters",
        20,
        100,
        "a pass over the listing index in memory; assumed 100 cells",
    ),
    w(
        "PropertyConnection",
        "facets",
        20,
        "six passes over the listing index in memory",
    ),
    list("Property", "images", 0, 20, "at most 20 images per listing"),
    list("Recommendation", "reasons", 0, 5, "a few strings"),
    w(
        "Query",
        "rateLimit",
        0,
        "reads the caller's bucket, free so it can always be asked",
    ),
    w(
        "Mutation",
        "recordInteraction",
        10,
        "a write; one already held gives most of it back",
    ),
    w("Mutation", "unlikeProperty", 10, "a write"),
    w("Mutation", "unsaveProperty", 10, "a write"),
];

/// A field's declared weight (0 when it has none).
pub fn weight_of(type_name: &str, field: &str) -> u64 {
    WEIGHTS
        .iter()
        .find(|w| w.type_name == type_name && w.field == field)
        .map_or(0, |w| w.cost)
}

/// The weights as a Markdown table: `rentgraph cost-table` prints it and docs/OPERATIONS.md
/// carries it (a test keeps the two equal).
pub fn markdown_table() -> String {
    let mut out =
        String::from("| type | field | cost | assumed list size | why |\n|---|---|---|---|---|\n");
    for w in WEIGHTS {
        out.push_str(&format!(
            "| {} | {} | {} | {} | {} |\n",
            w.type_name,
            w.field,
            w.cost,
            w.assumed_size.map_or("-".to_owned(), |s| s.to_string()),
            w.why
        ));
    }
    out
}
