//! Issue #5, "Egress through a per-tenant proxy": a function with `VpcConfig` reaches the
//! destinations its tenant's allow-list names through the proxy in its network namespace, and
//! nothing else; a function without it has no proxy and no route.

mod common;

use common::{Hearth, write_bootstrap};
use serde_json::Value;
use std::io::{Read, Write};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

/// A tiny HTTP server on the host's loopback answering every request with `body`.
struct Server {
    port: u16,
    /// Connections it has accepted.
    hits: Arc<AtomicUsize>,
}

fn server(body: &'static str) -> Server {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let hits = Arc::new(AtomicUsize::new(0));
    let counter = hits.clone();
    std::thread::spawn(move || {
        for mut conn in listener.incoming().flatten() {
            counter.fetch_add(1, Ordering::SeqCst);
            std::thread::spawn(move || {
                let mut req = Vec::new();
                let mut buf = [0u8; 4096];
                while !req.windows(4).any(|w| w == b"\r\n\r\n") {
                    match conn.read(&mut buf) {
                        Ok(0) | Err(_) => return,
                        Ok(n) => req.extend_from_slice(&buf[..n]),
                    }
                }
                let resp = format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = conn.write_all(resp.as_bytes());
            });
        }
    });
    Server { port, hits }
}

/// A bash function whose event is `"MODE DEST"`; it answers `{"rc": N, "out": "..."}`.
/// `--noproxy ''` makes curl use the proxy variables even for 127.0.0.1 (in `no_proxy` so the
/// Runtime API is never proxied).
const BOOTSTRAP: &str = r#"#!/usr/bin/bash
api="http://$AWS_LAMBDA_RUNTIME_API/2018-06-01/runtime/invocation"
trap '' PIPE  # the proxy may close before reading all of a hostile request
raw() {
  exec 3<>/dev/tcp/127.0.0.1/3128 || return 7
  printf '%s' "$1" >&3
  IFS= read -r -t 10 line <&3
  out="$line"
  exec 3<&-
}
while true; do
  curl -sS -D /tmp/h -o /tmp/ev "$api/next"
  id=$(tr -d '\r' < /tmp/h | awk -F': ' 'tolower($1)=="lambda-runtime-aws-request-id" {print $2}')
  read -r mode dest < <(tr -d '"' < /tmp/ev)
  rc=0; out=""
  case "$mode" in
    env) out="$http_proxy|$HTTPS_PROXY|$https_proxy|$HTTP_PROXY|$no_proxy|$NO_PROXY" ;;
    plain) out=$(curl -sS --noproxy '' -m 10 -w ' code=%{http_code}' "http://$dest/x" 2>&1); rc=$? ;;
    tunnel) out=$(curl -sS --noproxy '' -m 10 -p -w ' code=%{http_code} connect=%{http_connect}' "http://$dest/x" 2>&1); rc=$? ;;
    viaproxy) out=$(curl -sS -m 5 --proxy http://127.0.0.1:3128 "http://$dest/x" 2>&1); rc=$? ;;
    direct) out=$(curl -sS -m 5 --noproxy '*' "http://$dest/x" 2>&1); rc=$? ;;
    garbage) raw $'BLAH\x01 nonsense\r\n\r\n'; rc=$? ;;
    badport) raw $'CONNECT 127.0.0.1:http HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n'; rc=$? ;;
    manyheaders)
      req=$'GET http://'"$dest"$'/ HTTP/1.1\r\n'
      for i in $(seq 1 200); do req+="X-H$i: v"$'\r\n'; done
      raw "$req"$'\r\n'; rc=$? ;;
    bigheader)
      big=$(head -c 20000 /dev/zero | tr '\0' a)
      raw $'GET http://'"$dest"$'/ HTTP/1.1\r\nX-Big: '"$big"$'\r\n\r\n'; rc=$? ;;
  esac
  out=$(printf '%s' "$out" | tr -cd '[:print:]' | tr -d '"\\')
  printf '{"rc":%d,"out":"%s"}' "$rc" "$out" > /tmp/resp
  curl -sS -o /dev/null -X POST "$api/$id/response" --data-binary @/tmp/resp
done
"#;

fn deploy(h: &Hearth, name: &str, extra: &[&str]) {
    let dir = h.dir.path().join(format!("code-{name}"));
    write_bootstrap(&dir, BOOTSTRAP);
    let mut args = vec!["--timeout", "60"];
    args.extend(extra);
    h.deploy(name, "provided", "", &dir, &args);
}

/// Runs one mode; returns (curl's exit code, its output).
fn run(h: &Hearth, name: &str, mode: &str, dest: &str) -> (i64, String) {
    let r = h.invoke(name, &format!("\"{mode} {dest}\""));
    assert_eq!(r.status, 200, "{}\n{}", r.text(), h.log());
    assert_eq!(r.header("x-amz-function-error"), None, "{}", r.text());
    let v: Value = r.json();
    (
        v["rc"].as_i64().unwrap(),
        v["out"].as_str().unwrap().to_string(),
    )
}

fn start(allowed: &Server, forbidden: &Server) -> Hearth {
    Hearth::start_with(&format!(
        "[egress.allow]\n\"000000000000\" = [\"127.0.0.1:{}\", \"localhost:{}\"]\n",
        allowed.port, forbidden.port
    ))
}

#[test]
fn egress_reaches_only_the_allow_list() {
    let allowed = server("allowed-body");
    let forbidden = server("forbidden-body");
    let h = start(&allowed, &forbidden);
    deploy(&h, "out", &["--egress"]);
    deploy(&h, "closed", &[]);
    let ok = format!("127.0.0.1:{}", allowed.port);
    let no = format!("127.0.0.1:{}", forbidden.port);

    let c = h.wait_settled("out");
    assert_eq!(c["VpcConfig"]["VpcId"], "hearth-egress", "{c}");
    assert_eq!(c["VpcConfig"]["SubnetIds"].as_array().unwrap().len(), 1);
    let proxy = "http://127.0.0.1:3128";
    let no_proxy = "127.0.0.1,localhost";
    let (_, env) = run(&h, "out", "env", "-");
    assert_eq!(
        env,
        [proxy, proxy, proxy, proxy, no_proxy, no_proxy].join("|")
    );

    // Allowed: plain HTTP through the proxy, and a CONNECT tunnel.
    let (rc, out) = run(&h, "out", "plain", &ok);
    assert_eq!((rc, out.as_str()), (0, "allowed-body code=200"));
    let (rc, out) = run(&h, "out", "tunnel", &ok);
    assert_eq!((rc, out.as_str()), (0, "allowed-body code=200 connect=200"));

    // Forbidden: 403 from the proxy, both ways; a name rule resolving to loopback is refused.
    let (rc, out) = run(&h, "out", "plain", &no);
    assert_eq!(rc, 0, "{out}");
    assert!(out.ends_with("code=403"), "{out}");
    assert!(out.contains("not in the allow-list"), "{out}");
    let (rc, out) = run(&h, "out", "tunnel", &no);
    assert_ne!(rc, 0, "{out}");
    assert!(out.contains("connect=403"), "{out}");
    let (_, out) = run(&h, "out", "plain", &format!("localhost:{}", forbidden.port));
    assert!(
        out.ends_with("code=403") && out.contains("loopback"),
        "{out}"
    );
    // No way around the proxy.
    let (rc, out) = run(&h, "out", "direct", &ok);
    assert_eq!(rc, 7, "{out}");

    // Without egress: no listener, no route.
    let c = h.wait_settled("closed");
    assert_eq!(c["VpcConfig"]["VpcId"], "", "{c}");
    let (_, env) = run(&h, "closed", "env", "-");
    assert_eq!(env, "|||||");
    for mode in ["viaproxy", "direct"] {
        let (rc, out) = run(&h, "closed", mode, &ok);
        assert_eq!(rc, 7, "{mode}: {out}");
    }
    assert_eq!(forbidden.hits.load(Ordering::SeqCst), 0);
    let served = allowed.hits.load(Ordering::SeqCst);
    assert_eq!(served, 2);

    let m = h.get_admin("/metrics").text();
    assert!(
        m.contains("hearth_agent_egress_connections_total{outcome=\"allowed\"} 2"),
        "{m}"
    );
    assert!(
        m.contains("hearth_agent_egress_connections_total{outcome=\"refused\"} 3"),
        "{m}"
    );

    // Turning it off makes a new descriptor: the next invoke has no proxy.
    let out = h.cli(&["fn", "update-config", "out", "--no-egress"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let c = h.wait_settled("out");
    assert_eq!(c["VpcConfig"]["SubnetIds"], serde_json::json!([]), "{c}");
    let (rc, out) = run(&h, "out", "viaproxy", &ok);
    assert_eq!(rc, 7, "{out}");
    // … and on again.
    let out = h.cli(&["fn", "update-config", "out", "--egress"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    h.wait_settled("out");
    let (rc, out) = run(&h, "out", "plain", &ok);
    assert_eq!((rc, out.as_str()), (0, "allowed-body code=200"));
}

#[test]
fn proxy_answers_hostile_requests_and_keeps_serving() {
    let allowed = server("allowed-body");
    let forbidden = server("forbidden-body");
    let h = start(&allowed, &forbidden);
    deploy(&h, "out", &["--egress"]);
    let ok = format!("127.0.0.1:{}", allowed.port);
    for (mode, status) in [
        ("garbage", "HTTP/1.1 400"),
        ("badport", "HTTP/1.1 400"),
        ("manyheaders", "HTTP/1.1 431"),
        ("bigheader", "HTTP/1.1 431"),
    ] {
        let (rc, line) = run(&h, "out", mode, &ok);
        assert_eq!(rc, 0, "{mode}: {line}");
        assert!(line.starts_with(status), "{mode}: {line:?}");
    }
    assert_eq!(allowed.hits.load(Ordering::SeqCst), 0);
    let (rc, out) = run(&h, "out", "plain", &ok);
    assert_eq!((rc, out.as_str()), (0, "allowed-body code=200"));

    // VpcConfig is validated like Lambda's.
    let r = h.request(
        "PUT",
        "/2015-03-31/functions/out/configuration",
        &[],
        serde_json::json!({"VpcConfig": {"SubnetIds": vec!["s"; 17]}})
            .to_string()
            .as_bytes(),
    );
    assert_eq!(r.status, 400, "{}", r.text());
    assert_eq!(r.error_type(), "InvalidParameterValueException");
    let r = h.request(
        "PUT",
        "/2015-03-31/functions/out/configuration",
        &[],
        br#"{"VpcConfig": {"SubnetIds": "not-a-list"}}"#,
    );
    assert_eq!(r.status, 400, "{}", r.text());
}
