#!/usr/bin/env python3
"""The CI workflow (.github/workflows/sweep.yml) and the Kubernetes manifests
(deploy/k8s/) are valid YAML and hold to the shard/merge contract they rely on
(DESIGN.md §8): N shard jobs numbered 1..N each run `sweep --shard K/N`, their
results reach one `report merge`, whose JUnit file is the one the test report
reads. Then the contract itself runs: each file's own sweep and merge
commands, with only the binary, the drills and the seeds swapped in, are
executed as separate processes, and the merge must equal the unsharded sweep
seed for seed.

usage: ci_files_test.py FAULTDRILL REPO_ROOT DRILL_DIR   (needs python3-yaml)
"""
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile

import yaml

FD, ROOT, DRILLS = sys.argv[1], sys.argv[2], sys.argv[3]
SEEDS = "1-6"
failures = []
checks = 0


def check(cond, what):
    global checks
    checks += 1
    if not cond:
        failures.append(what)
        print("FAIL:", what)


def load(rel):
    with open(os.path.join(ROOT, rel)) as f:
        return list(yaml.safe_load_all(f))


def steps_running(job, text):
    return [s for s in job.get("steps", []) if text in s.get("run", "")]


def steps_using(job, action):
    return [s for s in job.get("steps", []) if s.get("uses", "").startswith(action)]


def normalised(path):
    """sweep.json without what may differ between shards and a whole (wall time, shard)."""
    if not os.path.exists(path):
        return None
    with open(path) as f:
        doc = json.load(f)
    doc.pop("shard")
    doc["totals"].pop("wall_ms")
    for run in doc["runs"]:
        run.pop("wall_ms")
    return doc


def sh(cmd, env=None, ok=(0,)):
    done = subprocess.run(cmd, shell=True, env=env, capture_output=True, text=True)
    check(done.returncode in ok, f"`{cmd}` exited {done.returncode}: {done.stderr.strip()[:300]}")
    return done


def unsharded(work):
    out = os.path.join(work, "unsharded")
    sh(f"{FD} sweep {DRILLS} --seeds {SEEDS} --recheck 5 --out {out}", ok=(0, 1))
    return normalised(os.path.join(out, "sweep.json"))


# ---- the GitHub Actions workflow ----------------------------------------------------------


def workflow(work, expected):
    (wf,) = load(".github/workflows/sweep.yml")
    on = wf.get("on", wf.get(True))  # YAML 1.1 reads a bare `on` as true
    check(on is not None and "push" in on, "the workflow runs on push")
    jobs = wf["jobs"]
    shard, merge = jobs.get("shard"), jobs.get("merge")
    check(shard is not None and merge is not None, "the workflow has a shard and a merge job")
    n = int(wf["env"]["SHARD_COUNT"])
    matrix = shard["strategy"]["matrix"]["shard"]
    check(matrix == list(range(1, n + 1)), f"the matrix {matrix} is the shards 1..{n}")
    check(shard["strategy"].get("fail-fast") is False, "one failing shard does not cancel the others")
    (sweep,) = steps_running(shard, "faultdrill sweep")
    cmd = " ".join(sweep["run"].split())
    check("--shard ${{ matrix.shard }}/${{ env.SHARD_COUNT }}" in cmd, "each job sweeps its shard K/N")
    out = re.search(r"--out (\S+)", cmd).group(1)
    (upload,) = [s for s in steps_using(shard, "actions/upload-artifact") if s["with"]["path"] == out]
    check(upload.get("if") == "always()", "a shard with failing seeds still uploads its results")
    check(upload["with"]["name"] == "sweep-shard-${{ matrix.shard }}", "each shard's artifact is named for it")
    check(merge.get("needs") == "shard" and merge.get("if") == "always()",
          "the merge waits for every shard and runs even when one failed")
    (download,) = steps_using(merge, "actions/download-artifact")
    check(download["with"]["pattern"] == "sweep-shard-*", "the merge downloads every shard")
    where = download["with"]["path"]
    (join,) = steps_running(merge, "report merge")
    jcmd = " ".join(join["run"].split())
    check(f"report merge {where}/sweep-shard-*" in jcmd, "the merge joins every downloaded shard")
    junit = re.search(r"--junit (\S+)", jcmd).group(1)
    reports = steps_using(merge, "mikepenz/action-junit-report")
    check(len(reports) == 1 and reports[0]["with"]["report_paths"] == junit,
          "the test report reads the merged JUnit file")
    check(reports and reports[0].get("if") == "always()", "the test report shows failures too")

    # the contract, with the workflow's own commands
    base = os.path.join(work, "gha")
    env = dict(os.environ, SEEDS=SEEDS, DRILLS=DRILLS, SHARD_COUNT=str(n))
    for k in matrix:
        run = (cmd.replace("build/sim/faultdrill", FD).replace("${{ matrix.shard }}", str(k))
               .replace("${{ env.SHARD_COUNT }}", str(n)))
        shard_dir = os.path.join(base, where, f"sweep-shard-{k}")
        os.makedirs(shard_dir)
        sh(f"cd {base} && mkdir -p w{k} && cd w{k} && {{ {run}; rc=$?; mv {out}/* {shard_dir}/; "
           f"[ $rc -le 1 ]; }}", env=env)
    sh(f"cd {base} && " + jcmd.replace("build/sim/faultdrill", FD), env=env, ok=(0, 1))
    merged = os.path.join(base, re.search(r"--out (\S+)", jcmd).group(1), "sweep.json")
    check(os.path.exists(os.path.join(base, junit)), "the merge writes the JUnit file the report reads")
    check(normalised(merged) == expected, "the workflow's merge equals the unsharded sweep")


# ---- the Kubernetes manifests ---------------------------------------------------------------


def kubernetes(work, expected):
    (job,) = load("deploy/k8s/sweep-job.yaml")
    (merge,) = load("deploy/k8s/merge-job.yaml")
    (pvc,) = load("deploy/k8s/results-pvc.yaml")
    check(job["apiVersion"] == "batch/v1" and job["kind"] == "Job", "the sweep is a batch/v1 Job")
    spec = job["spec"]
    check(spec.get("completionMode") == "Indexed", "the sweep is an Indexed Job")
    n = spec["completions"]
    check(spec.get("parallelism") == n, "every shard runs at once")
    pod = spec["template"]["spec"]
    check(pod["restartPolicy"] == "Never", "a failed shard pod is not restarted in place")
    args = " ".join(pod["containers"][0]["args"][0].split())
    check("K=$((JOB_COMPLETION_INDEX + 1))" in args, "the completion index is the shard, from 1")
    check(f'--shard "$K/{n}"' in args, f"each pod sweeps shard K/{n} (N = completions)")
    check(pvc["kind"] == "PersistentVolumeClaim" and "ReadWriteMany" in pvc["spec"]["accessModes"],
          "the results volume can be mounted by every pod")
    for j in (job, merge):
        vols = j["spec"]["template"]["spec"]["volumes"]
        check(vols[0]["persistentVolumeClaim"]["claimName"] == pvc["metadata"]["name"],
              f"{j['metadata']['name']} mounts the results volume")
    margs = " ".join(merge["spec"]["template"]["spec"]["containers"][0]["args"][0].split())
    check("report merge /results/shard-*" in margs, "the merge job joins every shard directory")

    # the contract, with the manifests' own shell commands
    results = os.path.join(work, "k8s-results")
    os.makedirs(results)
    bindir = os.path.join(work, "bin")
    os.makedirs(bindir)
    os.symlink(FD, os.path.join(bindir, "faultdrill"))
    env = dict(os.environ, PATH=bindir + os.pathsep + os.environ["PATH"], CI="1")
    swap = lambda a: (a.replace("/results", results).replace("/drills", DRILLS)
                      .replace("--seeds 1-1000", f"--seeds {SEEDS}"))
    check("--seeds 1-1000" in args, "the manifest's seed range is where the test expects it")
    for index in range(n):
        sh(swap(args), env=dict(env, JOB_COMPLETION_INDEX=str(index)))
    sh(swap(margs), env=env, ok=(0, 1))
    check(normalised(os.path.join(results, "merged", "sweep.json")) == expected,
          "the Indexed Job's merge equals the unsharded sweep")


def main():
    work = tempfile.mkdtemp(prefix="faultdrill-ci-")
    try:
        expected = unsharded(work)
        workflow(work, expected)
        kubernetes(work, expected)
    finally:
        shutil.rmtree(work)
    print(f"ci_files_test: {checks - len(failures)} passed, {len(failures)} failed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
