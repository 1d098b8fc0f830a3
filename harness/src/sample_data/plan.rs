//! The list of files to write, built before anything touches the disk: annotation bytes, and the
//! scenes and clips that the encoders turn into JPEG/AVI/MP4. Cheap to build, so `ensure` can
//! hash it to recognise an up-to-date copy.
use std::collections::BTreeSet;

use serde_json::Value;
use tasks::rng::SplitMix64;

use super::scene::{Clip, Scene};

/// Video containers of the official releases (datasets.md §12.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Container {
    /// MPEG-4 part 2 (Xvid tag) in AVI: MSVD.
    Avi,
    /// H.264 in MP4: MSR-VTT, NExT-QA.
    Mp4,
}

/// What goes into one file.
#[derive(Debug, Clone)]
pub enum Content {
    Bytes(Vec<u8>),
    Jpeg(Scene),
    Video(Clip, Container),
}

/// One file, its path relative to the data root.
#[derive(Debug, Clone)]
pub struct File {
    pub path: String,
    pub content: Content,
}

/// Files of the whole data root.
#[derive(Debug, Default)]
pub struct Plan {
    pub files: Vec<File>,
}

impl Plan {
    /// Compact JSON, as the official files are.
    pub fn json(&mut self, path: impl Into<String>, v: &Value) {
        let bytes = serde_json::to_vec(v).expect("serialising a JSON value cannot fail");
        self.bytes(path, bytes);
    }
    pub fn bytes(&mut self, path: impl Into<String>, bytes: Vec<u8>) {
        self.files.push(File { path: path.into(), content: Content::Bytes(bytes) });
    }
    pub fn jpeg(&mut self, path: impl Into<String>, scene: Scene) {
        self.files.push(File { path: path.into(), content: Content::Jpeg(scene) });
    }
    pub fn video(&mut self, path: impl Into<String>, clip: Clip, container: Container) {
        self.files.push(File { path: path.into(), content: Content::Video(clip, container) });
    }

    /// FNV-1a (64-bit) over every path and content description: changes whenever any output would.
    pub fn hash(&self, salt: &str) -> u64 {
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        let mut eat = |bytes: &[u8]| {
            for &b in bytes.iter().chain(&[0xff]) {
                h ^= b as u64;
                h = h.wrapping_mul(0x0100_0000_01b3);
            }
        };
        eat(salt.as_bytes());
        for f in &self.files {
            eat(f.path.as_bytes());
            match &f.content {
                Content::Bytes(b) => eat(b),
                other => eat(format!("{other:?}").as_bytes()),
            }
        }
        h
    }
}

/// Distinct random ids in `lo..hi` (COCO ids, video ids, …), drawn from one seeded stream.
pub struct Ids {
    rng: SplitMix64,
    used: BTreeSet<u64>,
}

impl Ids {
    pub fn new(seed: u64) -> Self {
        Ids { rng: SplitMix64::new(seed), used: BTreeSet::new() }
    }
    pub fn draw(&mut self, lo: u64, hi: u64) -> u64 {
        loop {
            let id = lo + self.rng.next_u64() % (hi - lo);
            if self.used.insert(id) {
                return id;
            }
        }
    }
}

/// Class of the `i`-th item of a list: cycles through all classes, starting at `offset`.
pub fn class_of(i: usize, offset: usize) -> usize {
    (i + offset) % super::scene::CLASSES
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_distinct_and_in_range() {
        let mut ids = Ids::new(3);
        let v: Vec<u64> = (0..50).map(|_| ids.draw(10, 70)).collect();
        assert!(v.iter().all(|&i| (10..70).contains(&i)));
        assert_eq!(v.iter().collect::<BTreeSet<_>>().len(), 50);
    }

    #[test]
    fn hash_sees_paths_and_contents() {
        let mut a = Plan::default();
        a.bytes("x/a.json", b"[]".to_vec());
        let mut b = Plan::default();
        b.bytes("x/a.json", b"[1]".to_vec());
        let mut c = Plan::default();
        c.bytes("x/b.json", b"[]".to_vec());
        assert_ne!(a.hash("v"), b.hash("v"));
        assert_ne!(a.hash("v"), c.hash("v"));
        assert_ne!(a.hash("v"), a.hash("w"));
        assert_eq!(a.hash("v"), a.hash("v"));
    }
}
