//! Tests of the provisioning decision and of the install script, run against a fake apt-get.

use std::os::unix::fs::PermissionsExt;

use super::*;

const BOTH: Missing = Missing {
    postgres: true,
    redis: true,
};
const ROOT: Host = Host {
    forbidden: false,
    has_apt_get: true,
    privilege: Some(Privilege::Root),
    is_root: true,
};

fn refusal(decision: Decision) -> String {
    match decision {
        Decision::Refuse(message) => message,
        other => panic!("expected a refusal, got {other:?}"),
    }
}

#[test]
fn each_missing_server_maps_to_its_debian_package() {
    let missing = |postgres, redis| Missing { postgres, redis };
    assert_eq!(packages_for(missing(false, false)), Vec::<&str>::new());
    assert_eq!(packages_for(missing(true, false)), ["postgresql"]);
    assert_eq!(packages_for(missing(false, true)), ["redis-server"]);
    assert_eq!(packages_for(BOTH), ["postgresql", "redis-server"]);
}

#[test]
fn nothing_is_installed_when_nothing_is_missing() {
    let none = Missing {
        postgres: false,
        redis: false,
    };
    let forbidden = Host {
        forbidden: true,
        ..ROOT
    };
    assert_eq!(decide(none, ROOT), Decision::Nothing);
    assert_eq!(decide(none, forbidden), Decision::Nothing);
}

#[test]
fn root_or_passwordless_sudo_with_apt_get_installs_exactly_what_is_missing() {
    let redis_only = Missing {
        postgres: false,
        redis: true,
    };
    assert_eq!(
        decide(redis_only, ROOT),
        Decision::Install {
            packages: vec!["redis-server"],
            privilege: Privilege::Root
        }
    );
    let sudo = Host {
        privilege: Some(Privilege::Sudo),
        is_root: false,
        ..ROOT
    };
    assert_eq!(
        decide(BOTH, sudo),
        Decision::Install {
            packages: vec!["postgresql", "redis-server"],
            privilege: Privilege::Sudo
        }
    );
}

#[test]
fn a_refusal_names_what_is_missing_and_ends_with_the_command_to_run() {
    let forbidden = Host {
        forbidden: true,
        ..ROOT
    };
    let message = refusal(decide(BOTH, forbidden));
    assert!(message.contains(NO_PROVISION_VAR), "{message}");
    assert!(
        message.starts_with("PostgreSQL (initdb, pg_ctl) and redis-server not found"),
        "{message}"
    );
    assert!(
        message.ends_with(": apt-get install -y postgresql redis-server"),
        "{message}"
    );

    let user = Host {
        privilege: None,
        is_root: false,
        ..ROOT
    };
    let postgres_only = Missing {
        postgres: true,
        redis: false,
    };
    let message = refusal(decide(postgres_only, user));
    assert!(message.contains("passwordless sudo"), "{message}");
    assert!(
        message.ends_with(": sudo apt-get install -y postgresql"),
        "{message}"
    );
}

#[test]
fn without_apt_get_nothing_is_installed_even_as_root() {
    let no_apt = Host {
        has_apt_get: false,
        ..ROOT
    };
    let message = refusal(decide(BOTH, no_apt));
    assert!(message.contains("no apt-get"), "{message}");
    assert!(
        message.contains("apt-get install -y postgresql redis-server"),
        "{message}"
    );
}

#[test]
fn only_an_empty_or_zero_value_allows_installing() {
    assert!(!forbids(None));
    assert!(!forbids(Some(OsStr::new(""))));
    assert!(!forbids(Some(OsStr::new("0"))));
    assert!(forbids(Some(OsStr::new("1"))));
    assert!(forbids(Some(OsStr::new("yes"))));
}

#[test]
fn the_announcement_names_the_packages_and_the_reason() {
    let line = announcement(&["postgresql"], BOTH, Privilege::Sudo);
    assert!(line.contains("Debian packages postgresql with apt-get with sudo"));
    assert!(line.contains("PostgreSQL (initdb, pg_ctl) and redis-server is missing"));
    assert!(line.contains("MCP_AUTH_NO_PROVISION=1"));
    assert!(!line.contains('\n'));
}

#[test]
fn apt_get_runs_bounded_noninteractive_and_through_sudo_only_without_root() {
    let [update, install] = apt_commands(&["postgresql", "redis-server"], Privilege::Root);
    let limit = APT_TIMEOUT.as_secs().to_string();
    assert_eq!(
        update,
        [
            "env",
            "DEBIAN_FRONTEND=noninteractive",
            "timeout",
            "--foreground",
            "--kill-after",
            "30",
            &limit,
            "apt-get",
            "-o",
            "DPkg::Lock::Timeout=300",
            "update"
        ]
    );
    assert_eq!(
        install[..4],
        ["env", "DEBIAN_FRONTEND=noninteractive", "sh", "-c"]
    );
    assert_eq!(
        install[5..],
        [
            "sh",
            &limit,
            "30",
            "/usr/sbin/policy-rc.d",
            "postgresql",
            "redis-server"
        ]
    );

    let [update, install] = apt_commands(&["redis-server"], Privilege::Sudo);
    assert_eq!(update[..3], ["sudo", "-n", "--"]);
    assert_eq!(install[..3], ["sudo", "-n", "--"]);
    assert_eq!(install.last().map(String::as_str), Some("redis-server"));
}

/// A fresh directory holding a fake `apt-get` with `body` as its shell script, and a PATH that
/// puts it first.
fn fake_apt_get(name: &str, body: &str) -> (PathBuf, std::ffi::OsString) {
    let dir = std::env::temp_dir().join(format!("xtask-provision-{name}-{}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).unwrap();
    let apt_get = dir.join("apt-get");
    fs::write(&apt_get, format!("#!/bin/sh\n{body}")).unwrap();
    make_executable(&apt_get);
    let path = std::env::join_paths(std::iter::once(dir.clone()).chain(std::env::split_paths(
        &std::env::var_os("PATH").unwrap_or_default(),
    )))
    .unwrap();
    (dir, path)
}

/// Runs [`INSTALL_SCRIPT`] with a fake `apt-get` that records whether the policy-rc.d file
/// refuses service starts while it runs, then exits with `apt_status`, or sleeps `apt_secs`
/// seconds if that is not 0. Returns the script's exit status, the record, and the policy
/// file's content afterwards (`None`: it is gone).
fn run_install_script(
    name: &str,
    policy_name: &str,
    existing_policy: Option<&str>,
    apt_status: i32,
    apt_secs: u32,
    limit_secs: u32,
) -> (Option<i32>, String, Option<String>) {
    // exec, so that the time limit's SIGTERM reaches the sleep itself.
    let end = if apt_secs > 0 {
        format!("exec sleep {apt_secs}\n")
    } else {
        format!("exit {apt_status}\n")
    };
    let (dir, path) = fake_apt_get(
        name,
        &format!("\"$POLICY\" x start; echo \"policy $? args $*\" >\"$RECORD\"\n{end}"),
    );
    let (policy, record) = (dir.join(policy_name), dir.join("record"));
    if let Some(content) = existing_policy {
        fs::write(&policy, content).unwrap();
        make_executable(&policy);
    }

    let status = Command::new("sh")
        .args(["-c", INSTALL_SCRIPT, "sh", &limit_secs.to_string(), "1"])
        .arg(&policy)
        .args(["postgresql", "redis-server"])
        .env("PATH", path)
        .env("POLICY", &policy)
        .env("RECORD", &record)
        .stdin(Stdio::null())
        .status()
        .unwrap();
    let result = (
        status.code(),
        fs::read_to_string(&record).unwrap_or_default(),
        fs::read_to_string(&policy).ok(),
    );
    fs::remove_dir_all(&dir).unwrap();
    result
}

fn make_executable(path: &Path) {
    fs::set_permissions(path, fs::Permissions::from_mode(0o755)).unwrap();
}

#[test]
fn the_update_command_runs_apt_get_update_noninteractively() {
    let (dir, path) = fake_apt_get("update", "echo \"$DEBIAN_FRONTEND $*\" >\"$RECORD\"\n");
    let record = dir.join("record");
    let [update, _] = apt_commands(&["redis-server"], Privilege::Root);
    let status = Command::new(&update[0])
        .args(&update[1..])
        .env("PATH", path)
        .env("RECORD", &record)
        .stdin(Stdio::null())
        .status()
        .unwrap();
    let recorded = fs::read_to_string(&record).unwrap();
    fs::remove_dir_all(&dir).unwrap();
    assert!(status.success());
    assert_eq!(
        recorded,
        "noninteractive -o DPkg::Lock::Timeout=300 update\n"
    );
}

#[test]
fn the_install_script_refuses_service_starts_during_the_install_and_cleans_up() {
    let (status, record, policy) = run_install_script("fresh", "policy-rc.d", None, 0, 0, 60);
    assert_eq!(status, Some(0));
    assert_eq!(
        record.trim(),
        "policy 101 args -o DPkg::Lock::Timeout=300 install -y --no-install-recommends postgresql redis-server"
    );
    assert_eq!(policy, None);
}

#[test]
fn the_install_script_leaves_an_existing_policy_rc_d_alone() {
    let theirs = "#!/bin/sh\nexit 0\n";
    let (status, record, policy) =
        run_install_script("existing", "policy-rc.d", Some(theirs), 0, 0, 60);
    assert_eq!(status, Some(0));
    assert!(
        record.starts_with("policy 0 args -o DPkg::Lock::Timeout=300 install"),
        "{record}"
    );
    assert_eq!(policy.as_deref(), Some(theirs));
}

#[test]
fn the_install_script_passes_on_failures_and_timeouts_and_still_cleans_up() {
    let (status, _, policy) = run_install_script("failing", "policy-rc.d", None, 100, 0, 60);
    assert_eq!((status, policy), (Some(100), None));
    let (status, _, policy) = run_install_script("hanging", "policy-rc.d", None, 0, 10, 1);
    assert_eq!((status, policy), (Some(124), None));
    let (status, record, _) = run_install_script("unwritable", "no/such/dir", None, 0, 0, 60);
    assert_eq!((status, record.as_str()), (Some(POLICY_RC_D_FAILED), ""));
}

#[test]
fn failures_say_which_step_and_whether_it_timed_out() {
    let step = "apt-get update";
    for timed_out in [124, 137] {
        let message = failure_message(step, Some(timed_out));
        assert!(message.contains("did not finish within its limit of 900 s"));
    }
    assert!(failure_message(step, Some(100)).contains("exit status 100"));
    assert!(failure_message(step, Some(POLICY_RC_D_FAILED)).contains("policy-rc.d"));
    assert!(failure_message(step, None).contains("signal"));
}
