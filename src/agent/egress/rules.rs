//! The pure part of the egress proxy: the request target a function asks for and the tenant's
//! allow-list it is checked against (both outside input; see fuzz/fuzz_targets/egress_request.rs).
//!
//! Rules: `host:port`, `*.domain.suffix:port`, `IP:port`, `CIDR:port` (IPv6 in brackets:
//! `[::1]:443`, `[fd00::/8]:*`); port `*` is any port. Host rules match the requested name
//! (case-insensitive, one trailing dot ignored); IP and CIDR rules match the addresses a name
//! resolves to (or an IP literal). Loopback, link-local and unspecified addresses are reached only
//! through an IP rule for that address or a CIDR rule whose network is itself such an address, so
//! a name rule (`*.example.com`) cannot be pointed at 127.0.0.1 by DNS.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// Longest request target (CONNECT authority or absolute URI) the parser looks at.
pub const MAX_TARGET: usize = 8192;
/// Longest host name (RFC 1035).
const MAX_NAME: usize = 253;
/// Most rules per tenant.
pub const MAX_RULES: usize = 1024;

/// Why a request target was refused before any allow-list check (answered with 400).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TargetError {
    #[error("request target longer than {MAX_TARGET} bytes")]
    TooLong,
    #[error("only http:// URIs can be proxied without CONNECT (use CONNECT for https)")]
    Scheme,
    #[error("user info in the request target is not allowed")]
    UserInfo,
    #[error("missing host")]
    NoHost,
    #[error("CONNECT needs host:port")]
    NoPort,
    #[error("invalid port {0:?}")]
    Port(String),
    #[error("invalid host {0:?}")]
    Host(String),
}

/// A host as requested: a DNS name (lowercase, no trailing dot) or an IP literal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Host {
    Name(String),
    Ip(IpAddr),
}

/// Where a function wants to go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub host: Host,
    pub port: u16,
}

impl std::fmt::Display for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.host {
            Host::Name(n) => write!(f, "{n}:{}", self.port),
            Host::Ip(ip) => write!(f, "{}", SocketAddr::new(*ip, self.port)),
        }
    }
}

/// Parses a request target: the authority of `CONNECT host:port`, or the absolute URI of a
/// plain proxied request (`http://host[:port]/path`, port 80 by default).
pub fn parse_target(connect: bool, target: &str) -> Result<Target, TargetError> {
    if target.len() > MAX_TARGET {
        return Err(TargetError::TooLong);
    }
    if connect {
        let (host, port) = split_host_port(target)?;
        let port = port.ok_or(TargetError::NoPort)?;
        return Ok(Target {
            host: parse_host(host)?,
            port: parse_port(port)?,
        });
    }
    let scheme_end = target.find("://").ok_or(TargetError::Scheme)?;
    if !target[..scheme_end].eq_ignore_ascii_case("http") {
        return Err(TargetError::Scheme);
    }
    let rest = &target[scheme_end + 3..];
    let authority = &rest[..rest.find(['/', '?', '#']).unwrap_or(rest.len())];
    if authority.contains('@') {
        return Err(TargetError::UserInfo);
    }
    let (host, port) = split_host_port(authority)?;
    Ok(Target {
        host: parse_host(host)?,
        port: port.map_or(Ok(80), parse_port)?,
    })
}

/// `host`, `host:port`, `[v6]`, `[v6]:port` → (host, port).
fn split_host_port(s: &str) -> Result<(&str, Option<&str>), TargetError> {
    if s.is_empty() {
        return Err(TargetError::NoHost);
    }
    if let Some(rest) = s.strip_prefix('[') {
        let end = rest.find(']').ok_or_else(|| TargetError::Host(s.into()))?;
        let after = &rest[end + 1..];
        return match after.strip_prefix(':') {
            Some(port) => Ok((&s[..end + 2], Some(port))),
            None if after.is_empty() => Ok((&s[..end + 2], None)),
            None => Err(TargetError::Host(s.into())),
        };
    }
    match s.rsplit_once(':') {
        Some((h, p)) => Ok((h, Some(p))),
        None => Ok((s, None)),
    }
}

fn parse_port(p: &str) -> Result<u16, TargetError> {
    let bad = || TargetError::Port(p.chars().take(16).collect());
    if p.is_empty() || p.len() > 5 || !p.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    match p.parse::<u16>() {
        Ok(0) | Err(_) => Err(bad()),
        Ok(n) => Ok(n),
    }
}

/// An IP literal (`1.2.3.4`, `[::1]`) or a DNS name, normalized.
fn parse_host(h: &str) -> Result<Host, TargetError> {
    if h.is_empty() {
        return Err(TargetError::NoHost);
    }
    if let Some(v6) = h.strip_prefix('[').and_then(|r| r.strip_suffix(']')) {
        return v6
            .parse::<Ipv6Addr>()
            .map(|ip| Host::Ip(IpAddr::V6(ip).to_canonical()))
            .map_err(|_| TargetError::Host(h.into()));
    }
    if let Ok(ip) = h.parse::<Ipv4Addr>() {
        return Ok(Host::Ip(IpAddr::V4(ip)));
    }
    normalize_name(h)
        .map(Host::Name)
        .ok_or_else(|| TargetError::Host(h.chars().take(64).collect()))
}

/// Lowercase LDH name without its (single) trailing dot; `None` unless every label is 1..=63
/// letters, digits, `-` or `_` and the last label is not all digits (so `127.1` or `2130706433`,
/// which resolvers read as IPv4 addresses, never pass as names).
pub fn normalize_name(h: &str) -> Option<String> {
    let h = h.strip_suffix('.').unwrap_or(h);
    if h.is_empty() || h.len() > MAX_NAME {
        return None;
    }
    let labels_ok = h.split('.').all(|l| {
        !l.is_empty()
            && l.len() <= 63
            && !l.starts_with('-')
            && l.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    });
    let last = h.rsplit('.').next().unwrap_or("");
    (labels_ok && !last.bytes().all(|b| b.is_ascii_digit())).then(|| h.to_ascii_lowercase())
}

/// What a rule's host part matches.
#[derive(Debug, Clone, PartialEq, Eq)]
enum HostRule {
    /// Exactly this name.
    Exact(String),
    /// Names ending in `.suffix` (not the suffix itself).
    Suffix(String),
    /// A network (an IP address is a full-length prefix).
    Net { net: IpAddr, prefix: u8 },
}

/// One allow-list entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    host: HostRule,
    /// `None` is any port.
    port: Option<u16>,
}

impl std::str::FromStr for Rule {
    type Err = String;

    fn from_str(s: &str) -> Result<Rule, String> {
        if s.len() > MAX_NAME + 16 {
            return Err("too long".into());
        }
        let (host, port) = if let Some(rest) = s.strip_prefix('[') {
            let (inner, after) = rest.split_once(']').ok_or("missing ']'")?;
            (inner, after.strip_prefix(':').ok_or("missing :port")?)
        } else {
            let (h, p) = s.rsplit_once(':').ok_or("missing :port (use :* for any)")?;
            if h.contains(':') {
                return Err("an IPv6 address needs brackets: [::1]:443, [fd00::/8]:*".into());
            }
            (h, p)
        };
        let port = match port {
            "*" => None,
            p => Some(parse_port(p).map_err(|e| e.to_string())?),
        };
        Ok(Rule {
            host: parse_host_rule(host)?,
            port,
        })
    }
}

fn parse_host_rule(h: &str) -> Result<HostRule, String> {
    if let Some((addr, len)) = h.split_once('/') {
        let net: IpAddr = addr
            .parse()
            .map_err(|_| format!("{addr:?} is not an IP address"))?;
        let max = if net.is_ipv4() { 32 } else { 128 };
        let prefix = len
            .parse::<u8>()
            .ok()
            .filter(|p| *p <= max && len.bytes().all(|b| b.is_ascii_digit()))
            .ok_or_else(|| format!("prefix length {len:?} is not 0..={max}"))?;
        let net = net.to_canonical();
        let prefix = if net.is_ipv4() && max == 128 {
            prefix.saturating_sub(96)
        } else {
            prefix
        };
        if mask(net, prefix) != net {
            return Err(format!("{h} has host bits set"));
        }
        return Ok(HostRule::Net { net, prefix });
    }
    if let Ok(ip) = h.parse::<IpAddr>() {
        let ip = ip.to_canonical();
        let prefix = if ip.is_ipv4() { 32 } else { 128 };
        return Ok(HostRule::Net { net: ip, prefix });
    }
    if let Some(suffix) = h.strip_prefix("*.") {
        return normalize_name(suffix)
            .map(HostRule::Suffix)
            .ok_or_else(|| format!("{suffix:?} is not a host name"));
    }
    normalize_name(h)
        .map(HostRule::Exact)
        .ok_or_else(|| format!("{h:?} is not a host name, *.domain, IP or CIDR"))
}

/// `ip` with all but its first `prefix` bits cleared.
fn mask(ip: IpAddr, prefix: u8) -> IpAddr {
    match ip {
        IpAddr::V4(a) => {
            let m = u32::MAX.checked_shl(32 - prefix as u32).unwrap_or(0);
            IpAddr::V4(Ipv4Addr::from(u32::from(a) & m))
        }
        IpAddr::V6(a) => {
            let m = u128::MAX.checked_shl(128 - prefix as u32).unwrap_or(0);
            IpAddr::V6(Ipv6Addr::from(u128::from(a) & m))
        }
    }
}

/// Loopback, link-local, unspecified or broadcast: reachable only through an explicit rule.
pub fn is_special(ip: IpAddr) -> bool {
    match ip.to_canonical() {
        IpAddr::V4(a) => {
            a.is_loopback() || a.is_link_local() || a.is_unspecified() || a.is_broadcast()
        }
        IpAddr::V6(a) => {
            a.is_loopback() || a.is_unspecified() || (a.segments()[0] & 0xffc0) == 0xfe80
        }
    }
}

/// The special ranges as networks: a rule is explicit about one when it lies inside it.
const SPECIAL_NETS: [(IpAddr, u8); 7] = [
    (IpAddr::V4(Ipv4Addr::new(127, 0, 0, 0)), 8),
    (IpAddr::V4(Ipv4Addr::new(169, 254, 0, 0)), 16),
    (IpAddr::V4(Ipv4Addr::UNSPECIFIED), 32),
    (IpAddr::V4(Ipv4Addr::BROADCAST), 32),
    (IpAddr::V6(Ipv6Addr::LOCALHOST), 128),
    (IpAddr::V6(Ipv6Addr::UNSPECIFIED), 128),
    (IpAddr::V6(Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 0)), 10),
];

/// Whether the network `net/prefix` lies entirely inside one special range.
fn within_special(net: IpAddr, prefix: u8) -> bool {
    SPECIAL_NETS
        .iter()
        .any(|(s, p)| s.is_ipv4() == net.is_ipv4() && prefix >= *p && mask(net, *p) == *s)
}

impl Rule {
    fn port_ok(&self, port: u16) -> bool {
        self.port.is_none_or(|p| p == port)
    }

    fn name_ok(&self, name: &str, port: u16) -> bool {
        self.port_ok(port)
            && match &self.host {
                HostRule::Exact(n) => n == name,
                HostRule::Suffix(s) => name
                    .strip_suffix(s.as_str())
                    .is_some_and(|head| head.len() > 1 && head.ends_with('.')),
                HostRule::Net { .. } => false,
            }
    }

    /// Whether this IP or CIDR rule covers `ip`; a special address only when the rule lies
    /// inside a special range (an explicit `127.0.0.1:…` or `127.0.0.0/8`, not `0.0.0.0/0`).
    fn addr_ok(&self, ip: IpAddr, port: u16) -> bool {
        let HostRule::Net { net, prefix } = self.host else {
            return false;
        };
        let ip = ip.to_canonical();
        self.port_ok(port)
            && ip.is_ipv4() == net.is_ipv4()
            && mask(ip, prefix) == net
            && (!is_special(ip) || within_special(net, prefix))
    }
}

/// One tenant's rules.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AllowList {
    rules: Vec<Rule>,
}

impl AllowList {
    /// Parses every rule; the error names the first bad one.
    pub fn parse(rules: &[String]) -> Result<AllowList, String> {
        if rules.len() > MAX_RULES {
            return Err(format!("more than {MAX_RULES} rules"));
        }
        let rules = rules
            .iter()
            .enumerate()
            .map(|(i, r)| r.parse().map_err(|e| format!("rule {i} ({r:?}): {e}")))
            .collect::<Result<_, _>>()?;
        Ok(AllowList { rules })
    }

    /// Whether a host rule allows this (normalized) name and port.
    pub fn name_allowed(&self, name: &str, port: u16) -> bool {
        self.rules.iter().any(|r| r.name_ok(name, port))
    }

    /// Whether an IP or CIDR rule allows this address and port.
    pub fn addr_allowed(&self, ip: IpAddr, port: u16) -> bool {
        self.rules.iter().any(|r| r.addr_ok(ip, port))
    }

    /// Of the addresses `target` resolved to (its own address for an IP literal), those it
    /// may connect to, in order; `Err` says why there are none.
    pub fn permitted(
        &self,
        target: &Target,
        resolved: &[SocketAddr],
    ) -> Result<Vec<SocketAddr>, &'static str> {
        let name_ok = match &target.host {
            Host::Name(n) => self.name_allowed(n, target.port),
            Host::Ip(_) => false,
        };
        let ok: Vec<SocketAddr> = resolved
            .iter()
            .copied()
            .filter(|a| {
                let ip = a.ip().to_canonical();
                (name_ok && !is_special(ip)) || self.addr_allowed(ip, target.port)
            })
            .collect();
        if !ok.is_empty() {
            Ok(ok)
        } else if name_ok {
            Err("the destination resolves only to loopback or link-local addresses")
        } else {
            Err("the destination is not in the allow-list")
        }
    }

    /// Whether a name target can be allowed at all before resolving it (so a refused name is
    /// never looked up): a host rule matches, or some IP/CIDR rule exists for its port.
    pub fn may_resolve(&self, name: &str, port: u16) -> bool {
        self.name_allowed(name, port)
            || self
                .rules
                .iter()
                .any(|r| matches!(r.host, HostRule::Net { .. }) && r.port_ok(port))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list(rules: &[&str]) -> AllowList {
        AllowList::parse(&rules.iter().map(|s| s.to_string()).collect::<Vec<_>>()).unwrap()
    }

    fn sa(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    fn allows(l: &AllowList, connect: bool, target: &str, resolved: &[&str]) -> bool {
        let t = parse_target(connect, target).unwrap();
        let addrs: Vec<SocketAddr> = match &t.host {
            Host::Ip(ip) => vec![SocketAddr::new(*ip, t.port)],
            Host::Name(_) => resolved.iter().map(|a| sa(a)).collect(),
        };
        l.permitted(&t, &addrs).is_ok()
    }

    #[test]
    fn targets() {
        let t = parse_target(true, "Example.COM.:443").unwrap();
        assert_eq!(t.host, Host::Name("example.com".into()));
        assert_eq!(t.port, 443);
        let t = parse_target(false, "HTTP://10.0.0.1/x?y").unwrap();
        assert_eq!(
            (t.host, t.port),
            (Host::Ip("10.0.0.1".parse().unwrap()), 80)
        );
        let t = parse_target(true, "[::ffff:127.0.0.1]:80").unwrap();
        assert_eq!(t.host, Host::Ip("127.0.0.1".parse().unwrap()));
        for (connect, bad) in [
            (true, "example.com"),
            (true, "example.com:http"),
            (true, "example.com:+80"),
            (true, "example.com:0"),
            (true, "example.com:65536"),
            (true, ":80"),
            (true, "a..b:80"),
            (true, "127.1:80"),
            (true, "2130706433:80"),
            (true, "0x7f.0.0.1:80"),
            (true, "[::1:80"),
            (true, "ex ample.com:80"),
            (false, "https://example.com/"),
            (false, "/just/a/path"),
            (false, "http://user@example.com/"),
            (false, "http:///x"),
            (false, "http://example.com:x/"),
        ] {
            assert!(parse_target(connect, bad).is_err(), "{bad} accepted");
        }
        assert_eq!(
            parse_target(true, &"a".repeat(MAX_TARGET + 1)),
            Err(TargetError::TooLong)
        );
    }

    #[test]
    fn rules_are_validated() {
        for bad in [
            "example.com",
            "example.com:",
            "example.com:http",
            "*.:80",
            "*example.com:80",
            "10.0.0.1/33:80",
            "10.0.0.1/8:80",
            "10.0.0.0/x:80",
            "[::1:80",
            "::1:80",
            "a..b:80",
        ] {
            assert!(bad.parse::<Rule>().is_err(), "{bad} accepted");
        }
        for good in [
            "example.com:443",
            "*.example.com:*",
            "10.0.0.0/8:5432",
            "[fd00::/8]:*",
            "[::1]:80",
            "127.0.0.1:8080",
        ] {
            assert!(good.parse::<Rule>().is_ok(), "{good} refused");
        }
    }

    #[test]
    fn wildcards_ports_and_case() {
        let l = list(&["api.example.com:443", "*.svc.example.com:*"]);
        let pub_ip = ["93.184.216.34:443"];
        assert!(allows(&l, true, "API.Example.Com:443", &pub_ip));
        assert!(allows(&l, true, "api.example.com.:443", &pub_ip));
        assert!(!allows(&l, true, "api.example.com:80", &pub_ip));
        assert!(!allows(&l, true, "xapi.example.com:443", &pub_ip));
        assert!(!allows(&l, true, "api.example.com.evil.net:443", &pub_ip));
        assert!(allows(&l, false, "http://a.svc.example.com:8080/", &pub_ip));
        assert!(allows(&l, false, "http://a.b.svc.example.com/", &pub_ip));
        assert!(!allows(&l, false, "http://svc.example.com/", &pub_ip));
        assert!(!allows(&l, false, "http://evilsvc.example.com/", &pub_ip));
        assert!(!allows(&l, false, "http://93.184.216.34:443/", &[]));
    }

    #[test]
    fn cidr_and_resolved_addresses() {
        let l = list(&["10.0.0.0/8:5432", "[fd00::/8]:*", "192.168.1.7:80"]);
        assert!(allows(&l, true, "10.1.2.3:5432", &[]));
        assert!(!allows(&l, true, "10.1.2.3:5433", &[]));
        assert!(!allows(&l, true, "11.1.2.3:5432", &[]));
        assert!(allows(&l, true, "[fd12::1]:1", &[]));
        assert!(allows(&l, true, "[::ffff:192.168.1.7]:80", &[]));
        assert!(!allows(&l, true, "192.168.1.8:80", &[]));
        // A name is allowed through the addresses it resolves to, and only to those.
        let t = parse_target(true, "db.internal:5432").unwrap();
        let got = l
            .permitted(&t, &[sa("8.8.8.8:5432"), sa("10.9.9.9:5432")])
            .unwrap();
        assert_eq!(got, vec![sa("10.9.9.9:5432")]);
        assert!(l.may_resolve("db.internal", 5432));
        assert!(!list(&["a.com:443"]).may_resolve("b.com", 443));
    }

    #[test]
    fn loopback_needs_an_explicit_rule() {
        let l = list(&["*.example.com:*", "0.0.0.0/0:*", "[::/0]:*"]);
        for target in [
            "127.0.0.1:80",
            "[::1]:80",
            "169.254.169.254:80",
            "0.0.0.0:80",
        ] {
            assert!(!allows(&l, true, target, &[]), "{target}");
        }
        assert!(!allows(&l, true, "x.example.com:80", &["127.0.0.1:80"]));
        assert!(!allows(
            &l,
            true,
            "x.example.com:80",
            &["[::ffff:127.0.0.1]:80"]
        ));
        assert!(!allows(&l, true, "x.example.com:80", &["[fe80::1]:80"]));
        assert!(allows(
            &l,
            true,
            "x.example.com:80",
            &["127.0.0.1:80", "1.2.3.4:80"]
        ));
        let explicit = list(&["127.0.0.1:8080", "127.0.0.0/8:9000", "localhost:7000"]);
        assert!(allows(&explicit, true, "127.0.0.1:8080", &[]));
        assert!(allows(&explicit, true, "127.0.0.9:9000", &[]));
        assert!(!allows(&explicit, true, "127.0.0.1:8081", &[]));
        assert!(!allows(
            &explicit,
            true,
            "localhost:7000",
            &["127.0.0.1:7000"]
        ));
        assert!(allows(
            &explicit,
            true,
            "localhost:8080",
            &["127.0.0.1:8080"]
        ));
    }
}
