//! A no-op Lambda custom runtime for the benchmarks, standard library only.
//!
//! Polls `GET /2018-06-01/runtime/invocation/next` on `AWS_LAMBDA_RUNTIME_API` over one
//! keep-alive HTTP/1.1 connection and answers every event with `{}` at
//! `POST /2018-06-01/runtime/invocation/<id>/response`. An event containing `"sleep_ms": N`
//! sleeps N milliseconds first (the trace replay's stand-in for the function's run time).
//! Exits 0 when the Runtime API goes away, 1 on a protocol error.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::time::Duration;

/// Longest status or header line accepted.
const MAX_LINE: u64 = 8 * 1024;
/// Most header lines in one response.
const MAX_HEADERS: usize = 100;
/// Largest event accepted (Lambda's synchronous payload limit, plus slack).
const MAX_BODY: usize = 7 * 1024 * 1024;
/// Longest request id accepted (it goes into a request path).
const MAX_ID: usize = 200;
/// Longest sleep honoured (Lambda's 15-minute maximum timeout).
const MAX_SLEEP_MS: u64 = 15 * 60 * 1000;

type Result<T> = std::result::Result<T, String>;

struct Response {
    status: u16,
    request_id: Option<String>,
    body: Vec<u8>,
    close: bool,
}

struct Conn {
    reader: BufReader<TcpStream>,
    host: String,
}

impl Conn {
    fn open(host: &str) -> std::io::Result<Conn> {
        let stream = TcpStream::connect(host)?;
        stream.set_nodelay(true)?;
        Ok(Conn {
            reader: BufReader::with_capacity(16 * 1024, stream),
            host: host.to_string(),
        })
    }

    fn send(&mut self, head: &str, body: &[u8]) -> std::io::Result<()> {
        let mut req = Vec::with_capacity(head.len() + body.len() + 64);
        req.extend_from_slice(head.as_bytes());
        req.extend_from_slice(b"Host: ");
        req.extend_from_slice(self.host.as_bytes());
        req.extend_from_slice(b"\r\n\r\n");
        req.extend_from_slice(body);
        self.reader.get_mut().write_all(&req)
    }

    /// One line without its CRLF; `Ok(None)` at a clean end of stream.
    fn line(&mut self) -> Result<Option<String>> {
        let mut buf = Vec::new();
        let n = (&mut self.reader)
            .take(MAX_LINE)
            .read_until(b'\n', &mut buf)
            .map_err(|e| format!("read: {e}"))?;
        if n == 0 {
            return Ok(None);
        }
        if buf.last() != Some(&b'\n') {
            return Err(if n as u64 >= MAX_LINE {
                "header line too long".into()
            } else {
                "connection closed inside a header".into()
            });
        }
        buf.pop();
        if buf.last() == Some(&b'\r') {
            buf.pop();
        }
        String::from_utf8(buf)
            .map(Some)
            .map_err(|_| "header is not UTF-8".into())
    }

    /// Reads one response; `Ok(None)` if the server closed the connection before it began.
    fn read_response(&mut self) -> Result<Option<Response>> {
        let Some(status_line) = self.line()? else {
            return Ok(None);
        };
        let mut parts = status_line.splitn(3, ' ');
        let version = parts.next().unwrap_or("");
        if !version.starts_with("HTTP/1.") {
            return Err(format!("bad status line {status_line:?}"));
        }
        let status: u16 = parts
            .next()
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| format!("bad status line {status_line:?}"))?;
        let mut close = version == "HTTP/1.0";
        let mut length: Option<usize> = None;
        let mut chunked = false;
        let mut request_id = None;
        let mut count = 0;
        loop {
            let line = self.line()?.ok_or("connection closed inside the headers")?;
            if line.is_empty() {
                break;
            }
            count += 1;
            if count > MAX_HEADERS {
                return Err("too many headers".into());
            }
            let (name, value) = line
                .split_once(':')
                .ok_or_else(|| format!("bad header line {line:?}"))?;
            let value = value.trim();
            if name.eq_ignore_ascii_case("content-length") {
                let n: usize = value
                    .parse()
                    .map_err(|_| format!("bad Content-Length {value:?}"))?;
                if length.is_some_and(|l| l != n) {
                    return Err("conflicting Content-Length headers".into());
                }
                length = Some(n);
            } else if name.eq_ignore_ascii_case("transfer-encoding") {
                chunked = value.to_ascii_lowercase().ends_with("chunked");
                if !chunked {
                    return Err(format!("unsupported Transfer-Encoding {value:?}"));
                }
            } else if name.eq_ignore_ascii_case("connection") {
                close = value.eq_ignore_ascii_case("close");
            } else if name.eq_ignore_ascii_case("lambda-runtime-aws-request-id") {
                request_id = Some(value.to_string());
            }
        }
        let body = if chunked {
            self.read_chunked()?
        } else if let Some(n) = length {
            if n > MAX_BODY {
                return Err(format!("body of {n} bytes is too large"));
            }
            let mut body = vec![0; n];
            self.reader
                .read_exact(&mut body)
                .map_err(|e| format!("read body: {e}"))?;
            body
        } else if status == 204 || status == 304 || (100..200).contains(&status) {
            Vec::new()
        } else {
            // Delimited by the end of the connection.
            let mut body = Vec::new();
            (&mut self.reader)
                .take(MAX_BODY as u64 + 1)
                .read_to_end(&mut body)
                .map_err(|e| format!("read body: {e}"))?;
            if body.len() > MAX_BODY {
                return Err("body too large".into());
            }
            close = true;
            body
        };
        Ok(Some(Response {
            status,
            request_id,
            body,
            close,
        }))
    }

    fn read_chunked(&mut self) -> Result<Vec<u8>> {
        let mut body = Vec::new();
        loop {
            let line = self.line()?.ok_or("connection closed inside a chunk")?;
            let size = line.split(';').next().unwrap_or("").trim();
            let size =
                usize::from_str_radix(size, 16).map_err(|_| format!("bad chunk size {line:?}"))?;
            if size == 0 {
                // Trailers, up to the empty line.
                for _ in 0..=MAX_HEADERS {
                    match self.line()? {
                        Some(l) if !l.is_empty() => continue,
                        _ => return Ok(body),
                    }
                }
                return Err("too many trailers".into());
            }
            if body.len() + size > MAX_BODY {
                return Err("body too large".into());
            }
            let start = body.len();
            body.resize(start + size, 0);
            self.reader
                .read_exact(&mut body[start..])
                .map_err(|e| format!("read chunk: {e}"))?;
            let crlf = self.line()?.ok_or("connection closed after a chunk")?;
            if !crlf.is_empty() {
                return Err("missing CRLF after a chunk".into());
            }
        }
    }
}

/// `"sleep_ms": N` anywhere in the event (a flat scan: the benchmark's events are tiny).
fn sleep_ms(event: &[u8]) -> Option<u64> {
    const KEY: &[u8] = b"\"sleep_ms\"";
    let pos = event.windows(KEY.len()).position(|w| w == KEY)?;
    let rest = &event[pos + KEY.len()..];
    let rest = &rest[rest.iter().position(|b| !b.is_ascii_whitespace())?..];
    let rest = rest.strip_prefix(b":")?;
    let digits: Vec<u8> = rest
        .iter()
        .skip_while(|b| b.is_ascii_whitespace())
        .take_while(|b| b.is_ascii_digit())
        .take(20)
        .copied()
        .collect();
    let n: u64 = std::str::from_utf8(&digits).ok()?.parse().ok()?;
    Some(n.min(MAX_SLEEP_MS))
}

fn valid_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= MAX_ID
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.')
}

/// One request/response exchange, reconnecting once if the server had closed the
/// keep-alive connection. `Ok(None)` when the Runtime API is gone.
fn exchange(
    conn: &mut Option<Conn>,
    host: &str,
    head: &str,
    body: &[u8],
    retry: bool,
) -> Result<Option<Response>> {
    let fresh = conn.is_none();
    if conn.is_none() {
        match Conn::open(host) {
            Ok(c) => *conn = Some(c),
            Err(_) => return Ok(None),
        }
    }
    let c = conn.as_mut().expect("connected");
    let outcome = match c.send(head, body) {
        Ok(()) => c.read_response(),
        Err(_) => Ok(None),
    };
    match outcome {
        Ok(Some(r)) => {
            if r.close {
                *conn = None;
            }
            Ok(Some(r))
        }
        // The server closed an idle keep-alive connection: try once on a new one.
        Ok(None) if !fresh && retry => {
            *conn = None;
            exchange(conn, host, head, body, false)
        }
        Ok(None) => {
            *conn = None;
            Ok(None)
        }
        Err(e) => Err(e),
    }
}

fn run(host: &str) -> Result<()> {
    let next = "GET /2018-06-01/runtime/invocation/next HTTP/1.1\r\n";
    let mut conn: Option<Conn> = None;
    loop {
        // A long poll: retrying it on a new connection is always safe.
        let Some(event) = exchange(&mut conn, host, next, b"", true)? else {
            return Ok(());
        };
        if event.status != 200 {
            // The Runtime API refuses more work (e.g. the instance is stopping).
            return Ok(());
        }
        let id = event
            .request_id
            .ok_or("event without Lambda-Runtime-Aws-Request-Id")?;
        if !valid_id(&id) {
            return Err(format!("unusable request id {id:?}"));
        }
        if let Some(ms) = sleep_ms(&event.body) {
            std::thread::sleep(Duration::from_millis(ms));
        }
        let head = format!(
            "POST /2018-06-01/runtime/invocation/{id}/response HTTP/1.1\r\n\
             Content-Type: application/json\r\nContent-Length: 2\r\n"
        );
        // Not retried: the response may have been taken before the connection broke.
        if exchange(&mut conn, host, &head, b"{}", false)?.is_none() {
            return Ok(());
        }
    }
}

fn main() {
    let Ok(host) = std::env::var("AWS_LAMBDA_RUNTIME_API") else {
        eprintln!("noop-bootstrap: AWS_LAMBDA_RUNTIME_API is not set");
        std::process::exit(1);
    };
    if let Err(e) = run(&host) {
        eprintln!("noop-bootstrap: {e}");
        std::process::exit(1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_sleep_ms() {
        assert_eq!(sleep_ms(br#"{"sleep_ms": 25}"#), Some(25));
        assert_eq!(sleep_ms(br#"{"a":1,"sleep_ms":7,"b":2}"#), Some(7));
        assert_eq!(sleep_ms(br#"{"sleep_ms":"x"}"#), None);
        assert_eq!(sleep_ms(br#"{}"#), None);
        assert_eq!(sleep_ms(br#"{"sleep_ms":99999999999999999999999}"#), None);
        assert_eq!(sleep_ms(br#"{"sleep_ms":9999999999}"#), Some(MAX_SLEEP_MS));
    }

    #[test]
    fn request_ids() {
        assert!(valid_id("8476a536-e9f4-11e8-9739-2dfe598c3fcd"));
        assert!(!valid_id(""));
        assert!(!valid_id("a b"));
        assert!(!valid_id("x\r\nHost: evil"));
        assert!(!valid_id(&"a".repeat(MAX_ID + 1)));
    }

    /// A whole exchange against a tiny in-test Runtime API (std only).
    #[test]
    fn answers_events_over_one_connection() {
        use std::net::TcpListener;
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let server = std::thread::spawn(move || {
            let (s, _) = listener.accept().unwrap();
            let mut r = BufReader::new(s.try_clone().unwrap());
            let mut w = s;
            let mut got = Vec::new();
            let read_head = |r: &mut BufReader<TcpStream>| {
                let mut head = String::new();
                loop {
                    let mut l = String::new();
                    r.read_line(&mut l).unwrap();
                    if l == "\r\n" || l.is_empty() {
                        return head;
                    }
                    head.push_str(&l);
                }
            };
            for (i, event) in [r#"{"x":1}"#, r#"{"sleep_ms":1}"#].iter().enumerate() {
                let head = read_head(&mut r);
                assert!(head.starts_with("GET /2018-06-01/runtime/invocation/next "));
                write!(
                    w,
                    "HTTP/1.1 200 OK\r\nLambda-Runtime-Aws-Request-Id: id-{i}\r\n\
                     Content-Length: {}\r\n\r\n{event}",
                    event.len()
                )
                .unwrap();
                let head = read_head(&mut r);
                let mut body = [0u8; 2];
                r.read_exact(&mut body).unwrap();
                got.push((head.lines().next().unwrap().to_string(), body));
                // Chunked on purpose.
                w.write_all(b"HTTP/1.1 202 Accepted\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n")
                    .unwrap();
            }
            let _ = read_head(&mut r);
            w.write_all(b"HTTP/1.1 500 Stopping\r\nContent-Length: 0\r\n\r\n")
                .unwrap();
            got
        });
        run(&addr).unwrap();
        let got = server.join().unwrap();
        assert_eq!(
            got[0].0,
            "POST /2018-06-01/runtime/invocation/id-0/response HTTP/1.1"
        );
        assert_eq!(&got[1].1, b"{}");
    }
}
