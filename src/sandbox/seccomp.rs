//! The seccomp policy of every runtime process (DESIGN.md "Sandbox construction", "io-uring").
//!
//! The policy is reviewed data, `seccomp.json` beside this file, in `seccompiler`'s JSON
//! format: a deny-list with default allow, in two filters because one `seccompiler` filter has
//! one match action:
//! - `refuse_eperm`: mount and the new mount API, pivot_root, chroot, ptrace, kexec, bpf,
//!   keyrings, module loading, perf_event_open, userfaultfd, unshare, setns, `clone` with any
//!   namespace flag, clocks, swap, ... answer `EPERM`;
//! - `refuse_enosys`: `clone3` (glibc falls back to `clone`, whose flags the filter can see)
//!   and `io_uring_*` (its operations bypass seccomp) answer `ENOSYS`.
//!
//! A third, hand-written filter checks the architecture (anything but x86_64 is killed; the
//! compiled filters check it too) and answers every x32 call (`__X32_SYSCALL_BIT` set) with
//! `ENOSYS`: x32 numbers are a second syscall table the deny-list would not cover.
//!
//! The agent compiles the policy once at start ([`compile`], so a bad policy fails the start
//! with a precise error) and hands the programs to `hearth sandbox-init` in its request; the
//! runtime process installs them right after no-new-privileges, last before exec ([`install`]).

use std::collections::BTreeMap;

use seccompiler::{BpfProgram, TargetArch, sock_filter};
use serde::{Deserialize, Serialize};

/// The reviewed policy, compiled into the binary.
pub const POLICY: &str = include_str!("seccomp.json");

/// The filters the policy must define, in installation order, with the errno each answers.
const FILTERS: [(&str, u32); 2] = [
    ("refuse_eperm", libc::EPERM as u32),
    ("refuse_enosys", libc::ENOSYS as u32),
];

/// `__X32_SYSCALL_BIT` (x86_64).
const X32_SYSCALL_BIT: u32 = 0x4000_0000;
/// `AUDIT_ARCH_X86_64`.
const AUDIT_ARCH_X86_64: u32 = 62 | 0x8000_0000 | 0x4000_0000;
/// Offsets in `struct seccomp_data`.
const DATA_NR: u32 = 0;
const DATA_ARCH: u32 = 4;
// Classic BPF opcodes (linux/bpf_common.h).
/// BPF_LD (0x00) | BPF_W (0x00) | BPF_ABS (0x20).
const BPF_LD_W_ABS: u16 = 0x20;
const BPF_JEQ_K: u16 = 0x05 | 0x10;
const BPF_JSET_K: u16 = 0x05 | 0x40;
const BPF_RET_K: u16 = 0x06;
const SECCOMP_RET_KILL_PROCESS: u32 = 0x8000_0000;
const SECCOMP_RET_ERRNO: u32 = 0x0005_0000;
const SECCOMP_RET_ALLOW: u32 = 0x7fff_0000;

/// Why the policy was refused.
#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    #[error("seccomp policy: not JSON: {0}")]
    Json(String),
    #[error("seccomp policy: expected an object of filters at the top level")]
    NotAnObject,
    #[error("seccomp policy: filter {0:?} is missing")]
    MissingFilter(&'static str),
    #[error("seccomp policy: unknown filter {0:?} (expected refuse_eperm and refuse_enosys)")]
    UnknownFilter(String),
    #[error(
        "seccomp policy: filter {0:?}: default_action must be \"allow\" (a deny-list), found {1}"
    )]
    NotDenyList(String, String),
    #[error("seccomp policy: filter {0:?}: filter_action must be {{\"errno\": {1}}}, found {2}")]
    WrongAction(String, u32, String),
    #[error("seccomp policy: unsupported architecture {0} (x86_64 only)")]
    Arch(String),
    #[error("seccomp policy: {0}")]
    Compile(String),
}

/// The compiled programs, in installation order, as plain integers (they travel to the
/// helper in its JSON request): `(code, jt, jf, k)` per instruction.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub(crate) struct CompiledPolicy {
    programs: Vec<Vec<(u16, u8, u8, u32)>>,
}

/// Checks the shape of `policy` and compiles it for this machine's architecture.
pub(crate) fn compile(policy: &str) -> Result<CompiledPolicy, PolicyError> {
    let arch = std::env::consts::ARCH;
    if arch != "x86_64" {
        return Err(PolicyError::Arch(arch.to_owned()));
    }
    check_shape(policy)?;
    let mut map = seccompiler::compile_from_json(policy.as_bytes(), TargetArch::x86_64)
        .map_err(|e| PolicyError::Compile(e.to_string()))?;
    let mut programs = vec![encode(&x32_filter())];
    for (name, _) in FILTERS {
        let prog = map.remove(name).ok_or(PolicyError::MissingFilter(name))?;
        programs.push(encode(&prog));
    }
    Ok(CompiledPolicy { programs })
}

/// What `seccompiler` does not check: exactly our filters, each a deny-list answering the
/// errno we document.
fn check_shape(policy: &str) -> Result<(), PolicyError> {
    let value: serde_json::Value =
        serde_json::from_str(policy).map_err(|e| PolicyError::Json(e.to_string()))?;
    let filters: BTreeMap<String, serde_json::Value> =
        serde_json::from_value(value).map_err(|_| PolicyError::NotAnObject)?;
    if let Some(name) = filters
        .keys()
        .find(|k| !FILTERS.iter().any(|(n, _)| n == k))
    {
        return Err(PolicyError::UnknownFilter(name.clone()));
    }
    for (name, errno) in FILTERS {
        let filter = filters.get(name).ok_or(PolicyError::MissingFilter(name))?;
        let default = &filter["default_action"];
        if default != "allow" {
            return Err(PolicyError::NotDenyList(name.into(), default.to_string()));
        }
        let action = &filter["filter_action"];
        if *action != serde_json::json!({ "errno": errno }) {
            return Err(PolicyError::WrongAction(
                name.into(),
                errno,
                action.to_string(),
            ));
        }
    }
    Ok(())
}

/// Kills any architecture but x86_64; answers x32 calls with ENOSYS; allows the rest (for the
/// other filters to judge).
fn x32_filter() -> BpfProgram {
    let op = |code, jt, jf, k| sock_filter { code, jt, jf, k };
    vec![
        op(BPF_LD_W_ABS, 0, 0, DATA_ARCH),
        op(BPF_JEQ_K, 1, 0, AUDIT_ARCH_X86_64),
        op(BPF_RET_K, 0, 0, SECCOMP_RET_KILL_PROCESS),
        op(BPF_LD_W_ABS, 0, 0, DATA_NR),
        op(BPF_JSET_K, 0, 1, X32_SYSCALL_BIT),
        op(BPF_RET_K, 0, 0, SECCOMP_RET_ERRNO | libc::ENOSYS as u32),
        op(BPF_RET_K, 0, 0, SECCOMP_RET_ALLOW),
    ]
}

fn encode(prog: &[sock_filter]) -> Vec<(u16, u8, u8, u32)> {
    prog.iter().map(|i| (i.code, i.jt, i.jf, i.k)).collect()
}

/// Installs every program on the calling thread (needs no-new-privileges or CAP_SYS_ADMIN).
pub(crate) fn install(policy: &CompiledPolicy) -> std::io::Result<()> {
    if policy.programs.is_empty() {
        return Err(std::io::Error::other("empty seccomp policy"));
    }
    for prog in &policy.programs {
        let bpf: BpfProgram = prog
            .iter()
            .map(|&(code, jt, jf, k)| sock_filter { code, jt, jf, k })
            .collect();
        seccompiler::apply_filter(&bpf).map_err(std::io::Error::other)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sandbox::sys;

    #[test]
    fn the_shipped_policy_compiles() {
        let p = compile(POLICY).unwrap();
        assert_eq!(p.programs.len(), 3);
        let json = serde_json::to_string(&p).unwrap();
        assert_eq!(serde_json::from_str::<CompiledPolicy>(&json).unwrap(), p);
    }

    #[test]
    fn bad_policies_get_precise_errors() {
        let err = |p: &str| compile(p).unwrap_err().to_string();
        assert!(err("{").contains("not JSON"), "{}", err("{"));
        assert!(err("[]").contains("object of filters"));
        assert!(err(r#"{"refuse_enosys": {}}"#).contains("\"refuse_eperm\" is missing"));
        let good = serde_json::from_str::<serde_json::Value>(POLICY).unwrap();
        let with = |f: &dyn Fn(&mut serde_json::Value)| {
            let mut v = good.clone();
            f(&mut v);
            err(&v.to_string())
        };
        let e = with(&|v| v["extra"] = v["refuse_eperm"].clone());
        assert!(e.contains("unknown filter \"extra\""), "{e}");
        let e = with(&|v| v["refuse_eperm"]["default_action"] = "kill_process".into());
        assert!(e.contains("default_action must be \"allow\""), "{e}");
        let e = with(&|v| v["refuse_enosys"]["filter_action"] = serde_json::json!({"errno": 1}));
        assert!(e.contains("filter_action must be {\"errno\": 38}"), "{e}");
        let e = with(&|v| v["refuse_eperm"]["filter"][0]["syscall"] = "no_such_call".into());
        assert!(e.contains("no_such_call"), "{e}");
    }

    /// Installs the policy on a fresh thread (filters are per thread) and checks answers.
    #[test]
    fn installed_policy_answers_with_errors() {
        let p = compile(POLICY).unwrap();
        let answers = std::thread::spawn(move || {
            install(&p).unwrap();
            let nr = |n: libc::c_long| sys::raw_syscall_errno(n, 0);
            [
                nr(libc::SYS_unshare),
                nr(libc::SYS_mount),
                sys::raw_syscall_errno(libc::SYS_ptrace, -1), // PTRACE_TRACEME is 0
                nr(libc::SYS_clone3),
                nr(libc::SYS_io_uring_setup),
                nr(libc::SYS_getpid | X32_SYSCALL_BIT as libc::c_long),
            ]
        })
        .join()
        .unwrap();
        let (eperm, enosys) = (Some(libc::EPERM), Some(libc::ENOSYS));
        assert_eq!(answers, [eperm, eperm, eperm, enosys, enosys, enosys]);
    }
}
