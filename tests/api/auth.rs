use crate::helpers::{Db, TestApp, code};
use rentgraph::auth::Authenticator;
use serde_json::json;

#[tokio::test]
async fn bad_tokens_are_refused_with_401() {
    let app = TestApp::spawn(Db::Sqlite).await;
    let u = app.seed(5, 10, 5).await;
    let auth = Authenticator::new(&app.settings.auth).expect("auth");
    let expired = auth
        .mint_with_ttl(u.user, entity::Role::User, -3600)
        .expect("token");
    let mut foreign = app.settings.auth.clone();
    foreign.audience = "someone-else".into();
    let wrong_audience = Authenticator::new(&foreign)
        .expect("auth")
        .mint(u.user, entity::Role::User)
        .expect("token");
    let mut other_key = app.settings.auth.clone();
    other_key.jwt_secret =
        rentgraph::infra::secret::Secret::new("another-secret-of-at-least-thirty-two-bytes");
    let forged = Authenticator::new(&other_key)
        .expect("auth")
        .mint(u.admin, entity::Role::Admin)
        .expect("token");
    for header in [
        format!("Bearer {expired}"),
        format!("Bearer {wrong_audience}"),
        format!("Bearer {forged}"),
        "Bearer not.a.jwt".to_owned(),
        "Basic dXNlcjpwYXNz".to_owned(),
    ] {
        let resp = app
            .post_raw(
                json!({ "query": "{ me { id } }" }).to_string(),
                &[
                    ("content-type", "application/json"),
                    ("authorization", &header),
                ],
            )
            .await;
        assert_eq!(resp.status(), 401, "{header}");
        assert_eq!(
            resp.headers()
                .get("www-authenticate")
                .and_then(|v| v.to_str().ok()),
            Some("Bearer")
        );
        let body: serde_json::Value = resp.json().await.expect("json");
        assert_eq!(code(&body), "UNAUTHENTICATED");
    }
    let good = app.token(u.user, entity::Role::User);
    assert!(app.data("{ me { id } }", json!({}), Some(&good)).await["me"]["id"].is_string());
    app.cleanup().await;
}

fn b64(value: &serde_json::Value) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(value.to_string())
}

fn claims(app: &TestApp, user: uuid::Uuid, role: &str) -> serde_json::Value {
    let now = chrono::Utc::now().timestamp();
    json!({
        "sub": user.to_string(), "role": role, "iss": app.settings.auth.issuer,
        "aud": app.settings.auth.audience, "iat": now, "exp": now + 600,
    })
}

fn hs256(secret: &[u8], claims: &serde_json::Value) -> String {
    jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        claims,
        &jsonwebtoken::EncodingKey::from_secret(secret).expect("key"),
    )
    .expect("token")
}

/// Sends `{ me { id } }` with the token; the HTTP status and the body.
async fn me(app: &TestApp, token: &str) -> (u16, serde_json::Value) {
    let resp = app
        .post_raw(
            json!({ "query": "{ me { id } }" }).to_string(),
            &[
                ("content-type", "application/json"),
                ("authorization", &format!("Bearer {token}")),
            ],
        )
        .await;
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or_default())
}

#[tokio::test]
async fn forged_and_stale_tokens_are_refused() {
    let app = TestApp::spawn(Db::Postgres).await;
    let u = app.seed(5, 10, 5).await;
    let secret = app.settings.auth.jwt_secret.expose().as_bytes().to_vec();
    let good = claims(&app, u.user, "USER");
    assert_eq!(me(&app, &hs256(&secret, &good)).await.0, 200);

    let mut forged: Vec<(String, String)> = Vec::new();
    for alg in ["none", "None", "NONE", "nOnE"] {
        let header = json!({ "alg": alg, "typ": "JWT" });
        forged.push((
            format!("alg {alg}"),
            format!("{}.{}.", b64(&header), b64(&good)),
        ));
    }
    let valid = hs256(&secret, &good);
    let (head, rest) = valid.split_once('.').expect("jwt");
    let (_, sig) = rest.split_once('.').expect("jwt");
    let mut admin = good.clone();
    admin["role"] = json!("ADMIN");
    forged.push((
        "tampered payload".into(),
        format!("{head}.{}.{sig}", b64(&admin)),
    ));
    let mut flipped = sig.to_owned().into_bytes();
    flipped[3] = if flipped[3] == b'A' { b'B' } else { b'A' };
    forged.push((
        "tampered signature".into(),
        format!(
            "{head}.{}.{}",
            rest.split_once('.').expect("jwt").0,
            String::from_utf8(flipped).expect("ascii")
        ),
    ));
    forged.push((
        "wrong key".into(),
        hs256(b"another-secret-of-at-least-thirty-two-bytes!!", &good),
    ));
    let now = chrono::Utc::now().timestamp();
    let mut c = good.clone();
    c["exp"] = json!(now - 3600);
    forged.push(("expired".into(), hs256(&secret, &c)));
    let mut c = good.clone();
    c["nbf"] = json!(now + 3600);
    forged.push(("not yet valid".into(), hs256(&secret, &c)));
    let mut c = good.clone();
    c["iat"] = json!(now - 30 * 86400);
    c["exp"] = json!(now + 3600);
    forged.push(("older than the maximum age".into(), hs256(&secret, &c)));
    let mut c = good.clone();
    c["iat"] = json!(now + 3600);
    forged.push(("issued in the future".into(), hs256(&secret, &c)));
    for field in ["iss", "aud", "sub", "iat", "exp"] {
        let mut c = good.clone();
        c.as_object_mut().expect("object").remove(field);
        forged.push((format!("missing {field}"), hs256(&secret, &c)));
    }
    let mut c = good.clone();
    c["iss"] = json!("someone-else");
    forged.push(("wrong issuer".into(), hs256(&secret, &c)));
    let mut c = good.clone();
    c["aud"] = json!("someone-else");
    forged.push(("wrong audience".into(), hs256(&secret, &c)));
    forged.push((
        "unknown user".into(),
        hs256(&secret, &claims(&app, uuid::Uuid::new_v4(), "ADMIN")),
    ));
    forged.push((
        "role the user does not have".into(),
        hs256(&secret, &claims(&app, u.user, "ADMIN")),
    ));
    for (what, token) in &forged {
        let (status, body) = me(&app, token).await;
        assert_eq!(status, 401, "{what}: {body}");
        assert_eq!(code(&body), "UNAUTHENTICATED", "{what}");
    }
    // Still healthy, and the real token still works.
    assert_eq!(me(&app, &valid).await.0, 200);
    assert_eq!(app.get("/ready").await.status(), 200);
    app.cleanup().await;
}

#[tokio::test]
async fn rs256_tokens_verify_with_the_public_key_only() {
    let dir = env!("CARGO_MANIFEST_DIR");
    let public = format!("{dir}/tests/fixtures/rs256-public.pem");
    let private = format!("{dir}/tests/fixtures/rs256-private.pem");
    let app = TestApp::spawn_with(
        Db::Sqlite,
        &[
            ("auth.algorithm", "RS256"),
            ("auth.public_key_path", &public),
            ("auth.private_key_path", &private),
        ],
    )
    .await;
    let u = app.seed(5, 10, 5).await;
    let token = app.token(u.user, entity::Role::User);
    let (status, body) = me(&app, &token).await;
    assert_eq!(status, 200, "{body}");
    assert!(body["data"]["me"]["id"].is_string());

    // Algorithm confusion: HS256 keyed with the public key, and HS256 with the old secret.
    let public_pem = std::fs::read(&public).expect("key");
    let good = claims(&app, u.user, "USER");
    for (what, token) in [
        (
            "HS256 signed with the RS public key",
            hs256(&public_pem, &good),
        ),
        (
            "HS256 with the development secret",
            hs256(rentgraph::config::DEVELOPMENT_JWT_SECRET.as_bytes(), &good),
        ),
    ] {
        let (status, body) = me(&app, &token).await;
        assert_eq!((status, code(&body)), (401, "UNAUTHENTICATED"), "{what}");
    }
    app.cleanup().await;
}

/// `aud` may be a list (RFC 7519): a token naming this API among others signs in, one naming
/// only others does not. Another user's role is not shown to a signed-in caller.
#[tokio::test]
async fn audience_lists_are_accepted_and_roles_are_private() {
    let app = TestApp::spawn(Db::Sqlite).await;
    let u = app.seed(5, 5, 5).await;
    let secret = app.settings.auth.jwt_secret.expose().as_bytes().to_vec();
    let mut listed = claims(&app, u.user, "USER");
    listed["aud"] = json!(["https://elsewhere.test", app.settings.auth.audience]);
    let (status, body) = me(&app, &hs256(&secret, &listed)).await;
    assert_eq!(status, 200, "{body}");
    listed["aud"] = json!(["https://elsewhere.test"]);
    let (status, _) = me(&app, &hs256(&secret, &listed)).await;
    assert_eq!(status, 401);
    let token = app.token(u.user, entity::Role::User);
    let q = "query($id: ID!) { user(id: $id) { displayName role } me { role } }";
    let data = app
        .data(
            q,
            json!({ "id": crate::helpers::gid("User", u.admin) }),
            Some(&token),
        )
        .await;
    assert!(data["user"]["displayName"].is_string());
    assert!(
        data["user"]["role"].is_null(),
        "another user's role: {data}"
    );
    assert_eq!(data["me"]["role"], "USER");
    app.cleanup().await;
}
