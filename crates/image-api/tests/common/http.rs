//! A tiny HTTP/1.1 fixture server on 127.0.0.1 for the REST fixtures
//! (keep-alive, `Content-Length` request bodies only — all the clients under
//! test send). Responses are sent whole, or — for the hostile-server
//! fixtures — dripped slowly, stalled, or endless (see [`BodyPlan`]).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;

/// A request as received.
#[derive(Debug, Clone)]
pub struct Request {
    /// `GET`, `POST`…
    pub method: String,
    /// Path and query, e.g. `/api/v2.0/projects?page=1`.
    pub target: String,
    /// Header names lowercased.
    pub headers: BTreeMap<String, String>,
    /// The body.
    pub body: Vec<u8>,
}

impl Request {
    /// The path without the query.
    pub fn path(&self) -> &str {
        self.target.split('?').next().unwrap_or(&self.target)
    }

    /// A query parameter.
    pub fn query(&self, key: &str) -> Option<String> {
        let q = self.target.split_once('?')?.1;
        q.split('&').find_map(|kv| {
            let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
            (k == key).then(|| v.to_string())
        })
    }

    /// A header (name lowercase).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(String::as_str)
    }

    /// The body as JSON.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).expect("request body is JSON")
    }
}

/// How a response body is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyPlan {
    /// At once, with `Content-Length`.
    Whole,
    /// With `Content-Length`, in `chunk`-byte pieces `every` apart.
    Drip { chunk: usize, every: Duration },
    /// With `Content-Length`, but only the first `sent` bytes, then silence
    /// (the connection stays open).
    Stall { sent: usize },
    /// No `Content-Length`, `Connection: close`, and the body (repeated)
    /// forever, until the client hangs up.
    Endless,
}

/// A response to send.
#[derive(Debug, Clone)]
pub struct Response {
    /// Status code.
    pub status: u16,
    /// Headers.
    pub headers: Vec<(String, String)>,
    /// Body.
    pub body: Vec<u8>,
    /// How the body is written.
    pub plan: BodyPlan,
}

impl Response {
    /// A JSON response.
    pub fn json(status: u16, value: serde_json::Value) -> Self {
        Response {
            status,
            headers: vec![("Content-Type".into(), "application/json".into())],
            body: serde_json::to_vec(&value).expect("serialise"),
            plan: BodyPlan::Whole,
        }
    }

    /// A response with a raw body.
    pub fn bytes(status: u16, content_type: &str, body: impl Into<Vec<u8>>) -> Self {
        Response {
            status,
            headers: vec![("Content-Type".into(), content_type.into())],
            body: body.into(),
            plan: BodyPlan::Whole,
        }
    }

    /// An empty response.
    pub fn empty(status: u16) -> Self {
        Response {
            status,
            headers: vec![],
            body: vec![],
            plan: BodyPlan::Whole,
        }
    }

    /// Sets how the body is written.
    pub fn plan(mut self, plan: BodyPlan) -> Self {
        self.plan = plan;
        self
    }

    /// Adds a header.
    pub fn header(mut self, name: &str, value: impl Into<String>) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }
}

type Handler = dyn Fn(&Request) -> Response + Send + Sync;

/// A running fixture server.
pub struct Server {
    /// `http://127.0.0.1:PORT`.
    pub url: String,
    requests: Arc<Mutex<Vec<Request>>>,
}

impl Server {
    /// Starts a server answering every request with `handler`.
    pub async fn start(handler: impl Fn(&Request) -> Response + Send + Sync + 'static) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let handler: Arc<Handler> = Arc::new(handler);
        let requests = Arc::new(Mutex::new(Vec::new()));
        let log = requests.clone();
        tokio::spawn(async move {
            while let Ok((sock, _)) = listener.accept().await {
                let handler = handler.clone();
                let log = log.clone();
                tokio::spawn(async move {
                    let (r, mut w) = sock.into_split();
                    let mut r = BufReader::new(r);
                    loop {
                        let mut line = String::new();
                        if r.read_line(&mut line).await.unwrap_or(0) == 0 {
                            return;
                        }
                        let mut parts = line.split_whitespace();
                        let method = parts.next().unwrap_or_default().to_string();
                        let target = parts.next().unwrap_or_default().to_string();
                        let mut headers = BTreeMap::new();
                        loop {
                            let mut h = String::new();
                            if r.read_line(&mut h).await.unwrap_or(0) == 0 {
                                return;
                            }
                            let h = h.trim_end();
                            if h.is_empty() {
                                break;
                            }
                            if let Some((k, v)) = h.split_once(':') {
                                headers.insert(k.trim().to_ascii_lowercase(), v.trim().to_string());
                            }
                        }
                        let len: usize = headers
                            .get("content-length")
                            .and_then(|v| v.parse().ok())
                            .unwrap_or(0);
                        let mut body = vec![0; len];
                        if r.read_exact(&mut body).await.is_err() {
                            return;
                        }
                        let req = Request {
                            method,
                            target,
                            headers,
                            body,
                        };
                        let resp = handler(&req);
                        let head_only = req.method == "HEAD";
                        log.lock().expect("log").push(req);
                        let reason = match resp.status {
                            200 => "OK",
                            201 => "Created",
                            202 => "Accepted",
                            400 => "Bad Request",
                            401 => "Unauthorized",
                            403 => "Forbidden",
                            404 => "Not Found",
                            409 => "Conflict",
                            412 => "Precondition Failed",
                            429 => "Too Many Requests",
                            500 => "Internal Server Error",
                            502 => "Bad Gateway",
                            503 => "Service Unavailable",
                            504 => "Gateway Timeout",
                            _ => "Status",
                        };
                        let mut out = format!("HTTP/1.1 {} {reason}\r\n", resp.status);
                        for (k, v) in &resp.headers {
                            out.push_str(&format!("{k}: {v}\r\n"));
                        }
                        if resp.plan == BodyPlan::Endless {
                            out.push_str("Connection: close\r\n\r\n");
                        } else {
                            out.push_str(&format!("Content-Length: {}\r\n\r\n", resp.body.len()));
                        }
                        if w.write_all(out.as_bytes()).await.is_err() {
                            return;
                        }
                        if head_only {
                            continue;
                        }
                        match resp.plan {
                            BodyPlan::Whole => {
                                if w.write_all(&resp.body).await.is_err() {
                                    return;
                                }
                            }
                            BodyPlan::Drip { chunk, every } => {
                                for piece in resp.body.chunks(chunk.max(1)) {
                                    tokio::time::sleep(every).await;
                                    if w.write_all(piece).await.is_err() || w.flush().await.is_err()
                                    {
                                        return;
                                    }
                                }
                            }
                            BodyPlan::Stall { sent } => {
                                let n = sent.min(resp.body.len());
                                let _ = w.write_all(&resp.body[..n]).await;
                                let _ = w.flush().await;
                                // hold the connection open, say nothing more
                                tokio::time::sleep(Duration::from_secs(3600)).await;
                                return;
                            }
                            BodyPlan::Endless => {
                                let piece = if resp.body.is_empty() {
                                    vec![b' '; 64 << 10]
                                } else {
                                    resp.body.clone()
                                };
                                while w.write_all(&piece).await.is_ok() {}
                                return;
                            }
                        }
                    }
                });
            }
        });
        Server {
            url: format!("http://{addr}"),
            requests,
        }
    }

    /// Every request received so far.
    pub fn requests(&self) -> Vec<Request> {
        self.requests.lock().expect("log").clone()
    }
}
