//! Reading real graphs from files, as `seed --edges` does: the in-repo
//! fixtures always, and the Reed College Facebook graph (socfb-Reed98) when
//! the shared data folder beside the repository holds it. The project never
//! depends on that folder; the fixtures exercise the same paths.

use std::path::{Path, PathBuf};

use chirp_load::graph_model::EdgeList;

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

/// (followers, following) of each user.
fn degrees(graph: &EdgeList) -> Vec<(u32, u32)> {
    let mut degrees = vec![(0, 0); graph.users as usize];
    for &(follower, followee) in &graph.edges {
        degrees[followee as usize].0 += 1;
        degrees[follower as usize].1 += 1;
    }
    degrees
}

#[test]
fn the_tiny_friendship_graph_reads_the_same_from_both_formats() {
    let edges = EdgeList::read(&fixture("tiny.edges"), true).unwrap();
    let matrix = EdgeList::read(&fixture("tiny.mtx"), false).unwrap();
    assert_eq!(edges.users, 8);
    assert_eq!(edges.edges.len(), 20);
    assert_eq!(edges.edges, matrix.edges);
    // Friendship is mutual: everyone follows exactly those who follow them.
    let degrees = degrees(&edges);
    assert!(
        degrees
            .iter()
            .all(|&(followers, following)| followers == following)
    );
    assert_eq!(degrees[0], (4, 4));
}

#[test]
fn read_as_directed_each_line_is_one_follow() {
    let edges = EdgeList::read(&fixture("tiny.edges"), false).unwrap();
    assert_eq!(edges.edges.len(), 10);
    assert_eq!(
        degrees(&edges)[0],
        (4, 0),
        "user 0 is always the second of a pair"
    );
}

#[test]
fn the_reed_college_graph_when_present() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../shared/data/socfb-Reed98/socfb-Reed98.edges");
    if !path.exists() {
        eprintln!(
            "{} not found; the fixtures cover the same code",
            path.display()
        );
        return;
    }
    let graph = EdgeList::read(&path, true).unwrap();
    assert_eq!(graph.users, 962);
    assert_eq!(graph.edges.len(), 2 * 18_812);
}
