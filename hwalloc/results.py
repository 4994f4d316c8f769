"""Machine-readable results of ``hwalloc verify``, and their merge.

Every ``hwalloc verify`` run writes one result file (JSON, format
:data:`FORMAT`): the config it ran (name and digest), its share of the seeds
(``--shard I/N``), and per seed the verdict, the checked operations and
coverage bin counts, the first mismatch and the bench's test cases (the JUnit
data). ``hwalloc report`` reads any number of them with :func:`load` and
:func:`merge`, checks that they belong together (one config, one run
length, each shard of the set once, no seed twice), and gives one verdict,
one coverage table and one JUnit file (:func:`junit_xml`).

The coverage bins are our own: plain named counts, so a merge is a sum.
cocotb-coverage keeps its bins in a ``coverage_db`` built from decorators
at import time and merges XML or YAML exports with ``merge_coverage``; our
bins depend on the config (:func:`hwalloc.tb.coverage.expected_bins`) and are
sampled by the scoreboard, which already knows what it checked, so a
second coverage database would only repeat them.
"""

import dataclasses
import hashlib
import json
import xml.etree.ElementTree as ET
from pathlib import Path

from .tb.scoreboard import Stats

__all__ = ["FORMAT", "Merged", "ResultError", "config_digest", "shard_seeds", "seed_run", "load", "merge",
           "junit_xml"]

FORMAT = "hwalloc-verify-result/1"


class ResultError(ValueError):
    """Result files that cannot be read or do not belong together."""


def config_digest(config):
    """A short digest of a config's every field: results of two configs never merge."""
    text = json.dumps(dataclasses.asdict(config), sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def shard_seeds(seeds, index, count):
    """The ``index``-th (1-based) of ``count`` disjoint slices of ``seeds``:
    every ``count``-th seed from the ``index``-th on, so that the slices
    together are all the seeds and each has its share of them."""
    return seeds[index - 1::count]


def _testcases(results_xml):
    """The bench's test cases from cocotb's JUnit file: name, class, time, and
    the failure message and text of a failed one."""
    cases = []
    try:
        root = ET.parse(results_xml).getroot()
    except (OSError, ET.ParseError):
        return cases
    for case in root.iter("testcase"):
        entry = {"name": case.get("name"), "classname": case.get("classname"),
                 "time": float(case.get("time") or 0)}
        for kind in ("failure", "error"):
            bad = case.find(kind)
            if bad is not None:
                entry["failure"] = {"kind": kind, "message": bad.get("message") or "",
                                    "text": (bad.text or "")[-4000:]}
        if case.find("skipped") is not None:
            entry["skipped"] = True
        cases.append(entry)
    return cases


def seed_run(seed, folder, *, crashed):
    """What one seed's bench left in ``folder`` (stats.jsonl, results.xml,
    sim.log), as one entry of a result's ``runs``."""
    stats, mismatch, tests = Stats(), None, []
    path = folder / "stats.jsonl"
    if path.exists():
        for line in path.read_text().splitlines():
            entry = json.loads(line)
            stats.merge(Stats.from_dict(entry))
            tests.append(entry["test"])
            if mismatch is None and "mismatch" in entry:
                mismatch = {"test": entry["test"], "text": entry["mismatch"]}
    cases = _testcases(folder / "results.xml")
    failed = crashed or mismatch is not None or not tests or any("failure" in c for c in cases)
    return {"seed": seed, "verdict": "fail" if failed else "pass", "tests": tests,
            "stats": stats.to_dict(), "mismatch": mismatch, "testcases": cases,
            "log": str((folder / "sim.log").resolve())}


def load(paths):
    """Read result files; a folder stands for every ``*.json`` result under it."""
    files = []
    for path in map(Path, paths):
        if path.is_dir():
            found = sorted(p for p in path.rglob("*.json") if _is_result(p))
            if not found:
                raise ResultError(f"{path}: no hwalloc verify result (*.json) in this folder")
            files += found
        elif path.exists():
            files.append(path)
        else:
            raise ResultError(f"{path}: no such file")
    results = []
    for path in files:
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError) as error:
            raise ResultError(f"{path}: not readable as JSON ({error})") from None
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            raise ResultError(f"{path}: not an hwalloc verify result (format {FORMAT}); "
                              "write one with hwalloc verify ... --result FILE")
        data["file"] = str(path)
        results.append(data)
    return results


def _is_result(path):
    try:
        with open(path) as handle:
            return f'"format": "{FORMAT}"' in handle.read(200)
    except OSError:
        return False


@dataclasses.dataclass
class Merged:
    """Results merged: one verdict and what it rests on."""
    config: str
    ops_per_seed: int
    shards: int
    results: list
    stats: Stats
    bins: list                  # the expected bins, in report order
    holes: list                 # bins no run hit
    missing: list               # shard numbers no result was given for

    @property
    def runs(self):
        """Every seed's run, with its shard."""
        return [dict(run, shard=result["shard"]) for result in self.results for run in result["runs"]]

    @property
    def failed(self):
        """The runs that failed."""
        return [run for run in self.runs if run["verdict"] != "pass"]


def merge(results):
    """Merge results into one :class:`Merged`; raises :class:`ResultError`
    naming the files that do not belong with the others."""
    if not results:
        raise ResultError("no results given")
    first = results[0]
    def shown(result, key):
        if key == "config_digest":
            return f"{result['config']}, digest {result[key]}"
        if key == "seeds":
            return f"--seed {result[key][0]} --seeds {result[key][1]}"
        return result[key]
    for key, what in (("config_digest", "configs"), ("ops", "--ops"), ("seeds", "seeds"),
                      ("tests", "--tests")):
        other = [r for r in results if r[key] != first[key]]
        if other:
            raise ResultError(f"{first['file']} and {other[0]['file']}: different {what} "
                              f"({shown(first, key)}; {shown(other[0], key)}); merge the results "
                              "of one hwalloc verify command line, its shards only")
    counts = {r["shard"][1] for r in results}
    if len(counts) > 1:
        raise ResultError(f"results of {' and '.join(map(str, sorted(counts)))} shards mixed: "
                          + ", ".join(f"{r['file']} is {r['shard'][0]}/{r['shard'][1]}" for r in results))
    shards = counts.pop()
    seen = {}
    for result in results:
        index = result["shard"][0]
        if index in seen:
            raise ResultError(f"shard {index}/{shards} given twice: {seen[index]} and {result['file']}")
        seen[index] = result["file"]
    missing = sorted(set(range(1, shards + 1)) - set(seen))
    results = sorted(results, key=lambda r: r["shard"][0])
    stats = Stats()
    for result in results:
        for run in result["runs"]:
            stats.merge(Stats.from_dict(run["stats"]))
    bins = first["expected_bins"]
    holes = [name for name in bins if not stats.coverage.get(name)]
    return Merged(config=first["config"], ops_per_seed=first["ops"], shards=shards, results=results,
                  stats=stats, bins=bins, holes=holes, missing=missing)


def junit_xml(config_name, runs):
    """One JUnit file for the runs (a ``testsuite`` per seed, named with its
    shard): what CI dashboards read. A run whose bench did not complete gets a
    failed test case ``bench`` pointing at its log."""
    root = ET.Element("testsuites", name=f"hwalloc verify {config_name}")
    total = failures = 0
    for run in runs:
        shard = run.get("shard")
        label = f"{config_name} seed {run['seed']}" + (f" (shard {shard[0]}/{shard[1]})" if shard else "")
        cases = list(run["testcases"])
        if run["verdict"] != "pass" and not any("failure" in c for c in cases):
            what = (f"first mismatch in {run['mismatch']['test']}" if run["mismatch"]
                    else "the bench did not complete")
            cases.append({"name": "bench", "classname": "hwalloc.verify", "time": 0.0,
                          "failure": {"kind": "failure", "message": f"{what}; see {run['log']}",
                                      "text": run["mismatch"]["text"] if run["mismatch"] else ""}})
        suite = ET.SubElement(root, "testsuite", name=label, tests=str(len(cases)),
                              failures=str(sum("failure" in c for c in cases)),
                              skipped=str(sum(bool(c.get("skipped")) for c in cases)),
                              time=f"{sum(c['time'] for c in cases):.3f}")
        props = ET.SubElement(suite, "properties")
        ET.SubElement(props, "property", name="seed", value=str(run["seed"]))
        ET.SubElement(props, "property", name="ops", value=str(run["stats"]["ops"]))
        for case in cases:
            element = ET.SubElement(suite, "testcase", classname=f"{case['classname']}.seed{run['seed']}",
                                    name=case["name"], time=f"{case['time']:.3f}")
            if "failure" in case:
                bad = ET.SubElement(element, case["failure"]["kind"], message=case["failure"]["message"])
                bad.text = case["failure"]["text"]
            elif case.get("skipped"):
                ET.SubElement(element, "skipped")
        total += len(cases)
        failures += sum("failure" in c for c in cases)
    root.set("tests", str(total))
    root.set("failures", str(failures))
    ET.indent(root)
    return ET.tostring(root, encoding="unicode", xml_declaration=True) + "\n"
