//! The `resetd` binary: `serve` and the admin commands, all on the same database.
#![cfg_attr(
    test,
    allow(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic,
        clippy::unimplemented
    )
)]

mod branding;
mod breached;
mod config;
mod http;
mod import;
mod mail;
mod outbox_key;
mod secrets;
mod telemetry;

use std::io::Read;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::{Args, Parser, Subcommand};
use resetd_core::hash::Argon2id;
use resetd_core::model::{LinkTemplate, Scope, SystemClock, TenantSettings};
use resetd_core::service::{Actor, NewPersonInput};
use resetd_core::store::{Outbox, Schema, Store};
use resetd_core::types::{ClientName, DisplayName, Email, Locale, Login, Password, TenantId};
use resetd_core::{CoreError, Service, ServiceConfig};
use resetd_server::hasher::PooledHasher;
use resetd_server::{AppState, ExtraMetrics};
use tokio::sync::{watch, Notify};

use crate::config::{Config, Database, Overrides};

#[derive(Parser)]
#[command(
    name = "resetd",
    version,
    about = "Self-hosted password reset and account recovery"
)]
struct Cli {
    /// TOML configuration file.
    #[arg(long, global = true, env = "RESETD_CONFIG")]
    config: Option<PathBuf>,
    /// Directory for the SQLite database and demo mail.
    #[arg(long, global = true)]
    data_dir: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the HTTP service (the default demo needs no configuration).
    Serve {
        /// Address to listen on, e.g. 127.0.0.1:8080 (port 0 picks a free one).
        #[arg(long)]
        listen: Option<SocketAddr>,
    },
    /// Create or upgrade the database schema.
    Migrate,
    /// Validate the configuration and print it.
    CheckConfig,
    /// Manage tenants.
    #[command(subcommand)]
    Tenant(TenantCmd),
    /// Manage people.
    #[command(subcommand)]
    Person(PersonCmd),
    /// Manage API keys.
    #[command(subcommand)]
    Apikey(ApiKeyCmd),
    /// Manage registered clients (where reset links point).
    #[command(subcommand)]
    Client(ClientCmd),
    /// Show a tenant's audit log, newest first.
    Audit {
        #[arg(long)]
        tenant: String,
        #[arg(long, default_value_t = 50)]
        limit: u32,
    },
    /// Inspect and retry outgoing email.
    #[command(subcommand)]
    Outbox(mail::OutboxCmd),
    /// The breached-password index.
    #[command(subcommand)]
    Breached(breached::BreachedCmd),
}

#[derive(Subcommand)]
enum TenantCmd {
    /// Create a tenant.
    Add {
        name: String,
        #[command(flatten)]
        settings: SettingsArgs,
    },
    /// Change a tenant's settings (unnamed settings keep their value).
    Set {
        name: String,
        #[command(flatten)]
        settings: SettingsArgs,
    },
    /// List tenants and their settings.
    List,
}

#[derive(Args)]
struct SettingsArgs {
    /// Minimum password length.
    #[arg(long)]
    min_password_length: Option<usize>,
    /// Reset link lifetime in seconds.
    #[arg(long)]
    token_ttl: Option<i64>,
    /// Seconds between two reset emails to one account.
    #[arg(long)]
    cooldown: Option<i64>,
    /// Failed logins before a lock.
    #[arg(long)]
    lockout_threshold: Option<u32>,
    /// Lock duration in seconds.
    #[arg(long)]
    lockout_secs: Option<i64>,
    /// Previous passwords that may not be reused (0: off).
    #[arg(long)]
    password_history: Option<u32>,
    /// Default email locale.
    #[arg(long)]
    default_locale: Option<String>,
    /// Refuse passwords the breach corpus saw at least this many times (0: off).
    #[arg(long)]
    breached_min_count: Option<u32>,
    /// Who may use the breached range endpoint: off, api_key or public.
    #[arg(long)]
    breached_range: Option<String>,
    /// Check the password against the breach corpus at each successful login too: a hit makes
    /// the person change it (true or false).
    #[arg(long)]
    breached_check_at_login: Option<bool>,
}

impl SettingsArgs {
    fn apply(self, s: &mut TenantSettings) -> Result<(), String> {
        if let Some(v) = self.min_password_length {
            s.min_password_length = v;
        }
        if let Some(v) = self.token_ttl {
            s.token_ttl_secs = v;
        }
        if let Some(v) = self.cooldown {
            s.cooldown_secs = v;
        }
        if let Some(v) = self.lockout_threshold {
            s.lockout_threshold = v;
        }
        if let Some(v) = self.lockout_secs {
            s.lockout_secs = v;
        }
        if let Some(v) = self.password_history {
            s.password_history = v;
        }
        if let Some(v) = self.default_locale {
            s.default_locale = v;
        }
        if let Some(v) = self.breached_min_count {
            s.breached_min_count = v;
        }
        if let Some(v) = self.breached_range {
            s.breached_range = serde_json::from_value(serde_json::Value::String(v.clone()))
                .map_err(|_| format!("--breached-range {v:?}: expected off, api_key or public"))?;
        }
        if let Some(v) = self.breached_check_at_login {
            s.breached_check_at_login = v;
        }
        Ok(())
    }
}

#[derive(Subcommand)]
enum PersonCmd {
    /// Add a person.
    Add {
        #[arg(long)]
        tenant: String,
        #[arg(long)]
        login: String,
        #[arg(long)]
        email: String,
        /// Display name.
        #[arg(long)]
        name: Option<String>,
        #[arg(long)]
        locale: Option<String>,
        /// Read an initial password from standard input (first line).
        #[arg(long)]
        password_stdin: bool,
    },
    /// Import people (upsert by login) from CSV or JSON Lines, with their existing password
    /// hashes (see docs/import.md).
    Import {
        #[arg(long)]
        tenant: String,
        /// csv or jsonl (default: from the file extension).
        #[arg(long)]
        format: Option<String>,
        /// Check every row and count what would change, writing nothing.
        #[arg(long)]
        dry_run: bool,
        /// The file, or `-` for standard input.
        file: PathBuf,
    },
}

#[derive(Subcommand)]
enum ApiKeyCmd {
    /// Create an API key and print it once.
    Create {
        #[arg(long)]
        tenant: String,
        /// Scope of the key (only `admin` exists today).
        #[arg(long, default_value = "admin")]
        scope: String,
        #[arg(long, default_value = "cli")]
        name: String,
    },
}

#[derive(Subcommand)]
enum ClientCmd {
    /// Register (or replace) a client.
    Add {
        #[arg(long)]
        tenant: String,
        #[arg(long)]
        name: String,
        /// Link template, e.g. https://app.example.com/reset?token={token}
        #[arg(long)]
        link_template: String,
        /// A URL prefix callers may name as their reset page (repeatable).
        #[arg(long = "allow")]
        allowed_prefixes: Vec<String>,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let telemetry = match telemetry::init() {
        Ok(t) => t,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    let listen = match &cli.command {
        Command::Serve { listen } => *listen,
        _ => None,
    };
    let over = Overrides {
        listen,
        data_dir: cli.data_dir.clone(),
    };
    let config = match Config::load(cli.config.as_deref(), &over) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: configuration: {e}");
            return ExitCode::from(2);
        }
    };
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let outcome = rt.block_on(run(cli.command, config));
    telemetry.shutdown();
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Every command brings the schema up to date; several instances doing so at once is safe.
async fn migrate(store: &dyn Schema, shown: &str) -> Result<(), String> {
    store
        .migrate()
        .await
        .map_err(|e| format!("migrating {shown}: {e}"))
}

async fn outbox_keys(
    path: &std::path::Path,
    store: &dyn Outbox,
    check: bool,
) -> Result<Arc<resetd_store::OutboxKeys>, String> {
    let keys = if check {
        outbox_key::load(path, store).await?
    } else {
        outbox_key::load_unchecked(path)?
    };
    Ok(Arc::new(keys))
}

/// Reports the sealing of email queued in clear by an older version (see `seal_plain_outbox`).
fn sealed_plain(
    result: Result<u64, resetd_core::store::StoreError>,
    shown: &str,
) -> Result<(), String> {
    match result {
        Ok(0) => Ok(()),
        Ok(n) => {
            tracing::info!(
                messages = n,
                "sealed pending email queued in clear by an older version"
            );
            Ok(())
        }
        Err(e) => Err(format!("sealing the pending email in {shown}: {e}")),
    }
}

/// Everything a command needs, wired once.
struct App {
    config: Config,
    store: Arc<dyn Store>,
    service: Arc<Service>,
}

async fn open(config: Config) -> Result<App, String> {
    open_with(config, true).await
}

/// Opens the database and the outbox key file. With `check_keys`, refuses to go on while
/// pending email is sealed with a key the file lacks (see `outbox_key::load`).
async fn open_with(config: Config, check_keys: bool) -> Result<App, String> {
    let database = config.database()?;
    let shown = database.describe();
    let key_file = config.outbox_key_file()?;
    // Open and migrate first: the key check reads the pending outbox. The store only takes the
    // keys afterwards; until then it writes no email.
    let store: Arc<dyn Store> = match database {
        Database::Sqlite(path) => {
            let store = resetd_store::SqliteStore::open(&path)
                .map_err(|e| format!("database {shown}: {e}"))?;
            migrate(&store, &shown).await?;
            let keys = outbox_keys(&key_file, &store, check_keys).await?;
            let store = store.with_outbox_keys(keys);
            sealed_plain(store.seal_plain_outbox().await, &shown)?;
            Arc::new(store)
        }
        Database::Postgres(options) => {
            let store = resetd_store::PostgresStore::with_options(*options)
                .await
                .map_err(|e| format!("database {shown}: {e}"))?;
            migrate(&store, &shown).await?;
            let keys = outbox_keys(&key_file, &store, check_keys).await?;
            let store = store.with_outbox_keys(keys);
            sealed_plain(store.seal_plain_outbox().await, &shown)?;
            Arc::new(store)
        }
    };
    let argon = Argon2id::new(config.argon2).map_err(|e| e.to_string())?;
    let workers = if config.hashing.workers == 0 {
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(2)
    } else {
        config.hashing.workers
    };
    let hasher = PooledHasher::try_new(argon, workers, config.hashing.queue)
        .map_err(|e| format!("cannot start the hashing threads: {e}"))?;
    let hasher = Arc::new(hasher);
    let renderer = resetd_mail::TemplateRenderer::new(
        config.mail.templates_dir.clone(),
        config.mail.support_contact.clone(),
        config.mail.product_name().to_owned(),
    )
    .map_err(|e| format!("mail templates: {e}"))?
    .with_branding(branding::branding(&config.dialects, &config.mail));
    let breached_index = breached::open_index(&config)?;
    let service = Service::new(
        store.clone(),
        hasher,
        Arc::new(renderer),
        Arc::new(SystemClock),
        ServiceConfig {
            public_url: config.public_url(),
            message_id_domain: config.message_id_domain.clone(),
            // Validated to 60 s..30 days, so it fits.
            notice_retry_secs: config.mail.worker.notice_retry_secs as i64,
        },
    );
    let service = Arc::new(match breached_index {
        Some(index) => service.with_breached(index),
        None => service,
    });
    Ok(App {
        config,
        store,
        service,
    })
}

fn tid(s: &str) -> Result<TenantId, String> {
    TenantId::parse(s).map_err(|e| e.to_string())
}

fn explain(e: CoreError) -> String {
    match e {
        CoreError::Policy(v) => {
            let list: Vec<String> = v
                .violations
                .iter()
                .map(|v| format!("  - {} ({})", v.message, v.code))
                .collect();
            format!(
                "the password does not meet the policy:\n{}",
                list.join("\n")
            )
        }
        other => other.to_string(),
    }
}

async fn run(command: Command, config: Config) -> Result<(), String> {
    match command {
        Command::Breached(cmd) => breached::run(cmd, &config),
        Command::CheckConfig => {
            config.database()?;
            resetd_server::page::Pages::load(config.page_options()).map_err(|e| e.to_string())?;
            let text = toml::to_string_pretty(&config.redacted()).map_err(|e| e.to_string())?;
            println!("# configuration is valid\n{text}");
            Ok(())
        }
        Command::Migrate => {
            let app = open(config).await?;
            println!(
                "database {} is up to date",
                app.config.database()?.describe()
            );
            Ok(())
        }
        Command::Serve { .. } => {
            let mut config = config;
            let listener = tokio::net::TcpListener::bind(config.listen)
                .await
                .map_err(|e| format!("cannot listen on {}: {e}", config.listen))?;
            if config.public_url.is_empty() {
                // Links in emails must name the port actually bound (`--listen 127.0.0.1:0`).
                let addr = listener.local_addr().map_err(|e| e.to_string())?;
                config.public_url = format!("http://{addr}");
            }
            // Bound before anything else too, so a taken port fails the start at once.
            let management = if config.management.enabled {
                let at = config.management.listen;
                Some(
                    tokio::net::TcpListener::bind(at)
                        .await
                        .map_err(|e| format!("cannot listen on {at} (management): {e}"))?,
                )
            } else {
                None
            };
            serve(open(config).await?, listener, management).await
        }
        Command::Tenant(cmd) => {
            let app = open(config).await?;
            match cmd {
                TenantCmd::Add { name, settings } => {
                    let mut s = TenantSettings::default();
                    settings.apply(&mut s)?;
                    app.service
                        .create_tenant(tid(&name)?, s)
                        .await
                        .map_err(explain)?;
                    println!("tenant {name} created");
                }
                TenantCmd::Set { name, settings } => {
                    let t = tid(&name)?;
                    let mut s = app.service.tenant(&t).await.map_err(explain)?.settings;
                    settings.apply(&mut s)?;
                    app.service
                        .update_tenant_settings(&t, s)
                        .await
                        .map_err(explain)?;
                    println!("tenant {name} updated");
                }
                TenantCmd::List => {
                    for t in app.store.list_tenants().await.map_err(|e| e.to_string())? {
                        println!(
                            "{}\t{}",
                            t.id,
                            serde_json::to_string(&t.settings).unwrap_or_default()
                        );
                    }
                }
            }
            Ok(())
        }
        Command::Person(PersonCmd::Add {
            tenant,
            login,
            email,
            name,
            locale,
            password_stdin,
        }) => {
            let app = open(config).await?;
            let password = if password_stdin {
                let mut buf = String::new();
                std::io::stdin()
                    .read_to_string(&mut buf)
                    .map_err(|e| format!("reading the password: {e}"))?;
                let line = buf.lines().next().unwrap_or("");
                Some(Password::parse(line).map_err(|e| e.to_string())?)
            } else {
                None
            };
            let input = NewPersonInput {
                login: Login::parse(&login).map_err(|e| e.to_string())?,
                email: Email::parse(&email).map_err(|e| e.to_string())?,
                display_name: name
                    .as_deref()
                    .map(DisplayName::parse)
                    .transpose()
                    .map_err(|e| e.to_string())?,
                locale: locale
                    .as_deref()
                    .map(Locale::parse)
                    .transpose()
                    .map_err(|e| e.to_string())?,
                enabled: true,
                verified: false,
                roles: vec![],
                attributes: serde_json::json!({}),
                password,
            };
            let p = app
                .service
                .create_person(&tid(&tenant)?, input, &Actor::Cli)
                .await
                .map_err(explain)?;
            println!("{}", p.id);
            Ok(())
        }
        Command::Person(PersonCmd::Import {
            tenant,
            format,
            dry_run,
            file,
        }) => {
            let app = open(config).await?;
            import::run(&app.service, tid(&tenant)?, format, dry_run, &file).await
        }
        Command::Apikey(ApiKeyCmd::Create {
            tenant,
            scope,
            name,
        }) => {
            let app = open(config).await?;
            let scope = match scope.as_str() {
                "admin" => Scope::Admin,
                other => return Err(format!("unknown scope {other:?} (known: admin)")),
            };
            let (key, secret) = app
                .service
                .create_api_key(&tid(&tenant)?, &name, vec![scope], &Actor::Cli)
                .await
                .map_err(explain)?;
            eprintln!(
                "API key {} created for tenant {tenant}; it is shown only now:",
                key.id
            );
            println!("{}", secret.expose());
            Ok(())
        }
        Command::Client(ClientCmd::Add {
            tenant,
            name,
            link_template,
            allowed_prefixes,
        }) => {
            let app = open(config).await?;
            let name = ClientName::parse(&name).map_err(|e| e.to_string())?;
            let template = LinkTemplate::parse(&link_template).map_err(|e| e.to_string())?;
            app.service
                .register_client(
                    &tid(&tenant)?,
                    name.clone(),
                    template,
                    allowed_prefixes,
                    &Actor::Cli,
                )
                .await
                .map_err(explain)?;
            println!("client {name} registered");
            Ok(())
        }
        Command::Outbox(cmd) => {
            // `abandon` is the way out of the key check, so it must not be stopped by it.
            let check = !matches!(cmd, mail::OutboxCmd::Abandon);
            let key_file = config.outbox_key_file()?;
            let app = open_with(config, check).await?;
            mail::run_outbox(&app.service, &*app.store, &key_file, cmd).await
        }
        Command::Audit { tenant, limit } => {
            let app = open(config).await?;
            for e in app
                .service
                .audit_log(&tid(&tenant)?, None, limit)
                .await
                .map_err(explain)?
            {
                println!(
                    "{}\t{}\t{}\t{}\t{}\t{}",
                    e.id,
                    e.at.rfc3339(),
                    e.kind,
                    e.actor,
                    e.person.unwrap_or_default(),
                    e.detail
                );
            }
            Ok(())
        }
    }
}

/// Creates the bootstrap tenant and its admin key on first start, printing the key once.
async fn bootstrap(app: &App) -> Result<(), String> {
    let t = tid(&app.config.bootstrap_tenant)?;
    match app
        .service
        .create_tenant(t.clone(), TenantSettings::default())
        .await
    {
        Ok(_) => {
            let (_, secret) = app
                .service
                .create_api_key(&t, "bootstrap", vec![Scope::Admin], &Actor::System)
                .await
                .map_err(explain)?;
            println!(
                "bootstrap admin API key for tenant '{t}' (shown only once): {}",
                secret.expose()
            );
            Ok(())
        }
        Err(CoreError::Conflict(_)) => Ok(()),
        Err(e) => Err(explain(e)),
    }
}

async fn serve(
    app: App,
    listener: tokio::net::TcpListener,
    management: Option<tokio::net::TcpListener>,
) -> Result<(), String> {
    bootstrap(&app).await?;
    // The bundled common-password list is built on first use (about 10 ms); build it now, off the
    // runtime, so the first person to choose a password does not wait for it.
    drop(tokio::task::spawn_blocking(
        resetd_core::policy::common_list::warm,
    ));
    let dialects = app.config.dialects.check()?;
    dialects.provision(&app.service).await?;
    let (shutdown_tx, shutdown_rx) = watch::channel(false);
    let mail_notify = Arc::new(Notify::new());

    let (transport, mail_place) = mail::transport(&app.config)?;
    let stats = Arc::new(resetd_mail::MailStats::default());
    let worker = resetd_mail::OutboxWorker::new(
        app.store.clone(),
        transport,
        Arc::new(SystemClock),
        app.config.mail.worker.clone(),
        stats.clone(),
    );
    let extra: ExtraMetrics = Arc::new(move || stats.render());
    let pages =
        resetd_server::page::Pages::load(app.config.page_options()).map_err(|e| e.to_string())?;
    let state = AppState::with_pages(
        app.service.clone(),
        app.config.http_config(),
        mail_notify.clone(),
        extra,
        pages,
    );

    let mail_task = tokio::spawn(worker.run(mail_notify, shutdown_rx.clone()));
    let reset_task = tokio::spawn(resetd_server::run_reset_worker(
        state.clone(),
        shutdown_rx.clone(),
    ));

    // The management listener first, and its line before the public one, which tools wait for.
    let management_task = match management {
        Some(l) => {
            let at = l.local_addr().map_err(|e| e.to_string())?;
            println!("resetd management on http://{at} (/metrics, /readyz, /healthz)");
            tracing::info!(%at, "management listening");
            let mut stop = shutdown_rx.clone();
            let ports = resetd_server::management::Ports {
                schema: app.store.clone(),
                outbox: app.store.clone(),
            };
            let router = resetd_server::management::router(state.clone(), ports);
            Some(tokio::spawn(http::serve(l, router, async move {
                let _ = stop.changed().await;
            })))
        }
        None => None,
    };
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    println!(
        "resetd listening on http://{addr} (database {}, {mail_place})",
        app.config.database()?.describe(),
    );
    tracing::info!(%addr, "listening");
    let router = resetd_server::router(state, &dialects);
    http::serve(listener, router, async {
        shutdown_signal().await;
        tracing::info!("shutting down");
    })
    .await;
    // Probes and scrapes keep answering while the public connections drain.
    let _ = shutdown_tx.send(true);
    let _ = tokio::join!(mail_task, reset_task);
    if let Some(t) = management_task {
        let _ = t.await;
    }
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {}
        _ = term => {}
    }
}
