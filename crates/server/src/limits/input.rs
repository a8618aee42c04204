//! Bounds on argument values, checked for the whole request before execution: every string
//! (in the document's literals and in the variables) is at most `max_string_chars` long and has
//! no control characters other than tab and line breaks; every list has at most
//! `max_list_items` items. Resolvers still apply their own, tighter rules (a title's length, a
//! price's range); this pass makes sure no argument anywhere is unbounded, and that a NUL byte
//! never reaches the database, which would refuse it with an internal error.
use async_graphql::Variables;
use async_graphql::parser::types::{ExecutableDocument, Selection, SelectionSet};
use async_graphql_value::{ConstValue, Value};

use super::LimitExceeded;

use crate::error_code::ErrorCode;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InputLimits {
    pub max_list_items: usize,
    pub max_string_chars: usize,
}

fn bad(message: String) -> LimitExceeded {
    LimitExceeded {
        code: ErrorCode::BadUserInput,
        message,
    }
}

/// One string: length and characters.
pub(crate) fn check_str(s: &str, limits: &InputLimits) -> Result<(), LimitExceeded> {
    // Bytes bound characters from above: only count when the cheap test cannot decide.
    if s.len() > limits.max_string_chars && s.chars().count() > limits.max_string_chars {
        return Err(bad(format!(
            "a string argument is longer than {} characters",
            limits.max_string_chars
        )));
    }
    if s.chars()
        .any(|c| c.is_control() && !matches!(c, '\t' | '\n' | '\r'))
    {
        return Err(bad(
            "string arguments must not contain control characters".to_owned()
        ));
    }
    Ok(())
}

fn check_len(n: usize, limits: &InputLimits) -> Result<(), LimitExceeded> {
    if n > limits.max_list_items {
        return Err(bad(format!(
            "a list argument has {n} items; at most {} are allowed",
            limits.max_list_items
        )));
    }
    Ok(())
}

pub(crate) fn check_const(v: &ConstValue, limits: &InputLimits) -> Result<(), LimitExceeded> {
    match v {
        ConstValue::String(s) => check_str(s, limits),
        ConstValue::List(items) => {
            check_len(items.len(), limits)?;
            items.iter().try_for_each(|i| check_const(i, limits))
        }
        ConstValue::Object(fields) => fields.iter().try_for_each(|(k, v)| {
            check_str(k, limits)?;
            check_const(v, limits)
        }),
        _ => Ok(()),
    }
}

fn check_value(v: &Value, limits: &InputLimits) -> Result<(), LimitExceeded> {
    match v {
        Value::String(s) => check_str(s, limits),
        Value::List(items) => {
            check_len(items.len(), limits)?;
            items.iter().try_for_each(|i| check_value(i, limits))
        }
        Value::Object(fields) => fields.values().try_for_each(|v| check_value(v, limits)),
        _ => Ok(()),
    }
}

fn check_set(set: &SelectionSet, limits: &InputLimits) -> Result<(), LimitExceeded> {
    for item in &set.items {
        let (directives, children) = match &item.node {
            Selection::Field(f) => {
                for (_, arg) in &f.node.arguments {
                    check_value(&arg.node, limits)?;
                }
                (&f.node.directives, Some(&f.node.selection_set.node))
            }
            Selection::InlineFragment(i) => (&i.node.directives, Some(&i.node.selection_set.node)),
            Selection::FragmentSpread(s) => (&s.node.directives, None),
        };
        for d in directives {
            for (_, arg) in &d.node.arguments {
                check_value(&arg.node, limits)?;
            }
        }
        if let Some(children) = children {
            check_set(children, limits)?;
        }
    }
    Ok(())
}

/// Every variable value.
pub(crate) fn check_variables(
    variables: &Variables,
    limits: &InputLimits,
) -> Result<(), LimitExceeded> {
    variables
        .iter()
        .try_for_each(|(_, v)| check_const(v, limits))
}

/// Every literal argument in the document (fragments included, each once) and every variable
/// default.
pub(crate) fn check_document(
    doc: &ExecutableDocument,
    limits: &InputLimits,
) -> Result<(), LimitExceeded> {
    for (_, op) in doc.operations.iter() {
        for var in &op.node.variable_definitions {
            if let Some(default) = &var.node.default_value {
                check_const(&default.node, limits)?;
            }
        }
        check_set(&op.node.selection_set.node, limits)?;
    }
    doc.fragments
        .values()
        .try_for_each(|fragment| check_set(&fragment.node.selection_set.node, limits))
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: InputLimits = InputLimits {
        max_list_items: 3,
        max_string_chars: 10,
    };

    fn check(q: &str, vars: serde_json::Value) -> Result<(), String> {
        let doc = async_graphql::parser::parse_query(q).expect("parses");
        check_document(&doc, &LIMITS)
            .and_then(|()| check_variables(&Variables::from_json(vars), &LIMITS))
            .map_err(|e| e.message)
    }

    #[test]
    fn strings_and_lists_are_bounded_wherever_they_appear() {
        assert!(check("{ a(x: \"ok\", y: [1, 2, 3]) }", serde_json::json!({})).is_ok());
        assert!(check("{ a(x: \"elevenchars\") }", serde_json::json!({})).is_err());
        assert!(check("{ a(y: [1, 2, 3, 4]) }", serde_json::json!({})).is_err());
        assert!(
            check(
                "{ a { b(f: { z: [\"1\",\"2\",\"3\",\"4\"] }) } }",
                serde_json::json!({})
            )
            .is_err()
        );
        assert!(
            check(
                "{ ...F } fragment F on Q { a(x: \"elevenchars\") }",
                serde_json::json!({})
            )
            .is_err()
        );
        assert!(
            check(
                "query($v: [Int] = [1,2,3,4]) { a(y: $v) }",
                serde_json::json!({})
            )
            .is_err()
        );
        assert!(
            check(
                "query($v: S) { a(x: $v) }",
                serde_json::json!({ "v": "nul\u{0}" })
            )
            .is_err()
        );
        assert!(
            check(
                "query($v: I) { a(x: $v) }",
                serde_json::json!({ "v": { "k": [1, 2, 3, 4] } })
            )
            .is_err()
        );
        assert!(check("{ a(x: \"tab\\tnl\\n\") }", serde_json::json!({})).is_ok());
        assert!(check("{ a(x: \"bell\\u0007\") }", serde_json::json!({})).is_err());
        // Ten characters of four bytes each are within a ten-character limit.
        assert!(
            check(
                "query($v: S) { a(x: $v) }",
                serde_json::json!({ "v": "😀".repeat(10) })
            )
            .is_ok()
        );
    }

    proptest::proptest! {
        #[test]
        fn strings_are_refused_exactly_when_too_long_or_controlled(s in "\\PC{0,20}|.{0,20}") {
            let controlled = s.chars().any(|c| c.is_control() && !matches!(c, '\t' | '\n' | '\r'));
            let long = s.chars().count() > LIMITS.max_string_chars;
            proptest::prop_assert_eq!(check_str(&s, &LIMITS).is_err(), controlled || long);
        }
    }
}
