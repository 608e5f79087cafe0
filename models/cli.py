"""`pocnet models ...`: generate data, train teacher, distil student, evaluate,
and allocate one scenario with any solver."""
from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Optional

import typer

app = typer.Typer(help="Proof-of-contribution models: data, training, evaluation, allocation.",
                  no_args_is_help=True)

WEIGHTS_DIR = Path(__file__).resolve().parent / "weights"
SMALL_SIZE = ((6, 10), (3, 3))


def _split_seeds(seed: int, split: int, count: int) -> list[int]:
    """Disjoint seed ranges per split so held-out scenarios never leak into training."""
    return [seed * 10_000_000 + split * 1_000_000 + k for k in range(count)]


def _threads() -> None:
    import torch
    torch.set_num_threads(1)


@app.command()
def generate(out: Path = typer.Option(Path("runs/models/data"), help="output folder"),
             seed: int = typer.Option(0, help="master seed"),
             n_train: int = typer.Option(1000), n_val: int = typer.Option(60),
             n_test: int = typer.Option(200), n_small: int = typer.Option(100),
             n_aug: int = typer.Option(1000, help="off-GA-path suffix samples from the first N training seeds")) -> None:
    """Generate scenarios and GA labels (train/val/test; small set also gets
    exact labels; train_aug.json holds suffix scenarios starting from queue
    states left by greedy / look-ahead prefixes)."""
    from pocnet.models.objective import total_latency
    from pocnet.models.scenario import scenario_from_dict
    from pocnet.models.solvers import exact_solve
    from pocnet.models.train import label_scenarios, label_suffixes, save_dataset

    out.mkdir(parents=True, exist_ok=True)
    for k, (name, count) in enumerate([("train", n_train), ("val", n_val), ("test", n_test)]):
        recs = label_scenarios(_split_seeds(seed, k, count), desc=name)
        save_dataset(recs, out / f"{name}.json")
    save_dataset(label_suffixes(_split_seeds(seed, 0, min(n_aug, n_train))), out / "train_aug.json")
    recs = label_scenarios(_split_seeds(seed, 3, n_small), size=SMALL_SIZE, desc="small")
    for r in recs:
        scn = scenario_from_dict(r["scenario"])
        ex = exact_solve(scn)
        r["exact"], r["exact_obj"] = ex.tolist(), total_latency(scn, ex)
    save_dataset(recs, out / "small.json")
    typer.echo(json.dumps({"out": str(out), "train": n_train, "val": n_val, "test": n_test, "small": n_small,
                           "aug": min(n_aug, n_train)}))


def _train_records(data: Path, augment: bool) -> list[dict]:
    from pocnet.models.train import load_dataset
    recs = load_dataset(data / "train.json")
    if augment and (data / "train_aug.json").exists():
        recs += load_dataset(data / "train_aug.json")
    return recs


@app.command("train-teacher")
def train_teacher(data: Path = typer.Option(Path("runs/models/data")),
                  out: Path = typer.Option(Path("runs/models/model")),
                  epochs: int = typer.Option(30), seed: int = typer.Option(0),
                  augment: bool = typer.Option(True, help="also train on train_aug.json if present")) -> None:
    """Train the teacher on GA labels; writes teacher.pt and teacher_history.json."""
    _threads()
    from pocnet.models.net import TEACHER_CONFIG, param_count, save_net
    from pocnet.models.train import load_dataset, prepare_sample, train_net

    out.mkdir(parents=True, exist_ok=True)
    train = [prepare_sample(r) for r in _train_records(data, augment)]
    val = [prepare_sample(r) for r in load_dataset(data / "val.json")]
    net, hist = train_net(TEACHER_CONFIG, train, val, epochs, seed,
                          log=lambda s: print(s, file=sys.stderr))
    save_net(net, str(out / "teacher.pt"))
    (out / "teacher_history.json").write_text(json.dumps(hist, indent=1))
    typer.echo(json.dumps({"teacher": str(out / "teacher.pt"), "params": param_count(net),
                           "best_val_obj_ratio_ga": min(h["val_obj_ratio_ga"] for h in hist)}))


@app.command()
def distill(data: Path = typer.Option(Path("runs/models/data")),
            out: Path = typer.Option(Path("runs/models/model")),
            teacher: Optional[Path] = typer.Option(None, help="default: OUT/teacher.pt"),
            epochs: int = typer.Option(30), seed: int = typer.Option(0),
            augment: bool = typer.Option(True, help="also train on train_aug.json if present")) -> None:
    """Distil the student from the teacher + GA labels; writes student.pt,
    student_history.json and the integer export student_q.json."""
    _threads()
    from pocnet.models.export import export_student
    from pocnet.models.net import STUDENT_CONFIG, load_net, param_count, save_net
    from pocnet.models.quant import save_quant, weights_sha256
    from pocnet.models.train import load_dataset, prepare_sample, train_net

    out.mkdir(parents=True, exist_ok=True)
    tnet = load_net(str(teacher or out / "teacher.pt"))
    train = [prepare_sample(r) for r in _train_records(data, augment)]
    val = [prepare_sample(r) for r in load_dataset(data / "val.json")]
    net, hist = train_net(STUDENT_CONFIG, train, val, epochs, seed, teacher=tnet,
                          log=lambda s: print(s, file=sys.stderr))
    save_net(net, str(out / "student.pt"))
    (out / "student_history.json").write_text(json.dumps(hist, indent=1))
    qpath = out / "student_q.json"
    save_quant(export_student(net), qpath)
    typer.echo(json.dumps({"student": str(out / "student.pt"), "params": param_count(net),
                           "quantized": str(qpath), "sha256": weights_sha256(qpath)}))


@app.command("eval")
def eval_cmd(data: Path = typer.Option(Path("runs/models/data")),
             model_dir: Path = typer.Option(WEIGHTS_DIR, help="folder with teacher.pt, student.pt, student_q.json"),
             history_dir: Optional[Path] = typer.Option(None, help="folder with *_history.json (default: MODEL_DIR)"),
             out: Path = typer.Option(Path("runs/models/eval")),
             ga_seed: int = typer.Option(0)) -> None:
    """Evaluate student/teacher/GA/greedy (+exact on small) on held-out data; JSON + PNG plots."""
    _threads()
    from pocnet.models.evaluate import run_evaluation

    res = run_evaluation(data, model_dir, history_dir or model_dir, out)
    typer.echo(json.dumps(res["summary"], indent=1))


@app.command()
def allocate(scenario: Path = typer.Option(..., help="scenario JSON file"),
             solver: str = typer.Option("student", help="ga|teacher|student|greedy|exact"),
             seed: int = typer.Option(0, help="GA seed"),
             weights: Optional[Path] = typer.Option(None, help="student_q.json (default: shipped)"),
             teacher: Optional[Path] = typer.Option(None, help="teacher.pt (default: shipped)")) -> None:
    """Allocate one scenario; prints {"allocation", "objective", ...}. The
    student uses the integer consensus path (shipped weights)."""
    import time

    from pocnet.models.objective import total_latency
    from pocnet.models.scenario import load_scenario
    from pocnet.models.solvers import solve

    if solver not in ("ga", "teacher", "student", "greedy", "exact"):
        raise typer.BadParameter(f"unknown solver {solver!r}; choose ga|teacher|student|greedy|exact",
                                 param_hint="--solver")
    try:
        scn = load_scenario(scenario)
    except OSError as exc:
        raise typer.BadParameter(f"cannot read {scenario}: {exc.strerror or exc}", param_hint="--scenario") from None
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        what = f"missing field {exc}" if isinstance(exc, KeyError) else str(exc)
        raise typer.BadParameter(f"{scenario} is not a scenario file ({what}; see docs/models.md)",
                                 param_hint="--scenario") from None
    t0 = time.perf_counter()
    extra: dict = {}
    if solver == "student":
        from pocnet.models.quant import allocate_int, load_quant, weights_sha256
        alloc = allocate_int(load_quant(weights), scn)
        extra["weights_sha256"] = weights_sha256(weights)
    elif solver == "teacher":
        _threads()
        from pocnet.models.net import allocate_float, load_net
        alloc, _ = allocate_float(load_net(str(teacher or WEIGHTS_DIR / "teacher.pt")), scn)
    elif solver in ("ga", "greedy", "exact"):
        try:
            alloc = solve(scn, solver, seed=seed)
        except ValueError as e:
            raise typer.BadParameter(str(e)) from e
    else:
        raise typer.BadParameter(f"unknown solver {solver!r}")
    elapsed = time.perf_counter() - t0
    typer.echo(json.dumps({"solver": solver, "allocation": [int(x) for x in alloc],
                           "objective": float(total_latency(scn, alloc)),
                           "providers": list(scn.provider_ids), "tasks": list(scn.task_ids),
                           "elapsed_ms": round(elapsed * 1000, 3), **extra}))
