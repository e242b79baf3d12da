"""The `gplinker` command line: train, eval, tune, score, predict, export, check, demo, serve."""

from __future__ import annotations

import json
import math
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

import typer
from rich.console import Console

from gplinker.errors import GPLinkerError, Interrupted

if TYPE_CHECKING:
    from gplinker.commands.check import CheckReport
    from gplinker.pipeline import Pipeline

# rich_markup_mode=None: click's own help layout, which shows a flag as `--resume` (typer's rich panels print
# `<bool>` after every flag, as if it took a value); the tables and progress bars stay rich.
app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False, rich_markup_mode=None,
                  help="GPLinker information extraction: NER, relation triples and events.")
console = Console(stderr=True)
TRUST_HELP = "allow the model dir's own code to run (off: never trust a dir from elsewhere)"
MAX_LENGTH_HELP = ("tokens per window (default: the longest training window; longer ones warn: the model never saw "
                   "those positions)")
THRESHOLD_HELP = ("decoding threshold on logits, for every channel; overrides the model's own (its per-channel "
                  "thresholds from `gplinker tune`, else its one threshold, 0 by default)")
CUT_HELP = ("where a text longer than a window is cut: sentences (at sentence ends, whole sentences per window; a "
            "longer sentence slides) | tokens (sliding windows sharing the training stride)")


def print_version(wanted: bool) -> None:
    """`gplinker --version`: print the installed version and stop."""
    if wanted:
        from gplinker.run_info import package_version

        typer.echo(f"gplinker {package_version()}")
        raise typer.Exit()


@app.callback()
def _process_setup(
    version: bool = typer.Option(False, "--version", callback=print_version, is_eager=True,  # noqa: ARG001 -- its callback acts
                                 help="print the installed gplinker version and exit"),
    verbose: bool = typer.Option(False, "--verbose", help="also show the transformers library's messages: weight "
                                 "load reports (UNEXPECTED/MISSING keys) and loading bars"),
) -> None:
    # Before any torch import: PyTorch's CPU allocator puts tensors of >= 2 MiB on transparent huge
    # pages (madvise) when THP_MEM_ALLOC_ENABLE=1, so the (B, H, L, L) logits and the activations
    # are not page-faulted in 4 KiB at a time on every batch. Off by default in PyTorch because it
    # adds a little memory; here it is on unless the variable is set (THP_MEM_ALLOC_ENABLE=0 opts
    # out). Measured in scripts/bench_train.py and scripts/bench_predict.py (--no-huge-pages).
    os.environ.setdefault("THP_MEM_ALLOC_ENABLE", "1")
    if not verbose:
        quiet_transformers()


def quiet_transformers() -> None:
    """Silence transformers' weight load reports and loading bars (a pretrained checkpoint's unused MLM head
    is listed as UNEXPECTED keys on every load) unless the user set the variables. The commands import
    transformers lazily, after this callback, so the variables take effect."""
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")


def fail(exc: Exception) -> NoReturn:
    """Print a GPLinkerError as one red line and exit with status 2 (no traceback)."""
    console.print(f"[bold red]error:[/] {exc}", highlight=False)
    raise typer.Exit(2)


@app.command()
def train(
    config: Path = typer.Argument(..., help="YAML config (see configs/)"),
    set_: list[str] = typer.Option([], "--set", metavar="KEY=VALUE",
                                   help="override a config value, e.g. --set train.lr=3e-5 (repeatable)"),
    resume: bool = typer.Option(False, "--resume", help="continue from the newest checkpoint in train.output_dir"),
    overwrite: bool = typer.Option(False, "--overwrite", help="discard checkpoints already in train.output_dir"),
    skip_invalid: bool = typer.Option(False, "--skip-invalid", help="skip and count bad data lines"),
    init_from: Path | None = typer.Option(None, "--init-from", metavar="MODEL_DIR",
                                          help="start from a trained model dir: its encoder and tokenizer, and the "
                                          "head channels of every label it shares with the new schema (new labels "
                                          "start fresh; the config's encoder settings must match the dir's)"),
) -> None:
    """Train a model as CONFIG says; best/ and last/ model dirs land in train.output_dir."""
    from gplinker.commands.train import train as run_train
    from gplinker.config import load_config

    try:
        cfg = load_config(config, set_ + (["data.skip_invalid=true"] if skip_invalid else []))
        result = run_train(cfg, resume=resume, overwrite=overwrite, console=console, init_from=init_from)
    except Interrupted as exc:  # a signal stopped the run after saving a checkpoint
        console.print(f"[bold yellow]{exc}[/]", highlight=False)
        raise typer.Exit(128 + exc.signum) from None
    except GPLinkerError as exc:
        fail(exc)
    from gplinker import distributed

    out = Path(cfg.train.output_dir)
    if distributed.is_main():
        best = result.fit.best_score
        scored = "no dev set" if math.isnan(best) else f"best dev score {100 * best:.2f} at step {result.fit.best_step}"
        console.print(f"done: {result.fit.steps} steps; {scored}; model dirs {out / 'best'} and {out / 'last'}")
    distributed.teardown()


@app.command("eval")
def eval_(
    model_dir: Path = typer.Argument(..., help="a model dir written by `gplinker train` (e.g. runs/x/best)"),
    data: Path = typer.Argument(..., help="labelled JSONL file"),
    format: str | None = typer.Option(None, "--format", help="data format (default: auto-detect)"),
    output: Path | None = typer.Option(None, "--output", "-o", help="write metrics.json here"),
    errors: Path | None = typer.Option(None, "--errors", help="write false positives and misses per example (JSONL)"),
    skip_invalid: bool = typer.Option(False, "--skip-invalid", help="skip and count bad data lines"),
    device: str = typer.Option("auto", help="auto | cpu | cuda"),
    batch_size: int = typer.Option(64, help="windows per forward pass"),
    threshold: float | None = typer.Option(None, help=THRESHOLD_HELP),
    max_length: int | None = typer.Option(None, "--max-length", help=MAX_LENGTH_HELP),
    cut: str = typer.Option("sentences", "--cut", help=CUT_HELP),
    trust_remote_code: bool = typer.Option(False, "--trust-remote-code",
                                           help=TRUST_HELP),
    report: Path | None = typer.Option(None, "--report", help="write one self-contained HTML report here: "
                                       "tables, type confusion, training curves, the first errors drawn"),
) -> None:
    """Score a saved model on labelled data: strict span/triple/event F1 and the official scores."""
    from gplinker.atomic_files import ensure_parent, write_json
    from gplinker.commands.evaluate import evaluate_dir, write_errors
    from gplinker.commands.tables import print_scores

    try:
        for path in (output, errors):  # before scoring, so a bad path costs no work
            if path is not None:
                ensure_parent(path)
        result = evaluate_dir(model_dir, data, format, skip_invalid, device, batch_size, trust_remote_code,
                              threshold=threshold, max_length=max_length, cut=cut)
    except GPLinkerError as exc:
        fail(exc)
    print_scores(result.scores, f"{data} ({len(result.examples)} examples)")
    if result.report.skipped:
        console.print(f"[yellow]skipped {len(result.report.skipped)} invalid line(s)[/]")
    if output:
        write_json(output, result.scores.as_dict())
    if errors:
        n = write_errors(errors, result)
        console.print(f"{n} example(s) with errors written to {errors}")
    if report:
        from gplinker.report.html import write_report

        drawn = write_report(report, result, model_dir, data)
        console.print(f"report written to {report} ({drawn} example(s) with errors drawn)")


@app.command()
def tune(
    model_dir: Path = typer.Argument(..., help="a model dir written by `gplinker train` (e.g. runs/x/best)"),
    data: Path = typer.Argument(..., help="labelled dev JSONL file to tune on (not the test set)"),
    format: str | None = typer.Option(None, "--format", help="data format (default: auto-detect)"),
    skip_invalid: bool = typer.Option(False, "--skip-invalid", help="skip and count bad data lines"),
    device: str = typer.Option("auto", help="auto | cpu | cuda"),
    batch_size: int = typer.Option(64, help="windows per forward pass"),
    dry_run: bool = typer.Option(False, "--dry-run", help="search and print, but leave the model dir as it is"),
    trust_remote_code: bool = typer.Option(False, "--trust-remote-code", help=TRUST_HELP),
) -> None:
    """Search a decoding threshold per head channel on dev data (a fixed grid) and write it into the model dir.

    predict, eval and serve then decode with them; --threshold on eval and predict still sets one
    threshold for every channel.
    Prints the dev score before and after (the search only keeps a change that raises it).
    """
    from rich.table import Table

    from gplinker.commands.tune import tune_dir

    try:
        result = tune_dir(model_dir, data, format, skip_invalid, device, batch_size, trust_remote_code,
                          write=not dry_run)
    except GPLinkerError as exc:
        fail(exc)
    changed = result.changed()
    table = Table(title=f"thresholds changed ({len(changed)} channel(s))")
    for col in ("head", "channel", "before", "after"):
        table.add_column(col, justify="left" if col in ("head", "channel") else "right")
    for head, label, old, new in changed:
        table.add_row(head, label, f"{old:g}", f"{new:g}")
    console.print(table)
    console.print(f"dev score on {data} ({result.examples} examples, {result.trials} trials): "
                  f"{100 * result.before:.2f} before, {100 * result.after:.2f} after")
    console.print("dry run: the model dir is unchanged" if dry_run
                  else f"thresholds written to {model_dir / 'config.json'}")


@app.command()
def predict(
    model_dir: Path = typer.Argument(..., help="a model dir written by `gplinker train`"),
    input: str = typer.Argument(..., help="JSONL file with a 'text' field per line, or - for stdin"),
    output: Path | None = typer.Option(None, "--output", "-o", help="output JSONL (default: stdout)"),
    format: str = typer.Option("records", "--format", help="records (scores, offsets, errors marked) | clue | duie | "
                               "duee: the leaderboard submission form of the model's task, nothing else"),
    device: str = typer.Option("auto", help="auto | cpu | cuda"),
    batch_size: int = typer.Option(64, help="windows per forward pass"),
    threshold: float | None = typer.Option(None, help=THRESHOLD_HELP),
    max_length: int | None = typer.Option(None, "--max-length", help=MAX_LENGTH_HELP),
    cut: str = typer.Option("sentences", "--cut", help=CUT_HELP),
    runtime: str = typer.Option("auto", help="torch | onnx (a dir written by `gplinker export`, CPU onnxruntime) | "
                                             "auto (torch when the dir has model.safetensors, else onnx)"),
    trust_remote_code: bool = typer.Option(False, "--trust-remote-code",
                                           help=TRUST_HELP),
) -> None:
    """Predict on JSONL: exactly one output line per input line, in order; bad lines carry an `error` field.

    Under `torchrun --nproc_per_node N -m gplinker predict ...` the ranks share the work and rank 0
    writes one ordered output.
    """
    from contextlib import nullcontext

    from gplinker import distributed
    from gplinker.atomic_files import WriteFailed, atomic_text, ensure_parent
    from gplinker.commands.predict import check_model_format, output_lock, predict_lines
    from gplinker.data.reading import read_text_lines
    from gplinker.predict import IDLE_FLUSH_S, Predictor

    try:
        check_model_format(model_dir, format)
        if output:
            ensure_parent(output)  # before loading the model, so a bad path costs no work
        rank_device = distributed.setup(device)
        main = distributed.is_main()
        # one predict at a time into a file, and never into the file it reads
        with output_lock(input, output if main else None):
            predictor = Predictor.from_pretrained(model_dir, device=str(rank_device or device), batch_size=batch_size,
                                                  runtime=runtime, trust_remote_code=trust_remote_code,
                                                  threshold=threshold, max_length=max_length, cut=cut)
            lines = read_text_lines(input)
            written = [0]
            # the output file appears whole when every line is written, or not at all
            try:
                with atomic_text(output) if output and main else nullcontext(sys.stdout) as sink:
                    def write(line: str) -> None:
                        sink.write(line + "\n")
                        written[0] += 1

                    summary = predict_lines(predictor, lines, write, source=input if input != "-" else "<stdin>",
                                            fmt=format, idle=IDLE_FLUSH_S if input == "-" else None,
                                            flush=None if output else sys.stdout.flush)
            except WriteFailed as exc:
                raise WriteFailed(f"{exc}. {written[0]} line(s) had been predicted; {output} was left as it was "
                                  "(predict writes a temporary file and renames it when every line is in)") from None
    except GPLinkerError as exc:
        fail(exc)
    if distributed.is_main():
        console.print(f"{summary.lines} line(s) predicted, {summary.errors} with errors")
        for message in summary.first_errors:
            console.print(f"  [yellow]{message}[/]", highlight=False)
    distributed.teardown()


@app.command()
def score(
    predictions: Path = typer.Argument(..., help="prediction or submission JSONL, one line per gold line, same order"),
    gold: Path = typer.Argument(..., help="labelled JSONL file"),
    task: str = typer.Option(..., "--task", help="ner | relation | event"),
    format: str = typer.Option("auto", "--format", help="form of PREDICTIONS: records | clue (ner) | duie "
                               "(relation) | duee (event submission) | auto (from the first labelled line)"),
    gold_format: str = typer.Option("auto", "--gold-format", help="data format of GOLD (default: auto-detect)"),
    output: Path | None = typer.Option(None, "--output", "-o", help="write metrics.json here"),
) -> None:
    """Score a prediction file against gold with the metrics of `eval`, whoever made the predictions."""
    from gplinker.commands.score import score_files
    from gplinker.commands.tables import print_scores

    try:
        result = score_files(predictions, gold, task, format, gold_format)
    except GPLinkerError as exc:
        fail(exc)
    print_scores(result.scores, f"{predictions} ({result.form}) against {gold} ({result.examples} examples)")
    for note in result.notes:
        console.print(f"[yellow]{note}[/]", highlight=False)
    if output:
        output.write_text(json.dumps(result.scores.as_dict(), ensure_ascii=False, indent=2), encoding="utf-8")


@app.command()
def export(
    model_dir: Path = typer.Argument(..., help="a model dir written by `gplinker train`"),
    onnx: Path = typer.Option(..., "--onnx", help="output dir: model.onnx + config.json + tokenizer files"),
    check_data: Path | None = typer.Option(None, "--check", help="JSONL with a 'text' per line: decode it with "
                                              "both runtimes and compare (default: synthetic texts)"),
    opset: int | None = typer.Option(None, help="ONNX opset (default: the exporter's)"),
    tolerance: float = typer.Option(1e-3, help="largest accepted |logit difference| between PyTorch and ONNX"),
) -> None:
    """Export encoder + heads as one ONNX graph and check parity (logits and decoded items) against PyTorch."""
    from gplinker.export import export_onnx

    try:
        texts = None
        if check_data is not None:
            from gplinker.data.reading import read_text_lines

            texts = [json.loads(line)["text"] for line in read_text_lines(str(check_data)) if line.strip()]
        report = export_onnx(model_dir, onnx, texts, opset, tolerance)
    except GPLinkerError as exc:
        fail(exc)
    except (KeyError, TypeError, json.JSONDecodeError) as exc:
        fail(GPLinkerError(f"{check_data}: every line must be a JSON object with a 'text' ({exc})"))
    console.print(f"exported {model_dir} to {onnx} in {report.seconds:.1f} s; outputs {', '.join(report.outputs)}")
    console.print(f"parity on {report.texts} texts ({report.windows} windows): max |logit difference| "
                  f"{report.max_abs_diff:.3g}; decoded items differ on {len(report.mismatched)} text(s)")
    if not report.ok:
        console.print(f"[bold red]parity check failed[/] on text(s) {report.mismatched[:10]}")
        raise typer.Exit(1)
    console.print(f"predict with: gplinker predict {onnx} INPUT.jsonl --runtime onnx")


@app.command()
def check(
    data: list[Path] = typer.Argument(None, help="labelled data file(s) (default with --config: data.train and "
                                              "data.dev)"),
    config: Path | None = typer.Option(None, "--config", help="a training config: check with the task, format, "
                                       "schema, tokenizer and windows its training run would use"),
    set_: list[str] = typer.Option([], "--set", metavar="KEY=VALUE", help="override a value of --config (repeatable)"),
    task: str = typer.Option("ner", "--task", help="ner | relation | event"),
    format: str = typer.Option("auto", "--format", help="data format (default: auto-detect)"),
    tokenizer: str | None = typer.Option(None, "--tokenizer",
                                         help="tokenizer name/dir (default: a character vocabulary from the data)"),
    schema: Path | None = typer.Option(None, "--schema", help="schema file (relation/event)"),
    max_length: int = typer.Option(128, help="tokens per window"),
    stride: int = typer.Option(32, help="tokens shared by consecutive windows"),
    char_level: bool = typer.Option(False, "--char-level", help="tokenize every character on its own"),
    strict: bool = typer.Option(False, "--strict", help="stop at the first invalid line instead of counting"),
) -> None:
    """Validate data files and report the oracle round trip (gold → targets → decode) and lengths.

    With --config, every setting comes from the training config (the other options are ignored),
    so the oracle is the one its training run really gets.
    """
    from gplinker.commands.check import check_data, load_check_inputs, settings_from_config
    from gplinker.config import load_config

    out = Console()
    try:
        if config is not None:
            cfg = load_config(config, set_)
            settings = settings_from_config(cfg)
            files = list(data) if data else [Path(p) for p in (cfg.data.train, cfg.data.dev) if p]
            out.print(f"settings of {config}: task {settings.task}, {settings.note}, stride {settings.stride}"
                      f"{', char level' if settings.char_level else ''}")
            task, format, tok, loaded_schema = settings.task, settings.format, settings.tokenizer, settings.schema
            max_length, stride, char_level = settings.max_length, settings.stride, settings.char_level
            decode, event = settings.decode, (settings.require_trigger, settings.min_arguments)
        else:
            decode, event = "nested", (True, 2)
            if not data:
                raise GPLinkerError("give a data file, or --config CONFIG to check its data.train and data.dev")
            files = list(data)
            configs = [path for path in files if path.suffix.lower() in (".yaml", ".yml")]
            if configs:
                raise GPLinkerError(f"{configs[0]} is a training config, not a data file: to check the data it "
                                    f"trains on, run gplinker check --config {configs[0]}")
            tok, loaded_schema = load_check_inputs(task, tokenizer, schema)
        reports = [(path, check_data(str(path), task, format, tok, max_length, stride, skip_invalid=not strict,
                                     schema=loaded_schema, char_level=char_level, decode=decode,
                                     require_trigger=event[0], min_arguments=event[1])) for path in files]
    except GPLinkerError as exc:
        fail(exc)
    for path, report in reports:
        print_check(out, path, report)


def print_check(out: Console, data: Path, report: CheckReport) -> None:
    """The lines `gplinker check` prints for one file."""
    from gplinker.commands.check import length_stats

    r = report.report
    out.print(f"[bold]{data}[/] format {report.format}: {r.lines} lines, {r.examples} examples, "
              f"{len(r.skipped)} invalid")
    for error in r.skipped[:10]:
        out.print(f"  [yellow]{error}[/]", highlight=False)
    for key, stats in (("characters", report.chars), ("tokens", report.tokens)):
        s = length_stats(stats)
        out.print(f"{key} per text: min {s['min']} mean {s['mean']} p95 {s['p95']} max {s['max']}")
    out.print(f"windows: {report.windows} ({report.long_texts} text(s) longer than one window)")
    o = report.oracle
    out.print(f"oracle round trip: P {100 * o.precision:.2f} R {100 * o.recall:.2f} F1 {100 * o.f1:.2f} "
              f"({o.tp}/{o.n_gold} gold items recovered)")
    if o.n_gold == 0 and r.examples:
        out.print(f"[yellow]no gold items of task {report.task} found in {data} (is this the right format/task?)[/]",
                  highlight=False)
    gaps = report.gaps
    if gaps.items:
        out.print(f"[yellow]{gaps.items} gold item(s) have labels the schema lacks: {gaps.summary()}[/]",
                  highlight=False)
        out.print(f"{max(0, o.n_gold - o.tp - gaps.items)} other gold item(s) lost to token positions or decoding")
    for source, item in report.lost:
        out.print(f"  lost {source}: {json.dumps(item, ensure_ascii=False)}", highlight=False)


@app.command()
def demo(
    output_dir: Path = typer.Option(Path("runs/demo"), help="where the demo model is written"),
) -> None:
    """Train on the bundled synthetic data, evaluate, predict and print the results, offline.

    About 11 s on 2 idle CPU cores.
    """
    from gplinker.demo import run_demo

    try:
        run_demo(output_dir, console)
    except GPLinkerError as exc:
        fail(exc)


SERVE_EXTRA = ("fastapi", "uvicorn", "starlette")


def serve_threads(nlp: Pipeline, threads: int, workers: int) -> int:
    """Set torch's threads for `gplinker serve`: `threads` in all (0: torch's default) split over the workers;
    the number of workers (0: two on a CPU with two or more threads, since two small batches side by side
    keep two cores busier than one batch on two threads, else one)."""
    import torch

    from gplinker.onnx_runtime import OnnxLogits

    total = threads or torch.get_num_threads()
    on_cpu = nlp.predictor.runtime is None and nlp.predictor.device.type == "cpu"
    workers = workers or (2 if on_cpu and total >= 2 else 1)
    if on_cpu:
        torch.set_num_threads(max(1, total // workers))
    elif threads:  # CUDA or ONNX: torch's own threads, as before there were workers
        torch.set_num_threads(threads)
    runtime = nlp.predictor.runtime
    if isinstance(runtime, OnnxLogits) and (threads or workers > 1):  # onnxruntime's pool: a share per worker too
        runtime.use_threads(max(1, total // workers))
    return workers


@app.command()
def serve(
    model_dir: Path = typer.Argument(..., help="a model dir written by `gplinker train` (or `gplinker export`)"),
    host: str = typer.Option("127.0.0.1", help="address to listen on (0.0.0.0: every interface)"),
    port: int = typer.Option(8000, help="TCP port"),
    runtime: str = typer.Option("auto", help="torch | onnx | auto (torch when the dir has model.safetensors)"),
    max_batch: int = typer.Option(64, "--max-batch", help="most texts predicted together from concurrent requests"),
    max_wait_ms: float = typer.Option(5.0, "--max-wait-ms", help="longest wait for more requests to join a batch"),
    device: str = typer.Option("auto", help="auto | cpu | cuda"),
    batch_size: int = typer.Option(64, help="windows per forward pass"),
    trust_remote_code: bool = typer.Option(False, "--trust-remote-code", help=TRUST_HELP),
    access_log: bool = typer.Option(True, "--access-log/--no-access-log", help="log one line per request"),
    threads: int = typer.Option(0, help="CPU threads for inference in all, shared by the workers with torch on a "
                                "CPU or onnxruntime (0: the runtime's default, one per core)"),
    workers: int = typer.Option(0, help="batches predicted at once, each in its own thread (0: 2 for torch on a "
                                "CPU with 2 or more threads, else 1)"),
) -> None:
    """Serve a model over HTTP: POST /predict, GET /schema, GET /health, the web page at /, API docs at /docs."""
    try:
        import uvicorn

        from gplinker.serve.app import create_app
    except ModuleNotFoundError as exc:
        if (exc.name or "").split(".")[0] not in SERVE_EXTRA:
            raise
        from rich.markup import escape  # fail() would read "[serve]" as markup

        message = f"gplinker serve needs {exc.name}, which is not installed: pip install 'gplinker[serve]'"
        console.print(f"[bold red]error:[/] {escape(message)}", highlight=False)
        raise typer.Exit(2) from None
    from gplinker.pipeline import Pipeline

    try:
        if max_batch < 1:
            raise GPLinkerError(f"--max-batch must be at least 1, got {max_batch}")
        if threads < 0 or workers < 0:
            raise GPLinkerError(f"--threads and --workers must be 0 (automatic) or more, got {threads} and {workers}")
        nlp = Pipeline.from_pretrained(model_dir, runtime=runtime, device=device, batch_size=batch_size,
                                       trust_remote_code=trust_remote_code)
        workers = serve_threads(nlp, threads, workers)
    except GPLinkerError as exc:
        fail(exc)
    console.print(f"serving {model_dir} ({nlp.task.name}) on http://{host}:{port}/  (API docs: /docs)")
    uvicorn.run(create_app(nlp, model_dir=model_dir, max_batch=max_batch, max_wait_ms=max_wait_ms, workers=workers),
                host=host, port=port, log_level="info", access_log=access_log)
