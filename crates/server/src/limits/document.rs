//! Shape limits of a GraphQL document. The text is measured before parsing (bytes, then tokens
//! with a small lexer that stops at the budget), so a huge or token-dense document costs a scan,
//! not a parse; the parsed document is walked once more, before validation, whose
//! overlapping-fields rule is quadratic in duplicated fields.
//!
//! Fragments are expanded with memoised per-fragment figures and saturating arithmetic, so a
//! fragment spread many times counts as many times, and a fragment bomb cannot make the walk
//! itself expensive. Introspection (`__schema`, `__type`) is exempt from the depth limit, since
//! GraphiQL's introspection query nests `ofType` deeper than any data query needs; the parser's
//! recursion limit and the token budget still bound it, and production turns introspection off.
//! What it may not nest is lists: `possibleTypes { interfaces { possibleTypes { … } } }`
//! multiplies its answer by the number of types per level, so list fields of the introspection
//! types (`types`, `fields`, `possibleTypes`, …) nest at most `graphql.max_introspection_lists`
//! deep under `__schema`/`__type` (GraphiQL's query nests three: types, fields, args).
use async_graphql::parser::types::{
    ExecutableDocument, FragmentDefinition, Selection, SelectionSet,
};
use async_graphql::{Name, Positioned};
use std::collections::HashMap;

use crate::error_code::ErrorCode;

/// `[graphql]` settings that bound a document's shape.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DocumentLimits {
    pub max_document_bytes: usize,
    pub max_tokens: usize,
    pub max_depth: usize,
    pub max_aliases: usize,
    pub max_root_fields: usize,
    pub max_directives_per_field: usize,
    pub max_duplicate_fields: usize,
    pub max_selected_fields: usize,
    pub max_introspection_lists: usize,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct LimitExceeded {
    pub code: ErrorCode,
    pub message: String,
}

fn exceeded(code: ErrorCode, what: &str, found: usize, limit: usize) -> LimitExceeded {
    LimitExceeded {
        code,
        message: format!("the operation has {found} {what}; at most {limit} are allowed"),
    }
}

/// Checks the raw text: its size, then its token count.
pub(crate) fn check_text(text: &str, limits: &DocumentLimits) -> Result<(), LimitExceeded> {
    if text.len() > limits.max_document_bytes {
        return Err(LimitExceeded {
            code: ErrorCode::MaxDocumentSizeExceeded,
            message: format!(
                "the document is {} bytes; at most {} are allowed",
                text.len(),
                limits.max_document_bytes
            ),
        });
    }
    let tokens = count_tokens(text, limits.max_tokens);
    if tokens > limits.max_tokens {
        return Err(LimitExceeded {
            code: ErrorCode::MaxTokensExceeded,
            message: format!("the document has more than {} tokens", limits.max_tokens),
        });
    }
    Ok(())
}

/// Lexical tokens of a GraphQL document, counted up to `budget + 1` (it stops there). Commas,
/// white space and comments are ignored, as the GraphQL grammar does; a string is one token.
pub(crate) fn count_tokens(text: &str, budget: usize) -> usize {
    let b = text.as_bytes();
    let mut i = 0;
    let mut n = 0usize;
    let name_char = |c: u8| c == b'_' || c.is_ascii_alphanumeric();
    while i < b.len() {
        let c = b[i];
        match c {
            b' ' | b'\t' | b'\n' | b'\r' | b',' => i += 1,
            0xEF if b[i..].starts_with(&[0xEF, 0xBB, 0xBF]) => i += 3,
            b'#' => {
                while i < b.len() && b[i] != b'\n' && b[i] != b'\r' {
                    i += 1;
                }
            }
            b'"' if b[i..].starts_with(b"\"\"\"") => {
                i += 3;
                while i < b.len() && !b[i..].starts_with(b"\"\"\"") {
                    i += if b[i..].starts_with(b"\\\"\"\"") {
                        4
                    } else {
                        1
                    };
                }
                i = (i + 3).min(b.len());
                n += 1;
            }
            b'"' => {
                i += 1;
                while i < b.len() && b[i] != b'"' && b[i] != b'\n' {
                    i += if b[i] == b'\\' { 2 } else { 1 };
                }
                i = (i + 1).min(b.len());
                n += 1;
            }
            b'.' if b[i..].starts_with(b"...") => {
                i += 3;
                n += 1;
            }
            _ if name_char(c) || c == b'-' => {
                i += 1;
                while i < b.len() && (name_char(b[i]) || matches!(b[i], b'.' | b'+' | b'-')) {
                    i += 1;
                }
                n += 1;
            }
            _ => {
                // Punctuators, and any other character (the parser will refuse it).
                i += 1;
                n += 1;
            }
        }
        if n > budget {
            return n;
        }
    }
    n
}

/// What a selection set (with its fragments expanded) contains.
#[derive(Debug, Clone, Copy, Default)]
struct Figures {
    depth: usize,
    aliases: usize,
    duplicates: usize,
    directives: usize,
    fields: usize,
    /// Every field, fragments expanded as often as they are spread.
    selected: usize,
    /// Nesting of introspection list fields in the subtree (not yet under `__schema`/`__type`).
    intro_lists: usize,
    /// The deepest nesting of introspection list fields under a `__schema` or `__type`.
    introspection: usize,
}

/// The list-valued fields of the introspection types (`__Schema`, `__Type`, `__Field`,
/// `__Directive`), each of which multiplies the answer below it.
const INTROSPECTION_LISTS: &[&str] = &[
    "types",
    "directives",
    "fields",
    "args",
    "inputFields",
    "interfaces",
    "possibleTypes",
    "enumValues",
];

impl Figures {
    fn add(&mut self, other: Figures) {
        self.depth = self.depth.max(other.depth);
        self.aliases = self.aliases.saturating_add(other.aliases);
        self.duplicates = self.duplicates.saturating_add(other.duplicates);
        self.directives = self.directives.max(other.directives);
        self.fields = self.fields.saturating_add(other.fields);
        self.selected = self.selected.saturating_add(other.selected);
        self.intro_lists = self.intro_lists.max(other.intro_lists);
        self.introspection = self.introspection.max(other.introspection);
    }
}

struct Walker<'a> {
    fragments: &'a HashMap<Name, Positioned<FragmentDefinition>>,
    memo: HashMap<&'a str, Figures>,
    visiting: Vec<&'a str>,
}

impl<'a> Walker<'a> {
    fn selection_set(&mut self, set: &'a SelectionSet) -> Figures {
        let mut total = Figures::default();
        let mut keys: HashMap<&str, usize> = HashMap::new();
        for item in &set.items {
            match &item.node {
                Selection::Field(field) => {
                    let f = &field.node;
                    let seen = keys.entry(f.response_key().node.as_str()).or_default();
                    *seen += 1;
                    let mut own = Figures {
                        aliases: usize::from(f.alias.is_some()),
                        duplicates: usize::from(*seen > 1),
                        directives: f.directives.len(),
                        fields: 1,
                        depth: 0,
                        selected: 1,
                        intro_lists: 0,
                        introspection: 0,
                    };
                    let name = f.name.node.as_str();
                    let children = self.selection_set(&f.selection_set.node);
                    let introspection = name == "__schema" || name == "__type";
                    own.depth = if introspection { 1 } else { 1 + children.depth };
                    let lists =
                        children.intro_lists + usize::from(INTROSPECTION_LISTS.contains(&name));
                    if introspection {
                        own.introspection = children.intro_lists.max(children.introspection);
                    } else {
                        own.intro_lists = lists;
                        own.introspection = children.introspection;
                    }
                    own.aliases = own.aliases.saturating_add(children.aliases);
                    own.duplicates = own.duplicates.saturating_add(children.duplicates);
                    own.directives = own.directives.max(children.directives);
                    own.selected = own.selected.saturating_add(children.selected);
                    total.add(own);
                }
                Selection::InlineFragment(inline) => {
                    let mut inner = self.selection_set(&inline.node.selection_set.node);
                    inner.directives = inner.directives.max(inline.node.directives.len());
                    total.add(inner);
                }
                Selection::FragmentSpread(spread) => {
                    let mut inner = self.fragment(spread.node.fragment_name.node.as_str());
                    inner.directives = inner.directives.max(spread.node.directives.len());
                    total.add(inner);
                }
            }
        }
        total
    }

    fn fragment(&mut self, name: &'a str) -> Figures {
        if let Some(f) = self.memo.get(name) {
            return *f;
        }
        // A cycle or an unknown fragment: validation refuses both with a clear message.
        if self.visiting.contains(&name) {
            return Figures::default();
        }
        let Some((key, def)) = self.fragments.get_key_value(name) else {
            return Figures::default();
        };
        self.visiting.push(key.as_str());
        let mut figures = self.selection_set(&def.node.selection_set.node);
        figures.directives = figures.directives.max(def.node.directives.len());
        self.visiting.pop();
        self.memo.insert(key.as_str(), figures);
        figures
    }
}

/// Checks every operation of a parsed document against the shape limits.
pub(crate) fn check_document(
    doc: &ExecutableDocument,
    limits: &DocumentLimits,
) -> Result<(), LimitExceeded> {
    let mut walker = Walker {
        fragments: &doc.fragments,
        memo: HashMap::new(),
        visiting: Vec::new(),
    };
    for (_, op) in doc.operations.iter() {
        let mut f = walker.selection_set(&op.node.selection_set.node);
        f.directives = f.directives.max(op.node.directives.len());
        // Checked in this order; the first one over its limit is reported. `fields` counts the
        // root selection set only (nested fields are in `depth`); `selected` counts every
        // field with fragments expanded, since a fragment spread twice in each of forty
        // fragments is a trillion fields that the executor would never finish.
        let checks: [(usize, usize, ErrorCode, &str); 7] = [
            (
                f.depth,
                limits.max_depth,
                ErrorCode::MaxDepthExceeded,
                "levels of nesting",
            ),
            (
                f.introspection,
                limits.max_introspection_lists,
                ErrorCode::MaxDepthExceeded,
                "levels of nested lists in introspection",
            ),
            (
                f.fields,
                limits.max_root_fields,
                ErrorCode::MaxRootFieldsExceeded,
                "root fields",
            ),
            (
                f.aliases,
                limits.max_aliases,
                ErrorCode::MaxAliasesExceeded,
                "aliases",
            ),
            (
                f.directives,
                limits.max_directives_per_field,
                ErrorCode::MaxDirectivesExceeded,
                "directives on one selection",
            ),
            (
                f.duplicates,
                limits.max_duplicate_fields,
                ErrorCode::MaxDuplicateFieldsExceeded,
                "repeated fields",
            ),
            (
                f.selected,
                limits.max_selected_fields,
                ErrorCode::MaxFieldsExceeded,
                "fields (fragments expanded)",
            ),
        ];
        if let Some((found, limit, code, what)) =
            checks.into_iter().find(|(found, limit, ..)| found > limit)
        {
            return Err(exceeded(code, what, found, limit));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: DocumentLimits = DocumentLimits {
        max_document_bytes: 100_000,
        max_tokens: 10_000,
        max_depth: 5,
        max_aliases: 3,
        max_root_fields: 4,
        max_directives_per_field: 2,
        max_duplicate_fields: 2,
        max_selected_fields: 50,
        max_introspection_lists: 3,
    };

    fn check(q: &str) -> Result<(), ErrorCode> {
        let doc = async_graphql::parser::parse_query(q).expect("parses");
        check_document(&doc, &LIMITS).map_err(|e| e.code)
    }

    #[test]
    fn tokens_are_counted_as_the_grammar_sees_them() {
        assert_eq!(count_tokens("{ a, b }", 100), 4);
        assert_eq!(count_tokens("# comment\n{ a(x: \"s, t { }\") }", 100), 8);
        assert_eq!(
            count_tokens("{ a(x: \"\"\"block \\\"\"\" \"\"\") ...F }", 100),
            10
        );
        assert_eq!(count_tokens("{ a(n: -1.5e3) }", 100), 8);
        // Stops at the budget instead of scanning everything.
        assert_eq!(count_tokens(&"a ".repeat(1_000_000), 10), 11);
    }

    #[test]
    fn shapes_over_a_limit_get_their_own_code() {
        assert_eq!(check("{ a { b { c { d { e } } } } }"), Ok(()));
        assert_eq!(
            check("{ a { b { c { d { e { f } } } } } }"),
            Err(ErrorCode::MaxDepthExceeded)
        );
        assert_eq!(
            check("{ a b c d e }"),
            Err(ErrorCode::MaxRootFieldsExceeded)
        );
        assert_eq!(
            check("{ a { x: b y: b z: b w: b } }"),
            Err(ErrorCode::MaxAliasesExceeded)
        );
        assert_eq!(
            check("{ a @skip(if: false) @include(if: true) @skip(if: false) }"),
            Err(ErrorCode::MaxDirectivesExceeded)
        );
        assert_eq!(
            check("{ a { b b b b } }"),
            Err(ErrorCode::MaxDuplicateFieldsExceeded)
        );
    }

    #[test]
    fn fragments_count_where_they_are_spread() {
        // Depth through a fragment.
        assert_eq!(
            check("{ a { ...F } } fragment F on T { b { c { d { e { f } } } } }"),
            Err(ErrorCode::MaxDepthExceeded)
        );
        // Two aliases, spread twice, are four.
        assert_eq!(
            check("{ a { ...F } b { ...F } } fragment F on T { x: c y: c }"),
            Err(ErrorCode::MaxAliasesExceeded)
        );
        // A cycle does not hang the walk (validation refuses it later).
        assert_eq!(
            check("{ a { ...F } } fragment F on T { b { ...G } } fragment G on T { ...F }"),
            Ok(())
        );
        // A fragment bomb is counted, saturating, without expanding it.
        let mut q = String::from("{ a { ...F0 } }");
        for i in 0..40 {
            q.push_str(&format!(
                " fragment F{i} on T {{ x: f ...F{n} y: f ...F{n} }}",
                n = i + 1
            ));
        }
        q.push_str(" fragment F40 on T { z }");
        assert_eq!(check(&q), Err(ErrorCode::MaxAliasesExceeded));
        // Spreads alone, without a field between them, double too.
        let mut q = String::from("{ a { ...G0 } }");
        for i in 0..40 {
            q.push_str(&format!(
                " fragment G{i} on T {{ ...G{n} ...G{n} }}",
                n = i + 1
            ));
        }
        q.push_str(" fragment G40 on T { __typename }");
        assert_eq!(check(&q), Err(ErrorCode::MaxFieldsExceeded));
    }

    #[test]
    fn introspection_is_exempt_from_depth_only() {
        let deep = "{ __schema { types { fields { type { ofType { ofType { ofType { ofType { name } } } } } } } } }";
        assert_eq!(check(deep), Ok(()));
        assert_eq!(
            check("{ __type(name: \"T\") { a: name b: name c: name d: name } }"),
            Err(ErrorCode::MaxAliasesExceeded)
        );
    }

    #[test]
    fn introspection_lists_nest_at_most_the_limit_through_fragments() {
        let graphiql =
            "{ __schema { types { fields { args { name type { ofType { name } } } } } } }";
        assert_eq!(check(graphiql), Ok(()));
        let bomb = "{ __type(name: \"Node\") { possibleTypes { interfaces { possibleTypes { interfaces { name } } } } } }";
        assert_eq!(check(bomb), Err(ErrorCode::MaxDepthExceeded));
        let through = "query { __type(name: \"Node\") { ...P } }
            fragment P on __Type { possibleTypes { interfaces { ...Q } } }
            fragment Q on __Type { possibleTypes { interfaces { name } } }";
        assert_eq!(check(through), Err(ErrorCode::MaxDepthExceeded));
    }

    proptest::proptest! {
        #[test]
        fn any_text_is_measured_without_panicking(text in ".{0,300}") {
            let n = count_tokens(&text, usize::MAX);
            proptest::prop_assert!(n <= text.len());
            let _ = check_text(&text, &LIMITS);
        }
    }
}
