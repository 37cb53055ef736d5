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
    /// Show one message (state, parts, and which box and modem sent it), from the running
    /// service's admin listener.
    Message(MessageArgs),
}

#[derive(Args)]
struct MessageArgs {
    /// The message's id (the `id` in the status page, `/api/status` and the log's
    /// `message_id`).
    id: i64,
    /// The configuration file: the admin listener is `[http] admin_listen`.
    #[arg(long, default_value = "/etc/smsbridge/smsbridge.toml")]
    config: PathBuf,
    /// The admin listener's address (HOST:PORT), instead of the configuration's.
    #[arg(long)]
    admin: Option<String>,
    /// Print the JSON as the admin API answers it.
    #[arg(long)]
    json: bool,
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
    /// Whose scheme: ownid (default), supabase, standard-webhooks, zitadel, json (bearer
    /// token, or Basic with --user), twilio (Basic with --user ACCOUNT_SID).
    #[arg(long, default_value = "ownid")]
    kind: String,
    /// A file holding the secret: OwnID's base64 shared secret; the Standard Webhooks
    /// secret (`v1,whsec_…` or `whsec_…`); Zitadel's signing key; the bearer token, Basic
    /// password or Twilio auth token.
    #[arg(long)]
    secret_file: PathBuf,
    /// The timestamp: Unix milliseconds for ownid, Unix seconds for the other signed kinds
    /// (default: now).
    #[arg(long)]
    timestamp: Option<String>,
    /// The `webhook-id` for supabase and standard-webhooks (default: a random msg_ id).
    #[arg(long)]
    id: Option<String>,
    /// The Basic user: json's basic_user, or twilio's Account SID.
    #[arg(long)]
    user: Option<String>,
    /// The request body.
    #[arg(long, conflicts_with = "body_file")]
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
    /// The modem to imitate: generic, sim800, ec25, e3372, sim7080, sim7600, sim7670 or lara.
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
        Command::Message(args) => message(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) if is_configuration_error(&err) => {
            eprintln!("smsbridge: {err:#}");
            ExitCode::from(EXIT_CONFIG)
        }
        Err(err) => {
            eprintln!("smsbridge: {err:#}");
            ExitCode::FAILURE
        }
    }
}

/// sysexits(3)'s EX_CONFIG: the unit's `RestartPreventExitStatus=` stops restarts on it,
/// since restarting cannot fix a configuration.
const EXIT_CONFIG: u8 = 78;

/// Whether `serve` failed because of what the operator configured (the file, the secret,
/// the SMS options, a damaged outbox or a second instance), not a passing fault.
fn is_configuration_error(err: &anyhow::Error) -> bool {
    use smsbridge::service::StartError;
    if err
        .downcast_ref::<smsbridge::config::ConfigError>()
        .is_some()
    {
        return true;
    }
    err.downcast_ref::<StartError>()
        .is_some_and(StartError::is_final)
}

fn serve(args: ServeArgs) -> anyhow::Result<()> {
    smsbridge::logging::init();
    let result = serve_logged(args);
    if let Err(err) = &result {
        // At error priority in the journal (stderr alone would be info there).
        tracing::error!("cannot start: {err:#}");
    }
    result
}

fn serve_logged(args: ServeArgs) -> anyhow::Result<()> {
    let config = smsbridge::config::Config::load(&args.config)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let options = smsbridge::service::StartOptions {
            simulator: args.simulator,
            ..Default::default()
        };
        let service = smsbridge::service::start(config, options).await?;
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
    // SIGHUP's default would kill the service; nothing is reloaded yet, so say so.
    let mut hup = signal(SignalKind::hangup())?;
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
            _ = hup.recv() => {
                tracing::warn!("SIGHUP ignored: the configuration is not reloaded; apply changes with systemctl restart smsbridge");
            }
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

fn pdu_encode(args: PduEncodeArgs) -> anyhow::Result<()> {
    use anyhow::Context as _;
    use std::io::Write as _;

    let to = smsbridge::sms::PhoneNumber::parse(&args.to).context("invalid --to")?;
    let text = match (args.text, args.text_file) {
        (Some(text), _) => text,
        (None, Some(path)) => read_text_file(&path)?,
        (None, None) => anyhow::bail!("give the text with --text or --text-file"),
    };
    // The concatenation reference only has to differ between messages to the same
    // recipient; a random one does for a command-line tool.
    let reference: u16 = rand::random();
    let options = smsbridge::sms::SubmitOptions::default();
    let parts = smsbridge::sms::encode_submit(&to, &text, reference, &options)
        .context("cannot encode the message")?;
    let mut out = std::io::stdout().lock();
    for part in parts {
        writeln!(out, "{}", part.hex())?;
    }
    Ok(())
}

/// Reads a message text from a file. One trailing line ending is dropped, since editors
/// add it and nobody means to send it.
fn read_text_file(path: &std::path::Path) -> anyhow::Result<String> {
    use anyhow::Context as _;

    let mut text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    if text.ends_with('\n') {
        text.pop();
        if text.ends_with('\r') {
            text.pop();
        }
    }
    Ok(text)
}

fn pdu_decode(args: PduDecodeArgs) -> anyhow::Result<()> {
    use anyhow::Context as _;

    let bytes = smsbridge::sms::decode_hex(&args.hex).context("invalid hex")?;
    let pdu = smsbridge::sms::decode_pdu(&bytes).context("cannot decode the PDU")?;
    println!("{}", serde_json::to_string_pretty(&pdu_json(&pdu))?);
    Ok(())
}

/// The JSON form of a decoded PDU, every field named as in TS 23.040 where it has a name.
fn pdu_json(pdu: &smsbridge::sms::Pdu) -> serde_json::Value {
    use serde_json::json;
    use smsbridge::sms::{Pdu, ValidityPeriod, relative_validity_duration};

    let mut value = match pdu {
        Pdu::Submit(s) => json!({
            "type": "submit",
            "smsc": s.smsc.as_ref().map(address_json),
            "reject_duplicates": s.reject_duplicates,
            "status_report_request": s.status_report_request,
            "reply_path": s.reply_path,
            "message_reference": s.message_reference,
            "destination": address_json(&s.destination),
            "protocol_identifier": s.protocol_identifier,
            "dcs": dcs_json(&s.dcs),
            "validity": match s.validity {
                ValidityPeriod::None => json!(null),
                ValidityPeriod::Relative(octet) => json!({
                    "format": "relative",
                    "octet": octet,
                    "seconds": relative_validity_duration(octet).as_secs(),
                }),
                ValidityPeriod::Enhanced(octets) => json!({
                    "format": "enhanced",
                    "hex": smsbridge::sms::to_hex(&octets),
                }),
                ValidityPeriod::Absolute(until) => json!({
                    "format": "absolute",
                    "until": until.to_string(),
                }),
            },
        }),
        Pdu::Deliver(d) => json!({
            "type": "deliver",
            "smsc": d.smsc.as_ref().map(address_json),
            "more_messages_waiting": d.more_messages_waiting,
            "loop_prevention": d.loop_prevention,
            "status_report_indication": d.status_report_indication,
            "reply_path": d.reply_path,
            "originator": address_json(&d.originator),
            "protocol_identifier": d.protocol_identifier,
            "dcs": dcs_json(&d.dcs),
            "sc_timestamp": d.sc_timestamp.to_string(),
        }),
        Pdu::StatusReport(r) => json!({
            "type": "status_report",
            "smsc": r.smsc.as_ref().map(address_json),
            "more_messages_waiting": r.more_messages_waiting,
            "loop_prevention": r.loop_prevention,
            "about_command": r.about_command,
            "message_reference": r.message_reference,
            "recipient": address_json(&r.recipient),
            "sc_timestamp": r.sc_timestamp.to_string(),
            "discharge_time": r.discharge_time.to_string(),
            "status": {
                "code": r.status.code(),
                "category": r.status.category().name(),
                "description": r.status.describe(),
            },
            "protocol_identifier": r.protocol_identifier,
            "dcs": r.dcs.as_ref().map(dcs_json),
        }),
    };
    value["udh"] = pdu.udh().map_or(json!(null), |udh| {
        json!(udh.elements.iter().map(element_json).collect::<Vec<_>>())
    });
    if let Some(user_data) = pdu.user_data() {
        use smsbridge::sms::UserData;
        match user_data {
            UserData::Text(text) => value["text"] = json!(text),
            UserData::Binary(bytes) => value["binary_hex"] = json!(smsbridge::sms::to_hex(bytes)),
            UserData::Compressed(bytes) => {
                value["compressed_hex"] = json!(smsbridge::sms::to_hex(bytes))
            }
        }
    }
    value
}

fn address_json(address: &smsbridge::sms::Address) -> serde_json::Value {
    serde_json::json!({
        "type_of_number": address.type_of_number.name(),
        "numbering_plan": address.numbering_plan,
        "value": address.value,
    })
}

fn dcs_json(dcs: &smsbridge::sms::Dcs) -> serde_json::Value {
    use serde_json::json;
    use smsbridge::sms::DcsGroup;

    let group = match dcs.group {
        DcsGroup::General {
            auto_delete,
            compressed,
            ..
        } => json!({
            "group": "general",
            "auto_delete": auto_delete,
            "compressed": compressed,
        }),
        DcsGroup::MessageWaiting {
            store,
            active,
            indication,
            ..
        } => json!({
            "group": "message_waiting",
            "store": store,
            "active": active,
            "indication": indication.name(),
        }),
        DcsGroup::DataClass { .. } => json!({ "group": "data_class" }),
        DcsGroup::Reserved => json!({ "group": "reserved" }),
    };
    let mut value = json!({
        "octet": dcs.octet,
        "alphabet": dcs.alphabet().name(),
        "class": dcs.class().map(|class| class.number()),
    });
    if let (Some(out), Some(extra)) = (value.as_object_mut(), group.as_object()) {
        out.extend(extra.clone());
    }
    value
}

fn element_json(element: &smsbridge::sms::InformationElement) -> serde_json::Value {
    use serde_json::json;
    use smsbridge::sms::{InformationElement, NationalLanguage};

    let language = |id: &u8| NationalLanguage::from_id(*id).map(NationalLanguage::name);
    match element {
        InformationElement::Concatenation(c) => json!({
            "element": "concatenation",
            "reference": c.reference,
            "reference_bits": if c.wide_reference { 16 } else { 8 },
            "total": c.total,
            "sequence": c.sequence,
        }),
        InformationElement::ApplicationPorts(p) => json!({
            "element": "application_ports",
            "destination": p.destination,
            "originator": p.originator,
            "port_bits": if p.wide { 16 } else { 8 },
        }),
        InformationElement::SingleShift(id) => json!({
            "element": "national_language_single_shift",
            "language_id": id,
            "language": language(id),
        }),
        InformationElement::LockingShift(id) => json!({
            "element": "national_language_locking_shift",
            "language_id": id,
            "language": language(id),
        }),
        InformationElement::Other { iei, data } => json!({
            "element": "other",
            "iei": iei,
            "hex": smsbridge::sms::to_hex(data),
        }),
    }
}

fn sign(args: SignArgs) -> anyhow::Result<()> {
    use anyhow::Context;
    use smsbridge::ownid;

    if args.kind != "ownid" {
        return sign_endpoint(args);
    }

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

/// `sign --kind …` for the `[[endpoint]]` kinds: the headers exactly as each platform sends
/// them, one `name: value` line each.
fn sign_endpoint(args: SignArgs) -> anyhow::Result<()> {
    use anyhow::Context;
    use smsbridge::endpoint::verify::{self, Keys};

    let secret_path = args.secret_file.display();
    let text = std::fs::read_to_string(&args.secret_file)
        .with_context(|| format!("cannot read the secret file {secret_path}"))?;
    let body = || -> anyhow::Result<Vec<u8>> {
        // Signed byte for byte as given, like OwnID's.
        match (&args.body, &args.body_file) {
            (Some(body), _) => Ok(body.clone().into_bytes()),
            (None, Some(path)) => std::fs::read(path)
                .with_context(|| format!("cannot read the body file {}", path.display())),
            (None, None) => anyhow::bail!("give the request body with --body or --body-file"),
        }
    };
    let timestamp = || -> anyhow::Result<String> {
        match &args.timestamp {
            Some(ts) if ownid_digits(ts) => Ok(ts.clone()),
            Some(ts) => {
                anyhow::bail!("--timestamp {ts:?} is not Unix time in seconds (decimal digits)")
            }
            None => Ok((unix_now_ms()? / 1000).to_string()),
        }
    };
    let token = || -> anyhow::Result<String> {
        let line = text.trim();
        if line.is_empty() {
            anyhow::bail!("the secret file {secret_path} is empty");
        }
        Ok(line.to_owned())
    };
    match args.kind.as_str() {
        "supabase" | "standard-webhooks" => {
            let keys = Keys::standard_webhooks(&text)
                .map_err(|e| anyhow::anyhow!("the secret file {secret_path} is unusable: {e}"))?;
            let id = args
                .id
                .clone()
                .unwrap_or_else(|| format!("msg_{:032x}", rand::random::<u128>()));
            let (ts, body) = (timestamp()?, body()?);
            println!("webhook-id: {id}");
            println!("webhook-timestamp: {ts}");
            println!(
                "webhook-signature: {}",
                verify::sign_standard_webhooks(&keys, &id, &ts, &body)
            );
        }
        "zitadel" => {
            let keys = Keys::raw_lines(&text)
                .map_err(|e| anyhow::anyhow!("the secret file {secret_path} is unusable: {e}"))?;
            let (ts, body) = (timestamp()?, body()?);
            println!(
                "ZITADEL-Signature: {}",
                verify::sign_zitadel(&keys, &ts, &body)
            );
        }
        "json" => match &args.user {
            Some(user) => println!("Authorization: {}", verify::basic(user, &token()?)),
            None => println!("Authorization: Bearer {}", token()?),
        },
        "twilio" => {
            let Some(sid) = &args.user else {
                anyhow::bail!("--kind twilio needs --user ACCOUNT_SID");
            };
            println!("Authorization: {}", verify::basic(sid, &token()?));
        }
        other => anyhow::bail!(
            "--kind {other:?} is not one of ownid, supabase, standard-webhooks, zitadel, json, twilio"
        ),
    }
    Ok(())
}

fn ownid_digits(text: &str) -> bool {
    smsbridge::ownid::parse_timestamp(text).is_some()
}

/// The wall clock in Unix epoch milliseconds, as OwnID's timestamps are.
fn unix_now_ms() -> anyhow::Result<u128> {
    let since_epoch = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_err(|_| anyhow::anyhow!("the system clock is set before 1970"))?;
    Ok(since_epoch.as_millis())
}

fn send(args: SendArgs) -> anyhow::Result<()> {
    use smsbridge::sms::{PhoneNumber, SubmitOptions, encode_submit};

    let to = PhoneNumber::parse(&args.to).map_err(|e| anyhow::anyhow!("--to: {e}"))?;
    // The concatenation reference only has to differ between messages to the same phone.
    let reference: u16 = rand::random();
    let parts = encode_submit(&to, &args.text, reference, &SubmitOptions::default())
        .map_err(|e| anyhow::anyhow!("--text: {e}"))?;
    let config = cli_modem_config(&args.port);
    let references = modem_runtime()?.block_on(smsbridge::modem::send_message(&config, &parts))?;
    let list: Vec<String> = references.iter().map(u8::to_string).collect();
    let (parts_word, references_word) = if references.len() == 1 {
        ("part", "reference")
    } else {
        ("parts", "references")
    };
    println!(
        "sent {} {parts_word}: message {references_word} {}",
        references.len(),
        list.join(", ")
    );
    Ok(())
}

fn probe(args: ProbeArgs) -> anyhow::Result<()> {
    let config = cli_modem_config(&args.port);
    let report = modem_runtime()?.block_on(smsbridge::modem::probe(&config))?;
    println!("{:<14}{}", "port", args.port.port.display());
    for (label, value) in report.lines() {
        println!("{:<14}{value}", label);
    }
    Ok(())
}

/// The modem configuration of `send` and `probe`: the port from the command line, the
/// default timeouts, no PIN, no IMEI binding, no delivery reports.
fn cli_modem_config(port: &PortArgs) -> smsbridge::modem::ModemConfig {
    smsbridge::modem::ModemConfig {
        name: port.port.display().to_string(),
        port: port.port.clone(),
        baud: port.baud,
        pin: None,
        imei: None,
        status_reports: false,
        smsc_configured: false,
        timeouts: smsbridge::modem::ModemTimeouts::default(),
    }
}

/// A small runtime for the one-shot modem commands; logs go to stderr when `RUST_LOG`
/// asks for them.
fn modem_runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    if std::env::var_os("RUST_LOG").is_some() {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .with_writer(std::io::stderr)
            .try_init();
    }
    Ok(tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?)
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
                Ok(SimEvent::Cancelled) => println!("SMS entry cancelled with ESC"),
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

fn message(args: MessageArgs) -> anyhow::Result<()> {
    use anyhow::Context as _;
    let admin = match args.admin {
        Some(address) => address,
        None => {
            let config = smsbridge::config::Config::load(&args.config)?;
            let mut address = config.http.admin_listen;
            if address.ip().is_unspecified() {
                address.set_ip(std::net::Ipv4Addr::LOCALHOST.into());
            }
            address.to_string()
        }
    };
    let (status, body) = http_get(&admin, &format!("/api/messages/{}", args.id))
        .with_context(|| format!("cannot ask the service's admin listener at {admin}"))?;
    let value: serde_json::Value = serde_json::from_str(&body)
        .with_context(|| format!("the admin listener answered {status} with no JSON"))?;
    if status != 200 {
        let why = value["error"].as_str().unwrap_or("no reason given");
        anyhow::bail!("message {}: {why} (HTTP {status})", args.id);
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(&value)?);
        return Ok(());
    }
    let text = |key: &str| match &value[key] {
        serde_json::Value::Null => "-".to_owned(),
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    let delivery = value["delivery"]["state"]
        .as_str()
        .unwrap_or("-")
        .to_owned();
    for (label, shown) in [
        ("id", text("id")),
        ("state", text("state")),
        ("box", text("node")),
        ("modem", text("modem")),
        ("to", text("to")),
        (
            "parts",
            format!("{} ({} sent)", text("parts"), text("parts_sent")),
        ),
        ("attempts", text("attempts")),
        ("accepted_ms", text("created_at_ms")),
        ("sent_ms", text("sent_at_ms")),
        ("delivery", delivery),
        ("last_error", text("last_error")),
    ] {
        println!("{label:<12}{shown}");
    }
    Ok(())
}

/// A bare HTTP/1.0 GET on the loopback admin listener (no client library for one request):
/// the status code and the body.
fn http_get(address: &str, path: &str) -> anyhow::Result<(u16, String)> {
    use anyhow::Context as _;
    use std::io::{Read as _, Write as _};
    use std::net::ToSocketAddrs as _;
    let target = address
        .to_socket_addrs()
        .with_context(|| format!("{address:?} is not HOST:PORT"))?
        .next()
        .with_context(|| format!("{address:?} names no address"))?;
    let timeout = std::time::Duration::from_secs(10);
    let mut stream = std::net::TcpStream::connect_timeout(&target, timeout)?;
    stream.set_read_timeout(Some(timeout))?;
    stream.set_write_timeout(Some(timeout))?;
    // The admin listener checks Host: against its own addresses.
    write!(
        stream,
        "GET {path} HTTP/1.0\r\nHost: {}\r\nAccept: application/json\r\n\r\n",
        target.ip()
    )?;
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer)?;
    let answer = String::from_utf8_lossy(&answer);
    let (head, body) = answer
        .split_once("\r\n\r\n")
        .context("the answer is not HTTP")?;
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .context("the answer has no status code")?;
    Ok((status, body.to_owned()))
}
