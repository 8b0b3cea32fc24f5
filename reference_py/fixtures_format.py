"""The fixtures format of fixtures/README.md, in one place: what export_fixtures.py writes and both replays read.

Its constants (the manifest's format and generator version, the replay protocol, the bundles' layout),
the manifest reader and the checks a reader makes before it computes anything: the manifest's fields,
each bundle's index against the manifest, each file's sha256, each bundle's strategy and epoch. The
writer is reference_py/export_fixtures.py, the readers reference_py/replay.py and
ruby_port/lib/hymenoptera/replay.rb; ruby_port/lib/hymenoptera/fixtures_format.rb is the Ruby twin.
"""

import json
import math
from pathlib import Path

from reference_py import recipe
from reference_py.checksums import file_sha256
from reference_py.errors import UserError, json_type, read_json
from reference_py.model import HEAD_FEATURES
from reference_py.strategies import STRATEGIES, architecture, head
from reference_py.tensor_io import BundleError, read_bundle, read_index

FORMAT = "hymenoptera-fixtures/1"
GENERATOR_VERSION = 1
MANIFEST = "manifest.json"
# The tutorial's settings, 2 epochs, StepLR every epoch: a manifest that says otherwise was edited.
PROTOCOL = recipe.replay_protocol()
COUNTS = recipe.COUNTS
RATES = recipe.RATES
VERSIONS = ("python", "torch", "torchvision", "libtorch")
IMAGE_SHAPE = [3, None, None]  # RGB, any size (the protocol's 224 x 224, or a test's smaller images)


def fix(fixtures):
    return f"regenerate them with `python reference_py/export_fixtures.py --out {fixtures}`"


def bundle_names(strategies, epochs):
    """Every bundle of the fixtures of `strategies`, relative to the fixtures folder, in the manifest's order."""
    return ["weights", "eval"] + [f"strategies/{s}/{b}" for s in strategies
                                  for b in ["initial", *(f"epoch_{k}" for k in range(epochs))]]


def is_number(value):
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def manifest_problem(manifest):
    """What makes `manifest` unusable for the replay (the first thing found), or None."""
    if not isinstance(manifest, dict):
        return f"holds a JSON {json_type(manifest)}, not an object"
    if manifest.get("format") != FORMAT:
        return f"format is {json.dumps(manifest.get('format'))}, expected {json.dumps(FORMAT)}"
    if manifest.get("generator_version") != GENERATOR_VERSION:
        return (f"generator_version is {json.dumps(manifest.get('generator_version'))}, this replay reads "
                f"{GENERATOR_VERSION}")
    for key in ("config", "protocol", "weights", "versions", "bundles", "files"):
        if not isinstance(manifest.get(key), dict):
            return f"{key} is missing or not an object"
    versions = manifest["versions"]
    bad = [k for k in VERSIONS if not (k in versions and (versions[k] is None or isinstance(versions[k], str)))]
    if bad:
        return f"versions.{bad[0]} is missing or not a version string"
    protocol = manifest["protocol"]
    for key in COUNTS:
        if not (isinstance(protocol.get(key), int) and not isinstance(protocol.get(key), bool) and protocol[key] >= 1):
            return f"protocol.{key} is {json.dumps(protocol.get(key))}, expected a whole number of at least 1"
    for key in RATES:
        if not (is_number(protocol.get(key)) and math.isfinite(protocol[key]) and protocol[key] >= 0):
            return f"protocol.{key} is {json.dumps(protocol.get(key))}, expected a finite number of at least 0"
    # the protocol is the generator's: a value edited in the manifest would replay another training than the export's
    for key in [*PROTOCOL, *(k for k in protocol if k not in PROTOCOL)]:
        if key not in protocol or key not in PROTOCOL or protocol[key] != PROTOCOL[key]:
            return f"protocol.{key} is {json.dumps(protocol.get(key))}, generator {GENERATOR_VERSION} writes {json.dumps(PROTOCOL.get(key))}"
    strategies = manifest["config"].get("strategies")
    if not (isinstance(strategies, list) and strategies and all(s in STRATEGIES for s in strategies)):
        return f"config.strategies is {json.dumps(strategies)}, expected a list of {', '.join(STRATEGIES)}"
    if not (isinstance(manifest["weights"].get("sha256"), str) and isinstance(manifest["weights"].get("provenance"), str)):
        return "weights lacks provenance or sha256"
    return None


def read_manifest(fixtures):
    """The manifest of the fixtures folder `fixtures`, refused in one line unless a replay can read it."""
    if Path(fixtures).exists() and not Path(fixtures).is_dir():
        raise UserError(f"{fixtures} is a file, not a fixtures folder; pass --fixtures the folder export_fixtures.py "
                        f"wrote (e.g. --fixtures fixtures)")
    path = Path(fixtures) / MANIFEST
    manifest = read_json(path, fix(fixtures), missing="not found: no fixtures there")
    problem = manifest_problem(manifest)
    if problem:
        raise UserError(f"{path} is not a fixtures manifest this replay reads: {problem}; {fix(fixtures)}")
    return manifest


def existing_manifest(fixtures):
    """The manifest in `fixtures` as it parses, unchecked, or None: what the writer asks of a folder it may replace."""
    try:
        return json.loads((Path(fixtures) / MANIFEST).read_text())
    except (OSError, ValueError):
        return None


def describe_tensor(entry):
    return f"{entry.get('dtype')} {entry.get('shape')}"


def check_bundle(fixtures, manifest, name, expected):
    """The bundle's index against the manifest's record of it (names, dtypes, shapes) and the protocol's
    needs (`expected`: tensor name -> (dtype, shape pattern with None for any size))."""
    index_path = Path(fixtures) / f"{name}.json"
    listed = manifest["bundles"].get(name)
    if not isinstance(listed, list):
        raise UserError(f"{fixtures}/{MANIFEST} lists no bundle {name}; {fix(fixtures)}")
    try:
        tensors = read_index(Path(fixtures) / name)["tensors"]
    except BundleError as error:
        raise UserError(f"{error}; {fix(fixtures)}") from None
    entries = {t.get("name"): t for t in tensors if isinstance(t, dict)}
    for record in listed:
        entry = entries.get(record.get("name"))
        if entry is None or (entry.get("dtype"), entry.get("shape")) != (record.get("dtype"), record.get("shape")):
            found = "missing" if entry is None else describe_tensor(entry)
            raise UserError(f"{index_path}: {record.get('name')} is {found}, the manifest says "
                            f"{describe_tensor(record)}; {fix(fixtures)}")
    for tensor_name, (dtype, pattern) in expected.items():
        entry = entries.get(tensor_name)
        shape = entry.get("shape") if entry else None
        fits = (entry is not None and entry.get("dtype") == dtype and isinstance(shape, list)
                and len(shape) == len(pattern) and all(p is None or p == d for p, d in zip(pattern, shape)))
        if not fits:
            wanted = "[" + ", ".join("N" if p is None else str(p) for p in pattern) + "]"
            found = "missing" if entry is None else describe_tensor(entry)
            raise UserError(f"{index_path}: {tensor_name} is {found}, the replay needs {dtype} {wanted}; {fix(fixtures)}")
    return entries


def check_fixtures(fixtures, manifest, strategies):
    """Every bundle the replay reads, checked against the manifest before anything is computed."""
    epochs = manifest["protocol"]["epochs"]
    for name in ["eval"] + [f"strategies/{s}/epoch_{k}" for s in strategies for k in range(epochs)]:
        entries = check_bundle(fixtures, manifest, name, {"images": ("float32", [None, *IMAGE_SHAPE]),
                                                          "labels": ("int64", [None])})
        count = entries["images"]["shape"][0]
        if count < 1 or entries["labels"]["shape"] != [count]:
            raise UserError(f"{fixtures}/{name}.json: {count} images but labels {entries['labels']['shape']}; "
                            f"{fix(fixtures)}")
    for strategy in strategies:
        check_bundle(fixtures, manifest, f"strategies/{strategy}/initial",
                     {f"{head(strategy)}.weight": ("float32", [None, HEAD_FEATURES[architecture(strategy)]]),
                      f"{head(strategy)}.bias": ("float32", [None])})
    check_bundle(fixtures, manifest, "weights", {})
    check_files(fixtures, manifest, bundle_names(strategies, epochs))
    for strategy in strategies:
        check_meta(fixtures, f"strategies/{strategy}/initial", {"strategy": strategy})
        for epoch in range(epochs):
            check_meta(fixtures, f"strategies/{strategy}/epoch_{epoch}", {"strategy": strategy, "epoch": epoch})


def check_files(fixtures, manifest, names):
    """Each bundle's two files against the sha256 the manifest lists: a file of another export, or changed, is refused."""
    for relative in [f"{name}.{ext}" for name in names for ext in ("json", "bin")]:
        path = Path(fixtures) / relative
        listed = manifest["files"].get(relative)
        if not isinstance(listed, str):
            raise UserError(f"{fixtures}/{MANIFEST} lists no sha256 for {relative}; {fix(fixtures)}")
        if not path.is_file():
            raise UserError(f"{path} not found, though the manifest lists it; {fix(fixtures)}")
        found = file_sha256(path)
        if found != listed:
            raise UserError(f"{path}: sha256 {found[:12]}, the manifest lists {listed[:12]} (a file of another export, "
                            f"or changed); {fix(fixtures)}")


def check_meta(fixtures, name, expected):
    """A bundle's own record of its strategy (and epoch) against its place: a bundle moved from another strategy is refused."""
    meta = read_index(Path(fixtures) / name).get("meta")
    found = {key: meta.get(key) if isinstance(meta, dict) else None for key in expected}
    if found != expected:
        def describe(record):
            return ", ".join(f"{key} {json.dumps(value)}" for key, value in record.items())
        raise UserError(f"{fixtures}/{name}.json holds {describe(found)}, its place is {describe(expected)} (a bundle "
                        f"moved from another strategy or epoch); {fix(fixtures)}")


def read_fixture(fixtures, name):
    """The tensors of bundle `name`, refused in one line if it does not read."""
    try:
        return read_bundle(Path(fixtures) / name)
    except BundleError as error:
        raise UserError(f"{error}; {fix(fixtures)}") from None
