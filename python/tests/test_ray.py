"""Independent runs on Ray: a local cluster — a head and one worker node, started with
``ray start`` on 127.0.0.1 and stopped by the fixture — trains a two-member ensemble, two
trials, and a playbook whose member trains beside its main model, as Ray tasks; a worker killed
mid-task is retried and its member resumes from its checkpoint."""

import json
import os
import signal
import socket
import subprocess
import sys
import time

import pytest

ray = pytest.importorskip("ray")

import fastvision as fv  # noqa: E402
from fastvision.ray import playbook, train_ensemble, train_trials  # noqa: E402

RAY = os.path.join(os.path.dirname(sys.executable), "ray")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def cluster():
    env = dict(os.environ, RAY_USAGE_STATS_ENABLED="0")
    port = free_port()

    def ray_cli(*args):
        subprocess.run([RAY, *args], check=True, timeout=180, env=env, capture_output=True)

    common = ["--num-cpus=1", "--node-ip-address=127.0.0.1", "--disable-usage-stats"]
    try:
        ray_cli("start", "--head", f"--port={port}", "--include-dashboard=false", *common)
        ray_cli("start", f"--address=127.0.0.1:{port}", *common)
        yield f"127.0.0.1:{port}"
    finally:
        if ray.is_initialized():
            ray.shutdown()
        subprocess.run([RAY, "stop", "--force"], timeout=180, env=env, capture_output=True)


def test_a_two_member_ensemble_trains_on_a_ray_cluster(cluster, small, tmp_path):
    folder, report = train_ensemble(
        small, ["resnet18"], seeds=2, epochs=2, lr=2e-3, path=tmp_path / "ens",
        address=cluster, show=False,
    )
    # Both nodes took part: the cluster has two CPUs, one per node.
    assert len(ray.nodes()) == 2
    assert sum(n["Resources"].get("CPU", 0) for n in ray.nodes() if n["Alive"]) == 2
    with open(os.path.join(folder, "ensemble.json")) as f:
        members = json.load(f)["members"]
    assert len(members) == 2
    # The report is the local one (every member, the combinations), the ensemble loads and
    # predicts above chance (10 classes).
    assert "mean" in report, report
    learn = fv.load_learner(folder)
    items = small.valid_items
    right = sum(learn.predict(p)[1] == label for p, label in items)
    assert right / len(items) > 0.3, report


def test_trials_train_as_ray_tasks_and_come_back_ranked(cluster, small, tmp_path):
    trials = [{"lr": 1e-6}, {"lr": 3e-3, "epochs": 3}]
    table = train_trials(small, trials, epochs=2, path=tmp_path / "trials", address=cluster, show=False)
    rows = table.to_dict("records")
    # Ranked by validation accuracy: a rate of 1e-6 barely moves the weights.
    assert [r["lr"] for r in rows] == [3e-3, 1e-6], rows
    assert rows[0]["accuracy"] > 0.3 and rows[1]["accuracy"] < rows[0]["accuracy"] - 0.1, rows
    with open(os.path.join(rows[0]["path"], "log.json")) as f:
        assert len(json.load(f)["epochs"]) == 3
    assert "mean" in table.attrs["report"]


def test_a_playbook_on_two_workers_trains_its_member_beside_the_main_model(
    cluster, photos, tmp_path
):
    table = playbook(photos, budget="30s", path=tmp_path / "play", address=cluster, show=False)
    rows = {r["name"]: r for r in table.to_dict("records")}
    member = next(r for n, r in rows.items() if n.startswith("member"))
    assert "beside the main model" in member["note"], rows
    assert member["accuracy"] > 0.5 and rows["ensemble"]["accuracy"] > 0.5, rows
    folder = table.attrs["path"]
    with open(os.path.join(folder, "ensemble.json")) as f:
        assert len(json.load(f)["members"]) == 2
    # The member trained at the same time as the main model, on the other node's CPU.
    with open(os.path.join(folder, "playbook.json")) as f:
        state = json.load(f)
    spans = {r["name"]: (r["ended"] - r["seconds"], r["ended"]) for r in state["results"]}
    (a0, a1), (b0, b1) = spans["train"], spans[member["name"]]
    assert a0 < b1 and b0 < a1, spans


def ray_worker_pids():
    """The processes running a member (Ray titles a task's worker after the task's name)."""
    pids = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                cmd = f.read()
        except OSError:
            continue
        if cmd.startswith(b"ray::fastvision-run-"):
            pids.append(int(pid))
    return pids


def test_a_killed_worker_is_retried_and_its_member_resumes(cluster, small, tmp_path):
    import threading

    path = tmp_path / "killed"
    result = {}

    def run():
        result["out"] = train_ensemble(
            small, ["resnet18"], seeds=2, epochs=6, lr=2e-3, path=path, address=cluster,
            show=False,
        )

    t = threading.Thread(target=run)
    t.start()
    # Wait for a member's first checkpoint, keep its epochs, then kill the worker training it.
    deadline = time.time() + 240
    ckpt = None
    while ckpt is None:
        assert time.time() < deadline, "no member checkpointed"
        assert t.is_alive(), result
        for p in sorted((path / "members").glob("*/checkpoint/checkpoint.json")):
            ckpt = (p.parent.parent, json.loads(p.read_text()))
            break
        time.sleep(0.2)
    pids = ray_worker_pids()
    assert pids, "no worker found"
    for pid in pids:
        os.kill(pid, signal.SIGKILL)
    t.join(timeout=300)
    assert not t.is_alive(), "the ensemble hung after the kill"
    folder, _ = result["out"]
    with open(os.path.join(folder, "ensemble.json")) as f:
        assert len(json.load(f)["members"]) == 2
    # The killed member resumed: the epochs it had finished are in its log as they were
    # (a member trained again from scratch would have other timings).
    member, state = ckpt
    with open(member / "log.json") as f:
        log = json.load(f)
    done = state["recorder"]["epochs"]
    assert len(log["epochs"]) == 6
    for kept, was in zip(log["epochs"], done):
        assert kept.keys() == was.keys()
        for k, v in was.items():
            # JSON's last digit may differ after a round trip; a retrained epoch's seconds
            # differ by milliseconds.
            assert kept[k] == pytest.approx(v, rel=1e-12), (k, kept, was)
