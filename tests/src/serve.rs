//! A tiny loopback HTTP/1.1 server for hostile answers: each request gets whatever `Reply` the
//! test's handler makes, written raw, and the connection closes. A streamed reply writes an
//! endless body and counts what the client took, so a test can assert the client stopped early.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// One request as the server read it.
#[derive(Debug, Clone)]
pub struct Request {
    pub method: String,
    pub path: String,
    /// Request line and headers, verbatim.
    pub head: String,
}

impl Request {
    pub fn is(&self, method: &str, path_part: &str) -> bool {
        self.method == method && self.path.contains(path_part)
    }
}

pub enum Reply {
    /// A status line with a JSON body (and its Content-Length).
    Json(&'static str, Vec<u8>),
    /// A 200 whose body never ends: `piece` written again and again until the client hangs up
    /// or `limit` bytes went. `claimed_length` is sent as Content-Length when set; without it
    /// the body is delimited by the connection's close.
    Stream {
        piece: Vec<u8>,
        limit: u64,
        claimed_length: Option<u64>,
    },
}

pub struct Server {
    pub addr: SocketAddr,
    requests: Arc<Mutex<Vec<Request>>>,
    streamed: Arc<AtomicU64>,
}

type Handler = dyn Fn(&Request) -> Reply + Send + Sync;

impl Server {
    pub fn start(handler: impl Fn(&Request) -> Reply + Send + Sync + 'static) -> Self {
        let listener = TcpListener::bind(crate::loopback()).expect("bind");
        let addr = listener.local_addr().expect("addr");
        let requests = Arc::new(Mutex::new(Vec::new()));
        let streamed = Arc::new(AtomicU64::new(0));
        let (seen, counter) = (requests.clone(), streamed.clone());
        let handler: Arc<Handler> = Arc::new(handler);
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let Some(request) = read_request(&stream) else {
                    continue;
                };
                seen.lock().expect("requests").push(request.clone());
                write_reply(stream, handler(&request), &counter);
            }
        });
        Self {
            addr,
            requests,
            streamed,
        }
    }

    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn requests(&self) -> Vec<Request> {
        self.requests.lock().expect("requests").clone()
    }

    pub fn count(&self, method: &str, path_part: &str) -> usize {
        self.requests()
            .iter()
            .filter(|r| r.is(method, path_part))
            .count()
    }

    /// Body bytes the streamed replies got written to a client so far.
    pub fn streamed(&self) -> u64 {
        self.streamed.load(Ordering::SeqCst)
    }
}

fn write_reply(mut stream: TcpStream, reply: Reply, counter: &AtomicU64) {
    match reply {
        Reply::Json(status, body) => {
            let head = format!(
                "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                body.len()
            );
            let _ = stream.write_all(head.as_bytes());
            let _ = stream.write_all(&body);
        }
        Reply::Stream {
            piece,
            limit,
            claimed_length,
        } => {
            let length = claimed_length
                .map(|n| format!("Content-Length: {n}\r\n"))
                .unwrap_or_default();
            let head = format!(
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n{length}Connection: close\r\n\r\n"
            );
            if stream.write_all(head.as_bytes()).is_err() {
                return;
            }
            let mut sent = 0u64;
            // A client that stopped reading leaves its socket open until it drops the
            // response; a write that blocks this long means it has stopped for good.
            let _ = stream.set_write_timeout(Some(Duration::from_secs(30)));
            while sent < limit && stream.write_all(&piece).is_ok() {
                sent += piece.len() as u64;
                counter.fetch_add(piece.len() as u64, Ordering::SeqCst);
            }
        }
    }
    let _ = stream.flush();
}

/// Reads one request (head, then a Content-Length or chunked body, which is skipped).
pub fn read_request(stream: &TcpStream) -> Option<Request> {
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .ok()?;
    let mut reader = BufReader::new(stream);
    let mut head = String::new();
    let (mut content_length, mut chunked) = (0usize, false);
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).ok()? == 0 {
            return None;
        }
        let lower = line.to_ascii_lowercase();
        if let Some(v) = lower.strip_prefix("content-length:") {
            content_length = v.trim().parse().unwrap_or(0);
        }
        chunked |= lower.starts_with("transfer-encoding:") && lower.contains("chunked");
        head.push_str(&line);
        if line == "\r\n" {
            break;
        }
    }
    if chunked {
        loop {
            let mut size = String::new();
            reader.read_line(&mut size).ok()?;
            let n = usize::from_str_radix(size.trim(), 16).ok()?;
            let mut chunk = vec![0; n + 2];
            reader.read_exact(&mut chunk).ok()?;
            if n == 0 {
                break;
            }
        }
    } else {
        let mut body = vec![0; content_length];
        reader.read_exact(&mut body).ok()?;
    }
    let mut words = head.split_whitespace();
    Some(Request {
        method: words.next()?.to_string(),
        path: words.next()?.to_string(),
        head,
    })
}
