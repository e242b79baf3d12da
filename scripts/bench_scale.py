"""Scale: full-size training data through datasets: train memory at 17k / 170k (/ 1.7M) lines, encoding, eval, oracle.

The input files are built here (in a temporary dir, or --work DIR) by repeating the bytes of the
DuIE 2.0 train subset (5,000 lines) and cutting at an exact line count: 17,000 / 170,000 /
1,700,000 lines = the subset x 3.4 / x 34 / x 340. Every `gplinker` run is a fresh
`python -m gplinker` process under `/usr/bin/time -v` (peak RSS = its "Maximum resident set
size": the largest single process of the tree, the CLI or one of its datasets workers, not their
sum), with GPLINKER_CACHE_DIR pointing at a fresh directory (so the run includes the first
encoding) and a fresh train.output_dir. Like `gplinker`, the script sets THP_MEM_ALLOC_ENABLE=1
unless the variable is set or --no-huge-pages is given; the children inherit it.

Rows (issue "Benchmark scale: full-size data through datasets"; the "before" column holds the
figures measured before the change):
  1. peak RSS and wall time of `gplinker train configs/duie.yaml` for 20 steps (eval at step 20 on
     the first 100 dev lines) with a small scratch encoder (hidden 64, 1 layer, 2 heads, FFN 128)
     on 17k and 170k lines. Goal: 170k / 17k <= 1.25x and <= 2.5 GB at 170k.
  2. the same at 1.7M lines, only with --big (about 1-2 GB of disk and several minutes).
     Goal: it runs, peak RSS <= 1.25x the 170k run.
  3. first encoding of 170k lines, data.num_proc 2 vs 1: `TrainingData(...).corpus(...)` and
     `.windows(...)` in this process, as scripts/bench_cache.py's prepare() runs them (relation
     task, the DuIE schema, scratch character tokenizer with min count 2, max_length 128, stride
     48), a fresh cache each run; wall and CPU seconds (this process and its workers). Goal: >= 1.6x
     faster with 2 processes. Needs an idle machine: with the kernel's autogroup scheduling, all the
     processes of one session share one CPU share, so while other sessions keep the cores busy two
     workers get no more CPU than one.
  4. cached re-run vs first encoding (num_proc 2) at 170k: the same prepare() with both entries
     present, median of 3. Goal: >= 20x.
  5. `gplinker eval MODEL/last DEV` on the whole DuIE 2.0 dev subset (2,000 lines) for a model
     trained 2 steps and a trained one (train.max_steps 300, batch 16, on the 5,000-line subset,
     same small encoder), wall time and peak RSS; each eval is killed after --eval-timeout seconds
     and then reported as timed out. Printed with them: the cells above the threshold per window
     of each model (first 32 dev lines), which is what the trained budget is chosen for (few).
     Goal: 2-step eval <= 3x the time and <= 1.5x the peak RSS of the trained model's.
  6. the dev oracle round trip (gold -> targets -> decode, share of gold SPOs recovered) of
     `gplinker check --config configs/duie.yaml` and `--config configs/duie1.yaml`.
     Goal: DuIE 2.0 dev >= 99.7 %, DuIE 1.0 dev 100 %.
GB here is 10^9 bytes. Timings on a shared machine are upper bounds; no test asserts them.
The data lives in ../shared/data (not shipped, research licence); without it a full run says so and
exits 0. --smoke runs rows 1 and 3-5 on a small synthetic DuIE file (scripts/bench_cache.py's
synthetic_duie) at 200 / 2,000 lines, 2 and 10 training steps and 20 dev lines, and row 6 on the
real dev files when they are there (a note says it was skipped when they are not).

    python scripts/bench_scale.py                 # rows 1, 3-6 (20-40 minutes on 2 cores)
    python scripts/bench_scale.py --big           # with row 2 (1.7M lines)
    python scripts/bench_scale.py --rows 1,4 --work /tmp/scale   # a kept work dir (--keep keeps the temporary one)
    python scripts/bench_scale.py --smoke         # 200 / 2,000 lines, 2 steps, a few dev lines: about a minute
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shlex
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from bench_cache import synthetic_duie  # scripts/ is on sys.path when a script runs
from bench_machine import add_huge_pages_flag, machine, setup_like_cli

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared" / "data"
DUIE = SHARED / "duie2-subset"
CONFIG, CONFIG1 = REPO / "configs" / "duie.yaml", REPO / "configs" / "duie1.yaml"
SMALL_ENCODER = ["model.scratch.hidden_size=64", "model.scratch.num_layers=1", "model.scratch.num_heads=2",
                 "model.scratch.intermediate_size=128"]
GB = 1e9
ROWS = (1, 2, 3, 4, 5, 6)
TAIL = 3000  # characters of a failed run's log shown


@dataclass
class Run:
    """One CLI process: its command, exit status, wall seconds and peak RSS (bytes; None when unknown)."""

    command: str
    rc: int
    seconds: float
    peak: float | None
    timed_out: bool
    log: Path

    def tail(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")[-TAIL:]

    def brief(self) -> str:
        if self.timed_out:
            return f"timed out after {self.seconds:.0f} s"
        if self.rc != 0:
            return f"FAILED (exit {self.rc}, log {self.log})"
        return f"{gb(self.peak)} ({self.seconds:.0f} s)"


def gb(value: float | None) -> str:
    return "n/a" if value is None else f"{value / GB:.2f} GB"


def build_lines(source: Path, n: int, path: Path) -> Path:
    """`source` repeated (bytes concatenated) and cut to exactly n lines, written to `path`."""
    data = source.read_bytes()
    data = data if data.endswith(b"\n") else data + b"\n"
    per = data.count(b"\n")
    whole, rest = divmod(n, per)
    with open(path, "wb") as fh:
        for _ in range(whole):
            fh.write(data)
        if rest:
            cut = -1
            for _ in range(rest):
                cut = data.index(b"\n", cut + 1)
            fh.write(data[: cut + 1])
    return path


def peak_rss(report: Path) -> float | None:
    """Bytes of 'Maximum resident set size (kbytes)' in a `/usr/bin/time -v` report."""
    try:
        text = report.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None
    found = re.search(r"Maximum resident set size \(kbytes\): (\d+)", text)
    return int(found.group(1)) * 1024 if found else None


class Bench:
    """The work dir, the data files and the runs, shared by the rows."""

    def __init__(self, args: argparse.Namespace, work: Path):
        self.args, self.work = args, work
        self.smoke = args.smoke
        self.counter = 0
        self.failures: list[str] = []
        self.memo: dict[object, object] = {}
        self.cpu: dict[int, list[float]] = {}
        self.real = DUIE.is_dir() and not args.synthetic  # row 6 runs when it is
        self.source, self.dev_source, self.schema = self.data_files()
        self.sizes = (200, 2000, 20000) if self.smoke else (17_000, 170_000, 1_700_000)
        self.dev_lines = 20 if self.smoke else 2000
        self.dev100 = build_lines(self.dev_source, 5 if self.smoke else 100, work / "dev-first.json")
        self.dev_all = build_lines(self.dev_source, self.dev_lines, work / f"dev-{self.dev_lines}.json")
        self.subset = build_lines(self.source, 200 if self.smoke else 5000, work / "subset.json")
        self.train_steps = 2 if self.smoke else 20
        self.trained_steps = 10 if self.smoke else args.trained_steps

    def labels(self) -> dict[str, str]:
        """What the row titles say: this run's sizes."""
        small, large, big = (lines(n) for n in self.sizes)
        return {"small": small, "large": large, "big": big, "steps": str(self.train_steps),
                "trained": str(self.trained_steps), "dev": lines(self.dev_lines)}

    def data_files(self) -> tuple[Path, Path, Path]:
        """(train source, dev source, schema) of rows 1-5: the DuIE 2.0 subset, or (--smoke) synthetic files."""
        if not self.smoke:
            return DUIE / "train.json", DUIE / "dev.json", DUIE / "duie_schema.json"
        train = synthetic_duie(self.work / "synthetic-train.json", 200)
        dev = synthetic_duie(self.work / "synthetic-dev.json", 20)
        schema = self.work / "synthetic-schema.json"
        rows = [{"subject_type": "图书作品", "predicate": "作者", "object_type": {"@value": "人物"}},
                {"subject_type": "企业", "predicate": "创始人", "object_type": {"@value": "人物"}}]
        schema.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
        return train, dev, schema

    def fresh(self, name: str) -> Path:
        self.counter += 1
        path = self.work / f"{self.counter:02d}-{name}"
        shutil.rmtree(path, ignore_errors=True)
        return path

    def show(self, command: list[str], env: dict[str, str] | None = None) -> str:
        text = " ".join(f"{k}={shlex.quote(v)}" for k, v in (env or {}).items())
        text = (text + " " if text else "") + shlex.join(command)
        return text.replace(str(self.work), "$WORK").replace(str(REPO) + "/", "")

    def lines_file(self, n: int) -> Path:
        path = self.work / f"train-{n}.json"
        if path not in self.memo:
            self.memo[path] = build_lines(self.source, n, path)
        return path

    def cli(self, name: str, args: list[str], timeout: float, cache: bool = True) -> Run:
        """`python -m gplinker ARGS` under /usr/bin/time -v, a fresh GPLINKER_CACHE_DIR, killed after `timeout` s."""
        base = self.fresh(name)
        base.mkdir(parents=True)
        extra = {"GPLINKER_CACHE_DIR": str(base / "cache")} if cache else {}
        env = {**os.environ, **extra, "COLUMNS": "1000"}  # no wrapped lines in the logs that are parsed
        report, log = base / "time.txt", base / "log.txt"
        shown = self.show(["gplinker", *args], extra)
        if Path("/usr/bin/time").is_file():
            command = ["/usr/bin/time", "-v", "-o", str(report), sys.executable, "-m", "gplinker", *args]
        else:  # the same figure (getrusage of the waited-for child tree), written in time's words
            wrapper = ("import resource, subprocess, sys; rc = subprocess.call(sys.argv[2:]); "
                       "open(sys.argv[1], 'w').write('Maximum resident set size (kbytes): %d\\n' % "
                       "resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss); sys.exit(rc)")
            command = [sys.executable, "-c", wrapper, str(report), sys.executable, "-m", "gplinker", *args]
        start = time.perf_counter()
        with open(log, "w", encoding="utf-8") as out:
            proc = subprocess.Popen(command, cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT,
                                    start_new_session=True)
            timed_out = False
            try:
                rc = proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)  # the session started above: time, gplinker, its workers
                rc, timed_out = proc.wait(), True
        run = Run(shown, rc, time.perf_counter() - start, peak_rss(report), timed_out, log)
        if rc != 0 and not timed_out:
            self.failures.append(f"{name}: exit {rc}")
            print(f"--- {shown} failed (exit {rc}); log tail:\n{run.tail()}", file=sys.stderr)
        return run

    def train(self, name: str, data: Path, steps: int, dev: Path | None, *extra: str) -> tuple[Run, Path]:
        out = self.work / f"{name}-out"
        shutil.rmtree(out, ignore_errors=True)
        sets = [*SMALL_ENCODER, f"train.max_steps={steps}", f"train.eval_every={steps}", f"data.train={data}",
                f"data.dev={dev if dev else 'null'}", f"data.schema={self.schema}", f"train.output_dir={out}",
                *extra]
        args = ["train", str(CONFIG)]
        for s in sets:
            args += ["--set", s]
        return self.cli(name, args, self.args.train_timeout), out

    def train_rss(self, n: int) -> Run:
        """Row 1/2: 20 training steps on n lines (memoized: row 2 reuses row 1's 170k run)."""
        key = ("train", n)
        if key not in self.memo:
            run, out = self.train(f"train-{n}", self.lines_file(n), self.train_steps, self.dev100)
            self.memo[key] = run
            self.memo[("log", n)] = out / "train_log.jsonl"
        return self.memo[key]  # type: ignore[return-value]

    def prepare(self, data: Path, num_proc: int, root: Path) -> tuple[float, bool, int]:
        """(seconds, cache hit, windows) of scripts/bench_cache.py's prepare() over `data`, cache under root.

        Also adds the CPU seconds it took (this process and its joined workers) to self.cpu[num_proc].
        """
        from gplinker.commands.training_data import TrainingData
        from gplinker.data.schema import load_duie_schema
        from gplinker.modeling.encoders import scratch_tokenizer
        from gplinker.tasks import build_task

        os.environ["GPLINKER_CACHE_DIR"] = str(root)
        cpu, start = os.times(), time.perf_counter()
        stages = TrainingData(root.parent / "run", num_proc, None)
        corpus, key, _ = stages.corpus(str(data), "duie2", skip_invalid=False)
        task = build_task("relation", load_duie_schema(self.schema))
        tokenizer = scratch_tokenizer(corpus.char_counts(), min_count=2)
        windows, hit = stages.windows(corpus, key, tokenizer, task, max_length=self.args.max_length, stride=48,
                                      char_level=False)
        seconds, after = time.perf_counter() - start, os.times()
        used = sum(after[:4]) - sum(cpu[:4])  # user + system, self + children
        self.cpu.setdefault(num_proc, []).append(used)
        return seconds, hit, len(windows)

    def first_encodings(self) -> dict[int, tuple[list[float], Path, int]]:
        """Rows 3/4: first encodings of the 170k file, num_proc 1 then 2 (alternating), each in a fresh cache."""
        if "first" not in self.memo:
            self.prepare(self.dev100, 1, self.fresh("warm-up") / "cache")  # imports and first calls, untimed
            found: dict[int, tuple[list[float], Path, int]] = {1: ([], Path(), 0), 2: ([], Path(), 0)}
            for _ in range(self.args.encoding_runs):
                for num_proc in (1, 2):
                    root = self.fresh(f"encode-np{num_proc}") / "cache"
                    seconds, hit, windows = self.prepare(self.lines_file(self.sizes[1]), num_proc, root)
                    assert not hit, "a fresh cache dir had the entries"
                    found[num_proc] = (found[num_proc][0] + [seconds], root, windows)
            self.memo["first"] = found
        return self.memo["first"]  # type: ignore[return-value]


def lines(n: int) -> str:
    return f"{n:,}"


def row_train(b: Bench) -> tuple[list[str], str, bool]:
    small, large = b.sizes[0], b.sizes[1]
    a, c = b.train_rss(small), b.train_rss(large)
    ok = a.rc == c.rc == 0 and a.peak is not None and c.peak is not None
    ratio = c.peak / a.peak if ok else float("nan")  # type: ignore[operator]
    evals = []
    for n in (small, large):
        try:
            entries = [json.loads(x) for x in b.memo[("log", n)].read_text(encoding="utf-8").splitlines()]
            evals.append(next(f"{e['seconds']:.1f} s" for e in entries if e.get("event") == "eval"))
        except (OSError, StopIteration, KeyError, ValueError):
            evals.append("n/a")
    now = (f"{lines(small)}: {a.brief()}; {lines(large)}: {c.brief()}; ratio **{ratio:.2f}x** "
           f"(eval at step {b.train_steps}: {evals[0]} / {evals[1]})")
    met = ok and ratio <= 1.25 and c.peak <= 2.5 * GB  # type: ignore[operator]
    return [a.command, c.command], now, met


def row_big(b: Bench) -> tuple[list[str], str, bool | None]:
    if not b.args.big or b.smoke:
        why = "--smoke" if b.smoke else "needs --big: about 1-2 GB of disk and several minutes"
        return [], f"not run ({why})", None
    big, large = b.train_rss(b.sizes[2]), b.train_rss(b.sizes[1])
    ok = big.rc == large.rc == 0 and big.peak is not None and large.peak is not None
    ratio = big.peak / large.peak if ok else float("nan")  # type: ignore[operator]
    now = f"{lines(b.sizes[2])}: {big.brief()}; vs {lines(b.sizes[1])}: **{ratio:.2f}x**"
    return [big.command], now, ok and ratio <= 1.25


def row_num_proc(b: Bench) -> tuple[list[str], str, bool]:
    first = b.first_encodings()
    (one, _, windows), (two, _, _) = first[1], first[2]
    t1, t2 = statistics.median(one), statistics.median(two)
    command = (f"in process: TrainingData(...).corpus + .windows as scripts/bench_cache.py prepare(), "
               f"{lines(b.sizes[1])} lines, max_length {b.args.max_length}, stride 48, fresh cache "
               f"(~ python scripts/bench_cache.py --repeat 34 --first-runs 1 --num-proc N)")
    c1, c2 = (statistics.median(b.cpu[n][-len(one):]) for n in (1, 2))
    now = (f"num_proc 1: {t1:.1f} s (CPU {c1:.1f} s), num_proc 2: {t2:.1f} s (CPU {c2:.1f} s) ({windows:,} "
           f"windows, median of {len(one)}): **{t1 / t2:.2f}x**")
    return [command], now, t1 / t2 >= 1.6


def row_cached(b: Bench) -> tuple[list[str], str, bool]:
    first, root, _ = b.first_encodings()[2]
    cached = []
    for _ in range(3):
        seconds, hit, _ = b.prepare(b.lines_file(b.sizes[1]), 2, root)
        assert hit, "the entries of the first encoding were not found"
        cached.append(seconds)
    f, c = statistics.median(first), statistics.median(cached)
    command = "in process: the same prepare() again, num_proc 2, with both cache entries present"
    now = f"first {f:.1f} s, cached {c:.2f} s (median of 3): **{f / c:.1f}x**"
    return [command], now, f / c >= 20


def cells_per_window(model_dir: Path, texts: list[str]) -> str:
    """Mean cells above the model's threshold per window and head, over the windows of `texts`."""
    import torch

    from gplinker.data.batching import collate
    from gplinker.predict import Predictor

    predictor = Predictor.from_pretrained(model_dir, device="cpu")
    windows = predictor.encoder.encode(texts)
    totals: dict[str, int] = {}
    with torch.inference_mode():
        for a in range(0, len(windows), 8):
            logits = predictor.logits(collate(windows[a : a + 8], predictor.pad_id))
            for head, x in logits.items():  # (B, C, L, L); padded cells are masked far below the threshold
                totals[head] = totals.get(head, 0) + int((x > predictor.threshold).sum())
    return ", ".join(f"{head} {n / len(windows):,.1f}" for head, n in totals.items())


def row_eval(b: Bench) -> tuple[list[str], str, bool]:
    steps = (2, b.trained_steps)
    commands, evals, notes = [], [], []
    texts = [json.loads(x)["text"] for x in b.dev_all.read_text(encoding="utf-8").splitlines()[:32]]
    for n in steps:
        trained, out = b.train(f"model-{n}-steps", b.subset, n, None, "train.batch_size=16")
        commands.append(trained.command)
        if trained.rc != 0:
            return commands, f"training {n} steps {trained.brief()}", False
        log = [json.loads(x) for x in (out / "train_log.jsonl").read_text(encoding="utf-8").splitlines()]
        loss = next((e["loss"] for e in reversed(log) if e.get("event") == "train"), float("nan"))
        model = out / "last"
        run = b.cli(f"eval-{n}-steps", ["eval", str(model), str(b.dev_all), "-o", str(out / "metrics.json")],
                    b.args.eval_timeout, cache=False)
        commands.append(run.command)
        evals.append(run)
        notes.append(f"{n} steps ({trained.seconds:.0f} s to train, final loss {loss:.1f}): cells above the "
                     f"threshold per window {cells_per_window(model, texts)}")
    quick, trained_eval = evals
    ok = all(r.rc == 0 and r.peak is not None for r in evals)
    if ok:
        t, m = quick.seconds / trained_eval.seconds, quick.peak / trained_eval.peak  # type: ignore[operator]
        ratios = f"**{t:.2f}x** time, **{m:.2f}x** peak RSS"
    else:
        t = m = float("nan")
        ratios = "ratios n/a"
    now = f"2 steps: {quick.brief()}; {steps[1]} steps: {trained_eval.brief()}; {ratios}"
    print("\n".join(f"# row 5 model: {n}" for n in notes))
    return commands, now, ok and t <= 3 and m <= 1.5


def row_oracle(b: Bench) -> tuple[list[str], str, bool | None]:
    if not b.real:
        return [], "not run: ../shared/data is absent", None
    commands, found, met = [], [], True
    for config, goal in ((CONFIG, 0.997), (CONFIG1, 1.0)):
        run = b.cli(f"check-{config.stem}", ["check", "--config", str(config)], b.args.train_timeout, cache=False)
        commands.append(run.command)
        text = run.log.read_text(encoding="utf-8", errors="replace")
        files = re.findall(r"^(\S+) format \w+: .*?$.*?^oracle round trip: P ([\d.]+) R ([\d.]+) F1 ([\d.]+) "
                           r"\((\d+)/(\d+) gold", text, flags=re.M | re.S)
        dev = [f for f in files if Path(f[0]).name.startswith("dev")]
        if run.rc != 0 or not dev:
            found.append(f"{config.name}: {run.brief()}, no oracle line")
            met = False
            continue
        tp, gold = int(dev[-1][4]), int(dev[-1][5])
        found.append(f"{config.name} dev {100 * tp / gold:.2f} % ({tp:,}/{gold:,})")
        met = met and tp / gold >= goal
    return commands, "; ".join(found), met


ROW_INFO = {
    1: ("`gplinker train` {steps} steps, peak RSS (wall): {small} vs {large} lines", "11.2 GB peak RSS at 170k",
        "<= 1.25x and <= 2.5 GB at 170k", row_train),
    2: ("the same at {big} lines", "-", "runs, <= 1.25x the 170k RSS", row_big),
    3: ("first encoding of {large} lines, data.num_proc 2 vs 1", "-", ">= 1.6x", row_num_proc),
    4: ("cached re-run vs first encoding, {large} lines", "-", ">= 20x", row_cached),
    5: ("`gplinker eval` of a 2-step vs a {trained}-step model, {dev} dev lines", "eval > 18 min, unfinished",
        "<= 3x time, <= 1.5x peak RSS", row_eval),
    6: ("dev oracle round trip, DuIE 2.0 / 1.0 (shipped configs)", "-", ">= 99.7 % / 100 %", row_oracle),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="tiny sizes: checks the script runs end to end")
    parser.add_argument("--rows", default=",".join(map(str, ROWS)), help="comma-separated rows to run (1-6)")
    parser.add_argument("--big", action="store_true", help="run row 2 (1.7M lines: ~1-2 GB disk, minutes)")
    parser.add_argument("--work", type=Path, help="work dir (kept) instead of a temporary one")
    parser.add_argument("--keep", action="store_true", help="keep the temporary work dir")
    parser.add_argument("--synthetic", action="store_true", help="with --smoke: act as if ../shared/data were "
                        "absent (row 6 is skipped)")
    parser.add_argument("--trained-steps", type=int, default=300, help="row 5: steps of the trained model")
    parser.add_argument("--eval-timeout", type=float, default=900, help="row 5: seconds before an eval is killed")
    parser.add_argument("--train-timeout", type=float, default=3600, help="seconds before any other run is killed")
    parser.add_argument("--encoding-runs", type=int, default=1, help="rows 3/4: first encodings per num_proc")
    parser.add_argument("--max-length", type=int, default=128, help="rows 3/4: tokens per window")
    add_huge_pages_flag(parser)
    args = parser.parse_args()
    rows = sorted({int(r) for r in args.rows.split(",") if r.strip()})
    if not set(rows) <= set(ROWS):
        parser.error(f"--rows takes numbers from 1 to 6, got {args.rows}")
    if not args.smoke and not DUIE.is_dir():
        print(f"bench_scale: {DUIE} not found (the DuIE 2.0 subset is not shipped); nothing to measure")
        return
    setup_like_cli(args)  # children inherit the environment
    args.synthetic = args.synthetic and args.smoke
    if args.work:
        args.work.mkdir(parents=True, exist_ok=True)
        work = args.work.resolve()
    else:
        work = Path(tempfile.mkdtemp(prefix="bench_scale_"))
    saved_cache_env = os.environ.get("GPLINKER_CACHE_DIR")
    bench = None
    try:
        bench = Bench(args, work)
        print(f"# bench_scale: {machine()}")
        data = "synthetic DuIE file (200 lines)" if bench.smoke else "DuIE 2.0 train subset"
        print(f"# data: {data} repeated to {' / '.join(lines(n) for n in bench.sizes)} lines; train runs: "
              f"configs/duie.yaml, encoder hidden 64 x 1 layer, {bench.train_steps} steps, eval on "
              f"{lines(len(bench.dev100.read_text(encoding='utf-8').splitlines()))} dev lines; row 5: "
              f"{bench.trained_steps}-step model (batch 16, lr 1e-3 as configs/duie.yaml) on "
              f"{lines(len(bench.subset.read_text(encoding='utf-8').splitlines()))} lines; work dir {work}")
        results = {}
        for r in rows:
            started = time.perf_counter()
            what, _, _, fn = ROW_INFO[r]
            what = what.format(**bench.labels())
            print(f"# row {r} ({what}) ...", flush=True)
            results[r] = fn(bench)
            load = " ".join(f"{x:.1f}" for x in os.getloadavg())
            print(f"# row {r} took {time.perf_counter() - started:.0f} s (load avg now {load})", flush=True)
        print()
        print("| row | measurement | before | now | goal | met |")
        print("|---|---|---|---|---|---|")
        for r in rows:
            what, before, goal, _ = ROW_INFO[r]
            what = what.format(**bench.labels())
            _, now, met = results[r]
            verdict = "-" if met is None else ("met" if met else "NOT met")
            print(f"| {r} | {what} | {before} | {now} | {goal} | {verdict} |")
        print()
        for r in rows:
            for command in results[r][0]:
                print(f"row {r}: {command}")
        print()
        for r in rows:
            _, now, met = results[r]
            goal = ROW_INFO[r][2]
            verdict = "not run" if met is None else ("goal met" if met else "goal NOT met")
            print(f"row {r} goal {goal}: {verdict}")
    finally:
        if saved_cache_env is None:
            os.environ.pop("GPLINKER_CACHE_DIR", None)
        else:
            os.environ["GPLINKER_CACHE_DIR"] = saved_cache_env
        if not args.work and not args.keep:
            shutil.rmtree(work, ignore_errors=True)
        elif args.keep:
            print(f"# work dir kept: {work}")
    if bench is not None and bench.failures:
        print(f"bench_scale: {len(bench.failures)} run(s) failed: {', '.join(bench.failures)}", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
