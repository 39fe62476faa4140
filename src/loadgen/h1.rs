//! The lean HTTP/1.1 client (the default without `--http2`): per connection one `TcpStream`
//! (TCP_NODELAY) driven directly by the worker's task, the request bytes serialised once per
//! run and written with one `write_all` per request (keep-alive, no pipelining), and the
//! response parsed with `httparse` from a fixed read buffer.
//!
//! The parser ([`Parser`]) reads untrusted server output: the head is bounded by the read
//! buffer ([`BUF`]) and [`MAX_HEADERS`], chunk-size lines and trailers are bounded, and the
//! body (drained, never stored) by [`MAX_BODY`]. Every violation is an error, never a panic.

use super::client::{Answer, Failure};
use std::net::SocketAddr;
use std::pin::Pin;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// The read buffer, and so the largest response head.
pub const BUF: usize = 16 * 1024;
/// Most response headers (and most trailer fields).
pub const MAX_HEADERS: usize = 64;
/// Largest response body (Content-Length or the sum of the chunks).
pub const MAX_BODY: u64 = 1 << 30;
/// Longest chunk-size line (size, extensions, CRLF).
const MAX_CHUNK_LINE: usize = 1024;
/// Largest trailer section.
const MAX_TRAILERS: usize = 8 * 1024;

/// Why a response could not be read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Error {
    /// Not HTTP/1.x, or a malformed head.
    Head,
    TooManyHeaders,
    /// The head does not fit the read buffer.
    HeadTooLarge,
    /// Invalid or conflicting Content-Length.
    ContentLength,
    /// Over [`MAX_BODY`].
    BodyTooLarge,
    /// Malformed chunk framing.
    Chunk,
    /// Too many or too large trailers.
    Trailers,
    /// The connection ended before the response did.
    Eof,
}

/// How the body is framed (or where the parser is inside it).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    Head,
    /// `remaining` bytes of a Content-Length body.
    Fixed(u64),
    ChunkSize,
    ChunkData(u64),
    /// The CRLF after a chunk's data.
    ChunkEnd,
    Trailers,
    /// No length: the body ends with the connection.
    UntilClose,
}

/// An incremental parser for one response at a time.
#[derive(Debug)]
pub struct Parser {
    state: State,
    answer: Answer,
    /// The connection may carry another request after this response.
    keep_alive: bool,
    /// The request was HEAD: the response has no body whatever its headers say.
    head_request: bool,
    body: u64,
    trailers: usize,
    trailer_fields: usize,
}

/// What [`Parser::feed`] found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Progress {
    /// Needs more bytes.
    More,
    /// The response is complete; `keep_alive` says whether the connection can be reused.
    Done { answer: Answer, keep_alive: bool },
}

impl Parser {
    pub fn new(head_request: bool) -> Parser {
        Parser {
            state: State::Head,
            answer: Answer::default(),
            keep_alive: true,
            head_request,
            body: 0,
            trailers: 0,
            trailer_fields: 0,
        }
    }

    /// Starts the next response (on the same connection).
    pub fn reset(&mut self, head_request: bool) {
        *self = Parser::new(head_request);
    }

    /// Consumes what it can of `buf`; returns the bytes consumed and the progress. `eof`:
    /// the connection has ended and `buf` is all there will be. On `More` with nothing
    /// consumed, the caller must supply more bytes (or fail if its buffer is full).
    pub fn feed(&mut self, buf: &[u8], eof: bool) -> Result<(usize, Progress), Error> {
        let mut pos = 0;
        loop {
            let rest = &buf[pos..];
            match self.state {
                State::Head => {
                    let Some(n) = self.head(rest)? else {
                        return if eof {
                            Err(Error::Eof)
                        } else {
                            Ok((pos, Progress::More))
                        };
                    };
                    pos += n;
                }
                State::Fixed(0) => return Ok((pos, self.done())),
                State::Fixed(remaining) => {
                    let n = usize::try_from(remaining).map_or(rest.len(), |r| r.min(rest.len()));
                    pos += n;
                    self.state = State::Fixed(remaining - n as u64);
                    if n == 0 {
                        return if eof {
                            Err(Error::Eof)
                        } else {
                            Ok((pos, Progress::More))
                        };
                    }
                }
                State::ChunkSize => match httparse::parse_chunk_size(rest) {
                    Ok(httparse::Status::Complete((n, size))) => {
                        pos += n;
                        if size == 0 {
                            self.state = State::Trailers;
                        } else {
                            self.body = self
                                .body
                                .checked_add(size)
                                .filter(|&b| b <= MAX_BODY)
                                .ok_or(Error::BodyTooLarge)?;
                            self.state = State::ChunkData(size);
                        }
                    }
                    Ok(httparse::Status::Partial) => {
                        if rest.len() >= MAX_CHUNK_LINE {
                            return Err(Error::Chunk);
                        }
                        return if eof {
                            Err(Error::Eof)
                        } else {
                            Ok((pos, Progress::More))
                        };
                    }
                    Err(_) => return Err(Error::Chunk),
                },
                State::ChunkData(remaining) => {
                    let n = usize::try_from(remaining).map_or(rest.len(), |r| r.min(rest.len()));
                    pos += n;
                    let left = remaining - n as u64;
                    self.state = if left == 0 {
                        State::ChunkEnd
                    } else {
                        State::ChunkData(left)
                    };
                    if n == 0 {
                        return if eof {
                            Err(Error::Eof)
                        } else {
                            Ok((pos, Progress::More))
                        };
                    }
                }
                State::ChunkEnd => {
                    if rest.len() < 2 {
                        if rest.first().is_some_and(|&b| b != b'\r') {
                            return Err(Error::Chunk);
                        }
                        return if eof {
                            Err(Error::Eof)
                        } else {
                            Ok((pos, Progress::More))
                        };
                    }
                    if &rest[..2] != b"\r\n" {
                        return Err(Error::Chunk);
                    }
                    pos += 2;
                    self.state = State::ChunkSize;
                }
                State::Trailers => {
                    // Trailer fields are skipped line by line, up to the empty line.
                    let Some(end) = rest.windows(2).position(|w| w == b"\r\n") else {
                        if self.trailers + rest.len() > MAX_TRAILERS {
                            return Err(Error::Trailers);
                        }
                        return if eof {
                            Err(Error::Eof)
                        } else {
                            Ok((pos, Progress::More))
                        };
                    };
                    pos += end + 2;
                    if end == 0 {
                        return Ok((pos, self.done()));
                    }
                    self.trailers += end + 2;
                    self.trailer_fields += 1;
                    if self.trailers > MAX_TRAILERS || self.trailer_fields > MAX_HEADERS {
                        return Err(Error::Trailers);
                    }
                }
                State::UntilClose => {
                    self.body = self
                        .body
                        .checked_add(rest.len() as u64)
                        .filter(|&b| b <= MAX_BODY)
                        .ok_or(Error::BodyTooLarge)?;
                    pos = buf.len();
                    return Ok((pos, if eof { self.done() } else { Progress::More }));
                }
            }
        }
    }

    fn done(&mut self) -> Progress {
        self.state = State::Head;
        Progress::Done {
            answer: self.answer,
            keep_alive: self.keep_alive,
        }
    }

    /// Parses the head; `None` if incomplete. Interim (1xx but 101) responses are skipped.
    fn head(&mut self, buf: &[u8]) -> Result<Option<usize>, Error> {
        let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
        let mut resp = httparse::Response::new(&mut headers);
        let n = match resp.parse(buf) {
            Ok(httparse::Status::Complete(n)) => n,
            Ok(httparse::Status::Partial) => return Ok(None),
            Err(httparse::Error::TooManyHeaders) => return Err(Error::TooManyHeaders),
            Err(_) => return Err(Error::Head),
        };
        let status = resp.code.ok_or(Error::Head)?;
        if (100..200).contains(&status) && status != 101 {
            // 100 Continue and friends: the final response follows.
            return Ok(Some(n));
        }
        let mut answer = Answer {
            status,
            ..Answer::default()
        };
        let mut keep_alive = resp.version == Some(1);
        let mut length: Option<u64> = None;
        let mut chunked = false;
        let mut other_coding = false;
        for h in resp.headers.iter() {
            let name = h.name.as_bytes();
            let value = h.value;
            if name.eq_ignore_ascii_case(b"content-length") {
                let v = parse_length(value).ok_or(Error::ContentLength)?;
                if length.is_some_and(|l| l != v) {
                    return Err(Error::ContentLength);
                }
                length = Some(v);
            } else if name.eq_ignore_ascii_case(b"transfer-encoding") {
                // Only the last coding frames the message; earlier ones are content.
                for coding in value.split(|&b| b == b',') {
                    let c = coding.trim_ascii();
                    if c.is_empty() {
                        continue;
                    }
                    chunked = c.eq_ignore_ascii_case(b"chunked");
                    other_coding = !chunked;
                }
            } else if name.eq_ignore_ascii_case(b"connection") {
                for token in value.split(|&b| b == b',') {
                    let t = token.trim_ascii();
                    if t.eq_ignore_ascii_case(b"close") {
                        keep_alive = false;
                    } else if t.eq_ignore_ascii_case(b"keep-alive") && resp.version == Some(0) {
                        keep_alive = true;
                    }
                }
            } else if name.eq_ignore_ascii_case(b"x-hearth-cold-start") {
                answer.cold_start = value.trim_ascii().eq_ignore_ascii_case(b"true");
            } else if name.eq_ignore_ascii_case(b"x-amz-function-error") {
                answer.function_error = true;
            } else if name.eq_ignore_ascii_case(b"x-hearth-start-delay-us") {
                answer.start_delay_us = std::str::from_utf8(value)
                    .ok()
                    .and_then(|v| v.trim().parse().ok());
            }
        }
        let no_body = self.head_request || status == 101 || status == 204 || status == 304;
        self.state = if no_body {
            State::Fixed(0)
        } else if chunked || other_coding {
            // A message with both Transfer-Encoding and Content-Length is suspect: read it by
            // its Transfer-Encoding, then drop the connection.
            if length.is_some() {
                keep_alive = false;
            }
            if chunked {
                State::ChunkSize
            } else {
                keep_alive = false;
                State::UntilClose
            }
        } else if let Some(len) = length {
            if len > MAX_BODY {
                return Err(Error::BodyTooLarge);
            }
            State::Fixed(len)
        } else {
            keep_alive = false;
            State::UntilClose
        };
        if status == 101 {
            keep_alive = false;
        }
        self.answer = answer;
        self.keep_alive = keep_alive;
        Ok(Some(n))
    }
}

/// A Content-Length value: ASCII digits only (at most 19, so it fits a `u64`).
fn parse_length(v: &[u8]) -> Option<u64> {
    let v = v.trim_ascii();
    if v.is_empty() || v.len() > 19 || !v.iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some(v.iter().fold(0, |n, &d| n * 10 + u64::from(d - b'0')))
}

/// One keep-alive HTTP/1.1 connection.
pub struct Conn {
    stream: TcpStream,
    buf: Box<[u8; BUF]>,
    /// Unconsumed bytes are `buf[start..end]`.
    start: usize,
    end: usize,
    parser: Parser,
    /// The peer ended the connection, or the last response did not allow reuse.
    closed: bool,
    /// A lazily reset per-connection timer: it fires at or before the current request's
    /// deadline and is re-armed only then, so a request costs no timer registration.
    timer: Pin<Box<tokio::time::Sleep>>,
}

pub async fn connect(addr: SocketAddr) -> std::io::Result<Conn> {
    let stream = TcpStream::connect(addr).await?;
    stream.set_nodelay(true)?;
    Ok(Conn {
        stream,
        buf: Box::new([0; BUF]),
        start: 0,
        end: 0,
        parser: Parser::new(false),
        closed: false,
        timer: Box::pin(tokio::time::sleep(Duration::ZERO)),
    })
}

impl Conn {
    pub fn is_closed(&self) -> bool {
        self.closed
    }

    /// Writes `req` (a whole serialised request) and reads the whole response within
    /// `timeout`. After a failure the connection must be dropped.
    pub async fn send(&mut self, req: &[u8], timeout: Duration) -> Result<Answer, Failure> {
        let deadline = tokio::time::Instant::now() + timeout;
        if self.timer.deadline() <= tokio::time::Instant::now() {
            self.timer.as_mut().reset(deadline);
        }
        let head = req.starts_with(b"HEAD ");
        let Conn {
            stream,
            buf,
            start,
            end,
            parser,
            closed,
            timer,
        } = self;
        let exchange = exchange(stream, buf, start, end, parser, closed, req, head);
        tokio::pin!(exchange);
        loop {
            tokio::select! {
                biased;
                r = &mut exchange => return r,
                () = timer.as_mut() => {
                    // The timer was armed for an earlier request: re-arm it for this one.
                    if tokio::time::Instant::now() >= deadline {
                        return Err(Failure::Timeout);
                    }
                    timer.as_mut().reset(deadline);
                }
            }
        }
    }
}

#[allow(clippy::too_many_arguments)]
async fn exchange(
    stream: &mut TcpStream,
    buf: &mut [u8; BUF],
    start: &mut usize,
    end: &mut usize,
    parser: &mut Parser,
    closed: &mut bool,
    req: &[u8],
    head: bool,
) -> Result<Answer, Failure> {
    // No pipelining: anything left over from the last response is stray server output.
    *start = 0;
    *end = 0;
    parser.reset(head);
    if stream.write_all(req).await.is_err() {
        *closed = true;
        return Err(Failure::Io);
    }
    let mut eof = false;
    loop {
        let (n, progress) = match parser.feed(&buf[*start..*end], eof) {
            Ok(p) => p,
            Err(_) => {
                *closed = true;
                return Err(Failure::Io);
            }
        };
        *start += n;
        if let Progress::Done { answer, keep_alive } = progress {
            if !keep_alive || eof {
                *closed = true;
            }
            return Ok(answer);
        }
        if eof {
            *closed = true;
            return Err(Failure::Io);
        }
        if *start == *end {
            *start = 0;
            *end = 0;
        } else if *end == BUF {
            if *start == 0 {
                // The head (or a chunk line) does not fit the buffer.
                *closed = true;
                return Err(Failure::Io);
            }
            buf.copy_within(*start..*end, 0);
            *end -= *start;
            *start = 0;
        }
        match stream.read(&mut buf[*end..]).await {
            Ok(0) => eof = true,
            Ok(n) => *end += n,
            Err(_) => {
                *closed = true;
                return Err(Failure::Io);
            }
        }
    }
}

/// Parses one response from `input` fed in pieces of at most `step` bytes (then EOF), as a
/// connection would; for tests and the fuzz target. Returns the answer, whether the
/// response allows reusing the connection, and the bytes consumed.
pub fn parse_all(
    input: &[u8],
    step: usize,
    head_request: bool,
) -> Result<(Answer, bool, usize), Error> {
    let mut parser = Parser::new(head_request);
    let mut buf = Vec::with_capacity(BUF);
    let mut fed = 0;
    let mut consumed = 0;
    loop {
        let eof = fed == input.len();
        let (n, p) = parser.feed(&buf, eof)?;
        buf.drain(..n);
        consumed += n;
        if let Progress::Done { answer, keep_alive } = p {
            return Ok((answer, keep_alive, consumed));
        }
        if eof {
            return Err(Error::Eof);
        }
        if buf.len() >= BUF {
            return Err(Error::HeadTooLarge);
        }
        let take = step.max(1).min(input.len() - fed).min(BUF - buf.len());
        buf.extend_from_slice(&input[fed..fed + take]);
        fed += take;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Parses `input` split at every byte boundary (and whole); all must agree.
    fn every_split(input: &[u8], head: bool) -> Result<(Answer, bool, usize), Error> {
        let whole = parse_all(input, input.len().max(1), head);
        for step in 1..input.len().min(64) {
            let r = parse_all(input, step, head);
            assert_eq!(
                format!("{r:?}"),
                format!("{whole:?}"),
                "step {step} on {:?}",
                String::from_utf8_lossy(input)
            );
        }
        // Two pieces, split at every position.
        for cut in 0..input.len() {
            let mut parser = Parser::new(head);
            let mut buf = input[..cut].to_vec();
            let (n, p) = match parser.feed(&buf, false) {
                Ok(x) => x,
                Err(e) => {
                    assert_eq!(Err(e), whole.map(|_| ()));
                    continue;
                }
            };
            if let Progress::Done { .. } = p {
                continue;
            }
            buf.drain(..n);
            buf.extend_from_slice(&input[cut..]);
            let mut consumed = n;
            let r = loop {
                match parser.feed(&buf, true) {
                    Ok((n, Progress::Done { answer, keep_alive })) => {
                        break Ok((answer, keep_alive, consumed + n));
                    }
                    Ok((n, Progress::More)) if n > 0 => {
                        buf.drain(..n);
                        consumed += n;
                    }
                    Ok(_) => break Err(Error::Eof),
                    Err(e) => break Err(e),
                }
            };
            // With EOF right after the input, keep-alive is decided by the caller.
            assert_eq!(
                r.map(|(a, _, c)| (a.status, c)),
                whole.map(|(a, _, c)| (a.status, c)),
                "cut {cut}"
            );
        }
        whole
    }

    #[test]
    fn content_length_and_headers() {
        let r = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nX-Hearth-Cold-Start: TRUE\r\nx-hearth-start-delay-us:  1234 \r\nContent-Length: 2\r\n\r\n{}";
        let (a, keep, n) = every_split(r, false).unwrap();
        assert!(keep);
        assert_eq!(n, r.len());
        assert_eq!(a.status, 200);
        assert!(a.cold_start);
        assert!(!a.function_error);
        assert_eq!(a.start_delay_us, Some(1234));
        let mut p = Parser::new(false);
        let mut more = r.to_vec();
        more.extend_from_slice(b"HTTP/1.1 204");
        // Bytes after the response are left for the next one, however the input is split.
        assert_eq!(every_split(&more, false).unwrap(), (a, true, r.len()));
        let (n, prog) = p.feed(&more, false).unwrap();
        assert_eq!(n, r.len());
        assert!(matches!(
            prog,
            Progress::Done {
                keep_alive: true,
                ..
            }
        ));
    }

    #[test]
    fn function_error_and_connection_close() {
        let r = b"HTTP/1.1 200 OK\r\nX-Amz-Function-Error: Unhandled\r\nConnection: keep-alive, Close\r\ncontent-length: 0\r\n\r\n";
        let mut p = Parser::new(false);
        let (n, prog) = p.feed(r, false).unwrap();
        assert_eq!(n, r.len());
        let Progress::Done { answer, keep_alive } = prog else {
            panic!("{prog:?}")
        };
        assert!(answer.function_error && !keep_alive);
        every_split(r, false).unwrap();
        // HTTP/1.0 closes unless asked not to.
        let (_, prog) = Parser::new(false)
            .feed(b"HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n", false)
            .unwrap();
        assert!(matches!(
            prog,
            Progress::Done {
                keep_alive: false,
                ..
            }
        ));
        let (_, prog) = Parser::new(false)
            .feed(
                b"HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 0\r\n\r\n",
                false,
            )
            .unwrap();
        assert!(matches!(
            prog,
            Progress::Done {
                keep_alive: true,
                ..
            }
        ));
    }

    #[test]
    fn chunked_bodies() {
        let r = b"HTTP/1.1 503 Busy\r\nTransfer-Encoding: gzip, chunked\r\n\r\n5;ext=1\r\nhello\r\n1A\r\nabcdefghijklmnopqrstuvwxyz\r\n0\r\nX-Trailer: 1\r\n\r\n";
        let (a, _, n) = every_split(r, false).unwrap();
        assert_eq!((a.status, n), (503, r.len()));
        let mut more = r.to_vec();
        more.extend_from_slice(b"HTTP/1.1 200 OK\r\n");
        let (n, prog) = Parser::new(false).feed(&more, false).unwrap();
        assert_eq!(n, r.len());
        assert!(matches!(
            prog,
            Progress::Done {
                keep_alive: true,
                ..
            }
        ));
        // Empty chunked body.
        let r = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n";
        assert_eq!(every_split(r, false).unwrap().2, r.len());
        // Bad framing.
        for bad in [
            &b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nabX\r\n0\r\n\r\n"[..],
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n-1\r\n",
        ] {
            assert_eq!(every_split(bad, false).unwrap_err(), Error::Chunk);
        }
        // Truncated.
        let r = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhel";
        assert_eq!(every_split(r, false).unwrap_err(), Error::Eof);
    }

    #[test]
    fn bodies_without_length() {
        // Read until close.
        let r = b"HTTP/1.1 200 OK\r\n\r\nanything at all";
        let (a, keep, n) = every_split(r, false).unwrap();
        assert_eq!((a.status, keep, n), (200, false, r.len()));
        // HEAD, 204 and 304 have no body; 100 Continue is skipped.
        let r = b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n";
        assert_eq!(every_split(r, true).unwrap().2, r.len());
        let r =
            b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 304 Not Modified\r\nContent-Length: 5\r\n\r\n";
        let (a, _, n) = every_split(r, false).unwrap();
        assert_eq!((a.status, n), (304, r.len()));
        let (n, prog) = Parser::new(false).feed(r, false).unwrap();
        assert_eq!(n, r.len());
        assert!(matches!(
            prog,
            Progress::Done {
                keep_alive: true,
                ..
            }
        ));
        // Truncated fixed body.
        let r = b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n12345";
        assert_eq!(every_split(r, false).unwrap_err(), Error::Eof);
    }

    #[test]
    fn hostile_inputs() {
        let mut many = b"HTTP/1.1 200 OK\r\n".to_vec();
        for i in 0..=MAX_HEADERS {
            many.extend_from_slice(format!("X-{i}: v\r\n").as_bytes());
        }
        many.extend_from_slice(b"Content-Length: 0\r\n\r\n");
        assert_eq!(
            Parser::new(false).feed(&many, false).unwrap_err(),
            Error::TooManyHeaders
        );
        // A head larger than the buffer.
        let mut huge = b"HTTP/1.1 200 OK\r\nX-Big: ".to_vec();
        huge.resize(BUF + 10, b'a');
        assert_eq!(
            parse_all(&huge, 4096, false).unwrap_err(),
            Error::HeadTooLarge
        );
        // Huge and overflowing chunk sizes.
        for size in ["40000001", "ffffffffffffffff", "fffffffffffffffffffff"] {
            let r = format!("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n{size}\r\n");
            let e = every_split(r.as_bytes(), false).unwrap_err();
            assert!(
                matches!(e, Error::BodyTooLarge | Error::Chunk),
                "{size}: {e:?}"
            );
        }
        // Many chunks adding up past the limit.
        let mut p = Parser::new(false);
        p.feed(
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
            false,
        )
        .unwrap();
        let chunk = b"20000000\r\n";
        p.feed(chunk, false).unwrap();
        p.state = State::ChunkEnd;
        p.feed(b"\r\n", false).unwrap();
        p.feed(chunk, false).unwrap();
        p.state = State::ChunkEnd;
        p.feed(b"\r\n", false).unwrap();
        assert_eq!(p.feed(b"1\r\n", false).unwrap_err(), Error::BodyTooLarge);
        // An endless chunk-size line.
        let mut r = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1;".to_vec();
        r.resize(r.len() + 2 * MAX_CHUNK_LINE, b'x');
        assert_eq!(parse_all(&r, 100, false).unwrap_err(), Error::Chunk);
        // Endless trailers.
        let mut r = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n".to_vec();
        for _ in 0..1000 {
            r.extend_from_slice(b"T: x\r\n");
        }
        assert_eq!(parse_all(&r, 512, false).unwrap_err(), Error::Trailers);
        // Content-Length: invalid, conflicting, too large.
        for cl in [
            &b"Content-Length: 1x"[..],
            b"Content-Length: -1",
            b"Content-Length: 99999999999999999999999",
            b"Content-Length: 1\r\nContent-Length: 2",
        ] {
            let mut r = b"HTTP/1.1 200 OK\r\n".to_vec();
            r.extend_from_slice(cl);
            r.extend_from_slice(b"\r\n\r\n");
            assert_eq!(every_split(&r, false).unwrap_err(), Error::ContentLength);
        }
        let r = b"HTTP/1.1 200 OK\r\nContent-Length: 9999999999\r\n\r\n";
        assert_eq!(every_split(r, false).unwrap_err(), Error::BodyTooLarge);
        // Garbage.
        for g in [
            &b"garbage\r\n\r\n"[..],
            b"HTTP/2 200\r\n\r\n",
            b"HTTP/1.1 abc OK\r\n\r\n",
            b"\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0",
            b"HTTP/1.1 200 OK\r\nbad header\r\n\r\n",
        ] {
            assert!(every_split(g, false).is_err(), "{g:?}");
        }
        // Random bytes never panic.
        let mut rng = fastrand::Rng::with_seed(7);
        for _ in 0..2000 {
            let mut v = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
            let len = rng.usize(0..64);
            let alphabet = b"0123456789abcdef\r\n;x";
            v.extend((0..len).map(|_| alphabet[rng.usize(0..alphabet.len())]));
            let _ = every_split(&v, false);
        }
    }
}
