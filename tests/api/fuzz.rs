//! Generated operations, built from the schema the server itself reports: random fields,
//! arguments of the right and the wrong shape, hostile strings and numbers at the edges of their
//! types, as anonymous and signed-in callers. Whatever the input, the server answers with a
//! GraphQL response (data or errors with a code), never a 5xx, and stays healthy. The generator
//! is seeded, so a failure reproduces.
use crate::helpers::{Db, TestApp, gid};
use entity::Role;
use serde_json::{Value, json};
use std::collections::HashMap;

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        // xorshift64*
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
    fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }
    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
}

/// The parts of introspection the generator needs.
struct Schema {
    types: HashMap<String, Value>,
}

const INTROSPECT: &str = "{ __schema { types { name kind
  fields { name args { name type { ...T } } type { ...T } }
  inputFields { name type { ...T } } enumValues { name } } } }
  fragment T on __Type { kind name ofType { kind name ofType { kind name ofType { kind name } } } }";

/// The named type under NON_NULL and LIST wrappers, with whether it is a list.
fn unwrap(t: &Value) -> (&str, &str, bool) {
    let mut t = t;
    let mut list = false;
    while t["name"].is_null() {
        if t["kind"] == "LIST" {
            list = true;
        }
        t = &t["ofType"];
    }
    (
        t["name"].as_str().unwrap_or(""),
        t["kind"].as_str().unwrap_or(""),
        list,
    )
}

struct Gen<'a> {
    rng: Rng,
    schema: &'a Schema,
    ids: Vec<String>,
}

impl Gen<'_> {
    fn scalar(&mut self, name: &str) -> String {
        let r = &mut self.rng;
        match name {
            "Int" => r
                .pick(&[
                    "0",
                    "1",
                    "-1",
                    "5",
                    "20",
                    "101",
                    "2147483647",
                    "-2147483648",
                ])
                .to_string(),
            "Float" => r
                .pick(&["0", "-1.5", "52.5", "1e308", "-1e308"])
                .to_string(),
            "Boolean" => r.pick(&["true", "false"]).to_string(),
            "ID" => {
                let mut ids = self.ids.clone();
                ids.extend([
                    "\"\"".into(),
                    "\"%%%\"".into(),
                    format!("\"{}\"", uuid::Uuid::new_v4()),
                ]);
                self.rng.pick(&ids).clone()
            }
            _ => {
                let long = format!("\"{}\"", "x".repeat(6000));
                let options = [
                    "\"\"".to_owned(),
                    "\"Berlin\"".to_owned(),
                    "\"sunny balcony\"".to_owned(),
                    "\"\\u0000\"".to_owned(),
                    "\"a\\\"b OR c*\"".to_owned(),
                    "\"😀 ümlaut\"".to_owned(),
                    "\"https://img.example/1.jpg\"".to_owned(),
                    long,
                ];
                self.rng.pick(&options).clone()
            }
        }
    }

    fn value(&mut self, t: &Value, depth: usize) -> String {
        let (name, kind, list) = unwrap(t);
        if list && !self.rng.chance(20) {
            let n = self.rng.below(4);
            let items: Vec<String> = (0..n).map(|_| self.named(name, kind, depth)).collect();
            return format!("[{}]", items.join(", "));
        }
        if self.rng.chance(3) {
            return "null".into();
        }
        self.named(name, kind, depth)
    }

    fn named(&mut self, name: &str, kind: &str, depth: usize) -> String {
        let ty = self.schema.types.get(name).cloned().unwrap_or(Value::Null);
        match kind {
            "ENUM" => {
                let values: Vec<String> = ty["enumValues"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|v| v["name"].as_str().map(str::to_owned))
                    .chain(["NOT_A_VALUE".to_owned()])
                    .collect();
                self.rng.pick(&values).clone()
            }
            "INPUT_OBJECT" if depth < 3 => {
                let fields: Vec<Value> = ty["inputFields"].as_array().cloned().unwrap_or_default();
                let mut parts = Vec::new();
                for f in &fields {
                    let required = f["type"]["kind"] == "NON_NULL";
                    if required || self.rng.chance(40) {
                        let v = self.value(&f["type"], depth + 1);
                        parts.push(format!("{}: {v}", f["name"].as_str().unwrap_or("")));
                    }
                }
                format!("{{ {} }}", parts.join(", "))
            }
            "INPUT_OBJECT" => "{}".into(),
            _ => self.scalar(name),
        }
    }

    fn selection(&mut self, type_name: &str, depth: usize) -> String {
        let ty = self
            .schema
            .types
            .get(type_name)
            .cloned()
            .unwrap_or(Value::Null);
        let fields: Vec<Value> = ty["fields"].as_array().cloned().unwrap_or_default();
        if fields.is_empty() {
            return String::new();
        }
        let mut out = vec!["__typename".to_owned()];
        for _ in 0..1 + self.rng.below(3) {
            let f = self.rng.pick(&fields).clone();
            let name = f["name"].as_str().unwrap_or("").to_owned();
            let mut args = Vec::new();
            for a in f["args"].as_array().into_iter().flatten() {
                if a["type"]["kind"] == "NON_NULL" || self.rng.chance(50) {
                    let v = self.value(&a["type"], 0);
                    args.push(format!("{}: {v}", a["name"].as_str().unwrap_or("")));
                }
            }
            let args = if args.is_empty() {
                String::new()
            } else {
                format!("({})", args.join(", "))
            };
            let (ret, kind, _) = unwrap(&f["type"]);
            let sub = if matches!(kind, "OBJECT" | "INTERFACE" | "UNION") {
                if depth >= 4 {
                    continue;
                }
                let inner = self.selection(ret, depth + 1);
                if inner.is_empty() {
                    continue;
                }
                format!(" {{ {inner} }}")
            } else {
                String::new()
            };
            let alias = format!("f{}", out.len());
            out.push(format!("{alias}: {name}{args}{sub}"));
        }
        out.join(" ")
    }
}

#[tokio::test]
async fn generated_operations_never_get_a_5xx() {
    let app = TestApp::spawn(Db::Postgres).await;
    let u = app.seed(40, 20, 200).await;
    let intro = app.data(INTROSPECT, json!({}), None).await;
    let types = intro["__schema"]["types"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|t| Some((t["name"].as_str()?.to_owned(), t.clone())))
        .collect();
    let schema = Schema { types };
    let some_listing = app.first_listing().await;
    let mut generator = Gen {
        rng: Rng(0x5eed_cafe_f00d_0001),
        schema: &schema,
        ids: vec![
            format!("\"{some_listing}\""),
            format!("\"{}\"", gid("User", u.user)),
            format!("\"{}\"", gid("User", u.owner)),
        ],
    };
    let tokens = [
        None,
        Some(app.token(u.user, Role::User)),
        Some(app.token(u.owner, Role::Owner)),
        Some(app.token(u.admin, Role::Admin)),
    ];
    let mut answered = HashMap::<u16, usize>::new();
    let mut executed = 0;
    let mut codes = HashMap::<String, usize>::new();
    for i in 0..400 {
        let mutation = i % 5 == 4;
        let root = if mutation { "Mutation" } else { "Query" };
        let body = generator.selection(root, 1);
        let doc = if mutation {
            format!("mutation {{ {body} }}")
        } else {
            format!("{{ {body} }}")
        };
        let token = generator.rng.pick(&tokens).clone();
        let mut headers = vec![("content-type", "application/json")];
        let auth;
        if let Some(t) = &token {
            auth = format!("Bearer {t}");
            headers.push(("authorization", auth.as_str()));
        }
        let resp = app
            .post_raw(json!({ "query": doc }).to_string(), &headers)
            .await;
        let status = resp.status().as_u16();
        *answered.entry(status).or_default() += 1;
        let text = resp.text().await.unwrap_or_default();
        assert!(status < 500, "{status} for {doc}: {text}");
        let parsed: Value = serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("not JSON ({e}) for {doc}: {text}"));
        assert!(
            parsed.get("data").is_some() || parsed.get("errors").is_some(),
            "{doc}: {text}"
        );
        if !parsed["data"].is_null() {
            executed += 1;
        }
        for err in parsed["errors"].as_array().into_iter().flatten() {
            *codes
                .entry(err["extensions"]["code"].as_str().unwrap_or("").to_owned())
                .or_default() += 1;
            assert!(
                err["extensions"]["code"].is_string(),
                "an error without a code for {doc}: {text}"
            );
        }
    }
    // The generator reached execution, not only validation errors.
    assert!(
        executed >= 100,
        "{executed} of 400 executed; codes {codes:?}"
    );
    let d = app.data("{ __typename }", json!({}), None).await;
    assert_eq!(d["__typename"], "Query");
    assert_eq!(
        answered.get(&200).copied().unwrap_or(0),
        400,
        "{answered:?}"
    );
    app.cleanup().await;
}
