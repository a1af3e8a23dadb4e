"""Times optgrad, Optax and torch.optim optimizer steps on three parameter trees.

Usage::

    python benchmarks/run.py                  # full run, ~10-20 minutes on a 2-core machine
    python benchmarks/run.py --quick          # tiny trees, 2 repeats (CI smoke test)
    python benchmarks/run.py --trees gpt --impls optgrad optax torch_fused

Every (tree, optimizer, implementation) runs in its own subprocess with a timeout; see
``benchmarks/README.md`` for what is measured and how.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import json
import os
import platform
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))  # `benchmarks` and `optgrad` import from the checkout

from benchmarks import catalogue, measure, registry, report, trees  # noqa: E402

# The per-optimizer catalogue joins the table (selected with --catalogue or by name).
for _name, _case in catalogue.CATALOGUE.items():
    registry.OPTIMIZERS.setdefault(_name, _case)
DEFAULT_OPTIMIZERS = ["clip_adamw", "sgd_nesterov"]
from benchmarks.worker import Config, cpu_count, run_config  # noqa: E402

EVENT_PREFIX = "@@bench "
DEFAULT_JSON = REPO_ROOT / "benchmarks" / "results" / "latest.json"
STDERR_TAIL = 2000


# --- command line ----------------------------------------------------------------------------


def _names(values: list[str], table: dict, what: str) -> list[str]:
    """Accepts ``a b`` as well as ``a,b``; rejects unknown names."""
    names = [name for value in values for name in value.split(",") if name]
    unknown = [name for name in names if name not in table]
    if unknown:
        raise SystemExit(f"unknown {what}: {', '.join(unknown)}; choose from {', '.join(table)}")
    return names


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Benchmark optimizer steps: optgrad vs Optax vs torch.optim.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument(
        "--trees",
        "--tree",
        nargs="+",
        default=None,
        # "%(default).0s" prints nothing; it stops the formatter from appending "(default: None)"
        help=f"trees among {', '.join(trees.TREES)} (default: "
        f"{', '.join(trees.DEFAULT_TREES)}, plus 1b when a GPU is present)%(default).0s",
    )
    parser.add_argument(
        "--optimizers",
        nargs="+",
        default=DEFAULT_OPTIMIZERS,
        help=f"optimizers among {', '.join(registry.OPTIMIZERS)}",
    )
    parser.add_argument(
        "--catalogue",
        action="store_true",
        help="every optimizer of the catalogue (benchmarks/catalogue.py) instead of --optimizers",
    )
    parser.add_argument(
        "--impls", nargs="+", default=list(registry.IMPLEMENTATIONS), help="implementations"
    )
    parser.add_argument("--repeats", type=int, default=20, help="timed steady-state steps")
    parser.add_argument(
        "--rounds",
        type=int,
        default=1,
        help="run the whole matrix this many times, one round after the other; a row then "
        "reports the median over rounds, and its ratios are the median of the ratios taken "
        "within each round (paired, so a slow period of the machine hits both sides)",
    )
    parser.add_argument("--warmup", type=int, default=3, help="untimed steps after the first")
    parser.add_argument(
        "--timeout", type=float, default=400.0, help="seconds per configuration subprocess"
    )
    parser.add_argument(
        "--quick", action="store_true", help="tiny trees, 2 repeats, 1 warmup (smoke test)"
    )
    parser.add_argument(
        "--skip-slow",
        action="store_true",
        help="skip configurations known to take minutes to compile (optgrad and Optax, not "
        "flattened, on the 2000-leaf tree)",
    )
    parser.add_argument(
        "--inline",
        action="store_true",
        help="run every configuration in this process (fast; peak memory is then approximate)",
    )
    parser.add_argument(
        "--device",
        choices=("auto", "cpu"),
        default="auto",
        help="auto uses a GPU when JAX or torch sees one",
    )
    parser.add_argument(
        "--torch-threads", type=int, default=0, help="torch intra-op threads (0: one per core)"
    )
    parser.add_argument("--bandwidth-mb", type=int, default=512, help="copy size for bandwidth")
    parser.add_argument("--json", type=Path, default=DEFAULT_JSON, help="JSON report path")
    parser.add_argument("--worker", help=argparse.SUPPRESS)  # internal: one configuration
    parser.add_argument("--probe", action="store_true", help=argparse.SUPPRESS)  # internal
    args = parser.parse_args(argv)
    if args.quick:
        args.repeats, args.warmup = min(args.repeats, 2), min(args.warmup, 1)
        args.bandwidth_mb = min(args.bandwidth_mb, 32)
    return args


# --- environment probe: devices, versions, bandwidth -----------------------------------------


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _ram_gb() -> float | None:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 1e9
    except (ValueError, OSError, AttributeError):
        return None


def _probe_jax(info: dict, bandwidth: dict, nbytes: int) -> None:
    try:
        import jax
        import optax
    except ImportError:
        return
    device = jax.devices()[0]
    info["versions"].update(jax=jax.__version__, optax=optax.__version__)
    info["jax_platform"] = device.platform
    info["jax_device"] = getattr(device, "device_kind", str(device))
    key = "jax_device_copy" if device.platform == "gpu" else "jax_host_copy"
    bandwidth[key] = measure.jax_copy_bandwidth(jax, nbytes)


def _probe_torch(info: dict, bandwidth: dict, nbytes: int) -> None:
    try:
        import torch
    except ImportError:
        return
    torch.set_num_threads(cpu_count())
    info["versions"]["torch"] = torch.__version__
    info["torch_cuda"] = torch.cuda.is_available()
    bandwidth["torch_host_copy"] = measure.torch_copy_bandwidth(torch, nbytes, "cpu")
    if info["torch_cuda"]:
        info["torch_device"] = torch.cuda.get_device_name()
        bandwidth["torch_device_copy"] = measure.torch_copy_bandwidth(torch, nbytes, "cuda")


def _bound_bandwidth(copies: dict[str, float]) -> dict[str, Any]:
    """The fastest copy on the device the steps run on: device copies win if there are any."""
    device = {k: v for k, v in copies.items() if "device" in k}
    method, gbs = max((device or copies).items(), key=lambda item: item[1])
    return {"bound_method": method, "bound_gbs": gbs}


def merge_bandwidth(before: dict[str, Any], after: dict[str, Any]) -> dict[str, Any]:
    """Best of the copies measured before and after the benchmark (a busy machine only
    lowers a copy's speed, so the maximum is the better estimate of the hardware)."""
    copies = {k: max(before["copies"][k], after["copies"].get(k, 0.0)) for k in before["copies"]}
    merged = {**before, "copies": copies, **_bound_bandwidth(copies)}
    merged["before"], merged["after"] = before["copies"], after["copies"]
    return merged


def probe_environment(bandwidth_mb: int) -> dict[str, Any]:
    """Machine, versions and copy bandwidths (GB/s, read + write bytes, best of 5)."""
    import numpy

    nbytes = bandwidth_mb * 2**20
    info: dict[str, Any] = {
        "cpu": _cpu_model(),
        "cores": cpu_count(),
        "ram_gb": _ram_gb(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "versions": {"numpy": numpy.__version__},
    }
    copies = {"numpy_copy": measure.numpy_copy_bandwidth(nbytes)}
    _probe_jax(info, copies, nbytes)
    _probe_torch(info, copies, nbytes)
    info["bandwidth"] = {
        "copies": copies,
        **_bound_bandwidth(copies),
        "copy_mib": bandwidth_mb,
        "tries": measure.BANDWIDTH_TRIES,
    }
    info["gpu"] = info.get("jax_platform") == "gpu" or bool(info.get("torch_cuda"))
    return info


def _worker_env(device: str) -> dict[str, str]:
    env = dict(os.environ)
    env.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")  # measure, don't preallocate
    if device == "cpu":
        env["JAX_PLATFORMS"] = "cpu"
        env["CUDA_VISIBLE_DEVICES"] = ""
    return env


def run_probe(args: argparse.Namespace) -> dict[str, Any]:
    if args.inline:
        return probe_environment(args.bandwidth_mb)
    command = [sys.executable, __file__, "--probe", "--bandwidth-mb", str(args.bandwidth_mb)]
    result = subprocess.run(
        command, capture_output=True, text=True, env=_worker_env(args.device), check=True
    )
    return json.loads(result.stdout.strip().splitlines()[-1])


# --- running configurations ------------------------------------------------------------------


def plan(args: argparse.Namespace, gpu: bool) -> list[Config]:
    default_trees = list(trees.DEFAULT_TREES) + (list(trees.GPU_ONLY_TREES) if gpu else [])
    tree_names = _names(args.trees, trees.TREES, "tree") if args.trees else default_trees
    chosen = list(catalogue.CATALOGUE) if args.catalogue else args.optimizers
    optimizers = _names(chosen, registry.OPTIMIZERS, "optimizer")
    impls = _names(args.impls, registry.IMPLEMENTATIONS, "implementation")
    return [
        Config(tree, opt, impl, args.repeats, args.warmup, args.quick, gpu, args.torch_threads)
        for tree in tree_names
        for opt in optimizers
        for impl in impls
    ]


def _parse_events(stdout: str) -> dict[str, Any]:
    merged: dict[str, Any] = {}
    for line in stdout.splitlines():
        if line.startswith(EVENT_PREFIX):
            merged.update(json.loads(line[len(EVENT_PREFIX) :]))
    return merged


def _kill_group(process: subprocess.Popen) -> None:
    """Kills the worker and anything it started (it leads its own process group)."""
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def run_isolated(config: Config, timeout: float, device: str) -> dict[str, Any]:
    command = [sys.executable, __file__, "--worker", json.dumps(dataclasses.asdict(config))]
    process = subprocess.Popen(
        command,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=_worker_env(device),
        start_new_session=True,
    )
    try:
        stdout, stderr = process.communicate(timeout=timeout)
        timed_out = False
    except subprocess.TimeoutExpired:
        _kill_group(process)
        stdout, stderr = process.communicate()
        timed_out = True
    result = _parse_events(stdout)
    if timed_out:
        result.update(status="timeout", error=f"killed after {timeout:g} s")
    elif "status" not in result:
        result.update(status="error", error=f"worker exited with {process.returncode}")
    if result["status"] == "error":
        result["stderr_tail"] = stderr[-STDERR_TAIL:]
    return result


def run_inline(config: Config) -> dict[str, Any]:
    result: dict[str, Any] = {}
    run_config(config, result.update)
    return result


def _describe_result(row: dict[str, Any]) -> str:
    if row["status"] != "ok":
        return f"{row['status']} {row.get('error', '')}".strip()
    return f"ok: step {row['step_ms']:.2f} ms, first call {row['first_call_s']:.2f} s"


def run_all(
    args: argparse.Namespace, configs: list[Config], label: str = ""
) -> list[dict[str, Any]]:
    rows = []
    for index, config in enumerate(configs, 1):
        start = time.perf_counter()
        impl = registry.IMPLEMENTATIONS[config.impl]
        if args.skip_slow and config.tree in impl.slow_trees:
            result = {"status": "skipped", "error": "--skip-slow"}
        elif args.inline:
            result = run_inline(config)
        else:
            result = run_isolated(config, args.timeout, args.device)
        tree = trees.build_tree(config.tree, config.quick)
        row = {
            **dataclasses.asdict(config),
            "n_params": tree.n_params,
            "n_leaves": tree.n_leaves,
            "bytes_per_param": registry.OPTIMIZERS[config.optimizer].bytes_per_param,
            "wall_s": time.perf_counter() - start,
            **result,
        }
        rows.append(row)
        name = f"{config.tree}/{config.optimizer}/{config.impl}"
        print(f"{label}[{index}/{len(configs)}] {name}: {_describe_result(row)}", file=sys.stderr)
    return rows


# --- the report ------------------------------------------------------------------------------


def build_report(args, environment, configs, rounds) -> dict[str, Any]:
    """The JSON report; several rounds are merged row by row (``report.merge_rounds``)."""
    for rows in rounds:
        report.add_derived_columns(rows, environment["bandwidth"].get("bound_gbs"))
    rows = report.merge_rounds(rounds)
    tree_names = list(dict.fromkeys(config.tree for config in configs))
    tree_specs = [trees.build_tree(name, args.quick) for name in tree_names]
    command = "python benchmarks/run.py " + shlex.join(sys.argv[1:])
    report_dict = {
        "meta": {
            "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "command": command.strip(),
            "machine": {k: v for k, v in environment.items() if k != "bandwidth"},
            "bandwidth": environment["bandwidth"],
            "settings": {
                "repeats": args.repeats,
                "rounds": len(rounds),
                "warmup": args.warmup,
                "timeout_s": args.timeout,
                "quick": args.quick,
                "isolated": not args.inline,
                "torch_threads": args.torch_threads or cpu_count(),
            },
        },
        "trees": {
            spec.name: {
                "description": spec.description,
                "n_params": spec.n_params,
                "n_leaves": spec.n_leaves,
            }
            for spec in tree_specs
        },
        "optimizers": {
            name: {"description": case.description, "bytes_per_param": case.bytes_per_param}
            for name, case in registry.OPTIMIZERS.items()
            if any(row["optimizer"] == name for row in rows)
        },
        "implementations": {
            name: impl.description for name, impl in registry.IMPLEMENTATIONS.items()
        },
        "rows": rows,
    }
    return report_dict


def _print_machine(environment: dict[str, Any]) -> None:
    print(
        f"machine: {environment['cpu']}, {environment['cores']} cores, "
        f"{environment['ram_gb'] or 0:.0f} GB RAM; versions: {environment['versions']}",
        flush=True,
    )


def _print_bandwidth(bandwidth: dict[str, Any]) -> None:
    copies = ", ".join(f"{name} {gbs:.1f}" for name, gbs in bandwidth["copies"].items())
    print(
        f"bandwidth (GB/s, read + write bytes, best of {bandwidth['tries']} copies of "
        f"{bandwidth['copy_mib']} MiB, before and after the runs): {copies}; "
        f"the bound uses {bandwidth['bound_method']} = {bandwidth['bound_gbs']:.1f} GB/s\n",
        flush=True,
    )


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.worker:
        run_config(Config(**json.loads(args.worker)), _print_event)
        return 0
    if args.probe:
        print(json.dumps(probe_environment(args.bandwidth_mb)))
        return 0

    environment = run_probe(args)
    _print_machine(environment)
    gpu = environment["gpu"] and args.device == "auto"
    configs = plan(args, gpu)
    rounds = [
        run_all(args, configs, label=f"round {r + 1}/{args.rounds} " if args.rounds > 1 else "")
        for r in range(max(args.rounds, 1))
    ]
    after = run_probe(args)["bandwidth"]
    environment["bandwidth"] = merge_bandwidth(environment["bandwidth"], after)
    _print_bandwidth(environment["bandwidth"])
    report_dict = build_report(args, environment, configs, rounds)
    print(report.format_report(report_dict), flush=True)
    report.write_json(report_dict, args.json)
    print(f"\nJSON report: {args.json}")
    for problem in report.problems(report_dict):
        print(f"note: {problem}", file=sys.stderr)
    return 0


def _print_event(event: dict[str, Any]) -> None:
    print(EVENT_PREFIX + json.dumps(event), flush=True)


if __name__ == "__main__":
    sys.exit(main())
