//! The `smsbridge` command line. The only place that uses `anyhow`.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

#[derive(Parser)]
#[command(name = "smsbridge", version, about = "On-premises SMS gateway for OwnID")]
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
    #[arg(long, conflicts_with = "text_file", required_unless_present = "text_file")]
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
    #[arg(long, conflicts_with = "body_file", required_unless_present = "body_file")]
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
    /// The modem to imitate: generic, sim800, ec25 or e3372.
    #[arg(long, default_value = "generic")]
    profile: smsbridge::sim::Profile,
    /// Milliseconds from the PDU to the +CMGS answer (default: the profile's own).
    #[arg(long, value_parser = clap::value_parser!(u64).range(0..=600_000))]
    latency_ms: Option<u64>,
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

fn serve(_args: ServeArgs) -> anyhow::Result<()> {
    anyhow::bail!("serve is not implemented yet")
}

fn pdu_encode(_args: PduEncodeArgs) -> anyhow::Result<()> {
    anyhow::bail!("pdu encode is not implemented yet")
}

fn pdu_decode(_args: PduDecodeArgs) -> anyhow::Result<()> {
    anyhow::bail!("pdu decode is not implemented yet")
}

fn sign(_args: SignArgs) -> anyhow::Result<()> {
    anyhow::bail!("sign is not implemented yet")
}

fn send(_args: SendArgs) -> anyhow::Result<()> {
    anyhow::bail!("send is not implemented yet")
}

fn probe(_args: ProbeArgs) -> anyhow::Result<()> {
    anyhow::bail!("probe is not implemented yet")
}

fn simulate(args: SimulateArgs) -> anyhow::Result<()> {
    use anyhow::Context as _;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(run_simulator(args))
}

/// Serves the simulated modem until Ctrl-C or SIGTERM, printing a line per message it
/// accepts (masked number, part, message reference; never the text).
async fn run_simulator(args: SimulateArgs) -> anyhow::Result<()> {
    use anyhow::Context as _;
    use smsbridge::sim::{self, SimEvent};
    use tokio::sync::broadcast::error::RecvError;

    let mut config = sim::SimConfig::new(args.profile);
    config.link = args.link.clone();
    if let Some(ms) = args.latency_ms {
        config.modem.send_latency = std::time::Duration::from_millis(ms);
    }
    // Status reports carry real time stamps.
    if let Ok(now) = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH) {
        config.modem.clock_start_unix = now.as_secs();
    }
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .context("cannot listen for SIGTERM")?;
    let handle = sim::spawn(config).await.with_context(|| match &args.link {
        Some(link) => format!(
            "cannot start the simulated modem with link {}",
            link.display()
        ),
        None => "cannot start the simulated modem".to_string(),
    })?;
    let mut events = handle.events();
    let tty = handle.tty_path().unwrap_or_else(|| handle.path());
    println!("simulated {} modem on {}", args.profile, tty.display());
    if let Some(link) = &args.link {
        println!("link {} -> {}", link.display(), tty.display());
    }
    loop {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => break,
            _ = terminate.recv() => break,
            event = events.recv() => match event {
                Ok(SimEvent::Received(sms)) => {
                    let (part, total) = sms.concat.map_or((1, 1), |c| (c.seq, c.total));
                    println!(
                        "received SMS to {}: part {part}/{total}, MR {}",
                        smsbridge::mask::phone(&sms.destination),
                        sms.mr
                    );
                }
                Ok(SimEvent::Reset) => println!("modem reset"),
                Ok(SimEvent::Unplugged) => println!("unplugged"),
                Ok(SimEvent::Replugged { tty }) => println!("plugged in on {}", tty.display()),
                Err(RecvError::Lagged(missed)) => eprintln!("({missed} events not shown)"),
                Err(RecvError::Closed) => break,
            },
        }
    }
    handle.shutdown().await;
    Ok(())
}
