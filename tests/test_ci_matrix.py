"""The CI matrix file we ship for sharded regressions (docs/ci/) must run
commands that hwalloc accepts, over 16 shards that together run every seed."""

import re
import shlex
from pathlib import Path

import yaml

from hwalloc import cli, results

WORKFLOW = Path(__file__).resolve().parent.parent / "docs" / "ci" / "hwalloc-soak.yml"


def commands(job, env, **values):
    """The hwalloc command lines of a job's steps, with ${{ ... }} and $VAR filled in."""
    found = []
    for step in job["steps"]:
        text = step.get("run", "")
        for key, value in values.items():
            text = text.replace("${{ " + key + " }}", str(value))
        assert "${{" not in text, text
        text = re.sub(r'"?\$(\w+)"?', lambda m: shlex.quote(str(env[m.group(1)])), text)
        words = shlex.split(text)
        if words and words[0] == "hwalloc":
            found.append(words[1:])
    return found


def test_the_shipped_workflow_runs_sixteen_shards_then_the_merge():
    flow = yaml.safe_load(WORKFLOW.read_text())
    env, shard_job, report_job = flow["env"], flow["jobs"]["shard"], flow["jobs"]["report"]
    shards = shard_job["strategy"]["matrix"]["shard"]
    assert shards == list(range(1, 17))
    assert shard_job["strategy"]["fail-fast"] is False
    assert report_job["needs"] == "shard" and report_job["if"] == "always()"
    parser = cli.build_parser()
    seeds = []
    for index in shards:
        (argv,) = commands(shard_job, env, **{"matrix.shard": index})
        args = parser.parse_args(argv)
        assert args.command == "verify" and args.shard == f"{index}/16"
        assert args.result.startswith("results/")           # the folder the shard uploads
        assert cli._parse_shard(args.shard) == (index, 16)
        all_seeds = [args.seed + k for k in range(args.seeds)]
        mine = results.shard_seeds(all_seeds, index, 16)
        assert mine, f"shard {index} would have no seed"
        seeds += mine
    assert sorted(seeds) == all_seeds              # disjoint, and every seed once
    assert args.ops * args.seeds == 10 ** 8        # the nightly soak the file says it is
    (argv,) = commands(report_job, env)
    args = parser.parse_args(argv)
    assert args.command == "report" and args.junit
    # the report reads the folder the results are downloaded into
    download = next(step for step in report_job["steps"]
                    if step.get("uses", "").startswith("actions/download-artifact"))
    assert args.results == [download["with"]["path"]]
    upload = next(step for step in shard_job["steps"]
                  if step.get("uses", "").startswith("actions/upload-artifact"))
    assert download["with"]["pattern"].rstrip("*") in upload["with"]["name"]
    assert upload["if"] == "always()" and "results/" in upload["with"]["path"].split()
