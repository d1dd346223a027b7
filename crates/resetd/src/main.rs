//! The `resetd` binary, its composition root: the configuration, the store, the service and the
//! workers wired once; `serve` here and the admin commands in `cli/`, all on the same database.
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
mod cli;
mod config;
mod credentials;
mod http;
mod mail;
mod outbox_key;
mod secrets;
mod telemetry;

use std::process::ExitCode;
use std::sync::Arc;

use resetd_core::hash::Argon2id;
use resetd_core::model::{Scope, SystemClock, TenantSettings};
use resetd_core::service::Actor;
use resetd_core::store::{Outbox, Schema, Store};
use resetd_core::{CoreError, Service, ServiceConfig};
use resetd_server::hasher::PooledHasher;
use resetd_server::{AppState, ExtraMetrics};
use tokio::sync::{watch, Notify};

use crate::cli::{explain, tid, Command};
use crate::config::{Config, Database, Overrides};

fn main() -> ExitCode {
    let cli = cli::parse();
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
    /// The hashing pool, for its metrics.
    hasher: Arc<PooledHasher>,
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
    let hash_metrics = hasher.clone();
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
    )
    .with_reset_queue_cap(config.http.reset_queue_cap)
    .with_reset_worker_concurrency(config.http.reset_worker_concurrency);
    let mut service = match breached_index {
        Some(index) => service.with_breached(index),
        None => service,
    };
    // Tenants whose passwords live elsewhere: every command sees them, so that a local-only
    // path (an import of hashes) is refused for them from the CLI too.
    for (tenant, backend) in credentials::connect(&credentials::check(&config.credentials)?)? {
        service = service.with_external(tenant, backend);
    }
    let service = Arc::new(service);
    Ok(App {
        config,
        store,
        service,
        hasher: hash_metrics,
    })
}

async fn run(command: Command, config: Config) -> Result<(), String> {
    match command {
        Command::Breached(cmd) => cli::breached::run(cmd, &config),
        Command::CheckConfig => {
            config.database()?;
            resetd_server::page::Pages::load(config.page_options()).map_err(|e| e.to_string())?;
            let sections = credentials::check(&config.credentials)?;
            if !sections.is_empty() {
                // The tenants first, on a service without the adapters, then the adapters.
                let mut local = config.clone();
                local.credentials.clear();
                let app = open_with(local, false).await?;
                credentials::check_tenants(&*app.store, &sections, &config.bootstrap_tenant)
                    .await?;
                credentials::connect(&sections)?;
            }
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
        Command::Tenant(cmd) => cli::tenant::run(&open(config).await?, cmd).await,
        Command::Person(cmd) => cli::person::run(&open(config).await?, cmd).await,
        Command::Apikey(cmd) => cli::apikey::run(&open(config).await?.service, cmd).await,
        Command::Client(cmd) => cli::client::run(&open(config).await?, cmd).await,
        Command::Audit(args) => cli::audit::run(&open(config).await?, args).await,
        Command::Outbox(cmd) => {
            // `abandon` is the way out of the key check, so it must not be stopped by it.
            let check = !matches!(cmd, cli::outbox::OutboxCmd::Abandon);
            let key_file = config.outbox_key_file()?;
            let app = open_with(config, check).await?;
            cli::outbox::run(&app.service, &*app.store, &key_file, cmd).await
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
    let sections = credentials::check(&app.config.credentials)?;
    credentials::check_tenants(&*app.store, &sections, &app.config.bootstrap_tenant).await?;
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
    let hashing = app.hasher.clone();
    let extra: ExtraMetrics = Arc::new(move || stats.render() + &hashing.render_metrics());
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
    let retention_task = tokio::spawn(resetd_server::run_retention_worker(
        app.service.clone(),
        app.config.retention.policy(),
        std::time::Duration::from_secs(app.config.retention.interval_secs),
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
    let _ = tokio::join!(mail_task, reset_task, retention_task);
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
