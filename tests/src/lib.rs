//! End-to-end test harness: [`TestApp::spawn`] starts the real server on port 0 with a throwaway
//! database — a temporary SQLite file, or a fresh database in a private PostgreSQL cluster — and hands
//! out real clients that talk to it over real sockets.
//!
//! PostgreSQL comes from `TEST_DATABASE_URL` when set (a superuser URL; each test creates its own
//! database), otherwise from a private cluster started once per test process from the system's binaries
//! (`initdb` + `postgres`, as the `postgres` user when running as root). A watchdog shell stops that
//! cluster and deletes its directory when the test process exits. Without binaries the PostgreSQL
//! variants print a loud notice and return early — unless `RENKEI_REQUIRE_POSTGRES=1`, where they fail.

pub mod live;
mod postgres;

use std::future::Future;
use std::path::PathBuf;

use renkei_cli::Client;
use renkei_protocol::{CreateUserRequest, Profession, Role, Sensitive, User};
use renkei_server::{Application, Config};
use tokio::sync::oneshot;

pub use postgres::postgres_admin_url;
/// Re-exported so [`both_backends!`] works in crates that do not depend on the server directly.
pub use renkei_server;

/// The password every test account gets: long enough for the policy.
pub const PASSWORD: &str = "correct horse battery staple";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// A running server with its own database. Stops the server when dropped.
#[derive(Debug)]
pub struct TestApp {
    pub backend: Backend,
    pub base_url: String,
    pub database_url: String,
    pub config: Config,
    /// Holds the SQLite file (and anything else a test writes) until the app is dropped.
    pub dir: tempfile::TempDir,
    ca_cert: Option<PathBuf>,
    shutdown: Option<oneshot::Sender<()>>,
    server: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
    pg_database: Option<String>,
}

impl TestApp {
    /// Starts a server on `backend` with the default test configuration. `None` when PostgreSQL is not
    /// available and not required (a notice has been printed).
    pub async fn spawn(backend: Backend) -> Option<Self> {
        Self::spawn_with(backend, |_| {}).await
    }

    /// Like [`TestApp::spawn`], letting the test adjust the configuration first.
    pub async fn spawn_with(backend: Backend, adjust: impl FnOnce(&mut Config)) -> Option<Self> {
        install_crypto_provider();
        let dir = tempfile::tempdir().expect("temporary directory");
        let (database_url, pg_database) = match backend {
            Backend::Sqlite => (format!("sqlite://{}", dir.path().join("renkei.sqlite3").display()), None),
            Backend::Postgres => {
                let admin_url = postgres_admin_url()?;
                let (url, name) = postgres::create_database(&admin_url).await;
                (url, Some(name))
            }
        };
        let mut config = Config {
            listen: "127.0.0.1:0".parse().expect("address"),
            database_url: Some(database_url.clone()),
            data_dir: dir.path().to_path_buf(),
            database_max_connections: 8,
            log_filter: std::env::var("RENKEI_TEST_LOG").unwrap_or_else(|_| "warn".into()),
            ..Config::default()
        };
        adjust(&mut config);
        renkei_server::telemetry::init(&config);
        let ca_cert = config.tls_cert.clone();
        let app = Application::build(config.clone()).await.expect("server starts");
        let base_url = app.base_url();
        let (tx, rx) = oneshot::channel();
        let server = tokio::spawn(app.run_until_stopped(async {
            let _ = rx.await;
        }));
        Some(Self {
            backend,
            base_url,
            database_url,
            config,
            dir,
            ca_cert,
            shutdown: Some(tx),
            server: Some(server),
            pg_database,
        })
    }

    /// A client that trusts this server's certificate (when it has one), not logged in.
    pub fn client(&self) -> Client {
        Client::new(&self.base_url, self.ca_cert.as_deref()).expect("client")
    }

    /// Creates an administrator directly in the database, as `renkei-server create-admin` does, and
    /// returns a client logged in as them.
    pub async fn admin(&self) -> Client {
        renkei_server::admin_cli::create_admin(
            &self.config,
            "admin",
            "管理者",
            "武蔵野市医師会",
            &Sensitive::new(PASSWORD),
        )
        .await
        .expect("create admin");
        self.login("admin", PASSWORD).await
    }

    pub async fn login(&self, login: &str, password: &str) -> Client {
        let mut client = self.client();
        client.login(login, &Sensitive::new(password), None).await.expect("login");
        client
    }

    /// Registers a member through the admin API with an initial password, and changes it to
    /// [`PASSWORD`] at first login, leaving a client ready to use.
    pub async fn member(&self, admin: &Client, login: &str, profession: Profession) -> (User, Client) {
        self.member_at(admin, login, profession, "武蔵野訪問看護ステーション").await
    }

    /// A second server node on the same database (the regional, multi-node setup on PostgreSQL).
    pub async fn spawn_node(&self) -> TestApp {
        let mut config = self.config.clone();
        config.listen = "127.0.0.1:0".parse().expect("address");
        let app = Application::build(config.clone()).await.expect("second node starts");
        let base_url = app.base_url();
        let (tx, rx) = oneshot::channel();
        let server = tokio::spawn(app.run_until_stopped(async {
            let _ = rx.await;
        }));
        TestApp {
            backend: self.backend,
            base_url,
            database_url: self.database_url.clone(),
            config,
            dir: tempfile::tempdir().expect("temporary directory"),
            ca_cert: self.ca_cert.clone(),
            shutdown: Some(tx),
            server: Some(server),
            // The first node owns (and drops) the database.
            pg_database: None,
        }
    }

    /// Registers a member with a given organisation (see [`TestApp::member`]).
    pub async fn member_at(
        &self,
        admin: &Client,
        login: &str,
        profession: Profession,
        organisation: &str,
    ) -> (User, Client) {
        let initial = format!("initial {login} password");
        admin
            .admin_create_user(&CreateUserRequest {
                login: login.into(),
                display_name: format!("{login} さん"),
                kana: None,
                profession,
                organisation: organisation.into(),
                phone: Some("0422-51-0000".into()),
                role: Role::Member,
                initial_password: Some(Sensitive::new(initial.clone())),
            })
            .await
            .expect("create member");
        let client = self.login(login, &initial).await;
        client.change_password(&Sensitive::new(initial), &Sensitive::new(PASSWORD)).await.expect("change password");
        let user = client.me().await.expect("me");
        (user, client)
    }

    /// A second connection to this app's database, for tests that must look at or shift time in storage.
    pub async fn store(&self) -> renkei_server::store::Store {
        renkei_server::store::Store::connect(&self.database_url, 2).await.expect("store")
    }

    /// Stops the server (releasing its database) but keeps the database, for tests that then run the
    /// server binary, a backup or a restore against it.
    pub async fn stop_server(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(server) = self.server.take() {
            server.await.expect("server task").expect("server ran cleanly");
        }
    }

    /// Stops the server and waits for it to drain.
    pub async fn stop(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(server) = self.server.take() {
            server.await.expect("server task").expect("server ran cleanly");
        }
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(server) = self.server.take() {
            server.abort();
        }
        if let Some(name) = self.pg_database.take() {
            postgres::drop_database_in_background(name);
        }
    }
}

/// Builders for care-team requests, so tests read as the scenario they are.
pub mod care {
    use renkei_protocol::{
        ConsentMethod, Consenter, ConsenterKind, OpenGroupRequest, PatientIdentifiers, Profession,
        RecordConsentRequest, ScopeEntry, WithdrawConsentRequest,
    };
    use uuid::Uuid;

    pub fn patient(label: &str, full_name: &str) -> OpenGroupRequest {
        OpenGroupRequest {
            label: label.into(),
            patient: PatientIdentifiers {
                full_name: full_name.into(),
                kana: Some("やまだ はなこ".into()),
                patient_number: Some("P-0001".into()),
            },
            notes: Some("独居。長女が週末に訪問。".into()),
        }
    }

    pub fn family() -> Consenter {
        Consenter { kind: ConsenterKind::Family, name: "山田 一郎".into(), relationship: Some("長男".into()) }
    }

    pub fn consent(scope: Vec<ScopeEntry>) -> RecordConsentRequest {
        RecordConsentRequest {
            consenter: family(),
            method: ConsentMethod::Written,
            obtained_on: time::macros::date!(2026 - 11 - 20),
            scope,
        }
    }

    pub fn withdrawal() -> WithdrawConsentRequest {
        WithdrawConsentRequest {
            consenter: family(),
            method: ConsentMethod::Verbal,
            obtained_on: time::macros::date!(2026 - 11 - 21),
        }
    }

    pub fn profession(p: Profession) -> ScopeEntry {
        ScopeEntry { organisation: None, profession: Some(p), user: None }
    }

    pub fn organisation(o: &str) -> ScopeEntry {
        ScopeEntry { organisation: Some(o.into()), profession: None, user: None }
    }

    pub fn person(id: Uuid) -> ScopeEntry {
        ScopeEntry { organisation: None, profession: None, user: Some(id) }
    }

    /// A post of `kind` with the client message id `id`.
    pub fn post(kind: renkei_protocol::PostKind, body: &str, id: &str) -> renkei_protocol::NewPost {
        renkei_protocol::NewPost {
            kind,
            body: body.into(),
            reply_to: None,
            client_msg_id: id.into(),
            confirm_not_emergency: false,
            attachments: Vec::new(),
            care_policy: None,
        }
    }

    /// An ordinary update.
    pub fn update(body: &str, id: &str) -> renkei_protocol::NewPost {
        post(renkei_protocol::PostKind::Update, body, id)
    }
}

/// A care team ready to talk: an administrator, a physician who opened a patient group with consent
/// covering nurses and care managers, and a nurse and a care manager who joined it.
#[derive(Debug)]
pub struct Team {
    pub admin: Client,
    pub doctor: Client,
    pub nurse: Client,
    pub care_manager: Client,
    pub nurse_user: User,
    pub group: uuid::Uuid,
}

impl TestApp {
    pub async fn team(&self) -> Team {
        let admin = self.admin().await;
        let (_, doctor) = self.member_at(&admin, "dr-suzuki", Profession::Physician, "鈴木内科クリニック").await;
        let (nurse_user, nurse) = self.member_at(&admin, "ns-sato", Profession::Nurse, "むさしの訪問看護").await;
        let (_, care_manager) =
            self.member_at(&admin, "cm-kato", Profession::CareManager, "むさしの居宅介護支援").await;
        let group = doctor.open_group(&care::patient("山田 花子 様", "山田 花子")).await.expect("open").id;
        let scope = vec![care::profession(Profession::Nurse), care::profession(Profession::CareManager)];
        doctor.record_consent(group, &care::consent(scope)).await.expect("consent");
        for (login, client) in [("ns-sato", &nurse), ("cm-kato", &care_manager)] {
            doctor.invite(group, login).await.expect("invite");
            let invitation = client.invitations().await.expect("invitations").invitations.remove(0);
            client.accept_invitation(invitation.id).await.expect("accept");
        }
        Team { admin, doctor, nurse, care_manager, nurse_user, group }
    }
}

/// The error code of a refused call; panics when the call succeeded or failed without a typed error.
pub fn code_of<T: std::fmt::Debug>(r: Result<T, renkei_cli::ClientError>) -> renkei_protocol::ErrorCode {
    match r {
        Err(e) => e.code().unwrap_or_else(|| panic!("expected a typed error, got {e:?}")),
        Ok(v) => panic!("expected an error, got {v:?}"),
    }
}

/// The code an authenticator app shows for a base32 TOTP secret, `ahead` time steps (30 s) from now.
pub fn totp_code(secret: &str, ahead: u64) -> String {
    totp_code_at(secret, totp_step() + ahead)
}

/// The current 30-second TOTP step (RFC 6238), to compute several codes for steps fixed once.
pub fn totp_step() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("clock").as_secs() / 30
}

/// The code of TOTP step `step` for `secret` (base32).
pub fn totp_code_at(secret: &str, step: u64) -> String {
    let secret = totp_rs::Secret::try_from_base32(secret).expect("base32 secret");
    let totp = totp_rs::Builder::new().with_secret(secret).build().expect("totp");
    totp.generate(step * 30).to_string()
}

/// rustls needs one process-wide crypto provider; install ring once.
pub fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// Runs `test` against a server on `backend`; on PostgreSQL without a cluster it reports and returns.
pub async fn with_app<F, Fut>(backend: Backend, adjust: impl FnOnce(&mut Config), test: F)
where
    F: FnOnce(TestApp) -> Fut,
    Fut: Future<Output = ()>,
{
    if let Some(app) = TestApp::spawn_with(backend, adjust).await {
        test(app).await;
    }
}

/// Declares one test per backend: `both_backends!(async fn name(app: TestApp) { ... })` becomes the
/// module `name` with `sqlite` and `postgres` tests running the same body. An optional
/// `config = |c| ...;` first adjusts the server's configuration.
#[macro_export]
macro_rules! both_backends {
    ($(config = $cfg:expr;)? async fn $name:ident($app:ident : TestApp $(,)?) $body:block) => {
        mod $name {
            #[allow(unused_imports)]
            use super::*;

            async fn run($app: $crate::TestApp) $body

            #[allow(unused_variables)]
            fn adjust(config: &mut $crate::renkei_server::Config) {
                $( ($cfg)(config); )?
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                $crate::with_app($crate::Backend::Sqlite, adjust, run).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                $crate::with_app($crate::Backend::Postgres, adjust, run).await;
            }
        }
    };
}
