"""The command line of ``optgrad-train``: arguments, the runs, the reports."""

from __future__ import annotations

import argparse
import datetime
import os
import sys
import textwrap
import time

from ._data import DATASETS
from ._extras import HINT, MissingExtraError, missing
from ._optimizers import DEFAULT, PRESETS, SCHEDULES


def _parser() -> argparse.ArgumentParser:
    presets = "\n".join(
        f"  {name:<14} lr {p.peak:<6g} {p.schedule:<14} {p.note}".rstrip()
        for name, p in PRESETS.items()
    )
    schedules = "\n".join(f"  {name:<14} {text}" for name, (text, _) in SCHEDULES.items())
    epilog = textwrap.dedent(
        """
        optimizer presets (name, peak learning rate, default schedule):
        {presets}

        schedules (--schedule; the peak is the optimizer's learning rate):
        {schedules}

        examples:
          optgrad-train                                   # 7 optimizers on digits
          optgrad-train --optimizers adamw torch.AdamW:weight_decay=0.05 --seeds 0 1 2
          optgrad-train --dataset diabetes --schedule wsd --steps 2000
          optgrad-train --optimizers nadam torch.SGD:lr=0.1,momentum=0.9,nesterov=True

        outputs in --out: curves.png, results.json, tensorboard/ (view it with
        `tensorboard --logdir <out>/tensorboard`).
        """
    ).format(presets=presets, schedules=schedules)
    parser = argparse.ArgumentParser(
        prog="optgrad-train",
        description=textwrap.fill(
            "Train a Flax (nnx) MLP on a dataset bundled with scikit-learn with several optgrad "
            "optimizers and schedules, and compare them: a progress bar per run, a table (train "
            "loss, test accuracy or error, steps and wall time to a target, compile time), a "
            "PNG of the curves and TensorBoard event files.",
            width=88,
        ),
        epilog=epilog,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--dataset",
        default="digits",
        choices=list(DATASETS),
        help="scikit-learn dataset (80/20 split, features standardized); diabetes is a "
        "regression, reported as test RMSE (default: digits)",
    )
    parser.add_argument(
        "--model-size",
        nargs="+",
        type=int,
        default=[64, 64],
        metavar="WIDTH",
        help="hidden layer widths of the MLP, each Linear -> LayerNorm -> GELU (default: 64 64)",
    )
    parser.add_argument(
        "--optimizers",
        nargs="+",
        default=DEFAULT,
        metavar="NAME[:k=v,...]",
        help="optimizers to compare: presets (below), or any optimizer of optgrad (nadam) or "
        "optgrad.torch (torch.RMSprop), with optional keyword arguments after ':' "
        "(lr= sets the peak learning rate) (default: " + " ".join(DEFAULT) + ")",
    )
    parser.add_argument(
        "--schedule",
        choices=list(SCHEDULES),
        default=None,
        help="learning-rate schedule for every optimizer (default: each preset's own, "
        "warmup-cosine for most)",
    )
    parser.add_argument(
        "--steps", type=int, default=1000, help="optimizer steps per run (default: 1000)"
    )
    parser.add_argument(
        "--seeds",
        nargs="+",
        type=int,
        default=[0],
        metavar="SEED",
        help="seeds (initialisation and batches) to run each optimizer with; the table shows "
        "the mean and spread (default: 0)",
    )
    parser.add_argument("--batch-size", type=int, default=64, help="minibatch size (default: 64)")
    parser.add_argument(
        "--clip",
        type=float,
        default=1.0,
        help="clip gradients to this global norm before the optimizer, 0 for none (default: 1)",
    )
    parser.add_argument(
        "--target",
        type=float,
        default=None,
        help="test accuracy to reach (classification) or test RMSE to get under (regression) "
        "for the 'steps to target' column (default: per dataset, 0.95 on digits)",
    )
    parser.add_argument(
        "--out",
        default=None,
        help="folder for curves.png, results.json and tensorboard/ "
        "(default: runs/<dataset>-<date-time>)",
    )
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")
    return parser


def _check_args(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    if args.steps < 1:
        parser.error(f"--steps must be a positive integer, got {args.steps}")
    if args.batch_size < 1:
        parser.error(f"--batch-size must be a positive integer, got {args.batch_size}")
    if any(w < 1 for w in args.model_size):
        parser.error(f"--model-size widths must be positive, got {args.model_size}")
    if args.clip < 0:
        parser.error(f"--clip must be >= 0 (0: no clipping), got {args.clip}")


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    _check_args(parser, args)
    absent = missing()
    if absent:
        raise SystemExit(
            f"optgrad-train needs the optional packages {', '.join(absent)} (not installed). "
            f"Install the examples extra: {HINT}"
        )
    try:
        return _run(parser, args)
    except MissingExtraError as error:
        raise SystemExit(str(error)) from error


def _run(parser: argparse.ArgumentParser, args: argparse.Namespace) -> int:
    from tqdm.auto import tqdm

    from . import _data, _loop, _optimizers, _report

    if len(set(args.optimizers)) != len(args.optimizers):
        parser.error(f"--optimizers names an optimizer twice: {' '.join(args.optimizers)}")
    built = []
    for spec in args.optimizers:  # every optimizer is built (and checked) before any training
        try:
            choice = _optimizers.parse(spec, args.schedule)
            built.append((choice, choice.build(args.steps)[0]))
        except (TypeError, ValueError) as error:
            parser.error(f"--optimizers {spec!r}: {error}")
    data = _data.load(args.dataset)
    target = data.default_target if args.target is None else args.target
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    out = args.out or os.path.join("runs", f"{args.dataset}-{stamp}")
    os.makedirs(out, exist_ok=True)
    print(
        f"{args.dataset}: {len(data.x_train)} train / {len(data.x_test)} test examples, "
        f"{data.x_train.shape[1]} features, {args.steps} steps of batch {args.batch_size}, "
        f"MLP {data.x_train.shape[1]}-{'-'.join(map(str, args.model_size))}-"
        f"{data.num_outputs}, seeds {' '.join(map(str, args.seeds))}"
    )
    runs: dict[str, list[_loop.RunResult]] = {}
    summaries = {}
    start = time.perf_counter()
    for choice, tx in built:
        trainer = _loop.Trainer(
            tx,
            data,
            args.model_size,
            steps=args.steps,
            batch_size=args.batch_size,
            clip=args.clip,
        )
        for seed in args.seeds:
            events = _report.EventWriter(_report.run_dir(out, choice.label, seed), data.metric)
            bar = tqdm(
                total=args.steps,
                desc=f"{choice.label} (seed {seed})",
                unit="step",
                disable=args.no_progress,
                leave=True,
            )
            if not trainer.compiled:
                bar.set_postfix_str("compiling")
                trainer.compile()

            def on_chunk(done, records, bar=bar, events=events):
                events.write(records)
                bar.update(len(records["loss"]))
                name = "acc" if data.task == "classification" else "rmse"
                bar.set_postfix(
                    loss=f"{records['loss'][-1]:.4f}", **{name: f"{records['test_metric'][-1]:.4g}"}
                )

            result = trainer.run(choice.label, seed, target, on_chunk)
            bar.close()
            events.close()
            runs.setdefault(choice.label, []).append(result)
        summaries[choice.label] = {
            "schedule": choice.schedule,
            **_loop.summarize(runs[choice.label]),
        }
    print()
    print(_report.table(summaries, data.metric, target))
    config = {**vars(args), "target": target, "out": out}
    _report.plot(runs, data.metric, os.path.join(out, "curves.png"))
    _report.write_json(os.path.join(out, "results.json"), config, summaries)
    print(
        f"\n{time.perf_counter() - start:.1f} s. Wrote {os.path.join(out, 'curves.png')}, "
        f"{os.path.join(out, 'results.json')}; TensorBoard: "
        f"tensorboard --logdir {os.path.join(out, 'tensorboard')}"
    )
    sys.stdout.flush()
    return 0
