"""The ``webclip`` command: one subcommand per stage, flags mapped onto config dataclasses."""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from webclip.config import (
    ConfigError,
    add_flags,
    build,
    flag_overrides,
    load_file,
    runtime_fields,
    to_dict,
)
from webclip.denylist import set_shared
from webclip.runfolder import STAGES as STAGE_FOLDERS
from webclip.runfolder import (
    StageConflict,
    StageDir,
    StageIncomplete,
    input_fingerprints,
)


@dataclass(frozen=True)
class StageSpec:
    """Where a stage's config dataclass and runner live (imported only when that stage runs)."""

    folder: str
    config: str  # "module:Class"
    runner: str  # "module:function" taking (cfg, stage, run) and returning stats
    serves_sample_web: bool = False
    help: str = ""
    inputs: tuple[str, ...] = ()  # upstream stage folders whose redo invalidates this stage


STAGES: dict[str, StageSpec] = {
    "queries": StageSpec("queries", "webclip.pipelines.queries:QueriesConfig", "webclip.pipelines.queries:run_queries",
                         False, "build the query list (WordNet, wordfreq, PMI bigrams, titles)"),
    "crawl": StageSpec("candidates", "webclip.crawl.config:CrawlConfig", "webclip.crawl.run:run_crawl", True,
                       "crawl seed sites politely into candidate Parquet"),
    "curate": StageSpec("curated", "webclip.pipelines.config:CurateConfig", "webclip.pipelines.curate:run_curate", False,
                        "filter, detect language, dedupe, match and balance candidates (Beam)",
                        ("candidates", "queries")),
    "shards": StageSpec("shards", "webclip.shards.config:ShardsConfig", "webclip.shards.run:run_shards", True,
                        "download curated images into WebDataset shards", ("curated",)),
    "train": StageSpec("train", "webclip.model.config:TrainConfig", "webclip.model.train:run_train", False,
                       "train a compact CLIP on the run's shards", ("shards",)),
    "eval": StageSpec("eval", "webclip.model.config:EvalConfig", "webclip.model.evaluate:run_eval", False,
                      "zero-shot, retrieval and linear-probe evaluation of a checkpoint", ("train", "shards")),
}
OTHER = {"sample-web": "generate (or serve) the embedded sample web", "status": "show which stages of a run are done",
         "takedown": "deny image URLs, page URLs, domains or sha256 run-wide and purge them from shards, jobs and pool",
         "ablation": "train on balanced vs unbalanced curation (ablation.seeds seeds per arm, 95 % intervals) and compare head/tail zero-shot",
         "demo": "run every stage on the sample web and print a summary",
         "explore": "browse a run in a local read-only web page (funnel, drop examples, entries, samples, eval)"}


def _load(ref: str) -> Any:
    module, name = ref.split(":")
    return getattr(importlib.import_module(module), name)


def fail(message: str, code: int = 2) -> int:
    """Print a one-line error and return ``code`` (2: a user error; 1: a stage that could not finish)."""
    print(f"webclip: error: {message}", file=sys.stderr)
    return code


def common_flags(p: argparse.ArgumentParser, run_required: bool = True) -> None:
    """``--run`` and ``--config``, taken by every subcommand."""
    p.add_argument("--run", required=run_required, help="run folder, e.g. runs/demo")
    p.add_argument("--config", help="config JSON with one section per stage (see configs/)")


def stage_config(name: str, config_file: dict[str, Any], overrides: dict[str, Any] | None = None) -> Any:
    """Build a stage's config dataclass from its file section plus overrides."""
    return build(_load(STAGES[name].config), config_file.get(name, {}), overrides)


def run_stage(name: str, run: Path, config_file: dict[str, Any], cfg: Any, force: bool = False) -> dict[str, Any] | None:
    """Run one stage into its run folder unless it is already done with the same config."""
    from webclip.sampleweb.context import SampleWebSection, served

    spec = STAGES[name]
    stage = StageDir(run, spec.folder)
    set_shared(run, config_file.get("denylist"))  # the config file's "denylist": shared files every stage honours
    if not stage.prepare(to_dict(cfg), force=force, inputs=input_fingerprints(run, spec.inputs),
                         runtime=runtime_fields(type(cfg))):
        print(f"{name}: already done with this config ({stage.path}); --force redoes it")
        return None
    section = build(SampleWebSection, config_file.get("sample_web", {}))
    started = time.monotonic()
    with served(run, section) if spec.serves_sample_web else _null():
        stats = _load(spec.runner)(cfg, stage, run)
    print(f"{name}: done in {time.monotonic() - started:.1f}s -> {stage.path} "
          f"(in {stats.get('in')}, kept {stats.get('kept')})")
    return stats


class _null:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> None:
        return None


def cmd_stage(name: str, argv: list[str]) -> int:
    """``webclip <stage> --run DIR --config FILE [fields...] [--force]``."""
    spec = STAGES[name]
    p = argparse.ArgumentParser(prog=f"webclip {name}", description=spec.help)
    common_flags(p)
    p.add_argument("--force", action="store_true", help="redo the stage even if done with another config")
    cls = _load(spec.config)
    add_flags(p, cls)
    args = p.parse_args(argv)
    config_file = load_file(args.config)
    cfg = stage_config(name, config_file, flag_overrides(args, cls))
    run_stage(name, Path(args.run), config_file, cfg, force=args.force)
    return 0


def serve_until_interrupted(server: Any) -> int:
    """Keep a background server running until Ctrl-C, then shut it down."""
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        server.shutdown()
    return 0


def cmd_sample_web(argv: list[str]) -> int:
    """``webclip sample-web --out DIR`` or ``webclip sample-web serve DIR --port P``."""
    from webclip.sampleweb.generate import SampleWebConfig, generate

    if argv[:1] == ["serve"]:
        from webclip.sampleweb.serve import DEFAULT_PORT, start

        p = argparse.ArgumentParser(prog="webclip sample-web serve")
        p.add_argument("dir", help="a folder written by `webclip sample-web`")
        p.add_argument("--port", type=int, default=DEFAULT_PORT)
        p.add_argument("--log", help="append one line per request (time, path, status)")
        common_flags(p, run_required=False)
        args = p.parse_args(argv[1:])
        if not (Path(args.dir) / "site" / "_routes.json").is_file():
            return fail(f"{args.dir} is not a sample web folder (no site/_routes.json)")
        server = start(args.dir, args.port, args.log)
        print(f"serving {args.dir}/site at http://127.0.0.1:{args.port}/ (Ctrl-C stops)", flush=True)
        return serve_until_interrupted(server)
    p = argparse.ArgumentParser(prog="webclip sample-web", description=OTHER["sample-web"])
    p.add_argument("--out", help="output folder (default <run>/sampleweb)")
    common_flags(p, run_required=False)
    add_flags(p, SampleWebConfig)
    args = p.parse_args(argv)
    if not args.out and not args.run:
        return fail("give --out DIR or --run DIR")
    config_file = load_file(args.config)
    section = config_file.get("sample_web", {}).get("generate", {})
    cfg = build(SampleWebConfig, section, flag_overrides(args, SampleWebConfig))
    out = Path(args.out) if args.out else Path(args.run) / "sampleweb"
    started = time.monotonic()
    summary = generate(cfg, out)
    print(f"sample web: {summary['pages']} pages, {summary['images']} images, {summary['heldout_images']} held-out "
          f"images in {time.monotonic() - started:.1f}s -> {out}")
    return 0


def cmd_status(argv: list[str]) -> int:
    """``webclip status --run DIR``: which stages are done, with their counts."""
    p = argparse.ArgumentParser(prog="webclip status", description=OTHER["status"])
    common_flags(p)
    args = p.parse_args(argv)
    run = Path(args.run)
    if not run.is_dir():
        return fail(f"run folder not found: {run}")
    specs = {spec.folder: spec for spec in STAGES.values()}
    for folder in STAGE_FOLDERS:
        stage = StageDir(run, folder)
        stats = stage.stats() if stage.done else None
        if stats:
            dropped = sum(stats.get("dropped", {}).values())
            stale = stage.changed_inputs(input_fingerprints(run, specs[folder].inputs))
            note = f"  STALE: {', '.join(stale)} redone since; --force redoes this" if stale else ""
            print(f"{folder:<11} done     in={stats.get('in')} kept={stats.get('kept')} dropped={dropped} "
                  f"({stats.get('unit', '')}){note}")
        elif stage.path.exists():
            print(f"{folder:<11} started  (not finished)")
        else:
            print(f"{folder:<11} -")
    return 0


def _whole_run_command(name: str, runner: str, argv: list[str]) -> int:
    """``webclip NAME --run DIR --config FILE [--force]`` for commands that drive several stages."""
    p = argparse.ArgumentParser(prog=f"webclip {name}", description=OTHER[name])
    common_flags(p)
    p.add_argument("--force", action="store_true")
    args = p.parse_args(argv)
    _load(runner)(Path(args.run), load_file(args.config), force=args.force)
    return 0


def cmd_demo(argv: list[str]) -> int:
    """``webclip demo --run DIR --config FILE``: every stage, then a summary and plots."""
    return _whole_run_command("demo", "webclip.demo:run_demo", argv)


def cmd_ablation(argv: list[str]) -> int:
    """``webclip ablation --run DIR --config FILE``."""
    return _whole_run_command("ablation", "webclip.ablation:run_ablation", argv)


def cmd_takedown(argv: list[str]) -> int:
    """``webclip takedown --run DIR --urls FILE``."""
    p = argparse.ArgumentParser(prog="webclip takedown", description=OTHER["takedown"])
    common_flags(p)
    p.add_argument("--urls", required=True, help="file with one image URL, page URL, domain or image sha256 per line "
                                                 "(or 'image_url|page_url|domain|sha256 VALUE'); '#' starts a comment")
    args = p.parse_args(argv)
    run = Path(args.run)
    if not run.is_dir():
        return fail(f"run folder not found: {run}")
    if not Path(args.urls).is_file():
        return fail(f"takedown list not found: {args.urls}")
    from webclip import denylist
    from webclip.shards.takedown import apply_takedown

    denylist.set_shared(run, load_file(args.config).get("denylist"))
    record = apply_takedown(run, Path(args.urls).read_text().splitlines())
    print(f"takedown: removed {record['removed']} samples ({record['reasons']}), rewrote "
          f"{len(record['shards_rewritten'])} shards, {record['pool_rows_removed']} pool rows; denylist in "
          f"{denylist.folder(run)}; recorded in {run / 'shards' / 'takedowns.jsonl'}")
    return 0


def cmd_explore(argv: list[str]) -> int:
    """``webclip explore --run DIR [--port P] [--host H]``: serve the explorer until Ctrl-C."""
    from webclip.explore.server import DEFAULT_PORT, start

    p = argparse.ArgumentParser(prog="webclip explore", description=OTHER["explore"])
    p.add_argument("--run", required=True, help="run folder, e.g. runs/demo")
    p.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"TCP port (default {DEFAULT_PORT}; 0 picks a free one)")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1: this machine only)")
    p.add_argument("--verbose", action="store_true", help="log every request to stderr")
    args = p.parse_args(argv)
    try:
        server = start(args.run, args.port, args.host, args.verbose)
    except FileNotFoundError:
        raise  # no such run: main's one-line error
    except OSError as e:
        return fail(f"cannot listen on {args.host}:{args.port}: {e.strerror or e}")
    print(f"explore: serving {args.run} at {server.url} (read-only; Ctrl-C stops)", flush=True)
    return serve_until_interrupted(server)


COMMANDS: dict[str, Callable[[list[str]], int]] = {"sample-web": cmd_sample_web, "status": cmd_status, "demo": cmd_demo,
                                                    "takedown": cmd_takedown, "ablation": cmd_ablation,
                                                    "explore": cmd_explore}


def main(argv: list[str] | None = None) -> int:
    """Entry point: dispatch to a subcommand; user errors exit 2 with one line."""
    argv = list(sys.argv[1:] if argv is None else argv)
    logging.basicConfig(level=logging.ERROR, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("apache_beam").setLevel(logging.ERROR)
    if not argv or argv[0] in ("-h", "--help"):
        print("usage: webclip {" + ",".join([*STAGES, *COMMANDS]) + "} --run DIR [--config FILE] ...\n")
        for name, spec in STAGES.items():
            print(f"  {name:<11} {spec.help}")
        for name, text in OTHER.items():
            print(f"  {name:<11} {text}")
        return 0 if argv else 2
    name, rest = argv[0], argv[1:]
    try:
        if name in STAGES:
            return cmd_stage(name, rest)
        if name in COMMANDS:
            return COMMANDS[name](rest)
        return fail(f"unknown command {name!r} (try: {', '.join([*STAGES, *COMMANDS])})")
    except (ConfigError, StageConflict, FileNotFoundError, ValueError) as e:
        return fail(str(e).splitlines()[0] if str(e) else type(e).__name__)
    except StageIncomplete as e:
        return fail(str(e).splitlines()[0], code=1)
    except KeyboardInterrupt:
        return fail("interrupted")


if __name__ == "__main__":
    sys.exit(main())
