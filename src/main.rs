//! The `hearth` binary: parse the command line, load and validate config, run a subcommand.

use clap::Parser;
use hearth::cli::{
    AgentArgs, Cli, Command, ControlArgs, ProcessArgs, RouterArgs, RuntimesCommand, ServeArgs,
};
use hearth::config::Config;
use std::process::ExitCode;

fn main() -> ExitCode {
    // The sandbox helper must run before any thread exists (it forks into namespaces).
    if std::env::args().nth(1).as_deref() == Some("sandbox-init") {
        hearth::sandbox::sandbox_init_main();
    }
    let cli = Cli::parse();
    match run(cli) {
        Ok(code) => ExitCode::from(code as u8),
        Err(e) => {
            eprintln!("hearth: {e:#}");
            ExitCode::from(1)
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<i32> {
    match cli.command {
        Command::Serve(args) => serve(args),
        Command::Agent(args) => agent(args),
        Command::Control(args) => control(args),
        Command::Router(args) => router(args),
        Command::CheckConfig { path } => {
            Config::load(&path)?;
            println!("{}: ok", path.display());
            Ok(0)
        }
        Command::Runtimes {
            command: RuntimesCommand::List,
        } => {
            hearth::runtimes::SUPPORTED
                .iter()
                .for_each(|r| println!("{r}"));
            Ok(0)
        }
        Command::Runtimes {
            command: RuntimesCommand::Install { name, config },
        } => {
            let cfg = load_config(config.as_deref())?;
            init_tracing(&cfg.log);
            hearth::runtimes::ensure(&cfg.runtimes.dir, &cfg.runtimes.python, &name)?;
            println!(
                "{name}: ready in {}",
                cfg.runtimes.dir.join(&name).display()
            );
            Ok(0)
        }
        Command::Loadgen { command } => hearth::loadgen::run(command),
        Command::Schedule { command } => hearth::cli::schedule::run(command),
        client => tokio::runtime::Runtime::new()?.block_on(hearth::cli::run_client(client)),
    }
}

/// Defaults, then the config file, then `HEARTH_*` variables.
fn load_config(path: Option<&std::path::Path>) -> anyhow::Result<Config> {
    let mut cfg = match path {
        Some(p) => Config::load(p)?,
        None => Config::default(),
    };
    cfg.apply_env(|k| std::env::var(k).ok())?;
    Ok(cfg)
}

/// The config of a long-running component: defaults, the file, `HEARTH_*`, then the flags every
/// component has (data dir, admin address) and its own (`apply`); validated, logging started.
fn component_config(
    process: &ProcessArgs,
    apply: impl FnOnce(&mut Config),
) -> anyhow::Result<Config> {
    let mut cfg = load_config(process.config.as_deref())?;
    if let Some(d) = &process.data_dir {
        cfg.data_dir = d.clone();
    }
    if let Some(l) = process.admin_listen {
        cfg.admin_listen = l;
    }
    apply(&mut cfg);
    cfg.validate()?;
    init_tracing(&cfg.log);
    Ok(cfg)
}

/// Runs a component on a multi-threaded runtime until it returns (after SIGTERM or Ctrl-C).
fn block_on(
    component: impl std::future::Future<Output = anyhow::Result<()>>,
) -> anyhow::Result<i32> {
    tokio::runtime::Runtime::new()?.block_on(component)?;
    Ok(0)
}

fn serve(args: ServeArgs) -> anyhow::Result<i32> {
    let cfg = component_config(&args.process, |cfg| {
        if let Some(l) = args.listen {
            cfg.listen = l;
        }
        args.tls.apply(cfg);
        if !args.agents.is_empty() {
            cfg.agents = args.agents;
        }
    })?;
    block_on(hearth::serve::serve(
        cfg,
        args.process.ready_file,
        shutdown_signal(),
    ))
}

fn agent(args: AgentArgs) -> anyhow::Result<i32> {
    let cfg = component_config(&args.process, |cfg| {
        if let Some(l) = args.listen {
            cfg.agent.listen = l;
        }
        if let Some(u) = args.code_url {
            cfg.agent.code_url = u;
        }
    })?;
    block_on(hearth::agent::server::run(
        cfg,
        args.process.ready_file,
        shutdown_signal(),
    ))
}

fn control(args: ControlArgs) -> anyhow::Result<i32> {
    let cfg = component_config(&args.process, |cfg| {
        if let Some(l) = args.listen {
            cfg.control.listen = l;
        }
        if !args.agents.is_empty() {
            cfg.agents = args.agents;
        }
        if let Some(u) = args.router_url {
            cfg.control.router_url = u;
        }
    })?;
    block_on(hearth::control::server::run(
        cfg,
        args.process.ready_file,
        shutdown_signal(),
    ))
}

fn router(args: RouterArgs) -> anyhow::Result<i32> {
    let cfg = component_config(&args.process, |cfg| {
        if let Some(l) = args.listen {
            cfg.listen = l;
        }
        if !args.agents.is_empty() {
            cfg.agents = args.agents;
        }
        if let Some(u) = args.control_url {
            cfg.router.control_url = u;
        }
        args.tls.apply(cfg);
    })?;
    block_on(hearth::router::server::run(
        cfg,
        args.process.ready_file,
        shutdown_signal(),
    ))
}

fn init_tracing(filter: &str) {
    let filter = tracing_subscriber::EnvFilter::try_new(filter).unwrap_or_else(|_| "info".into());
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
}

async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        return std::future::pending().await;
    };
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
}
