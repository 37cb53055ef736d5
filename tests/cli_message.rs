//! `smsbridge message ID` against a running single box (SQLite): it asks the admin
//! listener (`GET /api/messages/{id}`) and prints the message's state, modem and box.

mod support;

use std::time::Duration;

use smsbridge::sim::profile::Profile;
use smsbridge::sim::pty::SimConfig;
use support::{ServiceProcess, eventually, wait_for_200, write_config};

const WAIT: Duration = Duration::from_secs(30);
const TOKEN: &str = "cli-message-bearer-token";

fn message_cli(args: &[&str]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_smsbridge"))
        .arg("message")
        .args(args)
        .output()
        .expect("run smsbridge message")
}

#[tokio::test]
async fn smsbridge_message_shows_a_message_and_refuses_an_unknown_id() {
    let dir = tempfile::tempdir().unwrap();
    let link = dir.path().join("modem0");
    let mut sim = SimConfig::fast(Profile::Generic);
    sim.link = Some(link.clone());
    let sim = smsbridge::sim::pty::spawn(sim).await.unwrap();
    let token = dir.path().join("token");
    std::fs::write(&token, TOKEN).unwrap();
    let extra = format!(
        "[[endpoint]]\nkind = \"json\"\npath = \"/hooks/app\"\nbearer_token_file = {:?}\nphone_pointer = \"/to\"\ntext_pointer = \"/message\"\n",
        token.display().to_string()
    );
    let (config, public, admin) = write_config(dir.path(), &[link], &extra);
    let client = reqwest::Client::new();
    let _service = ServiceProcess::start(&config);
    wait_for_200(&client, &format!("http://{admin}/readyz"), WAIT).await;

    let response = client
        .post(format!("http://{public}/hooks/app"))
        .bearer_auth(TOKEN)
        .json(&serde_json::json!({ "to": "+447400123456", "message": "Your code is 998877" }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 202);
    let id: String = response.json::<serde_json::Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    eventually(WAIT, "the message at the modem", async || {
        (!sim.received().is_empty()).then_some(())
    })
    .await;
    let config_arg = config.display().to_string();
    let printed = eventually(WAIT, "the message sent", async || {
        let out = message_cli(&["--config", &config_arg, &id]);
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        (out.status.success() && text.lines().any(|l| l == "state       sent")).then_some(text)
    })
    .await;
    assert!(
        printed.lines().any(|l| l == format!("id          {id}")),
        "{printed}"
    );
    assert!(
        printed.lines().any(|l| l == "modem       modem0"),
        "{printed}"
    );
    assert!(
        printed.lines().any(|l| l == "to          +44********56"),
        "{printed}"
    );
    // One box on SQLite: no fleet, no node.
    assert!(printed.lines().any(|l| l == "box         -"), "{printed}");
    assert!(!printed.contains("998877"), "the text is never shown");

    let json = message_cli(&["--admin", &admin.to_string(), "--json", &id]);
    assert!(json.status.success());
    let value: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(value["state"], "sent");
    assert_eq!(value["modem"], "modem0");

    let unknown = message_cli(&["--admin", &admin.to_string(), "999999"]);
    assert!(!unknown.status.success());
    let stderr = String::from_utf8_lossy(&unknown.stderr);
    assert!(stderr.contains("no message 999999"), "{stderr}");

    // The page of a single box has no fleet section; its status no fleet fields.
    let status = support::api_status(&client, admin).await.unwrap();
    assert!(status.get("fleet").is_none(), "{status}");
}
