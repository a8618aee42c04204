//! Start-up refuses settings that would run production unsafely. These run the real binary from
//! another working directory, as an operator's service manager would.
use std::process::Command;

fn rentgraph(env: &[(&str, &str)]) -> (bool, String) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_rentgraph"));
    cmd.arg("export-schema")
        .current_dir(std::env::temp_dir())
        .env_remove("RENTGRAPH_ENV")
        .env_remove("RENTGRAPH__AUTH__JWT_SECRET");
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().expect("run rentgraph");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

const STRONG: &str = "Zq3m1v8kQpX0r7YtB2nLw5sH9cJ4dF6gA1eK8uM3oP2";

#[test]
fn production_refuses_missing_short_and_development_secrets() {
    let (ok, err) = rentgraph(&[("RENTGRAPH_ENV", "production")]);
    assert!(!ok, "production started without a secret");
    assert!(err.contains("auth.jwt_secret is not set"), "{err}");
    let (ok, err) = rentgraph(&[
        ("RENTGRAPH_ENV", "production"),
        ("RENTGRAPH__AUTH__JWT_SECRET", "short-secret"),
    ]);
    assert!(!ok);
    assert!(err.contains("at least 32 bytes"), "{err}");
    let (ok, err) = rentgraph(&[
        ("RENTGRAPH_ENV", "production"),
        (
            "RENTGRAPH__AUTH__JWT_SECRET",
            rentgraph::config::DEVELOPMENT_JWT_SECRET,
        ),
    ]);
    assert!(!ok);
    assert!(err.contains("public development secret"), "{err}");
    let (ok, err) = rentgraph(&[
        ("RENTGRAPH_ENV", "production"),
        ("RENTGRAPH__AUTH__JWT_SECRET", STRONG),
    ]);
    assert!(ok, "{err}");
    // Development, the embedded default, still starts with nothing set.
    let (ok, err) = rentgraph(&[]);
    assert!(ok, "{err}");
}

#[test]
fn unknown_environments_and_keys_stop_start_up() {
    let (ok, err) = rentgraph(&[("RENTGRAPH_ENV", "prodution")]);
    assert!(!ok);
    assert!(err.contains("unknown environment \"prodution\""), "{err}");
    let (ok, err) = rentgraph(&[("RENTGRAPH__SERVER__GRAPHQIL", "false")]);
    assert!(!ok);
    assert!(err.contains("graphqil"), "{err}");
    let (ok, err) = rentgraph(&[("RENTGRAPH__AUTH__LEEWAY_SECS", "86400")]);
    assert!(!ok);
    assert!(err.contains("leeway"), "{err}");
}

#[test]
fn the_production_profile_loads_from_any_directory() {
    use rentgraph::config::{Settings, Sources};
    let settings = Settings::load(Sources {
        env: Some("production".into()),
        file: None,
        overrides: vec![("auth.jwt_secret".into(), STRONG.into())],
    })
    .expect("production settings");
    assert!(!settings.server.graphiql);
    assert!(!settings.graphql.introspection);
    assert!(!settings.database.seed_if_empty);
    // And from elsewhere, through the binary: production without a secret fails, which only
    // the production profile does (development would start).
    let (ok, _) = rentgraph(&[("RENTGRAPH_ENV", "production")]);
    assert!(!ok);
}

/// The settings shipped for deployment are ones the server accepts (a misspelt key would stop
/// every instance at start): the ConfigMap's settings file (deploy/k8s/configmap.yaml) over the
/// production profile, with the environment of the Compose file's instances
/// (deploy/compose.yaml).
#[test]
fn the_deployment_files_hold_settings_the_server_accepts() {
    use rentgraph::config::{Settings, Sources};
    let root = env!("CARGO_MANIFEST_DIR");
    let read = |path: &str| std::fs::read_to_string(format!("{root}/{path}")).expect(path);
    // The settings file is the block under `rentgraph.toml: |`, indented by four spaces.
    let configmap = read("deploy/k8s/configmap.yaml");
    let file: Vec<&str> = configmap
        .lines()
        .skip_while(|l| !l.contains("rentgraph.toml: |"))
        .skip(1)
        .take_while(|l| l.starts_with("    ") || l.trim().is_empty())
        .map(|l| l.strip_prefix("    ").unwrap_or(l))
        .collect();
    assert!(file.len() > 5, "the ConfigMap holds a settings file");
    let path = std::env::temp_dir().join(format!("rg-configmap-{}.toml", uuid::Uuid::new_v4()));
    std::fs::write(&path, file.join("\n")).expect("write");
    // The instances' environment: the `RENTGRAPH__SECTION__KEY: value` lines; a value the
    // operator provides (`${...}`) stands in as a strong secret.
    let compose = read("deploy/compose.yaml");
    let env: Vec<(String, String)> = compose
        .lines()
        .filter_map(|l| {
            let (key, value) = l.trim().split_once(": ")?;
            let key = key.strip_prefix("RENTGRAPH__")?;
            let value = if value.starts_with("${") {
                STRONG
            } else {
                value
            };
            Some((key.to_lowercase().replace("__", "."), value.to_owned()))
        })
        .collect();
    assert!(env.len() >= 4, "{env:?}");
    let from_k8s = Settings::load(Sources {
        env: Some("production".into()),
        file: Some(path.clone()),
        overrides: vec![("auth.jwt_secret".into(), STRONG.into())],
    });
    let _ = std::fs::remove_file(&path);
    let from_k8s = from_k8s.expect("the ConfigMap's settings load");
    assert_eq!(from_k8s.server.drain_secs, 10);
    assert!(!from_k8s.database.migrate_on_start);
    let from_compose = Settings::load(Sources {
        env: Some("production".into()),
        file: None,
        overrides: env,
    })
    .expect("the Compose file's settings load");
    assert!(from_compose.redis.url.starts_with("redis://redis"));
}

#[test]
fn cors_origins_come_from_the_environment_and_a_malformed_one_stops_the_start() {
    let (ok, err) = rentgraph(&[(
        "RENTGRAPH__SERVER__CORS__ALLOWED_ORIGINS",
        "https://app.example.com, https://*.preview.example.com",
    )]);
    assert!(ok, "{err}");
    let (ok, err) = rentgraph(&[(
        "RENTGRAPH__SERVER__CORS__ALLOWED_ORIGINS",
        "https://app.example.com/",
    )]);
    assert!(!ok, "started with an origin that has a path");
    assert!(err.contains("server.cors.allowed_origins"), "{err}");
}

/// Identity-provider and proxy settings an operator gets wrong stop the start with what is
/// wrong: a key set nowhere, HS256 from a provider (its "public" key would be a shared secret),
/// a duplicate issuer, a JWK Set for HS256 tokens, a proxy header without proxies.
#[test]
fn misconfigured_identity_providers_stop_start_up() {
    let load = |overrides: &[(&str, &str)]| {
        rentgraph::config::Settings::load(rentgraph::config::Sources {
            env: Some("test".into()),
            overrides: overrides
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
            ..Default::default()
        })
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default()
    };
    let base = [
        ("auth.issuers[0].issuer", "https://idp.test/"),
        ("auth.issuers[0].audience", "api"),
    ];
    let err = load(&base);
    assert!(err.contains("no `jwks_url`"), "{err}");
    let mut hs = base.to_vec();
    hs.extend([
        ("auth.issuers[0].jwks_url", "https://idp.test/jwks"),
        ("auth.issuers[0].algorithms", "RS256,HS256"),
    ]);
    let err = load(&hs);
    assert!(err.contains("not HS256"), "{err}");
    let mut twice = base.to_vec();
    twice.extend([
        ("auth.jwks_url", "https://idp.test/jwks"),
        ("auth.issuers[1].issuer", "https://idp.test/"),
        ("auth.issuers[1].audience", "api"),
    ]);
    let err = load(&twice);
    assert!(err.contains("same `iss`"), "{err}");
    let err = load(&[("auth.jwks_url", "https://idp.test/jwks")]);
    assert!(err.contains("RS256, ES256 or EdDSA"), "{err}");
    let err = load(&[
        ("auth.issuers[0].issuer", "https://idp.test/"),
        ("auth.issuers[0].audience", "api"),
        ("auth.issuers[0].jwks_url", "https://idp.test/jwks"),
        ("auth.issuers[0].default_role", "SUPERUSER"),
    ]);
    assert!(err.contains("SUPERUSER"), "{err}");
    // A proxy header believed from anyone is a bucket per request: refused.
    let err = load(&[("limits.trusted_proxy_header", "x-forwarded-for")]);
    assert!(err.contains("limits.trusted_proxies is empty"), "{err}");
    let err = load(&[
        ("limits.trusted_proxy_header", "x-forwarded-for"),
        ("limits.trusted_proxies", "10.0.0.0/33"),
    ]);
    assert!(err.contains("not an address or a CIDR"), "{err}");
}

/// `serve` without `RENTGRAPH_ENV` is the development profile, which a container given a
/// public address or a PostgreSQL URL must not run by accident: it refuses and says what to
/// set. Named explicitly, development still serves anywhere.
#[test]
fn serve_without_an_environment_refuses_a_public_address_or_an_external_database() {
    let serve = |env: &[(&str, &str)]| {
        let dir =
            std::env::temp_dir().join(format!("rg-implicit-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).expect("dir");
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_rentgraph"));
        cmd.arg("serve")
            .current_dir(&dir)
            .env_remove("RENTGRAPH_ENV")
            .env("RENTGRAPH__SERVER__PORT", "0");
        for (k, v) in env {
            cmd.env(k, v);
        }
        let out = cmd.output().expect("run rentgraph");
        let _ = std::fs::remove_dir_all(&dir);
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (ok, err) = serve(&[("RENTGRAPH__SERVER__HOST", "0.0.0.0")]);
    assert!(!ok);
    assert!(
        err.contains("RENTGRAPH_ENV is not set") && err.contains("a public address"),
        "{err}"
    );
    let (ok, err) = serve(&[(
        "RENTGRAPH__DATABASE__URL",
        "postgres://postgres@127.0.0.1:5432/postgres",
    )]);
    assert!(!ok);
    assert!(err.contains("an external database"), "{err}");
}

/// No profile carries a secret: development generates one beside its database (the server and
/// `rentgraph token` run from one place agree), and the old published one is refused everywhere.
#[test]
fn development_generates_its_secret_and_the_published_one_is_refused() {
    let dir = std::env::temp_dir().join(format!("rg-devsecret-{}", uuid::Uuid::new_v4().simple()));
    let url = format!("sqlite://{}/rentgraph.db?mode=rwc", dir.display());
    let load = |extra: &[(&str, &str)]| {
        let mut overrides = vec![("database.url".to_owned(), url.clone())];
        overrides.extend(
            extra
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
        );
        rentgraph::config::Settings::load(rentgraph::config::Sources {
            env: Some("development".into()),
            overrides,
            ..Default::default()
        })
    };
    let first = load(&[]).expect("development loads");
    let secret = first.auth.jwt_secret.expose().to_owned();
    assert_eq!(secret.len(), 64);
    assert_ne!(secret, rentgraph::config::DEVELOPMENT_JWT_SECRET);
    let on_disk = std::fs::read_to_string(dir.join("jwt-secret")).expect("kept beside the db");
    assert_eq!(on_disk.trim(), secret);
    assert_eq!(
        load(&[]).expect("again").auth.jwt_secret.expose(),
        secret,
        "stable"
    );
    let published = load(&[("auth.jwt_secret", rentgraph::config::DEVELOPMENT_JWT_SECRET)]);
    assert!(
        published.is_err(),
        "the published secret is refused in development too"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
