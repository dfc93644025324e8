"""Commits between the hub and a node's own clone as git bundles: seed, ship what is missing, send a branch
back."""
from tests.scheduler.tiny_repo import make_repo
from worktrees import SlotPool, TargetRepo
from worktrees.transport import SHIP_PREFIX, NodeCommits, branch_bundle, fetch_bundle, node_clone


def _commit(repo: TargetRepo, parent: str, text: str) -> str:
    """A commit on top of `parent` in the hub, on no branch (as the coordinator's merges leave them)."""
    return repo.git("commit-tree", repo.git("rev-parse", f"{parent}^{{tree}}"), "-p", parent, "-m", text)


def test_a_node_clone_gets_what_it_lacks_and_sends_its_branch_back(tmp_path):
    hub = TargetRepo(make_repo(tmp_path / "hub"))
    base = hub.resolve("main")
    commits = NodeCommits(hub)
    node = node_clone(tmp_path / "node" / "repo.git", commits.seed_bundle())
    assert node.git("cat-file", "-t", base) == "commit"
    assert not (node.path / "objects" / "info" / "alternates").exists()  # its own objects, nothing shared

    # A worker's experiment on the node: a branch in a slot of the node's clone, sent back to the hub.
    cand = SlotPool(node, tmp_path / "node" / "workers" / "w1").slot("cand", base)
    cand.start_branch("farm/c/c-0001", base)
    (cand.path / "prog.py").write_text("N = 1\n")
    change = cand.commit_all("farm: change")
    fetch_bundle(hub, branch_bundle(node, "farm/c/c-0001", base), "+refs/heads/farm/c/c-0001:refs/heads/farm/c/c-0001")
    assert hub.resolve("farm/c/c-0001") == change
    commits.received("w1", change)

    # Nothing to ship for what the node holds; a new tip on the hub is shipped, and only once.
    assert commits.bundle_for("w1", [base, change]) is None
    tip = _commit(hub, change, "landed")
    bundle = commits.bundle_for("w1", [tip, base])
    assert bundle is not None and commits.bundle_for("w1", [tip]) is None
    fetch_bundle(node, bundle, f"+{SHIP_PREFIX}*:{SHIP_PREFIX}*")
    assert node.git("cat-file", "-t", tip) == "commit"
    assert hub.git("for-each-ref", SHIP_PREFIX) == ""  # the hub keeps no transfer refs
    # Another worker (of this node or another) is known to hold the seed only, and so is a replaced one.
    assert commits.bundle_for("w3", [tip]) is not None
    commits.forget("w1")
    assert commits.bundle_for("w1", [tip]) is not None


def test_many_known_commits_are_reduced_to_the_independent_ones(tmp_path):
    hub = TargetRepo(make_repo(tmp_path / "hub"))
    commits = NodeCommits(hub)
    commits.seed_bundle()
    chain = [hub.resolve("main")]
    for i in range(70):
        chain.append(_commit(hub, chain[-1], f"c{i}"))
        commits.received("w", chain[-1])
    assert len(commits.known["w"]) < 10 and chain[-1] in commits.known["w"]
    assert commits.bundle_for("w", chain[30:40]) is None  # ancestors of a known commit are held
