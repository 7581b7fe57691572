//! Bearer tokens for the seeded users, minted on demand with the gateway's
//! own signing code (`chirp-auth`) from the gateway's `TOKEN_SECRET`.
//!
//! The alternatives were a token per user in the manifest (about 200 MB at a
//! million users, and tokens that expire a day after the seed) or signing up
//! every user through the gateway (an HTTP round trip each, and users that a
//! bulk import creates never sign up). Minting here calls
//! `chirp_auth::Tokens`, the very code the gateway verifies with, so the
//! two cannot drift apart; nothing is written to disk, and tokens are made
//! fresh, with the gateway's lifetime, each time `run` or `bench` starts.
//!
//! Why this is safe: the secret is the key that can impersonate anyone, so
//! the load tool only ever reads it from the environment (or a flag), never
//! prints, logs or stores it, and only deployments whose secret the operator
//! already holds (a test or staging stack they started) can be loaded this
//! way. It grants nothing new: whoever has `TOKEN_SECRET` can already sign
//! any token. A production secret should never be handed to a load tool; a
//! production load test would sign up its own users instead.

use std::path::PathBuf;
use std::time::Duration;

use chirp_auth::{Secret, Tokens};

use crate::manifest::Manifest;
use crate::workload::Actor;

/// How long minted tokens stay valid: longer than any run.
const TOKEN_TTL: Duration = Duration::from_secs(24 * 60 * 60);

#[derive(Debug, Clone, clap::Args)]
pub struct TokenArgs {
    /// The gateway's TOKEN_SECRET (at least 32 bytes): the seeded users'
    /// tokens are signed with it, by the gateway's own code.
    #[arg(long, env = "TOKEN_SECRET", hide_env_values = true, value_parser = Secret::parse)]
    pub token_secret: Secret,
}

impl TokenArgs {
    pub fn new(secret: &str) -> anyhow::Result<Self> {
        Ok(Self {
            token_secret: Secret::parse(secret)
                .map_err(|error| anyhow::anyhow!("TOKEN_SECRET {error}"))?,
        })
    }

    /// Gives every user of `manifest` a fresh token.
    pub fn mint(&self, manifest: &mut Manifest) {
        let tokens = self.tokens();
        for user in &mut manifest.users {
            user.token = tokens.issue(user.id);
        }
    }

    /// Each of `user_ids` with a fresh token: users the load tool made
    /// itself, outside any manifest.
    pub fn actors(&self, user_ids: &[i64]) -> Vec<Actor> {
        let tokens = self.tokens();
        user_ids
            .iter()
            .map(|&id| Actor {
                id,
                token: tokens.issue(id),
            })
            .collect()
    }

    fn tokens(&self) -> Tokens {
        Tokens::new(self.token_secret.expose(), TOKEN_TTL)
    }
}

/// The flags of every command that acts as the seeded users (`run`, `bench`,
/// `visible`): the seed's manifest, the gateway to talk to, and the secret
/// the users' tokens are minted with.
#[derive(Debug, Clone, clap::Args)]
pub struct SeededArgs {
    /// The manifest `seed` wrote: the users, and the gateway they were
    /// seeded through.
    #[arg(long, default_value = "loadtest-manifest.json")]
    pub manifest: PathBuf,
    /// The gateway. Default: the manifest's.
    #[arg(long)]
    pub gateway: Option<String>,
    /// The secret the users' tokens are minted with: the gateway's.
    #[command(flatten)]
    pub tokens: TokenArgs,
}

impl SeededArgs {
    /// The manifest, every user holding a fresh token.
    pub fn users(&self) -> anyhow::Result<Manifest> {
        let mut manifest = Manifest::read(&self.manifest)?;
        self.tokens.mint(&mut manifest);
        Ok(manifest)
    }

    /// The gateway's URL: the flag's, or else the manifest's.
    pub fn gateway<'a>(&'a self, manifest: &'a Manifest) -> &'a str {
        self.gateway.as_deref().unwrap_or(&manifest.gateway)
    }
}
