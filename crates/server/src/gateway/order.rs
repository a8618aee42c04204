//! Response keys in the order the document selected them, as GraphQL's spec asks. async-graphql
//! resolves a query's fields concurrently and keeps them in the order they finished, so the same
//! query could answer `{"b":…,"a":…}` once and `{"a":…,"b":…}` the next time: a client diffing
//! answers sees changes that are not there, and the bytes, and so the ETag of a cacheable answer
//! (`http_cache`), would change between identical answers.
use async_graphql::Value;
use async_graphql::parser::types::{ExecutableDocument, Selection, SelectionSet};

/// Puts every object of `data` in selection order (merging the fields of fragments and of
/// fields selected more than once under one response key, as execution does).
pub(crate) fn in_selection_order(data: &mut Value, doc: &ExecutableDocument, wanted: Option<&str>) {
    if let Some((_, op)) = crate::limits::cost::select_operation(doc, wanted) {
        order(data, &[&op.selection_set.node], doc);
    }
}

/// One response key and the selection sets merged under it.
type Keyed<'d> = Vec<(&'d str, Vec<&'d SelectionSet>)>;

fn order(value: &mut Value, sets: &[&SelectionSet], doc: &ExecutableDocument) {
    match value {
        Value::List(items) => {
            for item in items {
                order(item, sets, doc);
            }
        }
        Value::Object(map) if !sets.is_empty() => {
            let mut keys: Keyed<'_> = Vec::new();
            collect(sets, doc, &mut keys, 0);
            let mut unordered = std::mem::take(map);
            for (key, subsets) in keys {
                if let Some((name, mut v)) = unordered.shift_remove_entry(key) {
                    order(&mut v, &subsets, doc);
                    map.insert(name, v);
                }
            }
            // Nothing should be left (every key comes from the document); keep it if it is.
            map.extend(unordered);
        }
        _ => {}
    }
}

/// The response keys of selection sets, in first-appearance order, through fragments.
fn collect<'d>(
    sets: &[&'d SelectionSet],
    doc: &'d ExecutableDocument,
    keys: &mut Keyed<'d>,
    depth: usize,
) {
    // Validation refuses fragment cycles before execution; the bound only keeps a bug from
    // recursing forever.
    if depth > 32 {
        return;
    }
    for set in sets {
        for selection in &set.items {
            match &selection.node {
                Selection::Field(field) => {
                    let key = field.node.response_key().node.as_str();
                    let sub = &field.node.selection_set.node;
                    match keys.iter_mut().find(|(k, _)| *k == key) {
                        Some((_, subs)) => subs.push(sub),
                        None => keys.push((key, vec![sub])),
                    }
                }
                Selection::FragmentSpread(spread) => {
                    if let Some(fragment) = doc.fragments.get(&spread.node.fragment_name.node) {
                        collect(&[&fragment.node.selection_set.node], doc, keys, depth + 1);
                    }
                }
                Selection::InlineFragment(inline) => {
                    collect(&[&inline.node.selection_set.node], doc, keys, depth + 1);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(v: &Value) -> Vec<String> {
        match v {
            Value::Object(m) => m.keys().map(|k| k.to_string()).collect(),
            _ => Vec::new(),
        }
    }

    #[test]
    fn objects_follow_the_selection_through_aliases_fragments_and_lists() {
        let doc = async_graphql::parser::parse_query(
            "query Q { b: properties { edges { node { ...F title } } } a: me { id } }
             fragment F on Property { city ... on Property { id } }",
        )
        .expect("parse");
        let mut data = Value::from_json(serde_json::json!({
            "a": { "id": "u" },
            "b": { "edges": [
                { "node": { "title": "t", "id": "1", "city": "c" } },
                { "node": { "id": "2", "city": "d", "title": "s" } }
            ] }
        }))
        .unwrap_or_default();
        in_selection_order(&mut data, &doc, Some("Q"));
        assert_eq!(keys(&data), ["b", "a"]);
        let Value::Object(top) = &data else {
            panic!("an object")
        };
        let Some(Value::Object(b)) = top.get("b") else {
            panic!("b")
        };
        let Some(Value::List(edges)) = b.get("edges") else {
            panic!("edges")
        };
        for edge in edges {
            let Value::Object(e) = edge else { panic!() };
            assert_eq!(keys(&e["node"]), ["city", "id", "title"]);
        }
    }
}
