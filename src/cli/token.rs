//! `rentgraph token`: bearer tokens for users (development and load tests).
use anyhow::{Context, Result, bail};
use rentgraph::auth::Authenticator;
use rentgraph::config::Settings;
use rentgraph::graphql::ids::{self, Kind};
use std::path::PathBuf;

pub(super) fn run(
    settings: &Settings,
    user: Option<String>,
    users_file: Option<PathBuf>,
    role: &str,
) -> Result<()> {
    let role: entity::Role = serde_json::from_value(serde_json::Value::String(role.to_uppercase()))
        .map_err(|_| anyhow::anyhow!("--role must be USER, OWNER, PARTNER or ADMIN"))?;
    let users: Vec<String> = match (user, users_file) {
        (Some(user), _) => vec![user],
        (None, Some(path)) => std::fs::read_to_string(&path)
            .with_context(|| format!("cannot read {}", path.display()))?
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .map(str::to_owned)
            .collect(),
        (None, None) => bail!("--user or --users-file"),
    };
    let auth = Authenticator::new(&settings.auth)?;
    let mut out = String::new();
    for user in users {
        let id = ids::decode(Kind::User, &user)
            .map_err(|e| anyhow::anyhow!("user {user}: {}", e.message()))?;
        out.push_str(&auth.mint(id, role)?);
        out.push('\n');
    }
    print!("{out}");
    Ok(())
}
