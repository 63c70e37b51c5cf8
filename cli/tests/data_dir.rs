//! The embedded mode's data directory holds signing secrets and the admin token: it and everything
//! in it are private to the user running `triggers`, and a shared admin-token file stops start-up.

#![cfg(unix)]

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{HttpClient, wait_until};
use http::{Method, StatusCode};
use serde_json::json;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use triggers::serve::{self, Roles};
use triggers::settings::RunOptions;

fn mode(path: &Path) -> u32 {
    std::fs::symlink_metadata(path).unwrap().permissions().mode() & 0o7777
}

/// Every path under `dir` (itself included) with its mode.
fn modes_under(dir: &Path) -> Vec<(String, bool, u32)> {
    let mut found = vec![(dir.display().to_string(), true, mode(dir))];
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            found.extend(modes_under(&path));
        } else {
            found.push((path.display().to_string(), false, mode(&path)));
        }
    }
    found
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fresh_data_directory_and_everything_in_it_belong_to_the_owner_alone() {
    let temp = tempfile::tempdir().unwrap();
    let data_dir = temp.path().join("triggers-data");
    // No admin token configured: the embedded mode generates one into the directory.
    let settings = RunOptions { data_dir: Some(data_dir.clone()), ..RunOptions::default() }.resolve().unwrap();
    let public = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let admin = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let (public_addr, admin_addr) = (public.local_addr().unwrap(), admin.local_addr().unwrap());
    let shutdown = CancellationToken::new();
    let server = tokio::spawn(serve::run(settings, Roles::All, public, admin, shutdown.clone()));
    let http = HttpClient::default();
    wait_until("the server to answer", Duration::from_secs(20), || async {
        let reply = http.send(Method::GET, &format!("http://{public_addr}/healthz"), &[], "").await;
        (reply.status == StatusCode::OK).then_some(())
    })
    .await;

    // Write something of each kind: a customer, a key, a subscription (with its secret), an event.
    let token = std::fs::read_to_string(data_dir.join("admin-token")).unwrap().trim().to_owned();
    let auth = format!("Bearer {token}");
    let admin_url = |path: &str| format!("http://{admin_addr}{path}");
    let headers = [("authorization", auth.as_str()), ("content-type", "application/json")];
    let customer = http.send(Method::POST, &admin_url("/admin/v1/customers"), &headers, "{}").await;
    assert_eq!(customer.status, StatusCode::CREATED);
    let customer_id = customer.json()["customer_id"].as_str().unwrap().to_owned();
    let key = http
        .send(Method::POST, &admin_url(&format!("/admin/v1/customers/{customer_id}/api-keys")), &headers, "{}")
        .await;
    let key = format!("Bearer {}", key.json()["api_key"].as_str().unwrap());
    let headers = [("authorization", key.as_str()), ("content-type", "application/json")];
    let subscription = json!({"event_selector": {}, "webhook_url": "http://127.0.0.1:9/hook"}).to_string();
    let reply =
        http.send(Method::POST, &format!("http://{public_addr}/v1/subscriptions"), &headers, subscription).await;
    assert_eq!(reply.status, StatusCode::CREATED);
    let event = json!({"type": "a", "data": 1}).to_string();
    let reply = http.send(Method::POST, &format!("http://{public_addr}/v1/events"), &headers, event).await;
    assert_eq!(reply.status, StatusCode::ACCEPTED);

    let found = modes_under(&data_dir);
    assert!(found.iter().any(|(path, _, _)| path.ends_with("admin-token")), "{found:?}");
    assert!(found.iter().filter(|(_, is_dir, _)| !is_dir).count() > 1, "the engine wrote no files: {found:?}");
    for (path, is_dir, mode) in &found {
        let wanted = if *is_dir { 0o700 } else { 0o600 };
        assert_eq!(*mode, wanted, "{path} has mode {mode:04o}, not {wanted:04o}");
    }
    shutdown.cancel();
    server.await.unwrap().unwrap();
}

#[test]
fn a_shared_admin_token_file_stops_start_up_with_one_line() {
    let temp = tempfile::tempdir().unwrap();
    let data_dir = temp.path().join("triggers-data");
    std::fs::create_dir(&data_dir).unwrap();
    let token_file = data_dir.join("admin-token");
    std::fs::write(&token_file, "adm_leaked\n").unwrap();
    std::fs::set_permissions(&token_file, std::fs::Permissions::from_mode(0o644)).unwrap();

    let mut child = Command::new(env!("CARGO_BIN_EXE_triggers"))
        .args(["serve", "--listen", "127.0.0.1:0", "--admin-listen", "127.0.0.1:0", "--data-dir"])
        .arg(&data_dir)
        .env_remove("TRIGGERS_ADMIN_TOKEN")
        .env_remove("TRIGGERS_CONFIG")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            child.kill().unwrap();
            panic!("triggers serve started with a world-readable admin-token file");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr).unwrap();
    assert_eq!(status.code(), Some(1), "stderr: {stderr}");
    let lines: Vec<&str> = stderr.lines().filter(|line| !line.trim().is_empty()).collect();
    assert_eq!(lines.len(), 1, "not one line: {stderr}");
    assert!(lines[0].contains(&token_file.display().to_string()) && lines[0].contains("0644"), "{stderr}");
    assert!(!stderr.contains("adm_leaked"), "the error shows the token: {stderr}");
    // Nothing was opened or changed: the operator sees the file as it was.
    assert_eq!(mode(&token_file), 0o644);
    assert_eq!(std::fs::read_dir(&data_dir).unwrap().count(), 1, "the database was created anyway");
}
