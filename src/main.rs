//! The `smsbridge` command line. The only place that uses `anyhow`.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "smsbridge",
    version,
    about = "On-premises SMS gateway for OwnID"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the service.
    Serve(ServeArgs),
    /// Encode or decode SMS PDUs.
    #[command(subcommand)]
    Pdu(PduCommand),
    /// Print OwnID signature headers for a request body, for testing with curl.
    Sign(SignArgs),
    /// Send one SMS through a modem directly.
    Send(SendArgs),
    /// Describe the modem on a serial port.
    Probe(ProbeArgs),
    /// Run the simulated modem on a pseudo-terminal.
    Simulate(SimulateArgs),
}

#[derive(Args)]
struct ServeArgs {
    /// The configuration file.
    #[arg(long, default_value = "/etc/smsbridge/smsbridge.toml")]
    config: PathBuf,
    /// Attach built-in simulated modems instead of hardware.
    #[arg(long)]
    simulator: bool,
}

#[derive(Subcommand)]
enum PduCommand {
    /// Print one PDU per line, hex, SMSC field first, in part order.
    Encode(PduEncodeArgs),
    /// Print the decoded fields of a PDU as JSON.
    Decode(PduDecodeArgs),
}

#[derive(Args)]
struct PduEncodeArgs {
    /// The destination, in E.164 form (+ and 2 to 15 digits).
    #[arg(long)]
    to: String,
    /// The message text.
    #[arg(
        long,
        conflicts_with = "text_file",
        required_unless_present = "text_file"
    )]
    text: Option<String>,
    /// A file holding the message text (UTF-8).
    #[arg(long)]
    text_file: Option<PathBuf>,
}

#[derive(Args)]
struct PduDecodeArgs {
    /// The PDU in hex, SMSC field first.
    hex: String,
}

#[derive(Args)]
struct SignArgs {
    /// A file holding the base64 shared secret.
    #[arg(long)]
    secret_file: PathBuf,
    /// The timestamp in Unix epoch milliseconds (default: now).
    #[arg(long)]
    timestamp: Option<String>,
    /// The request body.
    #[arg(
        long,
        conflicts_with = "body_file",
        required_unless_present = "body_file"
    )]
    body: Option<String>,
    /// A file holding the request body.
    #[arg(long)]
    body_file: Option<PathBuf>,
}

#[derive(Args)]
struct PortArgs {
    /// The modem's serial port.
    #[arg(long)]
    port: PathBuf,
    /// The serial speed.
    #[arg(long, default_value_t = 115_200)]
    baud: u32,
}

#[derive(Args)]
struct SendArgs {
    #[command(flatten)]
    port: PortArgs,
    /// The destination, in E.164 form.
    #[arg(long)]
    to: String,
    /// The message text.
    #[arg(long)]
    text: String,
}

#[derive(Args)]
struct ProbeArgs {
    #[command(flatten)]
    port: PortArgs,
}

#[derive(Args)]
struct SimulateArgs {
    /// Make a symlink to the pseudo-terminal at this path.
    #[arg(long)]
    link: Option<PathBuf>,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Serve(args) => serve(args),
        Command::Pdu(PduCommand::Encode(args)) => pdu_encode(args),
        Command::Pdu(PduCommand::Decode(args)) => pdu_decode(args),
        Command::Sign(args) => sign(args),
        Command::Send(args) => send(args),
        Command::Probe(args) => probe(args),
        Command::Simulate(args) => simulate(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("smsbridge: {err:#}");
            ExitCode::FAILURE
        }
    }
}

fn serve(args: ServeArgs) -> anyhow::Result<()> {
    smsbridge::logging::init();
    let config = smsbridge::config::Config::load(&args.config)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let options = smsbridge::service::StartOptions { simulator: args.simulator };
        let service = smsbridge::service::start(config, options).await?;
        if args.simulator {
            for sim in &service.simulators {
                eprintln!("simulated modem on {}", sim.path().display());
            }
        }
        eprintln!(
            "smsbridge: OwnID endpoint on http://{}, status on http://{}/",
            service.public_addr, service.admin_addr
        );
        notify_systemd(&[sd_notify::NotifyState::Ready]);
        run_until_signal(&service).await?;
        notify_systemd(&[sd_notify::NotifyState::Stopping]);
        tracing::info!("stopping: finishing the sends under way");
        service.stop().await;
        Ok(())
    })
}

/// Waits for SIGTERM or SIGINT, meanwhile keeping systemd's status line current and
/// feeding its watchdog only while the service really works.
async fn run_until_signal(service: &smsbridge::service::Service) -> anyhow::Result<()> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    let mut watchdog_usec = 0;
    let watchdog = sd_notify::watchdog_enabled(false, &mut watchdog_usec);
    // Feed the watchdog at half its interval; refresh the status line as often.
    let period = if watchdog {
        std::time::Duration::from_micros(watchdog_usec / 2)
    } else {
        std::time::Duration::from_secs(10)
    };
    let mut tick = tokio::time::interval(period);
    let mut last_status = String::new();
    loop {
        tokio::select! {
            _ = term.recv() => return Ok(()),
            _ = int.recv() => return Ok(()),
            _ = tick.tick() => {
                let status = service.status_line();
                if status != last_status {
                    notify_systemd(&[sd_notify::NotifyState::Status(&status)]);
                    last_status = status;
                }
                if watchdog {
                    if service.healthy().await {
                        notify_systemd(&[sd_notify::NotifyState::Watchdog]);
                    } else {
                        tracing::error!("health check failed: not feeding the watchdog");
                    }
                }
            }
        }
    }
}

/// Tells systemd (when started by it with `Type=notify`); elsewhere does nothing.
fn notify_systemd(state: &[sd_notify::NotifyState]) {
    if let Err(error) = sd_notify::notify(false, state) {
        tracing::warn!(%error, "could not notify systemd");
    }
}

fn pdu_encode(_args: PduEncodeArgs) -> anyhow::Result<()> {
    anyhow::bail!("pdu encode is not implemented yet")
}

fn pdu_decode(_args: PduDecodeArgs) -> anyhow::Result<()> {
    anyhow::bail!("pdu decode is not implemented yet")
}

fn sign(args: SignArgs) -> anyhow::Result<()> {
    use anyhow::Context;
    use smsbridge::ownid;

    let secret_path = args.secret_file.display();
    let text = std::fs::read_to_string(&args.secret_file)
        .with_context(|| format!("cannot read the secret file {secret_path}"))?;
    let secret = ownid::SharedSecret::from_base64(&text)
        .with_context(|| format!("the secret file {secret_path} is unusable"))?;
    let timestamp = match args.timestamp {
        Some(timestamp) => {
            if ownid::parse_timestamp(&timestamp).is_none() {
                anyhow::bail!(
                    "--timestamp {timestamp:?} is not Unix time in milliseconds (decimal digits)"
                );
            }
            timestamp
        }
        None => unix_now_ms()?.to_string(),
    };
    // The body is signed byte for byte as given: a file is read raw, its final newline
    // (if any) included, because OwnID signs exactly the bytes it sends.
    let body = match (args.body, args.body_file) {
        (Some(body), _) => body.into_bytes(),
        (None, Some(path)) => std::fs::read(&path)
            .with_context(|| format!("cannot read the body file {}", path.display()))?,
        (None, None) => anyhow::bail!("give the request body with --body or --body-file"),
    };
    let signature = ownid::sign(&secret, &body, &timestamp);
    println!("{}: {timestamp}", ownid::TIMESTAMP_HEADER);
    println!("{}: {signature}", ownid::SIGNATURE_HEADER);
    Ok(())
}

/// The wall clock in Unix epoch milliseconds, as OwnID's timestamps are.
fn unix_now_ms() -> anyhow::Result<u128> {
    let since_epoch = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_err(|_| anyhow::anyhow!("the system clock is set before 1970"))?;
    Ok(since_epoch.as_millis())
}

fn send(_args: SendArgs) -> anyhow::Result<()> {
    anyhow::bail!("send is not implemented yet")
}

fn probe(_args: ProbeArgs) -> anyhow::Result<()> {
    anyhow::bail!("probe is not implemented yet")
}

fn simulate(_args: SimulateArgs) -> anyhow::Result<()> {
    anyhow::bail!("simulate is not implemented yet")
}
