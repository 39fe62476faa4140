//! Hostile and friendly zips, built here, against validation, extraction and the stores.

use std::fs;
use std::io::{Cursor, Write};
use std::os::unix::fs::{PermissionsExt, symlink};
use std::path::Path;

use zip::result::ZipResult;
use zip::write::SimpleFileOptions;
use zip::{CompressionMethod, System, ZipWriter};

use super::*;

type Writer = ZipWriter<Cursor<Vec<u8>>>;

fn limits() -> ZipLimits {
    ZipLimits {
        max_zipped: 1 << 20,
        max_unpacked: 1 << 20,
        max_entries: 100,
    }
}

fn opts() -> SimpleFileOptions {
    SimpleFileOptions::default().compression_method(CompressionMethod::Deflated)
}

fn build(f: impl FnOnce(&mut Writer) -> ZipResult<()>) -> Vec<u8> {
    let mut zip = ZipWriter::new(Cursor::new(Vec::new()));
    f(&mut zip).unwrap();
    zip.finish().unwrap().into_inner()
}

fn file(zip: &mut Writer, name: &str, body: &[u8]) -> ZipResult<()> {
    file_with(zip, name, opts(), body)
}

fn file_with(
    zip: &mut Writer,
    name: &str,
    options: SimpleFileOptions,
    body: &[u8],
) -> ZipResult<()> {
    zip.start_file(name, options)?;
    zip.write_all(body)?;
    Ok(())
}

/// Replaces every occurrence of `from` with `to` (same length): used to forge names and sizes
/// in both the local and the central header.
fn patch(bytes: &mut [u8], from: &[u8], to: &[u8]) {
    assert_eq!(from.len(), to.len());
    let mut hits = 0;
    for i in 0..=bytes.len() - from.len() {
        if &bytes[i..i + from.len()] == from {
            bytes[i..i + from.len()].copy_from_slice(to);
            hits += 1;
        }
    }
    assert!(hits > 0, "pattern not found");
}

fn refused(bytes: &[u8], limits: &ZipLimits) -> String {
    match validate_zip(bytes, limits, false) {
        Ok(s) => panic!("accepted: {s:?}"),
        Err(e) => e.0,
    }
}

fn assert_refused(bytes: &[u8], limits: &ZipLimits, needle: &str) {
    let msg = refused(bytes, limits);
    assert!(msg.contains(needle), "message {msg:?} lacks {needle:?}");
    // Extraction applies the same rules and leaves nothing behind.
    let tmp = tempfile::tempdir().unwrap();
    let dest = tmp.path().join("out");
    let err = extract_zip(bytes, &dest, limits).unwrap_err();
    assert!(
        err.0.contains(needle),
        "extract message {:?} lacks {needle:?}",
        err.0
    );
    assert!(!dest.exists(), "extraction left {}", dest.display());
}

fn mode(path: &Path) -> u32 {
    fs::symlink_metadata(path).unwrap().permissions().mode() & 0o7777
}

#[test]
fn accepts_a_plain_package() {
    let bytes = build(|z| {
        z.start_file("bootstrap", opts().unix_permissions(0o755))?;
        z.write_all(b"#!/bin/sh\n")?;
        z.add_directory("lib/", opts())?;
        file(z, "lib/x.py", b"x = 1\n")
    });
    let s = validate_zip(&bytes, &limits(), true).unwrap();
    assert_eq!(
        (s.entries, s.unpacked_bytes, s.has_bootstrap),
        (3, 16, true)
    );
}

#[test]
fn refuses_absolute_paths() {
    let bytes = build(|z| file(z, "/etc/passwd", b"root"));
    assert_refused(
        &bytes,
        &limits(),
        "zip entry \"/etc/passwd\" has an absolute path",
    );
}

#[test]
fn refuses_parent_components() {
    let bytes = build(|z| file(z, "a/../../x", b"x"));
    assert_refused(
        &bytes,
        &limits(),
        "zip entry \"a/../../x\" has a path outside the package",
    );
    let bytes = build(|z| file(z, "../x", b"x"));
    assert_refused(
        &bytes,
        &limits(),
        "zip entry \"../x\" has a path outside the package",
    );
}

#[test]
fn refuses_backslashes_and_nul() {
    let bytes = build(|z| file(z, "a\\..\\x", b"x"));
    assert_refused(&bytes, &limits(), "backslash");
    let mut bytes = build(|z| file(z, "aQQQb", b"x"));
    patch(&mut bytes, b"aQQQb", b"a\0QQb");
    assert_refused(&bytes, &limits(), "NUL");
}

#[test]
fn refuses_long_names() {
    let long = "a".repeat(256);
    let bytes = build(|z| file(z, &long, b"x"));
    assert_refused(&bytes, &limits(), "longer than 255 bytes");
    let deep = vec!["abcdefgh"; 120].join("/");
    let bytes = build(|z| file(z, &deep, b"x"));
    assert_refused(
        &bytes,
        &ZipLimits {
            max_entries: 1000,
            ..limits()
        },
        "longer than 1024 bytes",
    );
}

#[test]
fn refuses_symlinks() {
    let bytes = build(|z| {
        file(z, "bootstrap", b"x")?;
        z.add_symlink("link", "/etc/passwd", opts())
    });
    assert_refused(&bytes, &limits(), "zip entry \"link\" is a symbolic link");
}

#[test]
fn refuses_special_files() {
    for (kind, mode) in [
        ("fifo", 0o010_644u32),
        ("char device", 0o020_644),
        ("socket", 0o140_644),
    ] {
        let special = opts().system(System::Unix).external_attributes(mode << 16);
        let bytes = build(|z| file_with(z, "special", special, b""));
        let msg = refused(&bytes, &limits());
        assert!(
            msg.contains("is neither a regular file nor a directory"),
            "{kind}: {msg}"
        );
    }
}

#[test]
fn refuses_duplicates_after_normalising() {
    let bytes = build(|z| {
        file(z, "a", b"1")?;
        file(z, "./a", b"2")
    });
    assert_refused(
        &bytes,
        &limits(),
        "zip entry \"./a\" appears more than once",
    );
    let bytes = build(|z| {
        z.add_directory("d", opts())?;
        z.add_directory("./d//", opts())
    });
    assert_refused(&bytes, &limits(), "appears more than once");
}

#[test]
fn refuses_exact_duplicates() {
    // The zip crate refuses to write these, so forge the second name.
    let mut bytes = build(|z| {
        file(z, "dupA", b"first")?;
        file(z, "dupB", b"second")
    });
    patch(&mut bytes, b"dupB", b"dupA");
    assert_refused(
        &bytes,
        &limits(),
        "zip entry \"dupA\" appears more than once",
    );
}

#[test]
fn refuses_files_used_as_directories() {
    let bytes = build(|z| {
        file(z, "a", b"1")?;
        file(z, "a/b", b"2")
    });
    assert_refused(
        &bytes,
        &limits(),
        "zip entry \"a/b\" is inside \"a\", which is a file",
    );
    let bytes = build(|z| {
        file(z, "a/b", b"1")?;
        file(z, "a", b"2")
    });
    assert_refused(
        &bytes,
        &limits(),
        "zip entry \"a\" is a file but also a directory",
    );
}

#[test]
fn implied_then_explicit_directory_is_fine() {
    let bytes = build(|z| {
        file(z, "a/b", b"1")?;
        z.add_directory("a/", opts())?;
        z.add_directory("./", opts())
    });
    let s = validate_zip(&bytes, &limits(), false).unwrap();
    assert_eq!(s.entries, 3);
}

#[test]
fn refuses_too_many_entries() {
    let bytes = build(|z| (0..5).try_for_each(|i| file(z, &format!("f{i}"), b"x")));
    let small = ZipLimits {
        max_entries: 4,
        ..limits()
    };
    assert_refused(&bytes, &small, "more than 4 entries");
    assert!(
        validate_zip(
            &bytes,
            &ZipLimits {
                max_entries: 5,
                ..limits()
            },
            false
        )
        .is_ok()
    );
    // Directories implied by paths are bounded too, at twice the entry limit.
    let bytes = build(|z| file(z, "a/b/c/d/e", b"x"));
    let two = ZipLimits {
        max_entries: 2,
        ..limits()
    };
    assert_refused(&bytes, &two, "paths make more than 4 files and directories");
    assert!(
        validate_zip(
            &bytes,
            &ZipLimits {
                max_entries: 3,
                ..limits()
            },
            false
        )
        .is_ok()
    );
}

#[test]
fn refuses_too_big_a_zip() {
    let bytes = build(|z| file(z, "a", &[7u8; 1000]));
    let small = ZipLimits {
        max_zipped: 100,
        ..limits()
    };
    assert_refused(&bytes, &small, "more than the limit of 100 bytes");
}

#[test]
fn stops_a_zip_bomb() {
    let zeros = vec![0u8; 8 << 20];
    let bytes = build(|z| {
        file(z, "small", b"ok")?;
        file(z, "bomb", &zeros)
    });
    assert!(
        bytes.len() < 64 * 1024,
        "the bomb should be small zipped: {}",
        bytes.len()
    );
    assert_refused(
        &bytes,
        &limits(),
        "the zip unpacks to more than 1048576 bytes (at entry \"bomb\")",
    );
}

#[test]
fn does_not_trust_declared_sizes() {
    // 1 MiB of zeros; forge the declared size (0x00100000) in both headers.
    let zeros = vec![0u8; 1 << 20];
    let honest = build(|z| file(z, "liar", &zeros));
    let forge = |declared: u32| {
        let mut bytes = honest.clone();
        patch(
            &mut bytes,
            &(1u32 << 20).to_le_bytes(),
            &declared.to_le_bytes(),
        );
        bytes
    };
    let tiny = ZipLimits {
        max_unpacked: 4096,
        ..limits()
    };
    let roomy = ZipLimits {
        max_unpacked: 4 << 20,
        ..limits()
    };
    // Declared smaller than the content: the zip crate stops at the declared size.
    assert_refused(
        &forge(16),
        &roomy,
        "larger than its declared uncompressed size",
    );
    // Declared larger: our own count stops at the limit, or finds the sizes differ.
    assert_refused(&forge(2 << 20), &tiny, "unpacks to more than 4096 bytes");
    assert_refused(
        &forge(2 << 20),
        &roomy,
        "declares 2097152 bytes but holds 1048576",
    );
}

#[test]
fn refuses_corrupt_content() {
    let body = b"some stored content that we will damage";
    let stored = opts().compression_method(CompressionMethod::Stored);
    let mut bytes = build(|z| file_with(z, "s", stored, body));
    patch(&mut bytes, b"damage", b"DAMAGE");
    assert_refused(&bytes, &limits(), "zip entry \"s\" is corrupt");
}

#[test]
fn refuses_garbage_and_truncation() {
    assert_refused(b"", &limits(), "not a valid zip file");
    assert_refused(
        &b"PK\x03\x04 definitely not a zip ".repeat(50),
        &limits(),
        "not a valid zip file",
    );
    let bytes = build(|z| {
        file(z, "bootstrap", b"#!/bin/sh\necho hi\n")?;
        file(z, "other", b"more")
    });
    for cut in [bytes.len() / 2, bytes.len() - 1, bytes.len() - 30] {
        let msg = refused(&bytes[..cut], &limits());
        assert!(
            msg.contains("not a valid zip") || msg.contains("corrupt"),
            "cut {cut}: {msg}"
        );
    }
}

#[test]
fn requires_bootstrap_at_the_root_when_asked() {
    let want =
        "the package has no executable \"bootstrap\" at its root (required for runtime provided)";
    for bytes in [
        build(|z| file(z, "handler.py", b"x")),
        build(|z| file(z, "sub/bootstrap", b"x")),
        build(|z| z.add_directory("bootstrap/", opts())),
    ] {
        assert_eq!(validate_zip(&bytes, &limits(), true).unwrap_err().0, want);
        assert!(
            !validate_zip(&bytes, &limits(), false)
                .unwrap()
                .has_bootstrap
        );
    }
}

#[test]
fn bootstrap_without_execute_bits_is_accepted_and_made_executable() {
    let bytes = build(|z| {
        file_with(
            z,
            "bootstrap",
            opts().unix_permissions(0o644),
            b"#!/bin/sh\n",
        )
    });
    assert!(validate_zip(&bytes, &limits(), true).unwrap().has_bootstrap);
    let tmp = tempfile::tempdir().unwrap();
    extract_zip(&bytes, &tmp.path().join("x"), &limits()).unwrap();
    assert_eq!(mode(&tmp.path().join("x/bootstrap")), 0o755);
}

#[test]
fn modes_without_type_bits_and_dos_entries_are_accepted() {
    // Python's ZipFile.writestr stores permission bits with no file type.
    let bytes = build(|z| {
        let bare = opts().system(System::Unix);
        z.start_file("plain", bare.external_attributes(0o644 << 16))?;
        z.write_all(b"p")?;
        z.start_file("tool", bare.external_attributes(0o750 << 16))?;
        z.write_all(b"t")?;
        z.start_file("dos.txt", opts().system(System::Dos))?;
        z.write_all(b"d")?;
        z.start_file("dir/", bare.external_attributes(0o755 << 16))
    });
    let tmp = tempfile::tempdir().unwrap();
    let dest = tmp.path().join("x");
    assert_eq!(extract_zip(&bytes, &dest, &limits()).unwrap().entries, 4);
    assert_eq!(mode(&dest.join("plain")), 0o644);
    assert_eq!(mode(&dest.join("tool")), 0o755);
    assert_eq!(mode(&dest.join("dos.txt")), 0o644);
    assert_eq!(mode(&dest.join("dir")), 0o755);
}

#[test]
fn extraction_refuses_a_non_empty_destination_and_keeps_it() {
    let tmp = tempfile::tempdir().unwrap();
    fs::write(tmp.path().join("mine"), b"keep").unwrap();
    let bytes = build(|z| file(z, "a", b"1"));
    let err = extract_zip(&bytes, tmp.path(), &limits()).unwrap_err();
    assert!(err.0.contains("not empty"), "{}", err.0);
    assert_eq!(fs::read(tmp.path().join("mine")).unwrap(), b"keep");
}

#[test]
fn extraction_rolls_back_into_an_existing_empty_directory() {
    let tmp = tempfile::tempdir().unwrap();
    let bytes = build(|z| {
        file(z, "a/b/c", b"1")?;
        file(z, "top", b"2")?;
        file(z, "../escape", b"3")
    });
    extract_zip(&bytes, tmp.path(), &limits()).unwrap_err();
    assert!(tmp.path().is_dir());
    assert_eq!(fs::read_dir(tmp.path()).unwrap().count(), 0);
    assert!(!tmp.path().parent().unwrap().join("escape").exists());
}

fn sample_tree(root: &Path) {
    let write = |rel: &str, body: &[u8], mode: u32| {
        let path = root.join(rel);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(&path, body).unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(mode)).unwrap();
    };
    write("bootstrap", b"#!/bin/sh\nexec true\n", 0o755);
    write("handler.py", b"def handler(e, c):\n    return e\n", 0o644);
    write("lib/tool", b"#!/bin/sh\n", 0o700);
    write("lib/data.txt", &b"data ".repeat(1000), 0o600);
    write(".hidden", b"h", 0o644);
    fs::create_dir(root.join("empty")).unwrap();
}

#[test]
fn zip_dir_round_trip_keeps_content_and_modes() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    sample_tree(&src);
    let bytes = zip_dir(&src).unwrap();
    assert_eq!(
        bytes,
        zip_dir(&src).unwrap(),
        "zip_dir must be deterministic"
    );
    let s = validate_zip(&bytes, &ZipLimits::default(), true).unwrap();
    assert_eq!((s.entries, s.has_bootstrap), (7, true));
    assert_eq!(s.unpacked_bytes, 20 + 32 + 10 + 5000 + 1);

    let dest = tmp.path().join("out");
    let s2 = extract_zip(&bytes, &dest, &ZipLimits::default()).unwrap();
    assert_eq!(s2.unpacked_bytes, s.unpacked_bytes);
    for (rel, want) in [
        ("bootstrap", 0o755),
        ("handler.py", 0o644),
        ("lib/tool", 0o755),
        ("lib/data.txt", 0o644),
        (".hidden", 0o644),
        ("lib", 0o755),
        ("empty", 0o755),
        ("", 0o755),
    ] {
        assert_eq!(mode(&dest.join(rel)), want, "{rel}");
    }
    for rel in [
        "bootstrap",
        "handler.py",
        "lib/tool",
        "lib/data.txt",
        ".hidden",
    ] {
        assert_eq!(
            fs::read(dest.join(rel)).unwrap(),
            fs::read(src.join(rel)).unwrap(),
            "{rel}"
        );
    }
}

#[test]
fn zip_dir_follows_symlinks_but_not_loops() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    fs::create_dir_all(src.join("d")).unwrap();
    fs::write(src.join("d/f"), b"f").unwrap();
    symlink("d/f", src.join("link")).unwrap();
    let bytes = zip_dir(&src).unwrap();
    let dest = tmp.path().join("out");
    extract_zip(&bytes, &dest, &limits()).unwrap();
    assert_eq!(fs::read(dest.join("link")).unwrap(), b"f");
    assert!(
        !fs::symlink_metadata(dest.join("link"))
            .unwrap()
            .file_type()
            .is_symlink()
    );

    symlink("..", src.join("d/up")).unwrap();
    let err = zip_dir(&src).unwrap_err();
    assert!(err.to_string().contains("symlink loop"), "{err}");
}

#[test]
fn code_store_put_is_idempotent() {
    let tmp = tempfile::tempdir().unwrap();
    let store = LocalCodeStore::new(tmp.path().join("code")).unwrap();
    let bytes = build(|z| file(z, "bootstrap", b"x"));
    let sha = store.put(&bytes).unwrap();
    assert_eq!(sha, sha256_hex(&bytes));
    assert_eq!(store.put(&bytes).unwrap(), sha);
    assert_eq!(store.get(&sha).unwrap(), bytes);
    let names: Vec<_> = fs::read_dir(tmp.path().join("code"))
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, vec![std::ffi::OsString::from(format!("{sha}.zip"))]);
    assert_eq!(store.remove_leftovers().unwrap(), 0);
}

#[test]
fn node_cache_extracts_once_even_when_racing() {
    let tmp = tempfile::tempdir().unwrap();
    let store = LocalCodeStore::new(tmp.path().join("code")).unwrap();
    let cache = NodeCache::new(tmp.path().join("cache")).unwrap();
    let src = tmp.path().join("src");
    sample_tree(&src);
    let sha = store.put(&zip_dir(&src).unwrap()).unwrap();
    let paths: Vec<_> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..4)
            .map(|_| s.spawn(|| cache.ensure(&store, &sha, &ZipLimits::default()).unwrap()))
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let want = tmp.path().join("cache").join(&sha);
    assert!(paths.iter().all(|p| *p == want), "{paths:?}");
    assert_eq!(mode(&want.join("bootstrap")), 0o755);
    assert_eq!(
        cache.ensure(&store, &sha, &ZipLimits::default()).unwrap(),
        want
    );
    let names: Vec<_> = fs::read_dir(tmp.path().join("cache"))
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(
        names,
        vec![std::ffi::OsString::from(&sha)],
        "no temp dirs left"
    );
}

#[test]
fn node_cache_refuses_bad_names_missing_and_tampered_packages() {
    let tmp = tempfile::tempdir().unwrap();
    let store = LocalCodeStore::new(tmp.path().join("code")).unwrap();
    let cache = NodeCache::new(tmp.path().join("cache")).unwrap();
    let lim = ZipLimits::default();
    assert!(
        cache
            .ensure(&store, "../../etc", &lim)
            .unwrap_err()
            .0
            .contains("not a lower-case hex SHA-256")
    );
    let absent = "0".repeat(64);
    assert!(
        cache
            .ensure(&store, &absent, &lim)
            .unwrap_err()
            .0
            .contains("cannot be read")
    );
    let sha = store.put(&build(|z| file(z, "bootstrap", b"x"))).unwrap();
    fs::write(store.path(&sha), build(|z| file(z, "bootstrap", b"y"))).unwrap();
    assert!(
        cache
            .ensure(&store, &sha, &lim)
            .unwrap_err()
            .0
            .contains("does not match")
    );
    // A package that fails the rules leaves no temp directory behind.
    let bad = build(|z| file(z, "../x", b"x"));
    let bad_sha = store.put(&bad).unwrap();
    cache.ensure(&store, &bad_sha, &lim).unwrap_err();
    assert_eq!(fs::read_dir(tmp.path().join("cache")).unwrap().count(), 0);
}
