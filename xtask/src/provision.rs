//! Finding the PostgreSQL and Redis server binaries, and installing them when they are missing.
//!
//! The README promises that `cargo xtask test` is the whole set-up, so on a fresh machine it
//! installs what it needs rather than failing with a command for the user to run:
//!
//! 1. Look for `initdb` and `pg_ctl` (Debian keeps them off PATH, in
//!    `/usr/lib/postgresql/<major>/bin`) and for `redis-server`.
//! 2. If something is missing, decide ([`decide`], a pure function) whether xtask may and can
//!    install it: only with `apt-get`, only as root or with passwordless sudo (`sudo -n true`,
//!    so it never stops at a password prompt), and never when `MCP_AUTH_NO_PROVISION` is set
//!    (to anything but `0`), for machines whose packages someone else manages. Otherwise it
//!    fails with the exact command to run, as it always did.
//! 3. Say in one line which Debian packages it installs and why, then run `apt-get update` once
//!    and `apt-get install -y --no-install-recommends <packages>`, non-interactively. The
//!    packages would start their own servers (a cluster on 5432, Redis on 6379) that the tests
//!    never use, since xtask starts private ones; a temporary `/usr/sbin/policy-rc.d` that
//!    refuses service starts keeps them stopped, as `.ci/run` does it (see
//!    [`INSTALL_SCRIPT`]).
//! 4. Look again, and fail precisely if the install did not produce the binaries.

use std::{
    ffi::OsStr,
    fs, io,
    os::fd::AsFd,
    path::{Path, PathBuf},
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use crate::{Result, services::running_as_root};

/// Set (to anything but empty or `0`) to forbid installing packages; xtask then fails with the
/// command to run instead, as it did before it could install.
pub(crate) const NO_PROVISION_VAR: &str = "MCP_AUTH_NO_PROVISION";

/// Each apt-get invocation's time limit. PostgreSQL and Redis with their dependencies are a few
/// tens of megabytes, so fifteen minutes covers a slow mirror many times over, while a hung
/// download fails the run within a sixth of CI's 90-minute budget instead of eating all of it.
const APT_TIMEOUT: Duration = Duration::from_secs(15 * 60);
/// How long apt-get may take to exit after the time limit's SIGTERM before it gets SIGKILL.
const APT_KILL_AFTER: Duration = Duration::from_secs(30);

/// Where `invoke-rc.d` asks whether a package may start its service (Debian's policy-rc.d
/// interface).
const POLICY_RC_D: &str = "/usr/sbin/policy-rc.d";

/// The exit status [`INSTALL_SCRIPT`] uses when it cannot write the policy-rc.d file; neither
/// apt-get (0, 1, 100) nor timeout (124 to 127, 137) uses it.
const POLICY_RC_D_FAILED: i32 = 99;

/// Runs `apt-get install` with the packages' own services kept from starting, the way `.ci/run`
/// does: a policy-rc.d that exits 101 ("action forbidden") makes `invoke-rc.d` skip every start
/// during the install. It is removed again on any exit (the traps turn a signal into an exit,
/// so the EXIT trap runs then too), and an existing one, which belongs to someone else, is left
/// alone. The shell, not xtask, owns the file: it outlives xtask if xtask is killed, and cleans
/// up when apt-get ends. Arguments: the time limit and the kill grace in seconds, the
/// policy-rc.d path ([`POLICY_RC_D`]; a test passes another), then the packages.
const INSTALL_SCRIPT: &str = r#"limit=$1 kill_after=$2 policy=$3
shift 3
if [ ! -e "$policy" ] && [ ! -L "$policy" ]; then
    trap 'rm -f "$policy"' EXIT
    trap 'exit 129' HUP
    trap 'exit 130' INT
    trap 'exit 143' TERM
    { printf '#!/bin/sh\nexit 101\n' >"$policy" && chmod 755 "$policy"; } || exit 99
fi
timeout --foreground --kill-after="$kill_after" "$limit" \
    apt-get -o DPkg::Lock::Timeout=300 install -y --no-install-recommends "$@"
"#;

/// Which of the servers' binaries are missing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Missing {
    /// `initdb` or `pg_ctl`.
    postgres: bool,
    redis: bool,
}

impl Missing {
    fn any(self) -> bool {
        self.postgres || self.redis
    }

    /// "PostgreSQL (initdb, pg_ctl) and redis-server", for messages.
    fn describe(self) -> String {
        let mut what = Vec::new();
        if self.postgres {
            what.push("PostgreSQL (initdb, pg_ctl)");
        }
        if self.redis {
            what.push("redis-server");
        }
        what.join(" and ")
    }
}

/// How xtask may run apt-get.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Privilege {
    Root,
    /// Passwordless sudo: `sudo -n` never prompts.
    Sudo,
}

/// What the machine allows, as [`decide`] needs it.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Host {
    /// [`NO_PROVISION_VAR`] is set.
    forbidden: bool,
    has_apt_get: bool,
    /// `None`: neither root nor passwordless sudo.
    privilege: Option<Privilege>,
    /// Whether a command suggested to the user needs `sudo` in front.
    is_root: bool,
}

/// What to do about missing binaries.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Decision {
    /// Nothing is missing.
    Nothing,
    Install {
        packages: Vec<&'static str>,
        privilege: Privilege,
    },
    /// Fail with this message, which ends with the command that fixes it.
    Refuse(String),
}

/// The Debian packages that provide what is missing. `postgresql` (rather than
/// `postgresql-<major>`) follows the distribution's default major version and creates the
/// `postgres` system user that PostgreSQL runs as when xtask runs as root.
pub(crate) fn packages_for(missing: Missing) -> Vec<&'static str> {
    let mut packages = Vec::new();
    if missing.postgres {
        packages.push("postgresql");
    }
    if missing.redis {
        packages.push("redis-server");
    }
    packages
}

/// Whether xtask installs the missing packages, and with which privilege, or why not.
pub(crate) fn decide(missing: Missing, host: Host) -> Decision {
    if !missing.any() {
        return Decision::Nothing;
    }
    let packages = packages_for(missing);
    let sudo = if host.is_root { "" } else { "sudo " };
    let command = format!("{sudo}apt-get install -y {}", packages.join(" "));
    let what = missing.describe();
    if host.forbidden {
        return Decision::Refuse(format!(
            "{what} not found, and {NO_PROVISION_VAR} forbids installing it: {command}"
        ));
    }
    if !host.has_apt_get {
        return Decision::Refuse(format!(
            "{what} not found, and there is no apt-get to install it with: install it with the \
             system's package manager so that initdb, pg_ctl and redis-server are on PATH \
             (on Debian or Ubuntu: {command})"
        ));
    }
    match host.privilege {
        Some(privilege) => Decision::Install {
            packages,
            privilege,
        },
        None => Decision::Refuse(format!(
            "{what} not found, and xtask installs packages only as root or with passwordless \
             sudo: {command}"
        )),
    }
}

/// Whether the value of [`NO_PROVISION_VAR`] forbids installing.
fn forbids(value: Option<&OsStr>) -> bool {
    value.is_some_and(|value| !value.is_empty() && value != "0")
}

/// The line printed before installing.
fn announcement(packages: &[&str], missing: Missing, privilege: Privilege) -> String {
    let how = match privilege {
        Privilege::Root => "as root",
        Privilege::Sudo => "with sudo",
    };
    format!(
        "xtask: installing the Debian packages {} with apt-get {how}: the tests run private \
         PostgreSQL and Redis servers and {} is missing (set {NO_PROVISION_VAR}=1 to forbid this)",
        packages.join(" "),
        missing.describe(),
    )
}

/// The two command lines, `apt-get update` and the install, each under [`APT_TIMEOUT`].
fn apt_commands(packages: &[&str], privilege: Privilege) -> [Vec<String>; 2] {
    let mut prefix: Vec<String> = match privilege {
        Privilege::Root => vec![],
        Privilege::Sudo => vec!["sudo".into(), "-n".into(), "--".into()],
    };
    // Through env, because sudo resets the environment.
    prefix.extend(["env".into(), "DEBIAN_FRONTEND=noninteractive".into()]);
    let limit = APT_TIMEOUT.as_secs().to_string();
    let kill_after = APT_KILL_AFTER.as_secs().to_string();

    let mut update = prefix.clone();
    update.extend(
        [
            "timeout",
            "--foreground",
            "--kill-after",
            &kill_after,
            &limit,
        ]
        .into_iter()
        .chain(["apt-get", "-o", "DPkg::Lock::Timeout=300", "update"])
        .map(String::from),
    );
    let mut install = prefix;
    install.extend(
        [
            "sh",
            "-c",
            INSTALL_SCRIPT,
            "sh",
            &limit,
            &kill_after,
            POLICY_RC_D,
        ]
        .into_iter()
        .chain(packages.iter().copied())
        .map(String::from),
    );
    [update, install]
}

/// Why a step failed, from its exit status (`None`: killed by a signal).
fn failure_message(step: &str, status: Option<i32>) -> String {
    let limit = APT_TIMEOUT.as_secs();
    match status {
        Some(124 | 137) => format!(
            "`{step}` did not finish within its limit of {limit} s and was stopped; if it was \
             stopped while dpkg ran, run `dpkg --configure -a` as root before trying again"
        ),
        Some(POLICY_RC_D_FAILED) => format!(
            "`{step}` did not run: cannot create /usr/sbin/policy-rc.d, which keeps the \
             packages' own services from starting"
        ),
        Some(126 | 127) => format!("`{step}` could not be started (is coreutils' timeout there?)"),
        Some(code) => format!("`{step}` failed with exit status {code}; its output is above"),
        None => format!("`{step}` was killed by a signal"),
    }
}

/// The binaries `cargo xtask test` needs: PostgreSQL's bin directory and `redis-server`'s path,
/// installed first if they are missing and xtask may install them (see the module docs).
pub(crate) fn server_binaries() -> Result<(PathBuf, PathBuf)> {
    let (postgres, redis) = (find_postgres(), find_redis());
    let missing = Missing {
        postgres: postgres.is_none(),
        redis: redis.is_none(),
    };
    if let (Some(pg_bin), Some(redis_server)) = (postgres, redis) {
        return Ok((pg_bin, redis_server));
    }
    match decide(missing, Host::probe()) {
        Decision::Nothing => {}
        Decision::Refuse(message) => return Err(message.into()),
        Decision::Install {
            packages,
            privilege,
        } => install(&packages, missing, privilege)?,
    }
    let pg_bin = find_postgres().ok_or(
        "installed postgresql, but there is still no initdb and pg_ctl in \
         /usr/lib/postgresql/<major>/bin or on PATH",
    )?;
    let redis_server =
        find_redis().ok_or("installed redis-server, but there is still no redis-server binary")?;
    Ok((pg_bin, redis_server))
}

impl Host {
    /// Looks at this machine; asks sudo only when that can change the decision.
    fn probe() -> Host {
        let forbidden = forbids(std::env::var_os(NO_PROVISION_VAR).as_deref());
        let has_apt_get = find_on_path("apt-get").is_some();
        let is_root = running_as_root();
        let privilege = if is_root {
            Some(Privilege::Root)
        } else if !forbidden && has_apt_get && passwordless_sudo() {
            Some(Privilege::Sudo)
        } else {
            None
        };
        Host {
            forbidden,
            has_apt_get,
            privilege,
            is_root,
        }
    }
}

/// `sudo -n true` succeeds: sudo runs commands for us without asking for a password.
fn passwordless_sudo() -> bool {
    Command::new("sudo")
        .args(["-n", "true"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|status| status.success())
}

fn install(packages: &[&str], missing: Missing, privilege: Privilege) -> Result<()> {
    eprintln!("{}", announcement(packages, missing, privilege));
    let started = Instant::now();
    let [update_argv, install_argv] = apt_commands(packages, privilege);
    let install_step = format!(
        "apt-get install -y --no-install-recommends {}",
        packages.join(" ")
    );
    let steps = [
        ("apt-get update", update_argv),
        (install_step.as_str(), install_argv),
    ];
    for (step, argv) in steps {
        eprintln!("$ {step}");
        let Some((program, args)) = argv.split_first() else {
            continue;
        };
        // apt-get's output goes to stderr, so that `cargo xtask services > env.sh` still
        // captures only the export lines.
        let stderr = io::stderr().as_fd().try_clone_to_owned()?;
        let status = Command::new(program)
            .args(args)
            .stdin(Stdio::null())
            .stdout(stderr)
            .status()
            .map_err(|err| format!("`{step}`: cannot run {program}: {err}"))?;
        if !status.success() {
            return Err(failure_message(step, status.code()).into());
        }
    }
    eprintln!(
        "xtask: installed {} ({:.0} s)",
        packages.join(" "),
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

/// The newest PostgreSQL's binary directory. Debian keeps it in `/usr/lib/postgresql/<major>/bin`,
/// off PATH; elsewhere initdb is usually on PATH.
fn find_postgres() -> Option<PathBuf> {
    let is_install = |bin: &Path| bin.join("initdb").is_file() && bin.join("pg_ctl").is_file();
    let newest = fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| {
            let version: Vec<u32> = entry
                .file_name()
                .to_str()?
                .split('.')
                .map(str::parse)
                .collect::<Result<_, _>>()
                .ok()?;
            Some((version, entry.path().join("bin")))
        })
        .filter(|(_, bin)| is_install(bin))
        .max();
    if let Some((_, bin)) = newest {
        return Some(bin);
    }
    find_on_path("initdb")
        .and_then(|initdb| initdb.parent().map(Path::to_path_buf))
        .filter(|bin| is_install(bin))
}

fn find_redis() -> Option<PathBuf> {
    find_on_path("redis-server").or_else(|| {
        ["/usr/bin", "/usr/sbin", "/usr/local/bin"]
            .iter()
            .map(|dir| Path::new(dir).join("redis-server"))
            .find(|path| path.is_file())
    })
}

fn find_on_path(program: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(program))
        .find(|candidate| candidate.is_file())
}

#[cfg(test)]
mod tests;
