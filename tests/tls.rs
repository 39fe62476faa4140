//! TLS and HTTP/3 end to end: one matrix of cases over HTTP/1.1-over-TLS, h2-over-TLS (hyper +
//! tokio-rustls, trusting the served certificate) and HTTP/3 (Python's aioquic, a client hearth
//! did not write, in a venv at `<CARGO_TARGET_TMPDIR>/h3venv` made once under a lock), plus
//! certificate reload, `--dev-tls` and hostile input.

mod common;

use bytes::Bytes;
use common::{Hearth, Resp, b64, example, repo, unb64};
use http_body_util::{BodyExt, Full};
use hyper_util::rt::{TokioExecutor, TokioIo};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The aioquic the h3 cases run (pinned).
const AIOQUIC: &str = "aioquic==1.2.0";
const TLS_DEV: &str = "[tls]\nlisten = \"127.0.0.1:0\"\ndev = true\n";
const MAX_PAYLOAD: usize = 6 * 1024 * 1024;

#[derive(Clone, Copy, Debug, PartialEq)]
enum Proto {
    H1,
    H2,
    H3,
}

/// One request of the matrix.
#[derive(Clone, Debug)]
struct Req {
    method: &'static str,
    path: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

fn invoke(name: &str, body: &[u8]) -> Req {
    Req {
        method: "POST",
        path: format!("/2015-03-31/functions/{name}/invocations"),
        headers: vec![],
        body: body.to_vec(),
    }
}

impl Req {
    fn header(mut self, k: &str, v: &str) -> Req {
        self.headers.push((k.into(), v.into()));
        self
    }
}

type Check = fn(&Resp);

/// The bytes the binary URL case sends: every byte value, then a fixed pseudo-random tail
/// (deterministic, so the check can recompute them).
fn binary_body() -> Vec<u8> {
    let mut b: Vec<u8> = (0..=255).collect();
    let mut x: u32 = 0x9e37_79b9;
    b.extend((0..100_000).map(|_| {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        (x >> 24) as u8
    }));
    b
}

/// The matrix: (name, request, check). Adding a case is one line.
fn cases() -> Vec<(&'static str, Req, Check)> {
    vec![
        (
            "sync invoke round-trips the body",
            invoke("echo", br#"{"k":[1,"two",null]}"#),
            |r| {
                assert_eq!(r.status, 200, "{}", r.text());
                assert_eq!(r.json(), serde_json::json!({"k":[1,"two",null]}));
            },
        ),
        (
            "Event invoke is accepted",
            invoke("echo", b"{}").header("x-amz-invocation-type", "Event"),
            |r| assert_eq!(r.status, 202, "{}", r.text()),
        ),
        (
            "unknown path is 404",
            Req {
                method: "GET",
                path: "/no/such/thing".into(),
                headers: vec![],
                body: vec![],
            },
            |r| {
                assert_eq!(r.status, 404, "{}", r.text());
                assert_eq!(r.error_type(), "UnknownOperationException");
            },
        ),
        (
            "oversized payload is 413",
            invoke("echo", &vec![b' '; MAX_PAYLOAD + 1]),
            |r| {
                assert_eq!(r.status, 413, "{}", r.text());
                assert_eq!(r.error_type(), "RequestTooLargeException");
            },
        ),
        (
            "reserved concurrency 0 is 429 with its Reason",
            invoke("busy", b"{}"),
            |r| {
                assert_eq!(r.status, 429, "{}", r.text());
                assert_eq!(r.error_type(), "TooManyRequestsException");
                assert_eq!(
                    r.json()["Reason"],
                    "ReservedFunctionConcurrentInvocationLimitExceeded",
                    "{}",
                    r.text()
                );
                let retry: u32 = r
                    .header("retry-after")
                    .expect("Retry-After")
                    .parse()
                    .unwrap();
                assert!(retry >= 1);
            },
        ),
        (
            "a binary body round-trips through a function URL",
            Req {
                method: "POST",
                path: "/fn/web/binary".into(),
                headers: vec![("content-type".into(), "application/octet-stream".into())],
                body: binary_body(),
            },
            |r| {
                assert_eq!(r.status, 200, "{}", r.text());
                assert_eq!(r.header("content-type"), Some("application/octet-stream"));
                assert!(
                    r.body == binary_body(),
                    "binary body changed on the round trip"
                );
            },
        ),
    ]
}

/// The functions the matrix calls: `echo`, `busy` (reserved concurrency 0) and `web` (url-py
/// behind a function URL, AuthType NONE). Returns the `FunctionUrl` hearth gave `web`.
fn deploy_matrix_functions(h: &Hearth) -> String {
    h.deploy("echo", "provided", "", &example("echo-sh"), &[]);
    h.deploy("busy", "provided", "", &example("echo-sh"), &[]);
    let r = h.request(
        "PUT",
        "/2017-10-31/functions/busy/concurrency",
        &[("content-type", "application/json")],
        br#"{"ReservedConcurrentExecutions":0}"#,
    );
    assert_eq!(r.status, 200, "{}", r.text());
    h.deploy(
        "web",
        "python3.11",
        "app.handler",
        &repo().join("tests/functions/url-py"),
        &[],
    );
    h.wait_settled("web");
    let r = h.request(
        "POST",
        "/2021-10-31/functions/web/url",
        &[("content-type", "application/json")],
        br#"{"AuthType":"NONE"}"#,
    );
    assert_eq!(r.status, 201, "{}", r.text());
    r.json()["FunctionUrl"].as_str().unwrap().to_string()
}

// ---------- the TLS (h1/h2) client ----------

enum Sender {
    H1(hyper::client::conn::http1::SendRequest<Full<Bytes>>),
    H2(hyper::client::conn::http2::SendRequest<Full<Bytes>>),
}

/// One TLS connection, with the SHA-256 of the certificate the server presented.
struct TlsConn {
    sender: Sender,
    fingerprint: String,
}

fn client_config(ca_pem: &Path, alpn: &[&[u8]]) -> Arc<rustls::ClientConfig> {
    use rustls_pki_types::{CertificateDer, pem::PemObject};
    let mut roots = rustls::RootCertStore::empty();
    for c in CertificateDer::pem_file_iter(ca_pem).unwrap() {
        roots.add(c.unwrap()).unwrap();
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut c = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    c.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    Arc::new(c)
}

fn sha256_hex(der: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(der))
}

async fn tls_connect(addr: SocketAddr, ca_pem: &Path, proto: Proto) -> TlsConn {
    let alpn: &[u8] = if proto == Proto::H2 {
        b"h2"
    } else {
        b"http/1.1"
    };
    let connector = tokio_rustls::TlsConnector::from(client_config(ca_pem, &[alpn]));
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let name = rustls_pki_types::ServerName::try_from("localhost").unwrap();
    let tls = connector.connect(name, tcp).await.expect("TLS handshake");
    let (_, session) = tls.get_ref();
    assert_eq!(session.alpn_protocol(), Some(alpn));
    let fingerprint = sha256_hex(&session.peer_certificates().unwrap()[0]);
    let io = TokioIo::new(tls);
    let sender = if proto == Proto::H2 {
        let (s, conn) = hyper::client::conn::http2::handshake(TokioExecutor::new(), io)
            .await
            .unwrap();
        tokio::spawn(conn);
        Sender::H2(s)
    } else {
        let (s, conn) = hyper::client::conn::http1::handshake(io).await.unwrap();
        tokio::spawn(conn);
        Sender::H1(s)
    };
    TlsConn {
        sender,
        fingerprint,
    }
}

impl TlsConn {
    async fn send(&mut self, req: &Req) -> Resp {
        self.try_send(req).await.expect("request")
    }

    async fn try_send(&mut self, req: &Req) -> hyper::Result<Resp> {
        let mut b = http::Request::builder()
            .method(req.method)
            .uri(&req.path)
            .header("host", "localhost");
        if let Sender::H2(_) = self.sender {
            b = b.uri(format!("https://localhost{}", req.path));
        }
        for (k, v) in &req.headers {
            b = b.header(k, v);
        }
        let r = b.body(Full::new(Bytes::from(req.body.clone()))).unwrap();
        let resp = match &mut self.sender {
            Sender::H1(s) => {
                s.ready().await?;
                s.send_request(r).await
            }
            Sender::H2(s) => {
                s.ready().await?;
                s.send_request(r).await
            }
        }?;
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let body = resp
            .into_body()
            .collect()
            .await
            .unwrap()
            .to_bytes()
            .to_vec();
        Ok(Resp {
            status,
            headers,
            body,
        })
    }
}

// ---------- the HTTP/3 client (aioquic) ----------

/// The venv's python with aioquic (made once, shared).
fn h3_python() -> PathBuf {
    common::python_venv("h3venv", AIOQUIC)
}

/// Sends `reqs` one after another on one HTTP/3 connection; `Err` per failed request.
fn h3_send(addr: SocketAddr, ca_pem: &Path, reqs: &[Req]) -> Vec<Result<Resp, String>> {
    h3_send_mode(addr, ca_pem, reqs, false)
        .into_iter()
        .map(|r| r.map(|(resp, _)| resp))
        .collect()
}

/// Like [`h3_send`]; with `zero_rtt`, on a resumed connection as 0-RTT early data. Each answer
/// says whether the server accepted early data.
fn h3_send_mode(
    addr: SocketAddr,
    ca_pem: &Path,
    reqs: &[Req],
    zero_rtt: bool,
) -> Vec<Result<(Resp, bool), String>> {
    let json: Vec<_> = reqs
        .iter()
        .map(|r| {
            serde_json::json!({
                "method": r.method, "path": r.path, "headers": r.headers, "body_b64": b64(&r.body),
            })
        })
        .collect();
    let input = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(input.path(), serde_json::to_vec(&json).unwrap()).unwrap();
    let out = Command::new(h3_python())
        .arg(repo().join("tests/h3_client.py"))
        .args(["127.0.0.1", &addr.port().to_string()])
        .arg(ca_pem)
        .args(zero_rtt.then_some("0rtt"))
        .stdin(std::fs::File::open(input.path()).unwrap())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "h3_client.py: {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    let answers: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).unwrap();
    answers
        .into_iter()
        .map(|a| {
            if let Some(e) = a["error"].as_str() {
                return Err(e.to_string());
            }
            let mut headers = http::HeaderMap::new();
            for h in a["headers"].as_array().unwrap() {
                headers.append(
                    http::HeaderName::from_bytes(h[0].as_str().unwrap().as_bytes()).unwrap(),
                    http::HeaderValue::from_str(h[1].as_str().unwrap()).unwrap(),
                );
            }
            let resp = Resp {
                status: a["status"].as_u64().unwrap() as u16,
                headers,
                body: unb64(a["body_b64"].as_str().unwrap()),
            };
            Ok((resp, a["early_data_accepted"].as_bool().unwrap_or(false)))
        })
        .collect()
}

// ---------- helpers ----------

fn tls_addr(h: &Hearth) -> SocketAddr {
    let ready: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(h.dir.path().join("ready.json")).unwrap())
            .unwrap();
    ready["tls_listen"]
        .as_str()
        .expect("tls_listen in the ready file")
        .parse()
        .unwrap()
}

fn dev_cert(h: &Hearth) -> PathBuf {
    h.data_dir().join("tls/dev-cert.pem")
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

/// Runs every case over `proto`; returns the responses (for extra checks).
fn run_matrix(rt: &tokio::runtime::Runtime, h: &Hearth, proto: Proto) -> Vec<Resp> {
    let (addr, ca) = (tls_addr(h), dev_cert(h));
    let cases = cases();
    let answers: Vec<Resp> = match proto {
        Proto::H3 => {
            let reqs: Vec<Req> = cases.iter().map(|c| c.1.clone()).collect();
            h3_send(addr, &ca, &reqs)
                .into_iter()
                .zip(&cases)
                .map(|(r, c)| r.unwrap_or_else(|e| panic!("{proto:?} {}: {e}\n{}", c.0, h.log())))
                .collect()
        }
        _ => rt.block_on(async {
            // h2: every case on one connection; HTTP/1.1: a connection per case (a 413 may
            // close its connection).
            let mut conn = tls_connect(addr, &ca, proto).await;
            let mut out = vec![];
            for c in &cases {
                if proto == Proto::H1 {
                    conn = tls_connect(addr, &ca, proto).await;
                }
                out.push(conn.send(&c.1).await);
            }
            out
        }),
    };
    for ((name, _, check), resp) in cases.iter().zip(&answers) {
        eprintln!("{proto:?}: {name}");
        check(resp);
    }
    answers
}

#[test]
fn same_cases_over_h1_h2_and_h3() {
    let h = Hearth::start_with(TLS_DEV);
    let url = deploy_matrix_functions(&h);
    let port = tls_addr(&h).port();
    // With TLS on, URLs are https on the TLS listener.
    assert_eq!(url, format!("https://127.0.0.1:{port}/fn/web/"));
    let rt = rt();
    for proto in [Proto::H1, Proto::H2] {
        for r in run_matrix(&rt, &h, proto) {
            assert_eq!(
                r.header("alt-svc"),
                Some(format!("h3=\":{port}\"; ma=86400").as_str())
            );
        }
    }
    run_matrix(&rt, &h, Proto::H3);
}

fn write_cert(dir: &Path, name: &str) -> (PathBuf, PathBuf, String) {
    let made = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
    let (cert, key) = (
        dir.join(format!("{name}.pem")),
        dir.join(format!("{name}.key")),
    );
    std::fs::write(&cert, made.cert.pem()).unwrap();
    std::fs::write(&key, made.signing_key.serialize_pem()).unwrap();
    (cert, key, sha256_hex(made.cert.der()))
}

#[test]
fn certificate_reload_on_sighup_keeps_open_connections() {
    let certs = tempfile::tempdir().unwrap();
    let (cert_a, key_a, fp_a) = write_cert(certs.path(), "a");
    let (cert, key) = (certs.path().join("cert.pem"), certs.path().join("key.pem"));
    std::fs::copy(&cert_a, &cert).unwrap();
    std::fs::copy(&key_a, &key).unwrap();
    let h = Hearth::start_with(&format!(
        "[tls]\nlisten = \"127.0.0.1:0\"\ncert = \"{}\"\nkey = \"{}\"\n",
        cert.display(),
        key.display()
    ));
    let addr = tls_addr(&h);
    let rt = rt();
    let not_found = Req {
        method: "GET",
        path: "/nope".into(),
        headers: vec![],
        body: vec![],
    };
    let mut old = rt.block_on(tls_connect(addr, &cert_a, Proto::H2));
    assert_eq!(old.fingerprint, fp_a);

    let (cert_b, key_b, fp_b) = write_cert(certs.path(), "b");
    for (from, to) in [(&key_b, &key), (&cert_b, &cert)] {
        let tmp = to.with_extension("tmp");
        std::fs::copy(from, &tmp).unwrap();
        std::fs::rename(&tmp, to).unwrap();
    }
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(h.pid()),
        nix::sys::signal::Signal::SIGHUP,
    )
    .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let c = rt.block_on(async {
            let cfg = client_config(&cert_b, &[b"h2"]);
            let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
            let name = rustls_pki_types::ServerName::try_from("localhost").unwrap();
            tokio_rustls::TlsConnector::from(cfg)
                .connect(name, tcp)
                .await
                .is_ok()
        });
        if c {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "new certificate never served:\n{}",
            h.log()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let mut new = rt.block_on(tls_connect(addr, &cert_b, Proto::H2));
    assert_eq!(new.fingerprint, fp_b);
    assert_eq!(rt.block_on(new.send(&not_found)).status, 404);
    // The connection opened before the reload still works, on the old certificate.
    assert_eq!(rt.block_on(old.send(&not_found)).status, 404);
    assert_eq!(old.fingerprint, fp_a);
    // HTTP/3 shares the resolver: new QUIC connections get the new certificate too.
    let r = h3_send(addr, &cert_b, std::slice::from_ref(&not_found));
    assert_eq!(r[0].as_ref().unwrap().status, 404);
}

#[test]
fn dev_tls_certificate_is_made_once_and_reused() {
    let mut h = Hearth::start_with(TLS_DEV);
    let cert = std::fs::read(dev_cert(&h)).unwrap();
    let key = std::fs::read(h.data_dir().join("tls/dev-key.pem")).unwrap();
    let rt = rt();
    let fp = rt
        .block_on(tls_connect(tls_addr(&h), &dev_cert(&h), Proto::H1))
        .fingerprint;
    assert!(
        h.log().contains(&fp),
        "fingerprint {fp} not logged:\n{}",
        h.log()
    );
    h.restart();
    assert_eq!(std::fs::read(dev_cert(&h)).unwrap(), cert);
    assert_eq!(
        std::fs::read(h.data_dir().join("tls/dev-key.pem")).unwrap(),
        key
    );
    let again = rt
        .block_on(tls_connect(tls_addr(&h), &dev_cert(&h), Proto::H1))
        .fingerprint;
    assert_eq!(again, fp);
}

#[test]
fn hostile_input_leaves_the_listeners_serving() {
    use std::io::{Read, Write};
    let h = Hearth::start_with(TLS_DEV);
    let (addr, ca) = (tls_addr(&h), dev_cert(&h));
    // Garbage UDP datagrams: empty, short, a fake long-header Initial, random full-size ones.
    let udp = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let mut fake_initial = vec![0xc0, 0, 0, 0, 1, 8];
    fake_initial.extend([0xAA; 1194]);
    for d in [
        vec![],
        vec![0u8; 3],
        fake_initial,
        (0..1200).map(|_| fastrand::u8(..)).collect(),
    ] {
        udp.send_to(&d, addr).unwrap();
    }
    for _ in 0..50 {
        let d: Vec<u8> = (0..fastrand::usize(1..1500))
            .map(|_| fastrand::u8(..))
            .collect();
        udp.send_to(&d, addr).unwrap();
    }
    // Plain HTTP and random bytes on the TLS port: the connection is closed.
    for bytes in [
        b"GET / HTTP/1.1\r\nhost: x\r\n\r\n".to_vec(),
        vec![0x16, 3, 1, 0xff, 0xff, 0, 0],
    ] {
        let mut s = std::net::TcpStream::connect(addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        s.write_all(&bytes).unwrap();
        let mut buf = vec![];
        let _ = s.read_to_end(&mut buf);
        assert!(
            !buf.starts_with(b"HTTP/"),
            "plaintext answered on the TLS port"
        );
    }
    let rt = rt();
    // A client offering only an unknown ALPN protocol: refused in the handshake.
    let refused = rt.block_on(async {
        let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
        let name = rustls_pki_types::ServerName::try_from("localhost").unwrap();
        tokio_rustls::TlsConnector::from(client_config(&ca, &[b"spdy/1"]))
            .connect(name, tcp)
            .await
    });
    assert!(refused.is_err(), "unknown ALPN accepted");
    // Oversized headers: h1 431, h2 a GOAWAY (or 431), h3 431 (SETTINGS_MAX_FIELD_SECTION_SIZE).
    // 80 KiB of header fields, 2 KiB each (aioquic refuses to encode larger single fields).
    let huge = Req {
        method: "GET",
        path: "/nope".into(),
        headers: (0..40)
            .map(|i| (format!("x-big-{i}"), "x".repeat(2 * 1024)))
            .collect(),
        body: vec![],
    };
    let r = rt.block_on(async { tls_connect(addr, &ca, Proto::H1).await.send(&huge).await });
    assert_eq!(r.status, 431);
    // h2 answers with a connection error (GOAWAY ENHANCE_YOUR_CALM) or 431.
    let r = rt.block_on(async {
        tls_connect(addr, &ca, Proto::H2)
            .await
            .try_send(&huge)
            .await
    });
    assert!(
        r.as_ref().map(|r| r.status == 431).unwrap_or(true),
        "h2: {:?}",
        r.map(|r| r.status)
    );
    let not_found = Req {
        method: "GET",
        path: "/nope".into(),
        headers: vec![],
        body: vec![],
    };
    let h3 = h3_send(addr, &ca, &[huge, not_found.clone()]);
    // h3 answers 431; aioquic may already refuse to encode a section over the server's
    // advertised SETTINGS_MAX_FIELD_SECTION_SIZE.
    match &h3[0] {
        Ok(r) => assert_eq!(r.status, 431),
        Err(e) => assert!(e.contains("lsqpack") || e.contains("too long"), "{e}"),
    }
    // The same connection goes on.
    assert_eq!(h3[1].as_ref().map(|r| r.status), Ok(404));
    // Still serving on all three.
    for proto in [Proto::H1, Proto::H2] {
        let r = rt.block_on(async { tls_connect(addr, &ca, proto).await.send(&not_found).await });
        assert_eq!(r.status, 404);
    }
    let r = h3_send(addr, &ca, &[not_found]);
    assert_eq!(r[0].as_ref().unwrap().status, 404, "{}", h.log());
}

#[test]
fn shutdown_drains_in_flight_h2_and_h3_requests() {
    let mut h = Hearth::start_with(TLS_DEV);
    h.deploy(
        "slow",
        "python3.11",
        "hello.handler",
        &example("hello-py"),
        &["--timeout", "30"],
    );
    assert_eq!(h.invoke("slow", "{}").status, 200);
    let (addr, ca) = (tls_addr(&h), dev_cert(&h));
    let slow = invoke("slow", br#"{"sleep": 3}"#);
    let (ca2, slow2) = (ca.clone(), slow.clone());
    let over_h2 = std::thread::spawn(move || {
        rt().block_on(async { tls_connect(addr, &ca2, Proto::H2).await.send(&slow2).await })
    });
    let over_h3 = std::thread::spawn(move || h3_send(addr, &ca, &[slow]));
    std::thread::sleep(Duration::from_millis(1500));
    let status = h.stop();
    let r2 = over_h2.join().unwrap();
    assert_eq!(r2.status, 200, "{}", r2.text());
    let r3 = over_h3.join().unwrap().remove(0).expect("h3 answer");
    assert_eq!(r3.status, 200, "{}", r3.text());
    assert!(status.success(), "exit {status}\n{}", h.log());
}

#[test]
fn zero_rtt_invoke_waits_for_the_handshake() {
    let h = Hearth::start_with(TLS_DEV);
    h.deploy("echo", "provided", "", &example("echo-sh"), &[]);
    let (addr, ca) = (tls_addr(&h), dev_cert(&h));
    let reqs = [
        invoke("echo", br#"{"early":true}"#),
        Req {
            method: "GET",
            path: "/nope".into(),
            headers: vec![],
            body: vec![],
        },
    ];
    let answers = h3_send_mode(addr, &ca, &reqs, true);
    let mut answers = answers.into_iter();
    let (sync, early) = answers
        .next()
        .unwrap()
        .unwrap_or_else(|e| panic!("{e}\n{}", h.log()));
    assert!(
        early,
        "the resumed connection's early data was not accepted"
    );
    // The POST arrived in 0-RTT data; it ran once the handshake completed.
    assert_eq!(sync.status, 200, "{}", sync.text());
    assert_eq!(sync.json(), serde_json::json!({"early": true}));
    assert_eq!(answers.next().unwrap().unwrap().0.status, 404);
}
