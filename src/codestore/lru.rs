//! The node cache's bookkeeping: extracted packages bounded by bytes, least recently used
//! evicted first, entries in use pinned, concurrent misses for one hash coalesced into one
//! fetch and extraction.

use super::{LocalCodeStore, ZipError, ZipLimits, cache};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// Where packages come from (the central code store today, the AZ code cache later).
pub trait CodeSource: Send + Sync {
    /// The zip with this SHA-256.
    fn fetch(&self, sha256_hex: &str) -> std::io::Result<Vec<u8>>;
}

impl CodeSource for LocalCodeStore {
    fn fetch(&self, sha256_hex: &str) -> std::io::Result<Vec<u8>> {
        self.get(sha256_hex)
    }
}

struct Entry {
    bytes: u64,
    last_used: u64,
    pins: usize,
}

#[derive(Default)]
struct State {
    entries: HashMap<String, Entry>,
    total: u64,
    tick: u64,
}

/// Hit, miss, eviction and byte counters.
#[derive(Default, Debug)]
pub struct CacheStats {
    pub hits: AtomicU64,
    pub misses: AtomicU64,
    pub evictions: AtomicU64,
    pub bytes: AtomicU64,
}

/// Extracted packages under one directory, bounded by `limit` bytes.
pub struct Lru {
    dir: PathBuf,
    limit: u64,
    state: Mutex<State>,
    inflight: Mutex<HashMap<String, Arc<Mutex<()>>>>,
    pub stats: CacheStats,
}

/// A package held in the cache while an instance uses it; dropping it unpins the entry.
pub struct Pinned {
    lru: Arc<Lru>,
    sha: String,
    pub path: PathBuf,
}

impl Drop for Pinned {
    fn drop(&mut self) {
        let mut st = self.lru.lock();
        if let Some(e) = st.entries.get_mut(&self.sha) {
            e.pins = e.pins.saturating_sub(1);
        }
    }
}

fn tree_bytes(path: &Path) -> u64 {
    let Ok(rd) = std::fs::read_dir(path) else {
        return 0;
    };
    rd.flatten()
        .map(|e| match e.file_type() {
            Ok(t) if t.is_dir() => tree_bytes(&e.path()),
            Ok(t) if t.is_file() => e.metadata().map(|m| m.len()).unwrap_or(0),
            _ => 0,
        })
        .sum()
}

impl Lru {
    /// Opens the cache directory, counting the packages already extracted there.
    pub fn open(dir: PathBuf, limit: u64) -> std::io::Result<Arc<Lru>> {
        std::fs::create_dir_all(&dir)?;
        let mut state = State::default();
        for e in std::fs::read_dir(&dir)?.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if cache::is_sha256_hex(&name) && e.path().is_dir() {
                let bytes = tree_bytes(&e.path());
                state.total += bytes;
                state.entries.insert(
                    name,
                    Entry {
                        bytes,
                        last_used: 0,
                        pins: 0,
                    },
                );
            }
        }
        let lru = Lru {
            dir,
            limit,
            state: Mutex::new(state),
            inflight: Mutex::default(),
            stats: CacheStats::default(),
        };
        lru.stats.bytes.store(lru.lock().total, Ordering::Relaxed);
        Ok(Arc::new(lru))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Pins an entry if present (a hit).
    fn pin(self: &Arc<Self>, sha: &str) -> Option<Pinned> {
        let mut st = self.lock();
        st.tick += 1;
        let tick = st.tick;
        let e = st.entries.get_mut(sha)?;
        e.pins += 1;
        e.last_used = tick;
        Some(Pinned {
            lru: self.clone(),
            sha: sha.to_string(),
            path: self.dir.join(sha),
        })
    }

    /// The extracted package, pinned: from the cache, or fetched and extracted once however
    /// many callers miss at the same time. Evicts unpinned packages (least recently used
    /// first) to stay within the byte bound.
    pub fn acquire(
        self: &Arc<Self>,
        source: &dyn CodeSource,
        sha: &str,
        limits: &ZipLimits,
    ) -> Result<Pinned, ZipError> {
        if let Some(p) = self.pin(sha) {
            self.stats.hits.fetch_add(1, Ordering::Relaxed);
            return Ok(p);
        }
        let gate = self
            .inflight
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry(sha.to_string())
            .or_default()
            .clone();
        let _one_at_a_time = gate.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(p) = self.pin(sha) {
            self.stats.hits.fetch_add(1, Ordering::Relaxed);
            return Ok(p);
        }
        self.stats.misses.fetch_add(1, Ordering::Relaxed);
        let path = cache::ensure_from(&self.dir, source, sha, limits)?;
        let bytes = tree_bytes(&path);
        {
            let mut st = self.lock();
            st.total += bytes;
            st.entries.insert(
                sha.to_string(),
                Entry {
                    bytes,
                    last_used: 0,
                    pins: 0,
                },
            );
        }
        let pinned = self
            .pin(sha)
            .ok_or_else(|| ZipError(format!("code package {sha} vanished from the node cache")))?;
        self.evict();
        self.inflight
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(sha);
        Ok(pinned)
    }

    /// Removes unpinned packages, least recently used first, until within the bound.
    fn evict(&self) {
        let victims = {
            let mut st = self.lock();
            let mut order: Vec<(u64, String, u64)> = st
                .entries
                .iter()
                .filter(|(_, e)| e.pins == 0)
                .map(|(k, e)| (e.last_used, k.clone(), e.bytes))
                .collect();
            order.sort();
            let mut victims = Vec::new();
            for (_, sha, bytes) in order {
                if st.total <= self.limit {
                    break;
                }
                st.entries.remove(&sha);
                st.total -= bytes;
                victims.push(sha);
            }
            self.stats.bytes.store(st.total, Ordering::Relaxed);
            victims
        };
        for sha in victims {
            self.stats.evictions.fetch_add(1, Ordering::Relaxed);
            let _ = std::fs::remove_dir_all(self.dir.join(&sha));
        }
    }

    /// Whether a package is extracted here.
    pub fn contains(&self, sha: &str) -> bool {
        self.lock().entries.contains_key(sha)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::sync::atomic::AtomicUsize;

    struct Counting {
        zips: HashMap<String, Vec<u8>>,
        fetches: AtomicUsize,
    }

    impl CodeSource for Counting {
        fn fetch(&self, sha: &str) -> std::io::Result<Vec<u8>> {
            self.fetches.fetch_add(1, Ordering::SeqCst);
            std::thread::sleep(std::time::Duration::from_millis(20));
            self.zips
                .get(sha)
                .cloned()
                .ok_or_else(|| std::io::Error::other("missing"))
        }
    }

    fn zip(content: &[u8]) -> Vec<u8> {
        let mut buf = std::io::Cursor::new(Vec::new());
        let mut w = zip::ZipWriter::new(&mut buf);
        w.start_file("data", zip::write::SimpleFileOptions::default())
            .unwrap();
        w.write_all(content).unwrap();
        w.finish().unwrap();
        buf.into_inner()
    }

    fn source(n: usize, size: usize) -> (Counting, Vec<String>) {
        let mut zips = HashMap::new();
        let mut shas = vec![];
        for i in 0..n {
            let z = zip(&vec![i as u8; size]);
            let sha = super::super::sha256_hex(&z);
            shas.push(sha.clone());
            zips.insert(sha, z);
        }
        (
            Counting {
                zips,
                fetches: AtomicUsize::new(0),
            },
            shas,
        )
    }

    #[test]
    fn concurrent_misses_fetch_once() {
        let dir = tempfile::tempdir().unwrap();
        let lru = Lru::open(dir.path().join("c"), 1 << 30).unwrap();
        let (src, shas) = source(1, 1000);
        let src = Arc::new(src);
        let handles: Vec<_> = (0..8)
            .map(|_| {
                let (lru, src, sha) = (lru.clone(), src.clone(), shas[0].clone());
                std::thread::spawn(move || {
                    lru.acquire(src.as_ref(), &sha, &ZipLimits::default())
                        .map(|p| p.path.clone())
                })
            })
            .collect();
        for h in handles {
            assert!(h.join().unwrap().unwrap().join("data").exists());
        }
        assert_eq!(src.fetches.load(Ordering::SeqCst), 1);
        assert_eq!(lru.stats.misses.load(Ordering::SeqCst), 1);
        assert_eq!(lru.stats.hits.load(Ordering::SeqCst), 7);
    }

    #[test]
    fn eviction_respects_the_bound_and_pins() {
        let dir = tempfile::tempdir().unwrap();
        let lru = Lru::open(dir.path().join("c"), 2500).unwrap();
        let (src, shas) = source(4, 1000);
        let limits = ZipLimits::default();
        let pinned = lru.acquire(&src, &shas[0], &limits).unwrap();
        drop(lru.acquire(&src, &shas[1], &limits).unwrap());
        drop(lru.acquire(&src, &shas[2], &limits).unwrap());
        // 3000 bytes > 2500: the least recently used unpinned entry (1) went.
        assert!(lru.contains(&shas[0]) && !lru.contains(&shas[1]) && lru.contains(&shas[2]));
        assert!(!dir.path().join("c").join(&shas[1]).exists());
        drop(lru.acquire(&src, &shas[3], &limits).unwrap());
        assert!(lru.contains(&shas[0]), "pinned entries survive");
        assert!(lru.stats.bytes.load(Ordering::SeqCst) <= 2500);
        assert!(pinned.path.join("data").exists());
        drop(pinned);
        // Reopening counts what is on disk.
        let again = Lru::open(dir.path().join("c"), 2500).unwrap();
        assert_eq!(
            again.stats.bytes.load(Ordering::SeqCst),
            lru.stats.bytes.load(Ordering::SeqCst)
        );
    }
}
