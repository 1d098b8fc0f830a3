//! Wu-Palmer similarity: NLTK 3.10 `Synset.wup_similarity(other)` with `simulate_root=True`,
//! including its subsumer quirk (chosen by min_depth, depth taken from max_depth; spec 5.3).
use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Arc;

use super::{Synset, WordNet};

/// A node of the hypernym graph: a synset or NLTK's virtual `*ROOT*`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Node {
    Root,
    Syn(Synset),
}

/// NLTK's name for the virtual root; sorts before every synset name.
const ROOT_NAME: &str = "*ROOT*";

/// The hypernym graph with depths memoised for one similarity call.
struct Graph<'a> {
    wn: &'a WordNet,
    min_depth: HashMap<Synset, usize>,
    max_depth: HashMap<Synset, usize>,
}

impl<'a> Graph<'a> {
    fn new(wn: &'a WordNet) -> Self {
        Graph { wn, min_depth: HashMap::new(), max_depth: HashMap::new() }
    }

    /// `hypernyms() + instance_hypernyms()`.
    fn parents(&self, s: Synset) -> Arc<[Synset]> {
        self.wn.hypernyms_cached(&s)
    }

    /// NLTK `Synset.min_depth` (0 without hypernyms, else 1 + min over parents).
    fn min_depth(&mut self, s: Synset) -> usize {
        self.depth(s, true, &mut Vec::new())
    }

    /// NLTK `Synset.max_depth` (0 without hypernyms, else 1 + max over parents).
    fn max_depth(&mut self, s: Synset) -> usize {
        self.depth(s, false, &mut Vec::new())
    }

    /// Memoised recursion; a hypernym cycle (NLTK raises) is cut by ignoring the back edge.
    fn depth(&mut self, s: Synset, use_min: bool, path: &mut Vec<Synset>) -> usize {
        let memo = if use_min { &self.min_depth } else { &self.max_depth };
        if let Some(&d) = memo.get(&s) {
            return d;
        }
        path.push(s);
        let parents: Vec<Synset> =
            self.parents(s).iter().copied().filter(|p| !path.contains(p)).collect();
        let ds: Vec<usize> = parents.iter().map(|&p| self.depth(p, use_min, path)).collect();
        path.pop();
        let d = if use_min { ds.iter().min() } else { ds.iter().max() }.map_or(0, |d| d + 1);
        if use_min { &mut self.min_depth } else { &mut self.max_depth }.insert(s, d);
        d
    }

    fn node_min_depth(&mut self, n: Node) -> usize {
        match n {
            Node::Root => 0,
            Node::Syn(s) => self.min_depth(s),
        }
    }

    fn node_max_depth(&mut self, n: Node) -> usize {
        match n {
            Node::Root => 0,
            Node::Syn(s) => self.max_depth(s),
        }
    }

    /// NLTK `_iter_hypernym_lists` flattened: the synset and all its ancestors.
    fn closure(&mut self, s: Synset) -> HashSet<Synset> {
        let mut seen = HashSet::from([s]);
        let mut todo = vec![s];
        while let Some(x) = todo.pop() {
            for &p in self.parents(x).iter() {
                if seen.insert(p) {
                    todo.push(p);
                }
            }
        }
        seen
    }

    /// NLTK `_shortest_hypernym_paths`: BFS distances upward; with `simulate_root` the virtual
    /// root at (largest distance + 1). The virtual root's own map is `{*ROOT*: 0}`.
    fn hypernym_distances(&mut self, n: Node, simulate_root: bool) -> HashMap<Node, usize> {
        let s = match n {
            Node::Root => return HashMap::from([(Node::Root, 0)]),
            Node::Syn(s) => s,
        };
        let mut dist = HashMap::new();
        let mut queue = VecDeque::from([(s, 0usize)]);
        while let Some((x, d)) = queue.pop_front() {
            if dist.contains_key(&Node::Syn(x)) {
                continue;
            }
            dist.insert(Node::Syn(x), d);
            for &p in self.parents(x).iter() {
                queue.push_back((p, d + 1));
            }
        }
        if simulate_root {
            let far = dist.values().copied().max().unwrap_or(0);
            dist.insert(Node::Root, far + 1);
        }
        dist
    }

    /// NLTK `shortest_path_distance`: 0 for the same node, else the minimum over common
    /// ancestors of the two distances' sum; None if there is none.
    fn shortest_path_distance(&mut self, a: Node, b: Node, simulate_root: bool) -> Option<usize> {
        if a == b {
            return Some(0);
        }
        let da = self.hypernym_distances(a, simulate_root);
        let db = self.hypernym_distances(b, simulate_root);
        da.iter().filter_map(|(k, x)| db.get(k).map(|y| x + y)).min()
    }

    fn name(&self, n: Node) -> String {
        match n {
            Node::Root => ROOT_NAME.to_owned(),
            Node::Syn(s) => self.wn.synset_name(&s),
        }
    }
}

/// NLTK `_needs_root`: false only for nouns (WordNet 3.0).
fn needs_root(s: &Synset) -> bool {
    s.ss_type != 'n'
}

/// NLTK `lowest_common_hypernyms(other, simulate_root, use_min_depth=True)`: the common
/// hypernyms (plus the virtual root) with the largest min_depth, sorted by name.
fn lowest_common_hypernyms(g: &mut Graph, a: Synset, b: Synset, simulate_root: bool) -> Vec<Node> {
    let ha = g.closure(a);
    let hb = g.closure(b);
    let mut common: Vec<Node> = ha.intersection(&hb).map(|&s| Node::Syn(s)).collect();
    if simulate_root {
        common.push(Node::Root);
    }
    let Some(deepest) = common.iter().map(|&n| g.node_min_depth(n)).max() else {
        return Vec::new();
    };
    let lowest: Vec<Node> =
        common.into_iter().filter(|&n| g.node_min_depth(n) == deepest).collect();
    if lowest.len() == 1 {
        return lowest;
    }
    let mut named: Vec<(String, Node)> = lowest.into_iter().map(|n| (g.name(n), n)).collect();
    named.sort_by(|x, y| x.0.cmp(&y.0));
    named.into_iter().map(|(_, n)| n).collect()
}

/// NLTK `Synset.wup_similarity(other)`: `2 * depth / (len1 + len2)` where `depth` is the
/// subsumer's max_depth + 1 and `len_i` its shortest path distance to each synset plus depth.
pub fn wup_similarity(wn: &WordNet, a: &Synset, b: &Synset) -> Option<f64> {
    let need_root = needs_root(a) || needs_root(b);
    let mut g = Graph::new(wn);
    let subsumers = lowest_common_hypernyms(&mut g, *a, *b, need_root);
    let first = *subsumers.first()?;
    let subsumer = if subsumers.contains(&Node::Syn(*a)) { Node::Syn(*a) } else { first };
    let depth = g.node_max_depth(subsumer) + 1;
    let len1 = g.shortest_path_distance(Node::Syn(*a), subsumer, need_root)? + depth;
    let len2 = g.shortest_path_distance(Node::Syn(*b), subsumer, need_root)? + depth;
    Some((2.0 * depth as f64) / ((len1 + len2) as f64))
}

#[cfg(test)]
mod tests {
    use crate::metrics::wordnet::tests::wordnet;

    fn wup(a: &str, b: &str) -> Option<f64> {
        let wn = wordnet();
        let (sa, sb) = (wn.first_synset(a)?, wn.first_synset(b)?);
        wn.wup_similarity(&sa, &sb)
    }

    #[test]
    fn dog_cat() {
        // dog.n.01 / cat.n.01 meet at carnivore.n.01 (NLTK doc value 0.857...).
        let v = wup("dog", "cat").expect("some");
        assert!((v - 0.8571428571428571).abs() < 1e-15, "{v}");
    }

    #[test]
    fn verb_noun_meet_at_virtual_root() {
        // eat.v.01 has hypernyms; against a noun only the virtual root is shared.
        let v = wup("eat", "dog").expect("some");
        assert!(v > 0.0 && v < 0.25, "{v}");
    }

    #[test]
    fn symmetric_on_adjectives() {
        assert_eq!(wup("happy", "sad"), wup("sad", "happy"));
    }
}
