//! A pengine-built Ballista scheduler and executor: Ballista's own servers, given pengine's codec
//! (a stock cluster cannot decode pengine's nodes) and pengine's object stores (credentials from
//! the process's own environment, never from the job).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use ballista_core::RuntimeProducer;
use ballista_core::config::TaskSchedulingPolicy;
use ballista_core::extension::{EndpointOverrideFn, SessionConfigExt};
use ballista_core::serde::protobuf::scheduler_grpc_server::SchedulerGrpcServer;
use ballista_executor::executor_process::{ExecutorProcessConfig, start_executor_process};
use ballista_scheduler::cluster::BallistaCluster;
use ballista_scheduler::config::SchedulerConfig;
use ballista_scheduler::scheduler_process::create_scheduler;
use datafusion::execution::runtime_env::RuntimeEnvBuilder;
use datafusion::prelude::SessionConfig;
use datafusion_proto::protobuf::{LogicalPlanNode, PhysicalPlanNode};
use tokio::net::TcpListener;
use tonic::transport::Endpoint;

use super::MAX_MESSAGE_BYTES;
use super::codec::PengineCodec;

/// How often an executor tells the scheduler it is alive, and how long the scheduler waits
/// without a word before it takes the executor for lost and runs its tasks elsewhere (Ballista's
/// defaults, 60 s and 180 s, leave a killed executor's tasks waiting for minutes).
const HEARTBEAT_SECONDS: u64 = 5;
const EXECUTOR_TIMEOUT_SECONDS: u64 = 30;
use crate::error::{Error, Result};
use crate::store::StoreRegistry;

fn ballista(what: &str, e: impl std::fmt::Display) -> Error {
    Error::Cluster(format!("{what}: {e}"))
}

/// A scheduler listening on `listener` (bind port 0 for a free one). Runs until the process ends.
pub async fn scheduler(listener: TcpListener) -> Result<()> {
    let address = listener
        .local_addr()
        .map_err(|e| Error::io("reading the scheduler's address", e))?;
    let stores = Arc::new(StoreRegistry::new());
    let config = SchedulerConfig {
        bind_host: address.ip().to_string(),
        bind_port: address.port(),
        external_host: address.ip().to_string(),
        // Executors ask for work; nothing needs to reach them but the scheduler's answers.
        scheduling_policy: TaskSchedulingPolicy::PullStaged,
        override_physical_codec: Some(Arc::new(PengineCodec::new(Arc::clone(&stores)))),
        executor_timeout_seconds: EXECUTOR_TIMEOUT_SECONDS,
        expire_dead_executor_interval_seconds: HEARTBEAT_SECONDS,
        ..SchedulerConfig::default()
    };
    let cluster = BallistaCluster::new_from_config(&config)
        .await
        .map_err(|e| ballista("starting the scheduler", e))?;
    let finished_jobs = cluster.job_state();
    let server = create_scheduler::<LogicalPlanNode, PhysicalPlanNode>(cluster, Arc::new(config))
        .await
        .map_err(|e| ballista("starting the scheduler", e))?;
    // Ballista's gRPC service (as Ballista's own server mounts it; no REST API, no Flight
    // proxy: clients read results from the executors), and pengine's job progress beside it.
    let grpc = SchedulerGrpcServer::new(server.clone())
        .max_encoding_message_size(MAX_MESSAGE_BYTES)
        .max_decoding_message_size(MAX_MESSAGE_BYTES);
    let mut routes = tonic::service::RoutesBuilder::default();
    routes.add_service(grpc);
    let app = routes
        .routes()
        .into_axum_router()
        .merge(super::progress::routes(server, finished_jobs));
    tracing::info!("pengine cluster scheduler listening on {address}");
    // The executors' addresses are read from the connection (ConnectInfo), as Ballista does.
    axum::serve(
        listener,
        app.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .await
    .map_err(|e| Error::io("the scheduler stopped", e))
}

/// How an executor joins a cluster.
#[derive(Debug, Clone)]
pub struct ExecutorOptions {
    pub scheduler: SocketAddr,
    /// The address to listen on (Arrow Flight: results and shuffle data); port 0 picks free
    /// ports. The executor's gRPC service (the scheduler's calls) listens on the next port.
    pub bind: SocketAddr,
    /// The name others reach it by (default: the bind address, or this host's name when that is
    /// 0.0.0.0).
    pub external_host: Option<String>,
    /// Tasks run at once (0: one per core).
    pub slots: usize,
    /// Where shuffle files and spills go (default: a new temporary folder, removed when the
    /// executor stops on a signal).
    pub work_dir: Option<std::path::PathBuf>,
    /// Memory for the tasks' joins, sorts and aggregations, shared by its slots (Some(0): no
    /// limit; None: Ballista's share of the host's memory).
    pub memory_limit: Option<u64>,
}

/// A port nobody listens on now, on `host`'s interface.
fn free_port(host: std::net::IpAddr) -> Result<u16> {
    let socket = std::net::TcpListener::bind((host, 0))
        .map_err(|e| Error::io(format!("finding a free port on {host}"), e))?;
    socket
        .local_addr()
        .map(|a| a.port())
        .map_err(|e| Error::io("finding a free port", e))
}

/// An executor serving `options.scheduler`'s tasks. Runs until the process ends.
pub async fn executor(options: ExecutorOptions) -> Result<()> {
    let host = options.bind.ip();
    let (port, grpc_port) = match options.bind.port() {
        0 => (free_port(host)?, free_port(host)?),
        port => (
            port,
            port.checked_add(1).ok_or_else(|| {
                Error::Usage(format!(
                    "--bind {}: the next port is the executor's gRPC port",
                    options.bind
                ))
            })?,
        ),
    };
    let external_host = match &options.external_host {
        Some(name) => name.clone(),
        None if host.is_unspecified() => hostname(),
        None => host.to_string(),
    };
    let stores = Arc::new(StoreRegistry::new());
    // A folder made here is removed when the executor stops (`made_here`, dropped on every other
    // return too); one given is the user's.
    let (work_dir, made_here) = match &options.work_dir {
        Some(dir) => (dir.clone(), None),
        None => {
            let made = tempfile::Builder::new()
                .prefix("pengine-executor-")
                .tempdir()
                .map_err(|e| Error::io("creating the executor's work folder", e))?;
            (made.path().to_path_buf(), Some(made))
        }
    };
    let spill_dir = work_dir.clone();
    let registry = Arc::clone(&stores);
    let runtime: RuntimeProducer = Arc::new(move |_config| {
        RuntimeEnvBuilder::new()
            .with_object_store_registry(Arc::clone(&registry) as _)
            .with_temp_file_path(spill_dir.clone())
            .build_arc()
    });
    let config = ExecutorProcessConfig {
        bind_host: host.to_string(),
        external_host: Some(external_host),
        port,
        grpc_port,
        scheduler_host: options.scheduler.ip().to_string(),
        scheduler_port: options.scheduler.port(),
        vcores: options.slots,
        task_scheduling_policy: TaskSchedulingPolicy::PullStaged,
        work_dir: Some(work_dir.to_string_lossy().into_owned()),
        print_thread_info: false,
        executor_heartbeat_interval_seconds: HEARTBEAT_SECONDS,
        memory_pool_size: options.memory_limit,
        // A task's summary carries its insight counters.
        grpc_max_encoding_message_size: MAX_MESSAGE_BYTES as u32,
        override_runtime_producer: Some(runtime),
        override_config_producer: Some(Arc::new(|| {
            SessionConfig::new_with_ballista()
                .with_ballista_override_create_grpc_client_endpoint(peer_liveness())
        })),
        override_physical_codec: Some(Arc::new(PengineCodec::new(stores))),
        ..ExecutorProcessConfig::default()
    };
    tracing::info!(
        "pengine cluster executor on {host}:{port} (work folder {}), scheduler {}",
        work_dir.display(),
        options.scheduler
    );
    // A test stops here to send the stop signal before Ballista listens for it.
    crate::failpoint::hit("executor-starting");
    let mut running = std::pin::pin!(start_executor_process(Arc::new(config)));
    let stopped = tokio::select! {
        stopped = &mut running => stopped,
        // Ballista stops on the same signal, unless it came before Ballista listened for it
        // (while the executor was starting): then it is stopped here, after a grace period.
        () = crate::interrupt::wait() => {
            tokio::time::timeout(Duration::from_secs(STOP_GRACE_SECONDS), &mut running)
                .await
                .unwrap_or(Ok(()))
        }
    };
    if let Some(made) = made_here
        && let Err(e) = made.close()
    {
        tracing::warn!("removing the work folder {}: {e}", work_dir.display());
    }
    stopped.map_err(|e| ballista("the executor stopped", e))
}

/// How long an executor asked to stop is given to stop itself (Ballista tells the scheduler it
/// is leaving) before it is stopped.
const STOP_GRACE_SECONDS: u64 = 10;

/// How long a peer may go without answering a ping before a connection to it fails. Ballista's
/// shuffle reads set no keep-alive: a read from an executor that stalls (a paused machine, not a
/// dead one, whose kernel still holds the connection) would wait for ever, and so would the job.
const PEER_PING_SECONDS: u64 = 10;

/// Connections to executors fail once a peer stops answering pings: the read's task then fails
/// and Ballista runs it again (once the scheduler takes the stalled executor for lost, its
/// output is computed again elsewhere).
pub(super) fn peer_liveness() -> EndpointOverrideFn {
    Arc::new(|endpoint: Endpoint| {
        Ok(endpoint
            .http2_keep_alive_interval(Duration::from_secs(PEER_PING_SECONDS))
            .keep_alive_timeout(Duration::from_secs(PEER_PING_SECONDS))
            .keep_alive_while_idle(true))
    })
}

/// This host's name, as other hosts may know it.
fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|name| name.trim().to_string())
        .ok()
        .filter(|name| !name.is_empty())
        .unwrap_or_else(|| "localhost".to_string())
}
