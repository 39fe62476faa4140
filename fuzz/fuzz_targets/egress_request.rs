//! Fuzzes the egress proxy's request-target parser and allow-list matcher.
//!
//! The first byte chooses CONNECT (low bit); the rest up to a 0xFF byte is the request target,
//! then rule strings separated by 0xFE. Every input must give `Ok` or an error, never a panic;
//! a parsed target must be well-formed, and no name rule may ever let a name through to a
//! loopback or link-local address.
#![no_main]

use hearth::agent::egress::rules::{AllowList, Host, is_special, parse_target};
use libfuzzer_sys::fuzz_target;
use std::net::SocketAddr;

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let mut parts = rest.splitn(2, |b| *b == 0xFF);
    let target = String::from_utf8_lossy(parts.next().unwrap_or_default());
    let rules: Vec<String> = parts
        .next()
        .unwrap_or_default()
        .split(|b| *b == 0xFE)
        .filter(|r| !r.is_empty())
        .map(|r| String::from_utf8_lossy(r).into_owned())
        .collect();
    let Ok(t) = parse_target(mode & 1 == 1, &target) else {
        return;
    };
    assert!(t.port != 0);
    if let Host::Name(n) = &t.host {
        assert!(!n.is_empty() && !n.ends_with('.') && n.len() <= 253);
        assert_eq!(n, &n.to_ascii_lowercase());
    }
    let resolved: Vec<SocketAddr> = match &t.host {
        Host::Ip(ip) => vec![SocketAddr::new(*ip, t.port)],
        Host::Name(_) => ["127.0.0.1", "169.254.169.254", "[::1]", "93.184.216.34", "[fe80::1]"]
            .iter()
            .map(|a| format!("{a}:{}", t.port).parse().unwrap())
            .collect(),
    };
    for list in [AllowList::parse(&rules), AllowList::parse(&["*.example.com:*".into()])] {
        let Ok(list) = list else { continue };
        if let Ok(ok) = list.permitted(&t, &resolved) {
            assert!(!ok.is_empty());
            for a in ok {
                assert!(resolved.contains(&a));
                assert!(!is_special(a.ip()) || list.addr_allowed(a.ip(), t.port));
            }
        }
    }
});
