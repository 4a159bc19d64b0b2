import json, platform, subprocess
def load(p):
    return json.load(open(p))
cp, sn, ck, cj = (load(f"/tmp/stoa_bench/out_{w}.json") for w in ("cartpole", "snake", "checks", "check_jumanji"))
cpu = [l.split(":", 1)[1].strip() for l in subprocess.run(["lscpu"], capture_output=True, text=True).stdout.splitlines() if l.startswith("Model name")][0]
freeze = subprocess.run(["/tmp/stoa_venv/bin/pip", "freeze"], capture_output=True, text=True).stdout.split()
vers = {l.split("==")[0]: l.split("==")[1] for l in freeze if l.split("==")[0].lower() in ("jax", "jaxlib", "stoa-env", "gymnax", "jumanji", "flax", "chex", "numpy", "six")}
def sps(res):
    return {k: (v["steps_per_s"] if v["ok"] else "FAILED: " + v["error"].splitlines()[0]) for k, v in res.items()}
out = dict(
    issue="jaxppo#25: stoa-env adapter layer vs jaxppo's own adapters",
    machine=dict(cpu=cpu, cores=2, backend=cp["meta"]["backend"], note="shared machine: another engineer's tests kept load average ~2-3 on the 2 cores during all runs; numbers are relative, same process per suite", python=platform.python_version()),
    versions=dict(stoa_venv=vers, jaxppo="0.1.0 from /work/main on PYTHONPATH (not installed; same jax 0.10.2)"),
    install=dict(command="python3 -m venv /tmp/stoa_venv && /tmp/stoa_venv/bin/pip install stoa-env gymnax jumanji && /tmp/stoa_venv/bin/pip install six",
                 result="resolved cleanly to jax/jaxlib 0.10.2, gymnax 1.0.1, jumanji 1.1.2, stoa-env 0.1.2; `six` had to be added (gymnax 1.0.1 imports it undeclared). stoa-env requires only jax>=0.4.25, jaxlib>=0.5.3, flax>=0.10.5, chex>=0.1.89, numpy>=1.26.4: no conflict with jax 0.10.2 (pip install --dry-run stoa-env jax==0.10.2 jaxlib==0.10.2 gymnax==1.0.1 jumanji==1.1.2: nothing to change)"),
    cartpole=dict(envs=cp["meta"]["N"], steps=cp["meta"]["T"], env_steps_per_s=sps(cp["results"]), raw=cp["results"]),
    snake=dict(envs=sn["meta"]["N"], steps=sn["meta"]["T"], env_steps_per_s=sps(sn["results"]), raw=sn["results"]),
    semantics=dict(gymnax_cartpole_max_steps_10=ck["results"]["semantics_cartpole_max10"], jumanji_snake_simulated_truncation=cj),
    commands=[
        "cd /tmp/stoa_bench && PYTHONPATH=/work/main PYTHONDONTWRITEBYTECODE=1 /tmp/stoa_venv/bin/python bench.py cartpole   # 1024 envs x 1000 steps",
        "cd /tmp/stoa_bench && PYTHONPATH=/work/main PYTHONDONTWRITEBYTECODE=1 /tmp/stoa_venv/bin/python bench.py snake      # 256 envs x 200 steps",
        "cd /tmp/stoa_bench && PYTHONPATH=/work/main PYTHONDONTWRITEBYTECODE=1 /tmp/stoa_venv/bin/python bench.py checks",
        "cd /tmp/stoa_bench && PYTHONPATH=/work/main PYTHONDONTWRITEBYTECODE=1 /tmp/stoa_venv/bin/python check_jumanji2.py",
    ],
    method="one jitted fn per path: actions [T,N] pre-drawn (same for all paths) + lax.scan of T auto-resetting steps; carry folds reward, done count and a checksum of the kept final observation; compile excluded, best of 3",
)
json.dump(out, open("/tmp/stoa_check.json", "w"), indent=1)
print(json.dumps({k: out[k]["env_steps_per_s"] for k in ("cartpole", "snake")}, indent=1))
