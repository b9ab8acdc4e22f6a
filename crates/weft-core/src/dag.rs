//! Graph algorithms over task indices, all O(V+E): topological order (Kahn) and cycle
//! reporting (iterative DFS, so a 100,000-task chain cannot overflow the stack).

/// A directed graph as adjacency lists: `children[p]` are the nodes that run after `p`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Graph {
    /// Edges parent -> children, deduplicated.
    pub children: Vec<Vec<usize>>,
    /// Number of distinct parents per node.
    pub parent_count: Vec<u32>,
}

impl Graph {
    /// A graph of `node_count` nodes and no edges.
    pub fn new(node_count: usize) -> Self {
        Graph {
            children: vec![Vec::new(); node_count],
            parent_count: vec![0; node_count],
        }
    }

    /// Adds the edge `parent -> child` (callers deduplicate).
    fn add_edge(&mut self, parent: usize, child: usize) {
        self.children[parent].push(child);
        self.parent_count[child] += 1;
    }

    /// Builds a graph from each node's parent list (duplicates ignored).
    pub fn from_parents(parents: &[Vec<usize>]) -> Self {
        let mut graph = Graph::new(parents.len());
        // `seen[p] == child + 1` marks p as already a parent of `child`: O(1) dedup.
        let mut seen = vec![0usize; parents.len()];
        for (child, list) in parents.iter().enumerate() {
            for &parent in list {
                if parent < parents.len() && seen[parent] != child + 1 {
                    seen[parent] = child + 1;
                    graph.add_edge(parent, child);
                }
            }
        }
        graph
    }

    /// A topological order, or `None` when there is a cycle.
    pub fn topological_order(&self) -> Option<Vec<usize>> {
        let mut remaining = self.parent_count.clone();
        let mut order: Vec<usize> = (0..self.children.len())
            .filter(|&node| remaining[node] == 0)
            .collect();
        let mut next = 0;
        while next < order.len() {
            let node = order[next];
            next += 1;
            for &child in &self.children[node] {
                remaining[child] -= 1;
                if remaining[child] == 0 {
                    order.push(child);
                }
            }
        }
        (order.len() == self.children.len()).then_some(order)
    }

    /// Cycles, each as the list of nodes along it (parent before child), starting at the
    /// node with the smallest index. At most one cycle per DFS root, so the report stays
    /// short for a tangled graph.
    pub fn cycles(&self) -> Vec<Vec<usize>> {
        const WHITE: u8 = 0;
        const GREY: u8 = 1;
        const BLACK: u8 = 2;
        let mut color = vec![WHITE; self.children.len()];
        let mut cycles = Vec::new();
        for root in 0..self.children.len() {
            if color[root] != WHITE {
                continue;
            }
            // Stack of (node, next child index); the stack itself is the current path.
            let mut stack: Vec<(usize, usize)> = vec![(root, 0)];
            color[root] = GREY;
            let mut found = false;
            while let Some(&mut (node, ref mut next_child)) = stack.last_mut() {
                if let Some(&child) = self.children[node].get(*next_child) {
                    *next_child += 1;
                    if color[child] == GREY && !found {
                        let start = stack.iter().position(|(n, _)| *n == child).unwrap_or(0);
                        let mut cycle: Vec<usize> =
                            stack[start..].iter().map(|(n, _)| *n).collect();
                        let smallest = cycle
                            .iter()
                            .enumerate()
                            .min_by_key(|(_, n)| **n)
                            .map_or(0, |(i, _)| i);
                        cycle.rotate_left(smallest);
                        cycles.push(cycle);
                        found = true;
                    } else if color[child] == WHITE {
                        color[child] = GREY;
                        stack.push((child, 0));
                    }
                } else {
                    color[node] = BLACK;
                    stack.pop();
                }
            }
        }
        cycles
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn orders_a_diamond() {
        let graph = Graph::from_parents(&[vec![], vec![0], vec![0], vec![1, 2, 1]]);
        assert_eq!(graph.parent_count, vec![0, 1, 1, 2]);
        assert_eq!(graph.topological_order(), Some(vec![0, 1, 2, 3]));
        assert!(graph.cycles().is_empty());
    }

    #[test]
    fn finds_cycles() {
        // 0 -> 1 -> 2 -> 1, and 3 -> 3.
        let graph = Graph::from_parents(&[vec![], vec![0, 2], vec![1], vec![3]]);
        assert_eq!(graph.topological_order(), None);
        assert_eq!(graph.cycles(), vec![vec![1, 2], vec![3]]);
    }

    #[test]
    fn long_chain_does_not_overflow() {
        let parents: Vec<Vec<usize>> = (0..200_000)
            .map(|i| if i == 0 { vec![] } else { vec![i - 1] })
            .collect();
        let graph = Graph::from_parents(&parents);
        assert_eq!(
            graph.topological_order().map(|order| order.len()),
            Some(200_000)
        );
        assert!(graph.cycles().is_empty());
    }
}
