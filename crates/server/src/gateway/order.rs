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
        let plan = plan(&[&op.selection_set.node], doc, 0);
        apply(data, &plan);
    }
}

/// The response keys of a selection, in order, each with the plan of its own selection. Built
/// once per response from the document, so a page of 50 listings is not 50 walks of the
/// document; its size is the document's with fragments expanded, which the duplicated-fields
/// limit bounds.
struct Plan<'d> {
    keys: Vec<(&'d str, Plan<'d>)>,
}

fn plan<'d>(sets: &[&'d SelectionSet], doc: &'d ExecutableDocument, depth: usize) -> Plan<'d> {
    let mut keyed: Keyed<'d> = Vec::new();
    collect(sets, doc, &mut keyed, 0);
    Plan {
        keys: keyed
            .into_iter()
            .map(|(key, subsets)| {
                // The depth limit ran before execution; this bound only keeps a bug finite.
                let sub = if depth < 64 {
                    plan(&subsets, doc, depth + 1)
                } else {
                    Plan { keys: Vec::new() }
                };
                (key, sub)
            })
            .collect(),
    }
}

fn apply(value: &mut Value, plan: &Plan<'_>) {
    match value {
        Value::List(items) => {
            for item in items {
                apply(item, plan);
            }
        }
        Value::Object(map) if !plan.keys.is_empty() => {
            if !in_order(map, plan) {
                let mut unordered = std::mem::take(map);
                for (key, _) in &plan.keys {
                    if let Some((name, v)) = unordered.shift_remove_entry(*key) {
                        map.insert(name, v);
                    }
                }
                // Nothing should be left (every key comes from the document); keep it if it is.
                map.extend(unordered);
            }
            for (key, sub) in &plan.keys {
                if let (false, Some(v)) = (sub.keys.is_empty(), map.get_mut(*key)) {
                    apply(v, sub);
                }
            }
        }
        _ => {}
    }
}

/// Whether the object's keys already follow the plan (absent keys allowed): the common case
/// costs one pass and no allocation.
fn in_order(
    map: &async_graphql::indexmap::IndexMap<async_graphql::Name, Value>,
    plan: &Plan<'_>,
) -> bool {
    let mut expected = plan.keys.iter();
    map.keys()
        .all(|key| expected.any(|(k, _)| *k == key.as_str()))
}

/// Response keys, each with the selection sets merged under it.
type Keyed<'d> = Vec<(&'d str, Vec<&'d SelectionSet>)>;

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
