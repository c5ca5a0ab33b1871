//! The review page as a user drives it: headless Chromium relabels one image, deletes another,
//! undoes the delete; the files on disk and the journal must agree. Needs `chromium` and
//! `chromium-driver` (Debian packages; `.ci/run` installs them).

use crate::common;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use fantoccini::{ClientBuilder, Locator};

/// Kills a child process when dropped, so a failing test leaves nothing running.
struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn fastvision(cwd: &Path, args: &[&str]) {
    let out = Command::new(env!("CARGO_BIN_EXE_fastvision"))
        .args(args)
        .current_dir(cwd)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn which(name: &str) -> Option<std::path::PathBuf> {
    std::env::var_os("PATH")?
        .to_str()?
        .split(':')
        .map(|d| Path::new(d).join(name))
        .find(|p| p.is_file())
}

async fn status_after(client: &fantoccini::Client, prefix: &str) -> String {
    for _ in 0..100 {
        let text = client
            .find(Locator::Id("status"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        if text.starts_with(prefix) {
            return text;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the page never said {prefix:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn relabel_delete_and_undo_in_headless_chromium() {
    let (Some(driver), Some(browser)) = (which("chromedriver"), which("chromium")) else {
        panic!(
            "this test needs chromium and chromedriver: apt-get install chromium chromium-driver (bash .ci/run does it)"
        );
    };
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("photos");
    common::tiny_dataset(&data, 3, 8, 2);
    let odd = "sac à main 1.png";
    let first = std::fs::read_dir(data.join("train/bag"))
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    std::fs::rename(&first, data.join("train/bag").join(odd)).unwrap();
    fastvision(
        dir.path(),
        &[
            "train", "photos", "--epochs", "1", "--bs", "8", "--width", "8", "--name", "r",
        ],
    );

    let mut server = Killed(
        Command::new(env!("CARGO_BIN_EXE_fastvision"))
            .args(["clean", "runs/r", "photos", "--serve"])
            .current_dir(dir.path())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let mut lines = BufReader::new(server.0.stdout.take().unwrap()).lines();
    let url = loop {
        let line = lines
            .next()
            .expect("the server printed its address")
            .unwrap();
        if let Some(url) = line.strip_prefix("review page: ") {
            break url.to_string();
        }
    };
    assert!(
        url.starts_with("http://127.0.0.1:"),
        "loopback only by default: {url}"
    );

    let port = free_port();
    // Chromium's profile and scratch folders go in the test's folder (left in /tmp they
    // outlived every run: two a run).
    let _driver = Killed(
        Command::new(driver)
            .arg(format!("--port={port}"))
            .env("TMPDIR", dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let mut caps = serde_json::Map::new();
    caps.insert(
        "goog:chromeOptions".into(),
        serde_json::json!({
            "binary": browser,
            "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"],
        }),
    );
    let connector = hyper_util::client::legacy::connect::HttpConnector::new();
    let mut client = None;
    for _ in 0..50 {
        match ClientBuilder::new(connector.clone())
            .capabilities(caps.clone())
            .connect(&format!("http://127.0.0.1:{port}"))
            .await
        {
            Ok(c) => {
                client = Some(c);
                break;
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
        }
    }
    let c = client.expect("chromedriver answered");

    let base = url.split("/?").next().unwrap().to_string();
    c.goto(&format!("{base}/")).await.unwrap();
    let body = c
        .find(Locator::Css("body"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(body.contains("missing or wrong token"), "{body}");

    c.goto(&format!("{url}&split=train&class=bag"))
        .await
        .unwrap();
    let odd_card = format!("div.card[data-path=\"train/bag/{odd}\"]");
    let card = c.wait().for_element(Locator::Css(&odd_card)).await.unwrap();
    card.find(Locator::Css("select.relabel-to"))
        .await
        .unwrap()
        .select_by_value("coat")
        .await
        .unwrap();
    card.find(Locator::Css("button.relabel"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    status_after(&c, "relabel:").await;
    assert!(
        data.join("train/coat").join(odd).is_file(),
        "relabelled on disk"
    );
    assert!(!data.join("train/bag").join(odd).exists());

    // The page redraws after the relabel: wait (bounded) until the relabelled card is gone,
    // then take a card that carries a path (not one caught mid-redraw).
    let mut gone = false;
    for _ in 0..100 {
        if c.find_all(Locator::Css(&odd_card))
            .await
            .unwrap()
            .is_empty()
        {
            gone = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(gone, "the relabelled image left the bag page");
    let card = c
        .wait()
        .for_element(Locator::Css("div.card[data-path]"))
        .await
        .unwrap();
    let victim = card.attr("data-path").await.unwrap().unwrap();
    assert_ne!(
        victim,
        format!("train/bag/{odd}"),
        "the relabelled image left the bag page"
    );
    card.find(Locator::Css("button.delete"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    status_after(&c, "delete:").await;
    let quarantined = data.join(".fastvision-quarantine").join(&victim);
    assert!(
        quarantined.is_file() && !data.join(&victim).exists(),
        "quarantined, not deleted"
    );

    c.find(Locator::Id("undo"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    status_after(&c, "undone:").await;
    assert!(
        data.join(&victim).is_file() && !quarantined.exists(),
        "undo moved it back"
    );
    assert!(
        data.join("train/coat").join(odd).is_file(),
        "only the last move was undone"
    );

    let journal =
        std::fs::read_to_string(data.join(".fastvision-quarantine/journal.jsonl")).unwrap();
    let entries: Vec<serde_json::Value> = journal
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let actions: Vec<&str> = entries
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(actions, ["relabel", "quarantine", "undo"]);
    assert_eq!(entries[0]["to"], format!("train/coat/{odd}"));
    assert_eq!(entries[2]["undoes"], 1);
    c.close().await.unwrap();

    fastvision(dir.path(), &["clean", "--undo", "photos"]);
    assert!(
        data.join("train/bag").join(odd).is_file(),
        "clean --undo moved the rest back"
    );
}
