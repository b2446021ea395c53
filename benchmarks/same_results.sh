#!/usr/bin/env bash
# Fixed-seed toy2d, maze2d and motion runs at a base commit and at the working tree, compared on
# results.json without timing fields: what a behaviour-preserving refactor must keep identical
# (fields only the working tree writes are listed, not counted as a difference).
#   bash benchmarks/same_results.sh BASE_COMMIT        (about 8 minutes on 2 shared cores)
set -euo pipefail
base=${1:?give the base commit}
repo=$(git rev-parse --show-toplevel)
tmp=$(mktemp -d)
git -C "$repo" worktree add -q -f "$tmp/base" "$base"
trap 'git -C "$repo" worktree remove -f "$tmp/base"; rm -rf "$tmp"' EXIT
for tree in "$tmp/base" "$repo"; do
  out="$tmp/out/$(basename "$tree")"; mkdir -p "$out"
  (cd "$tree"
   python -m mmftraj train --task toy2d --steps 300 --seed 3 --name t --runs-dir "$out" --set train.threads=1 >/dev/null
   python -m mmftraj data generate maze2d-umaze-v1 --samples 20000 --seed 1 --out "$out/u.hdf5" >/dev/null
   python -m mmftraj train --task maze2d --steps 60 --seed 3 --name m --runs-dir "$out" --set train.threads=1 \
     --set data.path="$out/u.hdf5" --set model.width=32 --set model.depth=1 --set eval.train_episodes=2 \
     --set eval.latency_repeats=2 >/dev/null
   python -m mmftraj eval --task maze2d --checkpoint "$out/maze2d/m" --episodes 2 --seed 1 --threads 1 \
     --set eval.candidates=4 --set eval.replan_every=8 --set eval.latency_repeats=2 --set eval.plots=0 \
     --out "$out/maze2d/m/eval" >/dev/null
   python -m mmftraj train --task motion --steps 60 --seed 3 --name g --runs-dir "$out" --set train.threads=1 \
     --set model.width=32 --set model.depth=1 >/dev/null)
done
python - "$tmp/out/base" "$tmp/out/$(basename "$repo")" <<'PY'
import json, sys
skip = ("time", "latency", "plan_seconds", "run_dir", "checkpoint", "wall", "threads")  # timings, paths
def kept(k):  # "_s" only as a suffix (seconds): score_se, success_rate, plans_per_episode are compared
    return not k.endswith(("_s", "_ms")) and not any(s in k for s in skip)
def clean(d):
    return {k: clean(v) for k, v in d.items() if kept(k)} if isinstance(d, dict) else d
def new_keys(a, b, at=""):  # fields only the working tree writes: reported, not a difference
    keys = [at + k for k in b if k not in a]
    return keys + [k for key in a if isinstance(a[key], dict) and isinstance(b.get(key), dict)
                   for k in new_keys(a[key], b[key], f"{at}{key}.")]
def drop(b, keys):
    for k in keys:
        *path, last = k.split(".")
        d = b
        for p in path:
            d = d[p]
        d.pop(last)
    return b
bad = 0
for task, name in (("toy2d", "t"), ("maze2d", "m"), ("maze2d", "m/eval"), ("motion", "g")):
    a, b = (clean(json.load(open(f"{root}/{task}/{name}/results.json"))) for root in sys.argv[1:])
    added = new_keys(a, b)
    b = drop(b, added)
    diff = sorted(k for k in set(a) | set(b) if a.get(k) != b.get(k))
    bad += bool(diff)
    print(f"{task} {name}:", "identical" if not diff else f"differs in {diff}",
          f"(new fields: {', '.join(added)})" if added else "")
sys.exit(bad)
PY
