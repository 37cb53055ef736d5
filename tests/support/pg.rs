//! PostgreSQL for the tests: a fresh database per test on the throwaway server that
//! `scripts/with-postgres` started, and private servers for tests that stop and restart
//! PostgreSQL itself. Never skipped: without the server the tests fail, saying how to run.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The admin URL `scripts/with-postgres` exports. Panics with the way to run the tests
/// when it is missing: a PostgreSQL test that silently passes without PostgreSQL would
/// prove nothing.
pub fn admin_url() -> String {
    match std::env::var("SMSBRIDGE_TEST_POSTGRES_URL") {
        Ok(url) if !url.is_empty() => url,
        _ => panic!(
            "SMSBRIDGE_TEST_POSTGRES_URL is not set: the PostgreSQL tests need the throwaway \
             server of scripts/with-postgres. Run them as \
             `bash scripts/with-postgres cargo test ...` (scripts/test does), after \
             scripts/install-test-deps has installed Debian's postgresql."
        ),
    }
}

/// `url` with its database name replaced by `database`.
pub fn with_database(url: &str, database: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((base, query)) => (base, Some(query)),
        None => (url, None),
    };
    let authority_end = base
        .find("://")
        .map(|i| i + 3)
        .and_then(|start| base[start..].find('/').map(|j| start + j))
        .unwrap_or(base.len());
    let mut out = format!("{}/{database}", &base[..authority_end]);
    if let Some(query) = query {
        out.push('?');
        out.push_str(query);
    }
    out
}

/// `url` with its user and password replaced.
pub fn with_user(url: &str, user: &str, password: &str) -> String {
    let (scheme, rest) = url.split_once("://").expect("a URL with a scheme");
    let host = rest.rsplit_once('@').map(|(_, host)| host).unwrap_or(rest);
    format!("{scheme}://{user}:{password}@{host}")
}

/// A random name for a database or role.
pub fn random_name(prefix: &str) -> String {
    format!("{prefix}_{:016x}", rand::random::<u64>())
}

/// Runs one statement on `url` as a simple query (DDL such as CREATE DATABASE).
pub async fn execute(url: &str, sql: &str) {
    let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .unwrap_or_else(|e| panic!("cannot connect to the test PostgreSQL: {e}"));
    let driver = tokio::spawn(connection);
    client
        .batch_execute(sql)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
    drop(client);
    let _ = driver.await;
}

/// Creates an empty database with a random name on the server of `admin_url()` and
/// returns a URL to it (as the admin role, which owns it).
pub async fn fresh_database() -> String {
    fresh_database_on(&admin_url()).await
}

/// [`fresh_database`] on the server of another admin URL (a [`PrivateServer`]).
pub async fn fresh_database_on(admin: &str) -> String {
    let name = random_name("smsbridge_test");
    execute(admin, &format!("CREATE DATABASE {name}")).await;
    with_database(admin, &name)
}

/// Where Debian's initdb and pg_ctl are.
pub fn pg_bin() -> PathBuf {
    if let Ok(dir) = std::env::var("SMSBRIDGE_TEST_PG_BIN") {
        return PathBuf::from(dir);
    }
    let mut found: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .map(|entry| entry.path().join("bin"))
        .filter(|bin| bin.join("initdb").exists() && bin.join("pg_ctl").exists())
        .collect();
    found.sort_by_key(|p| {
        p.parent()
            .and_then(|v| v.file_name())
            .and_then(|v| v.to_str())
            .and_then(|v| v.parse::<u32>().ok())
            .unwrap_or(0)
    });
    found.pop().unwrap_or_else(|| {
        panic!(
            "no initdb/pg_ctl under /usr/lib/postgresql/*/bin: run scripts/install-test-deps \
             (Debian's postgresql), and the tests through scripts/with-postgres"
        )
    })
}

fn is_root() -> bool {
    // /proc/self belongs to the process's effective user.
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0)
}

/// A command run as the unprivileged server user: `postgres` when we are root.
fn server_command(program: &Path) -> Command {
    if is_root() {
        let mut cmd = Command::new("setpriv");
        cmd.args([
            "--reuid=postgres",
            "--regid=postgres",
            "--init-groups",
            "--",
        ]);
        cmd.arg(program);
        cmd
    } else {
        Command::new(program)
    }
}

fn run(mut cmd: Command, what: &str) {
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("{what}: cannot run: {e}"));
    assert!(
        out.status.success(),
        "{what} failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A PostgreSQL server of the test's own, for tests that stop and restart the database.
/// Same set-up as `scripts/with-postgres`; stopped and deleted on drop.
pub struct PrivateServer {
    dir: tempfile::TempDir,
    bin: PathBuf,
    port: u16,
    password: String,
    /// More `-c name=value` settings for the server.
    settings: Vec<String>,
}

impl PrivateServer {
    /// initdb in a fresh temporary directory and start on a free loopback port.
    pub fn start() -> PrivateServer {
        PrivateServer::start_with(|_| Vec::new())
    }

    /// Like [`start`](Self::start), with more server settings (`name=value`), made by
    /// `settings` from the server's directory once it exists (owned by the server's user),
    /// e.g. TLS files written there.
    pub fn start_with(settings: impl FnOnce(&Path) -> Vec<String>) -> PrivateServer {
        let bin = pg_bin();
        let dir = tempfile::Builder::new()
            .prefix("smsbridge-private-pg.")
            .tempdir_in("/tmp")
            .expect("temporary directory");
        if is_root() {
            run(
                {
                    let mut c = Command::new("chown");
                    c.arg("postgres:").arg(dir.path());
                    c
                },
                "chown the server directory",
            );
        }
        let password = format!("{:032x}", rand::random::<u128>());
        let pwfile = dir.path().join("pwfile");
        std::fs::write(&pwfile, format!("{password}\n")).expect("password file");
        if is_root() {
            run(
                {
                    let mut c = Command::new("chown");
                    c.arg("postgres:").arg(&pwfile);
                    c
                },
                "chown the password file",
            );
        }
        let mut initdb = server_command(&bin.join("initdb"));
        initdb
            .arg("-D")
            .arg(dir.path().join("data"))
            .args([
                "-U",
                "smsbridge_admin",
                "--auth=scram-sha-256",
                "-E",
                "UTF8",
            ])
            .arg("--no-locale")
            .arg(format!("--pwfile={}", pwfile.display()));
        run(initdb, "initdb");
        let _ = std::fs::remove_file(&pwfile);
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let settings = settings(dir.path());
        if is_root() {
            let mut c = Command::new("chown");
            c.arg("-R").arg("postgres:").arg(dir.path());
            run(c, "chown the server directory");
        }
        let server = PrivateServer {
            dir,
            bin,
            port,
            password,
            settings,
        };
        server.start_again();
        server
    }

    /// The admin URL of this server (database `postgres`).
    pub fn admin_url(&self) -> String {
        format!(
            "postgresql://smsbridge_admin:{}@127.0.0.1:{}/postgres",
            self.password, self.port
        )
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// Starts the (stopped) server again on the same port.
    pub fn start_again(&self) {
        let mut cmd = server_command(&self.bin.join("pg_ctl"));
        cmd.arg("-D")
            .arg(self.dir.path().join("data"))
            .arg("-l")
            .arg(self.dir.path().join("server.log"))
            .args(["-w", "-t", "30", "-o"])
            .arg(format!(
                "-c listen_addresses=127.0.0.1 -p {} -c unix_socket_directories={} -c fsync=off{}",
                self.port,
                self.dir.path().display(),
                self.settings
                    .iter()
                    .map(|s| format!(" -c {s}"))
                    .collect::<String>()
            ))
            .arg("start");
        run(cmd, "pg_ctl start");
    }

    /// Stops the server (fast shutdown: connections are closed at once).
    pub fn stop(&self) {
        let mut cmd = server_command(&self.bin.join("pg_ctl"));
        cmd.arg("-D")
            .arg(self.dir.path().join("data"))
            .args(["-m", "fast", "-w", "-t", "30", "stop"]);
        run(cmd, "pg_ctl stop");
    }

    /// Waits until the server answers on its port (after [`start_again`](Self::start_again)).
    pub fn wait_ready(&self, within: Duration) {
        let deadline = Instant::now() + within;
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "the private PostgreSQL did not come up"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for PrivateServer {
    fn drop(&mut self) {
        if self.dir.path().join("data/postmaster.pid").exists() {
            let mut cmd = server_command(&self.bin.join("pg_ctl"));
            cmd.arg("-D")
                .arg(self.dir.path().join("data"))
                .args(["-m", "immediate", "-w", "stop"])
                .stdout(Stdio::null())
                .stderr(Stdio::null());
            let _ = cmd.status();
        }
    }
}
