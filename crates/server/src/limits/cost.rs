//! Static and actual cost of an operation. The static cost is computed before execution from
//! the document, the schema's field types and the weights in `graphql::weights`: a connection's
//! edges and nodes count `first`/`last` times (or the default page size), other lists their
//! `first` or an assumed size, so `first: 0` leaves a connection's own cost (and its
//! `totalCount`) in place and no field is free. After execution the same walk over the response
//! counts what was actually returned; the unused part of the charge is refunded. All arithmetic
//! saturates, so `first: 2147483647` nested anywhere is a large cost, never an overflow.
use async_graphql::parser::types::{
    BaseType, ExecutableDocument, Field, FragmentDefinition, OperationDefinition, Selection,
    SelectionSet, TypeKind, TypeSystemDefinition,
};
use async_graphql::{Name, Positioned, Variables};
use async_graphql_value::{ConstValue, Value};
use std::collections::HashMap;

/// One field's price, beyond the defaults.
#[derive(Debug, Clone, Copy)]
pub struct FieldWeight {
    pub type_name: &'static str,
    pub field: &'static str,
    /// Replaces the default base cost of the field; for a list, what fetching the list costs
    /// once, beside 1 for each object in it.
    pub cost: u64,
    /// For lists without `first`: how many items to assume.
    pub assumed_size: Option<u64>,
    pub why: &'static str,
}

#[derive(Debug, Clone)]
struct FieldInfo {
    ty: String,
    list: bool,
    /// `first`'s default in the schema, if the field has one.
    first_default: Option<u64>,
}

#[derive(Debug, Clone, Default)]
struct TypeInfo {
    composite: bool,
    fields: HashMap<String, FieldInfo>,
}

/// The schema's shape and the weights: built once at start-up from the SDL.
#[derive(Debug, Clone)]
pub(crate) struct CostModel {
    types: HashMap<String, TypeInfo>,
    weights: HashMap<&'static str, HashMap<&'static str, FieldWeight>>,
    mutation_type: String,
    default_page_size: u64,
    default_list_size: u64,
    mutation_cost: u64,
    /// What a search's ranking costs beyond its page (`with_search_bound`).
    search_ranking_cost: u64,
    query_type: String,
    /// The assumed length of each introspection list: this schema's average (`introspection_sizes`).
    introspection_sizes: HashMap<(&'static str, &'static str), u64>,
}

fn as_u64(v: &ConstValue) -> Option<u64> {
    match v {
        ConstValue::Number(n) => n.as_i64().map(|n| n.max(0) as u64),
        _ => None,
    }
}

/// Points per amenity a root listing query filters by: each is one more set the listings are
/// intersected with (`property_amenities`), work the page size does not show.
pub(crate) const AMENITY_FILTER_COST: u64 = 5;

/// Matches a search ranks per point of its cost (`graphql.max_search_ranked` sets how many).
pub(crate) const SEARCH_RANKED_PER_POINT: u64 = 100;

/// Items of a list argument or input field: a literal list, or a variable's.
fn list_len(v: &Value, variables: &Variables) -> u64 {
    match v {
        Value::List(items) => items.len() as u64,
        Value::Variable(var) => match variables.get(var) {
            Some(ConstValue::List(items)) => items.len() as u64,
            _ => 0,
        },
        _ => 0,
    }
}

/// The amenities a `filter` argument names, literal or from variables.
fn filter_amenities(filter: &Value, variables: &Variables) -> u64 {
    match filter {
        Value::Object(fields) => fields
            .iter()
            .find(|(k, _)| k.as_str() == "amenities")
            .map_or(0, |(_, v)| list_len(v, variables)),
        Value::Variable(var) => match variables.get(var) {
            Some(ConstValue::Object(fields)) => fields
                .iter()
                .find(|(k, _)| k.as_str() == "amenities")
                .map_or(0, |(_, v)| match v {
                    ConstValue::List(items) => items.len() as u64,
                    _ => 0,
                }),
            _ => 0,
        },
        _ => 0,
    }
}

impl CostModel {
    /// Searches rank up to `max_ranked` matches: each costs a point per
    /// `SEARCH_RANKED_PER_POINT` of them.
    pub(crate) fn with_search_bound(mut self, max_ranked: u64) -> Self {
        self.search_ranking_cost = max_ranked.div_ceil(SEARCH_RANKED_PER_POINT);
        self
    }

    /// What an operation's root listing queries make the database do beyond their page: each
    /// amenity filtered by, and a search's ranking of up to `graphql.max_search_ranked`
    /// matches. Charged up front and kept at settlement (an empty page still did the
    /// intersections and the ranking).
    pub(crate) fn scan_surcharge(
        &self,
        doc: &ExecutableDocument,
        operation_name: Option<&str>,
        variables: &Variables,
    ) -> u64 {
        let Some((_, op)) = select_operation(doc, operation_name) else {
            return 0;
        };
        op.selection_set
            .node
            .items
            .iter()
            .filter_map(|s| match &s.node {
                Selection::Field(f)
                    if matches!(f.node.name.node.as_str(), "properties" | "searchProperties") =>
                {
                    Some(&f.node)
                }
                _ => None,
            })
            .map(|f| {
                let ranking = if f.name.node == "searchProperties" {
                    self.search_ranking_cost
                } else {
                    0
                };
                f.arguments
                    .iter()
                    .find(|(n, _)| n.node == "filter")
                    .map_or(0, |(_, v)| filter_amenities(&v.node, variables))
                    .saturating_mul(AMENITY_FILTER_COST)
                    .saturating_add(ranking)
            })
            .fold(0u64, u64::saturating_add)
    }

    pub(crate) fn new(
        sdl: &str,
        weights: &[FieldWeight],
        default_page_size: u64,
    ) -> Result<Self, String> {
        let doc = async_graphql::parser::parse_schema(sdl).map_err(|e| e.to_string())?;
        let mut types = HashMap::new();
        let mut mutation_type = "Mutation".to_owned();
        let mut query_type = "Query".to_owned();
        for def in &doc.definitions {
            if let TypeSystemDefinition::Schema(s) = def {
                if let Some(m) = &s.node.mutation {
                    mutation_type = m.node.to_string();
                }
                if let Some(q) = &s.node.query {
                    query_type = q.node.to_string();
                }
            }
        }
        read_types(&doc, &mut types);
        // Introspection is walked like the rest: its types, and the two root fields.
        let introspection =
            async_graphql::parser::parse_schema(INTROSPECTION_SDL).map_err(|e| e.to_string())?;
        read_types(&introspection, &mut types);
        let root = types.entry(query_type.clone()).or_default();
        for (field, ty) in [("__schema", "__Schema"), ("__type", "__Type")] {
            root.fields.insert(
                field.to_owned(),
                FieldInfo {
                    ty: ty.to_owned(),
                    list: false,
                    first_default: None,
                },
            );
        }
        Ok(Self {
            types,
            weights: weights.iter().fold(HashMap::new(), |mut m, w| {
                m.entry(w.type_name)
                    .or_insert_with(HashMap::new)
                    .insert(w.field, *w);
                m
            }),
            mutation_type,
            query_type,
            default_page_size,
            default_list_size: 10,
            mutation_cost: 10,
            search_ranking_cost: 0,
            introspection_sizes: introspection_sizes(&doc),
        })
    }

    fn base(&self, parent: &str, field: &str, info: Option<&FieldInfo>) -> u64 {
        if let Some(w) = self.weight(parent, field) {
            return w.cost;
        }
        if field.starts_with("__") {
            return if field == "__typename" { 0 } else { 1 };
        }
        if parent == self.mutation_type {
            return self.mutation_cost;
        }
        match info {
            Some(i) if self.types.get(&i.ty).is_some_and(|t| t.composite) => 1,
            _ => 0,
        }
    }

    fn weight(&self, parent: &str, field: &str) -> Option<&FieldWeight> {
        self.weights.get(parent)?.get(field)
    }

    fn assumed_size(&self, parent: &str, field: &str) -> u64 {
        self.weight(parent, field)
            .and_then(|w| w.assumed_size)
            .or_else(|| {
                self.introspection_sizes
                    .iter()
                    .find(|((t, f), _)| *t == parent && *f == field)
                    .map(|(_, n)| *n)
            })
            .unwrap_or(self.default_list_size)
    }

    /// A root introspection field's walked cost, scaled: introspection is answered from memory,
    /// so a point buys `INTROSPECTION_OBJECTS_PER_POINT` objects (GraphiQL's full query fits a
    /// budget; a query nesting lists to multiply them pays for what it multiplies).
    fn introspection(&self, parent: &str, field: &str, walked: u64) -> u64 {
        if parent == self.query_type && matches!(field, "__schema" | "__type") {
            walked.div_ceil(INTROSPECTION_OBJECTS_PER_POINT)
        } else {
            walked
        }
    }

    /// The operation's cost before execution.
    pub(crate) fn requested(
        &self,
        doc: &ExecutableDocument,
        operation_name: Option<&str>,
        variables: &Variables,
    ) -> u64 {
        let Some((op_type, op)) = self.operation(doc, operation_name) else {
            return 0;
        };
        let mut walk = Static {
            model: self,
            doc,
            op,
            variables,
            visiting: Vec::new(),
        };
        walk.set(&op.selection_set.node, &op_type, None)
    }

    /// The operation's cost counted over what the response returned.
    pub(crate) fn actual(
        &self,
        doc: &ExecutableDocument,
        operation_name: Option<&str>,
        data: &ConstValue,
    ) -> u64 {
        let Some((op_type, op)) = self.operation(doc, operation_name) else {
            return 0;
        };
        let mut walk = Actual {
            model: self,
            doc,
            visiting: Vec::new(),
        };
        walk.set(&op.selection_set.node, &op_type, data)
    }

    fn operation<'d>(
        &self,
        doc: &'d ExecutableDocument,
        name: Option<&str>,
    ) -> Option<(String, &'d OperationDefinition)> {
        use async_graphql::parser::types::OperationType;
        let (_, op) = select_operation(doc, name)?;
        let root = match op.ty {
            OperationType::Query => "Query".to_owned(),
            OperationType::Mutation => self.mutation_type.clone(),
            OperationType::Subscription => "Subscription".to_owned(),
        };
        Some((root, op))
    }

    fn field_info(&self, parent: &str, field: &str) -> Option<&FieldInfo> {
        self.types.get(parent)?.fields.get(field)
    }

    fn is_connection(&self, ty: &str) -> bool {
        ty.ends_with("Connection")
    }
}

/// Introspection objects per point of cost (`CostModel::introspection`).
const INTROSPECTION_OBJECTS_PER_POINT: u64 = 10;

/// The introspection types (the GraphQL spec's, as graphql-js prints them), for the walk.
const INTROSPECTION_SDL: &str = "
type __Schema { description: String types: [__Type!]! queryType: __Type! mutationType: __Type
  subscriptionType: __Type directives: [__Directive!]! }
type __Type { kind: __TypeKind! name: String description: String specifiedByURL: String
  fields(includeDeprecated: Boolean = false): [__Field!] interfaces: [__Type!]
  possibleTypes: [__Type!] enumValues(includeDeprecated: Boolean = false): [__EnumValue!]
  inputFields(includeDeprecated: Boolean = false): [__InputValue!] ofType: __Type isOneOf: Boolean }
type __Field { name: String! description: String args(includeDeprecated: Boolean = false): [__InputValue!]!
  type: __Type! isDeprecated: Boolean! deprecationReason: String }
type __InputValue { name: String! description: String type: __Type! defaultValue: String
  isDeprecated: Boolean! deprecationReason: String }
type __EnumValue { name: String! description: String isDeprecated: Boolean! deprecationReason: String }
type __Directive { name: String! description: String locations: [__DirectiveLocation!]!
  args(includeDeprecated: Boolean = false): [__InputValue!]! isRepeatable: Boolean! }
enum __TypeKind { SCALAR OBJECT INTERFACE UNION ENUM INPUT_OBJECT LIST NON_NULL }
enum __DirectiveLocation { QUERY MUTATION SUBSCRIPTION FIELD }
";

/// Object, interface and union types with their fields, from a parsed SDL.
fn read_types(
    doc: &async_graphql::parser::types::ServiceDocument,
    types: &mut HashMap<String, TypeInfo>,
) {
    for def in &doc.definitions {
        let TypeSystemDefinition::Type(t) = def else {
            continue;
        };
        let t = &t.node;
        let fields = match &t.kind {
            TypeKind::Object(o) => Some(&o.fields),
            TypeKind::Interface(i) => Some(&i.fields),
            _ => None,
        };
        let composite = matches!(
            t.kind,
            TypeKind::Object(_) | TypeKind::Interface(_) | TypeKind::Union(_)
        );
        let mut info = TypeInfo {
            composite,
            fields: HashMap::new(),
        };
        for f in fields.into_iter().flatten() {
            let f = &f.node;
            let mut ty = &f.ty.node;
            let mut list = false;
            let name = loop {
                match &ty.base {
                    BaseType::Named(n) => break n.to_string(),
                    BaseType::List(inner) => {
                        list = true;
                        ty = inner;
                    }
                }
            };
            let first_default = f
                .arguments
                .iter()
                .find(|a| a.node.name.node == "first")
                .and_then(|a| a.node.default_value.as_ref())
                .and_then(|d| as_u64(&d.node));
            info.fields.insert(
                f.name.node.to_string(),
                FieldInfo {
                    ty: name,
                    list,
                    first_default,
                },
            );
        }
        types.insert(t.name.node.to_string(), info);
    }
}

/// The assumed length of each introspection list: this schema's average per holder, rounded up
/// (so a full dump, GraphiQL's query, is priced at about what it returns), at least 1.
fn introspection_sizes(
    doc: &async_graphql::parser::types::ServiceDocument,
) -> HashMap<(&'static str, &'static str), u64> {
    let (mut types, mut directives) = (0u64, 5u64);
    let (mut holders, mut fields, mut args) = (0u64, 0u64, 0u64);
    let (mut enums, mut values, mut inputs, mut input_fields) = (0u64, 0u64, 0u64, 0u64);
    let (mut abstracts, mut members, mut objects, mut interfaces) = (0u64, 0u64, 0u64, 0u64);
    for def in &doc.definitions {
        match def {
            TypeSystemDefinition::Type(t) => {
                types += 1;
                match &t.node.kind {
                    TypeKind::Object(o) => {
                        holders += 1;
                        objects += 1;
                        interfaces += o.implements.len() as u64;
                        fields += o.fields.len() as u64;
                        args += o
                            .fields
                            .iter()
                            .map(|f| f.node.arguments.len() as u64)
                            .sum::<u64>();
                    }
                    TypeKind::Interface(i) => {
                        holders += 1;
                        abstracts += 1;
                        fields += i.fields.len() as u64;
                        args += i
                            .fields
                            .iter()
                            .map(|f| f.node.arguments.len() as u64)
                            .sum::<u64>();
                    }
                    TypeKind::Union(u) => {
                        abstracts += 1;
                        members += u.members.len() as u64;
                    }
                    TypeKind::Enum(e) => {
                        enums += 1;
                        values += e.values.len() as u64;
                    }
                    TypeKind::InputObject(i) => {
                        inputs += 1;
                        input_fields += i.fields.len() as u64;
                    }
                    TypeKind::Scalar => {}
                }
            }
            TypeSystemDefinition::Directive(_) => directives += 1,
            TypeSystemDefinition::Schema(_) => {}
        }
    }
    let avg = |n: u64, of: u64| n.div_ceil(of.max(1)).max(1);
    // Interfaces' implementors are counted from the objects that name them.
    let possible = avg(members + interfaces, abstracts);
    HashMap::from([
        (("__Schema", "types"), types.max(1) + 8),
        (("__Schema", "directives"), directives),
        (("__Type", "fields"), avg(fields, holders)),
        (("__Type", "interfaces"), avg(interfaces, objects)),
        (("__Type", "possibleTypes"), possible),
        (("__Type", "enumValues"), avg(values, enums)),
        (("__Type", "inputFields"), avg(input_fields, inputs)),
        (("__Field", "args"), avg(args, fields)),
        (("__Directive", "args"), 1),
    ])
}

/// The operation a request runs, with its name: the one named by `operationName`, or the
/// document's only operation (named or not), as GraphQL's GetOperation says.
pub(crate) fn select_operation<'d>(
    doc: &'d ExecutableDocument,
    name: Option<&str>,
) -> Option<(Option<&'d str>, &'d OperationDefinition)> {
    use async_graphql::parser::types::DocumentOperations;
    match (&doc.operations, name) {
        (DocumentOperations::Single(op), _) => Some((None, &op.node)),
        (DocumentOperations::Multiple(ops), Some(n)) => ops
            .get_key_value(n)
            .map(|(k, op)| (Some(k.as_str()), &op.node)),
        (DocumentOperations::Multiple(ops), None) if ops.len() == 1 => ops
            .iter()
            .next()
            .map(|(k, op)| (Some(k.as_str()), &op.node)),
        (DocumentOperations::Multiple(_), None) => None,
    }
}

type Fragments = HashMap<Name, Positioned<FragmentDefinition>>;

fn fragment<'d>(
    doc: &'d ExecutableDocument,
    name: &str,
) -> Option<(&'d str, &'d FragmentDefinition)> {
    let frags: &Fragments = &doc.fragments;
    frags
        .get_key_value(name)
        .map(|(k, v)| (k.as_str(), &v.node))
}

/// A walk over an operation's selections, fragments expanded (each fragment at most once on
/// a path, so a cycle, which validation refuses later, cannot loop). The two walks differ only
/// in what they carry down (`At`) and in how a field costs.
trait Walk<'a> {
    type At: Copy;

    fn doc(&self) -> &'a ExecutableDocument;
    fn visiting(&mut self) -> &mut Vec<&'a str>;
    fn field(&mut self, f: &'a Field, parent: &str, at: Self::At) -> u64;

    fn set(&mut self, set: &'a SelectionSet, parent: &str, at: Self::At) -> u64 {
        let mut total = 0u64;
        for item in &set.items {
            let cost = match &item.node {
                Selection::Field(f) => self.field(&f.node, parent, at),
                Selection::InlineFragment(i) => {
                    let ty = i
                        .node
                        .type_condition
                        .as_ref()
                        .map(|c| c.node.on.node.to_string())
                        .unwrap_or_else(|| parent.to_owned());
                    self.set(&i.node.selection_set.node, &ty, at)
                }
                Selection::FragmentSpread(s) => {
                    let name = s.node.fragment_name.node.as_str();
                    match fragment(self.doc(), name) {
                        Some((key, def)) if !self.visiting().contains(&key) => {
                            self.visiting().push(key);
                            let ty = def.type_condition.node.on.node.to_string();
                            let c = self.set(&def.selection_set.node, &ty, at);
                            self.visiting().pop();
                            c
                        }
                        _ => 0,
                    }
                }
            };
            total = total.saturating_add(cost);
        }
        total
    }
}

struct Static<'a> {
    model: &'a CostModel,
    doc: &'a ExecutableDocument,
    op: &'a OperationDefinition,
    variables: &'a Variables,
    visiting: Vec<&'a str>,
}

impl<'a> Static<'a> {
    /// An integer argument, from a literal, a variable or the variable's default.
    fn int_arg(&self, args: &[(Positioned<Name>, Positioned<Value>)], name: &str) -> Option<u64> {
        let (_, v) = args.iter().find(|(n, _)| n.node == name)?;
        match &v.node {
            Value::Number(n) => n.as_i64().map(|n| n.max(0) as u64),
            Value::Variable(var) => self.variables.get(var).and_then(as_u64).or_else(|| {
                self.op
                    .variable_definitions
                    .iter()
                    .find(|d| d.node.name.node == *var)
                    .and_then(|d| d.node.default_value.as_ref())
                    .and_then(|d| as_u64(&d.node))
            }),
            _ => None,
        }
    }
}

impl<'a> Walk<'a> for Static<'a> {
    /// The size of the enclosing connection, for its `edges` and `nodes`.
    type At = Option<u64>;

    fn doc(&self) -> &'a ExecutableDocument {
        self.doc
    }

    fn visiting(&mut self) -> &mut Vec<&'a str> {
        &mut self.visiting
    }

    fn field(&mut self, f: &'a Field, parent: &str, page: Option<u64>) -> u64 {
        let name = f.name.node.as_str();
        let m = self.model;
        let info = m.field_info(parent, name);
        let base = m.base(parent, name, info);
        let Some(info) = info else {
            return base;
        };
        let children_page = if m.is_connection(&info.ty) {
            Some(
                self.int_arg(&f.arguments, "first")
                    .or_else(|| self.int_arg(&f.arguments, "last"))
                    .unwrap_or(m.default_page_size),
            )
        } else {
            None
        };
        let children = self.set(&f.selection_set.node, &info.ty, children_page);
        let items = if !info.list {
            1
        } else if m.is_connection(parent) && matches!(name, "edges" | "nodes") {
            page.unwrap_or(m.default_page_size)
        } else if let Some(first) = self.int_arg(&f.arguments, "first") {
            first
        } else if let Some(first) = info.first_default {
            first
        } else {
            m.assumed_size(parent, name)
        };
        // A list of objects costs its own weight once (the work of fetching it) and each item
        // 1 plus its fields; a list of scalars costs its base once.
        let walked = if info.list && m.types.get(&info.ty).is_some_and(|t| t.composite) {
            let own = m.weight(parent, name).map_or(0, |w| w.cost);
            own.saturating_add(items.saturating_mul(children.saturating_add(1)))
        } else {
            base.saturating_add(children)
        };
        m.introspection(parent, name, walked)
    }
}

struct Actual<'a> {
    model: &'a CostModel,
    doc: &'a ExecutableDocument,
    visiting: Vec<&'a str>,
}

impl<'a> Walk<'a> for Actual<'a> {
    /// The response object the selection set was resolved into.
    type At = &'a ConstValue;

    fn doc(&self) -> &'a ExecutableDocument {
        self.doc
    }

    fn visiting(&mut self) -> &mut Vec<&'a str> {
        &mut self.visiting
    }

    fn field(&mut self, f: &'a Field, parent: &str, data: &'a ConstValue) -> u64 {
        // A field the response does not hold (skipped, or on another type) cost nothing.
        let Some(value) = (match data {
            ConstValue::Object(obj) => obj.get(f.response_key().node.as_str()),
            _ => None,
        }) else {
            return 0;
        };
        let name = f.name.node.as_str();
        let m = self.model;
        let info = m.field_info(parent, name);
        let base = m.base(parent, name, info);
        let Some(info) = info else {
            return base;
        };
        let walked = match value {
            ConstValue::List(items) if m.types.get(&info.ty).is_some_and(|t| t.composite) => {
                let own = m.weight(parent, name).map_or(0, |w| w.cost);
                items.iter().fold(own, |acc, v| {
                    let item = match v {
                        ConstValue::Null => 0,
                        _ => self
                            .set(&f.selection_set.node, &info.ty, v)
                            .saturating_add(1),
                    };
                    acc.saturating_add(item)
                })
            }
            ConstValue::Object(_) => {
                base.saturating_add(self.set(&f.selection_set.node, &info.ty, value))
            }
            _ => base,
        };
        m.introspection(parent, name, walked)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SDL: &str = "
        type Query { items(first: Int, last: Int): ItemConnection! item: Item  top(first: Int! = 5): [Item!]! }
        type Mutation { touch: Item }
        type ItemConnection { totalCount: Int! edges: [ItemEdge!]! nodes: [Item!]! }
        type ItemEdge { cursor: String! node: Item! }
        type Item { id: ID! name: String! tags: [String!]! similar(first: Int! = 3): [Item!]! score: Float }
    ";
    const WEIGHTS: &[FieldWeight] = &[
        FieldWeight {
            type_name: "ItemConnection",
            field: "totalCount",
            cost: 10,
            assumed_size: None,
            why: "",
        },
        FieldWeight {
            type_name: "Item",
            field: "score",
            cost: 2,
            assumed_size: None,
            why: "",
        },
    ];

    fn model() -> CostModel {
        CostModel::new(SDL, WEIGHTS, 20).expect("sdl")
    }

    fn cost(q: &str, vars: serde_json::Value) -> u64 {
        let doc = async_graphql::parser::parse_query(q).expect("parses");
        model().requested(&doc, None, &Variables::from_json(vars))
    }

    #[test]
    fn connections_multiply_their_items_by_the_page() {
        // items 1 + 10 edges × (edge 1 + node 1 + score 2).
        assert_eq!(
            cost(
                "{ items(first: 10) { edges { node { id score } } } }",
                serde_json::json!({})
            ),
            41
        );
        // The default page size when neither first nor last is given; last counts too.
        assert_eq!(
            cost("{ items { nodes { id } } }", serde_json::json!({})),
            21
        );
        assert_eq!(
            cost(
                "query($n: Int) { items(last: $n) { nodes { id } } }",
                serde_json::json!({ "n": 3 })
            ),
            4
        );
        assert_eq!(
            cost(
                "query($n: Int = 7) { items(first: $n) { nodes { id } } }",
                serde_json::json!({})
            ),
            8
        );
    }

    #[test]
    fn first_zero_is_not_free() {
        assert_eq!(
            cost(
                "{ items(first: 0) { totalCount edges { node { id } } } }",
                serde_json::json!({})
            ),
            11
        );
        let aliases: String = (0..25_000)
            .map(|i| format!("a{i}: items(first: 0) {{ totalCount }} "))
            .collect();
        assert_eq!(
            cost(&format!("{{ {aliases} }}"), serde_json::json!({})),
            25_000 * 11
        );
    }

    #[test]
    fn huge_pages_saturate_instead_of_overflowing() {
        let q = "{ top(first: 2147483647) { similar(first: 2147483647) { similar(first: 2147483647) { similar(first: 2147483647) { id } } } } }";
        assert_eq!(cost(q, serde_json::json!({})), u64::MAX);
        // Defaults from the schema when `first` is left out.
        assert_eq!(
            cost("{ top { similar { id } } }", serde_json::json!({})),
            5 * (1 + 3)
        );
    }

    #[test]
    fn mutations_and_fragments() {
        assert_eq!(cost("mutation { touch { id } }", serde_json::json!({})), 10);
        assert_eq!(
            cost(
                "{ items(first: 2) { ...C } } fragment C on ItemConnection { nodes { ...I } } fragment I on Item { score }",
                serde_json::json!({})
            ),
            1 + 2 * (1 + 2)
        );
    }

    #[test]
    fn actual_cost_counts_what_came_back() {
        let q = "{ items(first: 10) { totalCount edges { node { id score } } } }";
        let doc = async_graphql::parser::parse_query(q).expect("parses");
        let data = ConstValue::from_json(serde_json::json!({ "items": { "totalCount": 2, "edges": [
            { "node": { "id": "1", "score": null } }, { "node": { "id": "2", "score": 0.5 } } ] } }))
            .expect("value");
        assert_eq!(model().actual(&doc, None, &data), 1 + 10 + 2 * (1 + 1 + 2));
        assert_eq!(
            model().requested(&doc, None, &Variables::default()),
            1 + 10 + 10 * 4
        );
    }
}
