//! A small Chrome DevTools Protocol client for the browser tests: headless Chromium started
//! with a private profile, one page attached over the browser's WebSocket (flattened
//! sessions), JavaScript evaluated in it and real mouse events sent to it.

use std::io::{BufRead, BufReader};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

/// Headless Chromium with one page; killed when dropped.
pub struct Browser {
    child: Child,
    _profile: tempfile::TempDir,
    socket: tungstenite::WebSocket<TcpStream>,
    session: String,
    next: u64,
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The Chromium binary the set-up installs (Debian's `chromium`); a missing browser fails the
/// test that needs it.
pub fn chromium() -> String {
    ["chromium", "chromium-browser", "google-chrome"]
        .into_iter()
        .find(|c| Command::new(c).arg("--version").output().is_ok_and(|o| o.status.success()))
        .expect("chromium is not installed: run `make test` (its set-up installs Debian's chromium) or `apt-get install chromium`")
        .to_string()
}

impl Browser {
    /// Starts the browser (window `width` × `height`) and opens a blank page.
    pub fn launch(width: u32, height: u32) -> Browser {
        let profile = tempfile::tempdir().expect("a profile folder");
        let mut child = Command::new(chromium())
            .args(["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync", "--remote-debugging-port=0"])
            .arg(format!("--user-data-dir={}", profile.path().display()))
            .arg(format!("--window-size={width},{height}"))
            .arg("about:blank")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("chromium starts");
        // "DevTools listening on ws://127.0.0.1:PORT/devtools/browser/ID" on stderr.
        let stderr = child.stderr.take().expect("stderr is piped");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Some(url) = line.split_whitespace().find(|w| w.starts_with("ws://")) {
                    let _ = tx.send(url.to_string());
                }
            }
        });
        let url = rx.recv_timeout(Duration::from_secs(60)).expect("chromium prints its DevTools address");
        let host = url.trim_start_matches("ws://").split('/').next().expect("host:port").to_string();
        let stream = TcpStream::connect(&host).expect("connect to DevTools");
        stream.set_read_timeout(Some(Duration::from_secs(60))).expect("a read timeout");
        let (socket, _) = tungstenite::client(url.as_str(), stream).expect("WebSocket handshake");
        let mut browser = Browser { child, _profile: profile, socket, session: String::new(), next: 0 };
        let target = browser.call("Target.createTarget", json!({ "url": "about:blank" }), false);
        let target = target["targetId"].as_str().expect("a target id").to_string();
        let attached = browser.call("Target.attachToTarget", json!({ "targetId": target, "flatten": true }), false);
        browser.session = attached["sessionId"].as_str().expect("a session id").to_string();
        browser.call("Emulation.setDeviceMetricsOverride", json!({ "width": width, "height": height, "deviceScaleFactor": 1, "mobile": false }), true);
        browser.call("Runtime.enable", json!({}), true);
        browser
    }

    /// Sends a command (to the page's session when `page`) and returns its result, skipping
    /// events; a protocol error fails the test.
    pub fn call(&mut self, method: &str, params: Value, page: bool) -> Value {
        self.next += 1;
        let id = self.next;
        let mut message = json!({ "id": id, "method": method, "params": params });
        if page {
            message["sessionId"] = json!(self.session);
        }
        self.socket.send(tungstenite::Message::text(message.to_string())).expect("send to DevTools");
        loop {
            let reply = self.socket.read().expect("a DevTools message");
            let Ok(text) = reply.into_text() else { continue };
            let value: Value = serde_json::from_str(text.as_str()).expect("DevTools sends JSON");
            if value["id"] == json!(id) {
                assert!(value.get("error").is_none(), "{method}: {}", value["error"]);
                return value["result"].clone();
            }
        }
    }

    /// Opens `url` and waits until it has loaded.
    pub fn open(&mut self, url: &str) {
        self.call("Page.navigate", json!({ "url": url }), true);
        self.wait_for("document.readyState === 'complete'", Duration::from_secs(60));
    }

    /// The value of a JavaScript expression in the page (promises awaited); an exception fails
    /// the test with its message.
    pub fn eval(&mut self, expression: &str) -> Value {
        let result = self.call("Runtime.evaluate", json!({ "expression": expression, "returnByValue": true, "awaitPromise": true }), true);
        if let Some(e) = result.get("exceptionDetails") {
            panic!("{expression}\nthrew: {}", e["exception"]["description"].as_str().unwrap_or(&e.to_string()));
        }
        result["result"]["value"].clone()
    }

    /// Waits until `expression` is true.
    pub fn wait_for(&mut self, expression: &str, timeout: Duration) {
        let started = Instant::now();
        while self.eval(expression) != json!(true) {
            assert!(started.elapsed() < timeout, "waited {timeout:?} for `{expression}`");
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Moves the mouse to (x, y) in the viewport, as a user would.
    pub fn hover(&mut self, x: f64, y: f64) {
        self.call("Input.dispatchMouseEvent", json!({ "type": "mouseMoved", "x": x, "y": y }), true);
    }

    /// Clicks at (x, y) in the viewport.
    pub fn click(&mut self, x: f64, y: f64) {
        for kind in ["mousePressed", "mouseReleased"] {
            self.call("Input.dispatchMouseEvent", json!({ "type": kind, "x": x, "y": y, "button": "left", "clickCount": 1 }), true);
        }
    }

    /// The viewport centre of the first element `selector` matches, scrolled into view, where a
    /// click or hover lands on that element itself (not on one drawn over it).
    pub fn centre(&mut self, selector: &str) -> (f64, f64) {
        let found = self.eval(&format!(
            "(() => {{ for (const el of document.querySelectorAll({s})) {{ el.scrollIntoView({{block: 'center'}}); const r = el.getBoundingClientRect(); const x = r.x + r.width / 2, y = r.y + r.height / 2; const top = document.elementFromPoint(x, y); if (top === el || el.contains(top)) return [x, y]; }} return null; }})()",
            s = json!(selector)
        ));
        let xy = found.as_array().unwrap_or_else(|| panic!("no `{selector}` can be pointed at"));
        (xy[0].as_f64().unwrap_or(0.0), xy[1].as_f64().unwrap_or(0.0))
    }
}
