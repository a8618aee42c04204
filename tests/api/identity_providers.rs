//! Identity providers: tokens signed by keys from a JWK Set served on a local endpoint, as
//! Auth0, Okta, Keycloak or Cognito serve theirs. Old, new and unknown `kid`s across a key
//! rotation; several issuers with RS256, ES256 and EdDSA; role claims mapped to rentgraph roles;
//! subjects mapped to local users (created on first sight) or naming rentgraph user ids.
use crate::helpers::{Db, TestApp, code, gid};
use entity::Role;
use jsonwebtoken::jwk::{Jwk, JwkSet};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures");

/// A signing key of the stand-in provider.
struct Signer {
    kid: &'static str,
    alg: Algorithm,
    key: EncodingKey,
}

impl Signer {
    fn new(kid: &'static str, alg: Algorithm, file: &str) -> Self {
        let pem = std::fs::read(format!("{FIXTURES}/{file}")).expect("fixture key");
        let key = match alg {
            Algorithm::RS256 => EncodingKey::from_rsa_pem(&pem),
            Algorithm::ES256 => EncodingKey::from_ec_pem(&pem),
            _ => EncodingKey::from_ed_pem(&pem),
        }
        .expect("key");
        Self { kid, alg, key }
    }

    /// The public half, as the provider publishes it.
    fn jwk(&self) -> Jwk {
        let mut jwk = Jwk::from_encoding_key(&self.key, self.alg).expect("jwk");
        jwk.common.key_id = Some(self.kid.to_owned());
        jwk
    }

    fn sign(&self, claims: &Value) -> String {
        self.sign_as(self.kid, claims)
    }

    fn sign_as(&self, kid: &str, claims: &Value) -> String {
        let mut header = Header::new(self.alg);
        header.kid = Some(kid.to_owned());
        jsonwebtoken::encode(&header, claims, &self.key).expect("signed")
    }
}

/// A JWK Set endpoint whose keys the test changes, counting how often it is fetched.
struct KeySetServer {
    url: String,
    keys: Arc<Mutex<Vec<Jwk>>>,
    fetches: Arc<AtomicUsize>,
}

impl KeySetServer {
    async fn start(keys: Vec<Jwk>) -> Self {
        let keys = Arc::new(Mutex::new(keys));
        let fetches = Arc::new(AtomicUsize::new(0));
        let (k, f) = (keys.clone(), fetches.clone());
        let app = axum::Router::new().route(
            "/.well-known/jwks.json",
            axum::routing::get(move || {
                let (k, f) = (k.clone(), f.clone());
                async move {
                    f.fetch_add(1, Ordering::SeqCst);
                    let set = JwkSet {
                        keys: k.lock().unwrap_or_else(|e| e.into_inner()).clone(),
                    };
                    (
                        [
                            ("content-type", "application/json"),
                            ("cache-control", "public, max-age=3600"),
                        ],
                        serde_json::to_string(&set).unwrap_or_default(),
                    )
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let at = listener.local_addr().expect("addr");
        tokio::spawn(async move { axum::serve(listener, app).await });
        Self {
            url: format!("http://{at}/.well-known/jwks.json"),
            keys,
            fetches,
        }
    }

    fn publish(&self, keys: Vec<Jwk>) {
        *self.keys.lock().unwrap_or_else(|e| e.into_inner()) = keys;
    }

    fn fetches(&self) -> usize {
        self.fetches.load(Ordering::SeqCst)
    }
}

const ISSUER: &str = "https://tenant.idp.test/";
const AUDIENCE: &str = "https://api.rentgraph.test";
const ROLES: &str = "https://rentgraph.example/roles";

fn claims(sub: &str, roles: &[&str]) -> Value {
    let now = chrono::Utc::now().timestamp();
    json!({
        "iss": ISSUER, "aud": [AUDIENCE, "https://tenant.idp.test/userinfo"], "sub": sub,
        "iat": now, "exp": now + 600, ROLES: roles,
        "email": format!("{}@example.com", sub.replace('|', ".")), "name": "Alice Provider",
    })
}

async fn me(app: &TestApp, token: &str) -> (u16, Value) {
    app.gql(
        "{ me { id displayName role email } }",
        json!({}),
        Some(token),
    )
    .await
}

#[tokio::test]
async fn provider_tokens_sign_in_users_across_a_key_rotation() {
    let old = Signer::new("2026-11", Algorithm::RS256, "rs256-private.pem");
    let new = Signer::new("2026-12", Algorithm::RS256, "idp-rsa-new.pem");
    let jwks = KeySetServer::start(vec![old.jwk()]).await;
    let app = TestApp::spawn_with(
        Db::Postgres,
        &[
            ("auth.issuers[0].issuer", ISSUER),
            ("auth.issuers[0].audience", AUDIENCE),
            ("auth.issuers[0].jwks_url", &jwks.url),
            ("auth.issuers[0].role_claim", ROLES),
            ("auth.issuers[0].roles.landlords", "OWNER"),
            ("auth.issuers[0].create_users", "true"),
            ("auth.jwks.min_refetch_secs", "2"),
        ],
    )
    .await;
    let u = app.seed(5, 5, 5).await;
    assert_eq!(jwks.fetches(), 1, "fetched once at start");

    // First sight: a local user is created with the mapped role, the provider's name and email.
    let (status, body) = me(&app, &old.sign(&claims("auth0|alice", &["landlords"]))).await;
    assert_eq!(status, 200, "{body}");
    let alice = body["data"]["me"].clone();
    assert_eq!(alice["role"], "OWNER", "{body}");
    assert_eq!(alice["displayName"], "Alice Provider");
    assert_eq!(alice["email"], "auth0.alice@example.com");
    // Signed in again: the same user, and she can act as an owner.
    let token = old.sign(&claims("auth0|alice", &["landlords"]));
    let (_, again) = me(&app, &token).await;
    assert_eq!(again["data"]["me"]["id"], alice["id"]);
    let (status, created) = app
        .gql(
            "mutation { createProperty(input: { title: \"Provider-made flat\", description: \"Listed by a user of an identity provider\", monthlyPrice: 1200, city: \"Berlin\", neighbourhood: \"Mitte\", latitude: 52.5, longitude: 13.4, bedrooms: 1, bathrooms: 1, area: 40, propertyType: APARTMENT, amenities: [], imageUrls: [] }) { owner { id } } }",
            json!({}),
            Some(&token),
        )
        .await;
    assert_eq!(status, 200, "{created}");
    assert_eq!(
        created["data"]["createProperty"]["owner"]["id"], alice["id"],
        "{created}"
    );

    // The provider rotates: the set now holds only the new key. A token with the new kid makes
    // the server fetch the set once and is accepted without a restart.
    jwks.publish(vec![new.jwk()]);
    let (status, body) = me(&app, &new.sign(&claims("auth0|alice", &["landlords"]))).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["data"]["me"]["id"], alice["id"]);
    assert_eq!(jwks.fetches(), 2, "one refetch for the new kid");
    // Tokens signed with the retired key, and tokens naming a kid nobody published, are
    // refused; a burst of unknown kids fetches the set at most once more.
    let (status, body) = me(&app, &old.sign(&claims("auth0|alice", &["landlords"]))).await;
    assert_eq!((status, code(&body)), (401, "UNAUTHENTICATED"), "{body}");
    for _ in 0..5 {
        let forged = new.sign_as("no-such-kid", &claims("auth0|alice", &["landlords"]));
        let (status, body) = me(&app, &forged).await;
        assert_eq!((status, code(&body)), (401, "UNAUTHENTICATED"), "{body}");
    }
    assert!(jwks.fetches() <= 3, "{} fetches", jwks.fetches());

    // The provider is where roles live: a token with another role changes the user's.
    let (status, body) = me(&app, &new.sign(&claims("auth0|alice", &["admin"]))).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["data"]["me"]["role"], "ADMIN");
    // Wrong audience, another issuer, a token signed by a key of another provider: refused.
    let mut wrong = claims("auth0|alice", &[]);
    wrong["aud"] = json!("https://someone-else.test");
    let (status, _) = me(&app, &new.sign(&wrong)).await;
    assert_eq!(status, 401);
    let mut other_iss = claims("auth0|alice", &[]);
    other_iss["iss"] = json!("https://evil.test/");
    let (status, _) = me(&app, &new.sign(&other_iss)).await;
    assert_eq!(status, 401);
    let stranger = Signer::new("2026-12", Algorithm::RS256, "rs256-private.pem");
    let (status, _) = me(&app, &stranger.sign(&claims("auth0|alice", &[]))).await;
    assert_eq!(status, 401, "same kid, wrong key");
    // rentgraph's own tokens keep working beside the provider's.
    let (status, body) = me(&app, &app.token(u.user, Role::User)).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["data"]["me"]["id"], gid("User", u.user));
    app.cleanup().await;
}

#[tokio::test]
async fn several_issuers_with_es256_and_eddsa_and_their_subject_rules() {
    let ec = Signer::new("ec-1", Algorithm::ES256, "idp-ec.pem");
    let ed = Signer::new("ed-1", Algorithm::EdDSA, "idp-ed25519.pem");
    let ec_set = KeySetServer::start(vec![ec.jwk()]).await;
    let ed_set = KeySetServer::start(vec![ed.jwk()]).await;
    let app = TestApp::spawn_with(
        Db::Sqlite,
        &[
            // A provider whose `sub` is a rentgraph user id, its role in Keycloak's place.
            (
                "auth.issuers[0].issuer",
                "https://keycloak.test/realms/rentgraph",
            ),
            ("auth.issuers[0].audience", "rentgraph"),
            ("auth.issuers[0].jwks_url", &ec_set.url),
            ("auth.issuers[0].algorithms", "ES256"),
            ("auth.issuers[0].role_claim", "realm_access.roles"),
            ("auth.issuers[0].subject", "user_id"),
            // One that does not create users, with no default role.
            ("auth.issuers[1].issuer", "https://okta.test"),
            ("auth.issuers[1].audience", "api://rentgraph"),
            ("auth.issuers[1].jwks_url", &ed_set.url),
            ("auth.issuers[1].algorithms", "EdDSA"),
            ("auth.issuers[1].role_claim", "groups"),
            ("auth.issuers[1].roles.renters", "USER"),
            ("auth.issuers[1].default_role", ""),
        ],
    )
    .await;
    let u = app.seed(5, 5, 5).await;
    let now = chrono::Utc::now().timestamp();
    let keycloak = |sub: String, roles: &[&str]| {
        json!({ "iss": "https://keycloak.test/realms/rentgraph", "aud": "rentgraph", "sub": sub,
                "iat": now, "exp": now + 300, "realm_access": { "roles": roles } })
    };
    let (status, body) = me(&app, &ec.sign(&keycloak(u.owner.to_string(), &["OWNER"]))).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["data"]["me"]["id"], gid("User", u.owner));
    // user_id subjects are checked like rentgraph's own tokens: the role must be the user's.
    let (status, _) = me(&app, &ec.sign(&keycloak(u.owner.to_string(), &["ADMIN"]))).await;
    assert_eq!(status, 401);
    // An ES256 provider's key cannot sign for the EdDSA one, nor an algorithm it does not use.
    let okta = |sub: &str, groups: &[&str]| {
        json!({ "iss": "https://okta.test", "aud": "api://rentgraph", "sub": sub,
                "iat": now, "exp": now + 300, "groups": groups })
    };
    let (status, _) = me(&app, &ec.sign(&okta("00u1", &["renters"]))).await;
    assert_eq!(status, 401);
    // Okta: a subject nobody linked is refused (create_users is off), as is a token whose
    // groups map to no role when there is no default role.
    let (status, body) = me(&app, &ed.sign(&okta("00u1", &["renters"]))).await;
    assert_eq!((status, code(&body)), (401, "UNAUTHENTICATED"), "{body}");
    let (status, _) = me(&app, &ed.sign(&okta("00u1", &["everyone"]))).await;
    assert_eq!(status, 401);
    // Linked by an operator (users.external_subject), the same subject signs in.
    use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, sea_query::Expr};
    let db = app.db_connection().await;
    entity::user::Entity::update_many()
        .col_expr(
            entity::user::Column::ExternalSubject,
            Expr::value("https://okta.test#00u1"),
        )
        .filter(entity::user::Column::Id.eq(u.user))
        .exec(&db)
        .await
        .expect("link");
    let (status, body) = me(&app, &ed.sign(&okta("00u1", &["renters"]))).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["data"]["me"]["id"], gid("User", u.user));
    app.cleanup().await;
}

/// `auth.jwks_url` for rentgraph's own issuer: its tokens' keys come from a JWK Set, so the key
/// rotates without a restart. A token without a `kid` is checked with the set's only key.
#[tokio::test]
async fn rentgraphs_own_tokens_can_take_their_keys_from_a_jwk_set() {
    let own = Signer::new("own", Algorithm::RS256, "rs256-private.pem");
    let jwks = KeySetServer::start(vec![own.jwk()]).await;
    let private = format!("{FIXTURES}/rs256-private.pem");
    let app = TestApp::spawn_with(
        Db::Sqlite,
        &[
            ("auth.algorithm", "RS256"),
            ("auth.jwks_url", &jwks.url),
            ("auth.private_key_path", &private),
        ],
    )
    .await;
    let u = app.seed(5, 5, 5).await;
    // `rentgraph token` mints without a kid.
    let (status, body) = me(&app, &app.token(u.user, Role::User)).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["data"]["me"]["id"], gid("User", u.user));
    // An HS256 token (the algorithm-confusion attack with the public key) is refused.
    let now = chrono::Utc::now().timestamp();
    let claims = json!({ "sub": u.user.to_string(), "role": "USER", "iss": app.settings.auth.issuer,
                         "aud": app.settings.auth.audience, "iat": now, "exp": now + 60 });
    let hs = jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        &claims,
        &EncodingKey::from_secret(b"any secret at all, thirty-two bytes+").expect("key"),
    )
    .expect("token");
    let (status, _) = me(&app, &hs).await;
    assert_eq!(status, 401);
    app.cleanup().await;
}
