//! The administration subcommands: `mcp-auth-server [SETTINGS] user|client|grant …` acts on
//! the configured `--store` and exits, instead of serving.

/// An administration command.
#[derive(Debug, Clone, PartialEq, Eq, clap::Subcommand)]
#[non_exhaustive]
pub enum AdminCommand {
    /// Sign-in users kept in the store (beside any --user)
    #[command(subcommand)]
    User(UserCommand),
    /// Registered clients
    #[command(subcommand)]
    Client(ClientCommand),
    /// Live grants (what a sign-in or a client credential started, with its tokens)
    #[command(subcommand)]
    Grant(GrantCommand),
}

/// `user …`.
#[derive(Debug, Clone, PartialEq, Eq, clap::Subcommand)]
#[non_exhaustive]
pub enum UserCommand {
    /// Add a user; the password is read from stdin (not echoed on a terminal, asked twice)
    Add {
        /// The user name, also the subject of the user's tokens
        name: String,
    },
    /// Change a user's password, read from stdin
    Passwd {
        /// The user name
        name: String,
    },
    /// List the users in the store
    List,
    /// Remove a user and revoke every grant of that subject
    Remove {
        /// The user name
        name: String,
    },
}

/// `client …`.
#[derive(Debug, Clone, PartialEq, Eq, clap::Subcommand)]
#[non_exhaustive]
pub enum ClientCommand {
    /// List the registered clients
    List,
    /// Show a client's registration (never a secret)
    Show {
        /// The client id
        client_id: String,
    },
    /// Remove a client and revoke its grants
    Remove {
        /// The client id
        client_id: String,
    },
}

/// `grant …`.
#[derive(Debug, Clone, PartialEq, Eq, clap::Subcommand)]
#[non_exhaustive]
pub enum GrantCommand {
    /// List live grants
    List {
        /// Only this user's
        #[arg(long)]
        user: Option<String>,
        /// Only this client's
        #[arg(long)]
        client: Option<String>,
    },
    /// Revoke one grant, or every grant of a user and/or a client
    Revoke {
        /// The grant to revoke
        #[arg(conflicts_with_all = ["user", "client"])]
        grant_id: Option<String>,
        /// Every grant of this user
        #[arg(long)]
        user: Option<String>,
        /// Every grant of this client
        #[arg(long)]
        client: Option<String>,
    },
}
