//! `rentgraph token`: bearer tokens for users (development and load tests).
use anyhow::{Context, Result, bail};
use rentgraph::auth::Authenticator;
use rentgraph::config::Settings;
use rentgraph::graphql::ids::{self, Kind};
use std::path::PathBuf;

/// `rentgraph token`'s flags.
#[derive(clap::Args)]
pub(super) struct Args {
    /// The user's id as `User.id` shows it (a raw UUID works too).
    #[arg(long, required_unless_present = "users_file")]
    pub(super) user: Option<String>,
    /// A file of user ids, one a line: prints one token a line, in the same order (load
    /// tests sign in as thousands of users).
    #[arg(long, conflicts_with = "user")]
    pub(super) users_file: Option<PathBuf>,
    /// USER, OWNER, PARTNER or ADMIN.
    #[arg(long, default_value = "USER")]
    pub(super) role: String,
}

pub(super) fn run(settings: &Settings, args: Args) -> Result<()> {
    let Args {
        user,
        users_file,
        role,
    } = args;
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
