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
        rentgraph::config::Secret::new("another-secret-of-at-least-thirty-two-bytes");
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
