"""The zoo matrix: the 18 architectures torchvision-ruby 0.3 shares with torchvision 0.14, on both sides.

One Python process (reference_py/zoo.py) and one Ruby process (ruby_port/bin/zoo) run the whole matrix
side by side: Python writes each architecture's stand-in (torchvision's initialisation from a seed, a
seeded batch of 2 at the smallest input the architecture takes) and its own results, Ruby reads the
stand-in and writes its results; this module compares each architecture as soon as both are done and
deletes its directory (the VGGs' weights and results are hundreds of MB each). Compared, per
architecture: the initial weights from the same seed, eval logits, every leaf module's output in forward
order (eval and train mode), Dropout's masks, the training loss, every gradient, every parameter and
buffer after one SGD step with momentum (BatchNorm statistics and num_batches_tracked included). On one
stack everything must be bit-identical.

Both sides run with --digests-only: the stand-in's weights and every result are written as their sha256 digests
alone, hashed where they are made (tensor_io.write_digests), and tensors whose digests agree are identical without
their bytes being written (a VGG's weights, gradients and state after the step: 1.7 GB a side). An architecture
where a digest differs (or the port, its initialisation not the stand-in's, computed nothing) is run again by both
sides with its values written in full (the zoo's default), and measured from them with the suite's one comparison
(parity/compare.py): where, how many elements and by how much. The values so measured are those of the first run:
the rerun's digests must be the first run's, every one, or its quantity fails.
"""

import json
import math
import shutil
import time

import pytest

from parity.compare import Comparison, check, measure
from parity.runs import same_stack
from parity.sides import SideFailed, python, ruby, start_served
from parity.tolerances import for_quantity
from reference_py import zoo
from reference_py.tensor_io import BundleError, read_bundle, read_digests

pytestmark = [pytest.mark.extended, pytest.mark.zoo]

ARCHITECTURES = list(zoo.ARCHITECTURES)
# quantity -> (the bundle both sides write, the tolerance kind across stacks)
QUANTITIES = {
    "eval logits": ("eval_logits", "logits"),
    "eval leaf outputs": ("eval_trace", "trace"),
    "train leaf outputs": ("train_trace", "trace"),
    "Dropout masks": ("dropout_masks", "counts"),
    "train loss": ("train_loss", "loss"),
    "gradients": ("grads", "gradients"),
    "parameters and buffers after one SGD step": ("state_after", "state"),
}
INITIAL = "initial weights from the same seed"
ALL_QUANTITIES = [INITIAL, *QUANTITIES]
POLL_SECONDS = 0.1
KINDS = {INITIAL: "state", **{quantity: kind for quantity, (_, kind) in QUANTITIES.items()}}
# quantity -> the bundles (relative to an architecture's folder) whose digests it compares
BUNDLES = {INITIAL: ["standin_weights", "ruby/init"],
           **{quantity: [f"{side}/{bundle}" for side in ("python", "ruby")] for quantity, (bundle, _) in QUANTITIES.items()}}


class ValuesNeeded(Exception):
    """A comparison of a run with --digests-only needs the values of tensors whose digests differ."""


def values_needed():
    raise ValuesNeeded


def _entries(index):
    return {entry["name"]: entry for entry in index["tensors"]}


def _identical(quantity, where, tolerance, entry):
    return Comparison(quantity=f"zoo: {quantity}", where=where, tolerance=tolerance, numel=math.prod(entry["shape"]))


def compare_entries(quantity, arch, tolerance, python_entries, ruby_digests, load_python, load_ruby):
    """One Comparison per Python entry (and per entry only Ruby has): identical where the sha256 agree,
    else measured on the tensors (loaded only then)."""
    comparisons, python_tensors, ruby_tensors = [], None, None
    for key, entry in python_entries.items():
        where = {"arch": arch, "key": key}
        if key not in ruby_digests:
            missing = Comparison(quantity=f"zoo: {quantity}", where=where, tolerance=tolerance)
            missing.problem = "key missing on the ruby side"
            comparisons.append(missing)
        elif ruby_digests[key] == entry["sha256"]:
            comparisons.append(_identical(quantity, where, tolerance, entry))
        else:
            python_tensors = python_tensors if python_tensors is not None else load_python()
            ruby_tensors = ruby_tensors if ruby_tensors is not None else load_ruby()
            if key in ruby_tensors:
                comparisons.append(measure(ruby_tensors[key], python_tensors[key], quantity=f"zoo: {quantity}",
                                           tolerance=tolerance, **where))
            else:
                lost = Comparison(quantity=f"zoo: {quantity}", where=where, tolerance=tolerance)
                lost.problem = "the ruby side's sha256 differs but it wrote no tensor"
                comparisons.append(lost)
    for key in ruby_digests:
        if key not in python_entries:
            extra = Comparison(quantity=f"zoo: {quantity}", where={"arch": arch, "key": key}, tolerance=tolerance)
            extra.problem = "key present only on the ruby side"
            comparisons.append(extra)
    return comparisons


def first_module(comparisons):
    """The key (module, in forward order) of the first comparison that fails, or None."""
    return next((c.where["key"] for c in comparisons if not c.passed), None)


def compare_arch(folder, arch, values=True):
    """{quantity: [Comparison]} for one architecture's directory. values=False: a run with --digests-only, whose
    tensors are not there to measure (ValuesNeeded where a digest differs, or where the port computed nothing)."""
    python_info = json.loads((folder / "python" / "done.json").read_text())
    ruby_info = json.loads((folder / "ruby" / "done.json").read_text())
    one_stack = same_stack(python_info, ruby_info)
    read = read_bundle if values else lambda stem: values_needed()
    results = {}
    standin, init = folder / "standin_weights", folder / "ruby" / "init"
    init_index = read_digests(init)
    results[INITIAL] = compare_entries(INITIAL, arch, for_quantity("state", one_stack), _entries(read_digests(standin)),
                                       init_index["meta"]["sha256"], lambda: read(standin), lambda: read(init))
    for quantity, (bundle, kind) in QUANTITIES.items():
        python_stem, ruby_stem = folder / "python" / bundle, folder / "ruby" / bundle
        if not values and not ruby_stem.with_name(bundle + ".json").exists():
            raise ValuesNeeded  # the port's initialisation was not the stand-in's: it computed from nothing
        ruby_digests = {key: entry["sha256"] for key, entry in _entries(read_digests(ruby_stem)).items()}
        results[quantity] = compare_entries(quantity, arch, for_quantity(kind, one_stack),
                                            _entries(read_digests(python_stem)), ruby_digests,
                                            lambda stem=python_stem: read(stem), lambda stem=ruby_stem: read(stem))
    for quantity, trace in (("eval logits", "eval leaf outputs"), ("train loss", "train leaf outputs")):
        failing = [c for c in results[quantity] if not c.passed]
        if failing:
            module = first_module(results[trace])
            failing[0].notes.append(f"first differing module in forward order: {module}" if module else
                                    "every leaf module's output agrees")
    return results


def digests(folder):
    """{bundle (as in BUNDLES): {key: sha256}} of an architecture's folder, the bundles it holds; ruby/init's are its
    meta's, every entry's."""
    found = {}
    for bundle in dict.fromkeys(b for bundles in BUNDLES.values() for b in bundles):
        try:
            index = read_digests(folder / bundle)
        except BundleError:
            continue
        found[bundle] = index["meta"]["sha256"] if bundle == "ruby/init" else {
            entry["name"]: entry["sha256"] for entry in index["tensors"]}
    return found


def compare_again_with_values(folder, arch, out):
    """{quantity: [Comparison]}: the architecture run again by both sides with its values written in full (under
    `out`) and measured; a quantity fails too where the rerun's digests are not those of the first run (`folder`)."""
    start_served(python("zoo.py", "--out", out, "--arch", arch), ruby("zoo", "--out", out, "--arch", arch)).wait()
    results = compare_arch(out / arch, arch)
    first, again = digests(folder), digests(out / arch)
    shutil.rmtree(out / arch)
    for quantity, bundles in BUNDLES.items():
        for bundle in bundles:
            changed = sorted(key for key, digest in first.get(bundle, {}).items() if again.get(bundle, {}).get(key) != digest)
            if changed:
                problem = Comparison(quantity=f"zoo: {quantity}", where={"arch": arch, "key": changed[0], "bundle": bundle},
                                     tolerance=for_quantity(KINDS[quantity], True))
                problem.problem = (f"run again with its values written, {len(changed)} tensors of {bundle} did not come "
                                   f"out as in the first run: the values measured are not the first run's")
                results[quantity].append(problem)
        failing = [c for c in results[quantity] if not c.passed]
        if failing:
            failing[0].notes.append(f"measured on a run of {arch} again with its values written in full")
    return results


@pytest.fixture(scope="module")
def zoo_matrix(tmp_path_factory, report_notes):
    """{arch: {quantity: [Comparison]}}, both sides run once for the whole matrix (with --digests-only), and an
    architecture again with its values where a digest differs."""
    out = tmp_path_factory.mktemp("zoo")
    start = time.monotonic()
    # forked by the session's servers (parity/sides.py's session_server), which loaded LibTorch and torchvision once and
    # which the session starts anyway: as processes of their own, each side paid that start and its teardown
    sides = start_served(python("zoo.py", "--out", out, "--arch", *ARCHITECTURES, "--digests-only"),
                         ruby("zoo", "--out", out, "--arch", *ARCHITECTURES, "--digests-only"))
    matrix = {}
    try:
        for arch in ARCHITECTURES:
            folder = out / arch
            while not all((folder / side / "done.json").exists() for side in ("python", "ruby")):
                sides.check()
                if time.monotonic() - start > zoo.TIMEOUT:
                    raise SideFailed(f"zoo: no result for {arch} after {zoo.TIMEOUT} s")
                time.sleep(POLL_SECONDS)
            try:
                matrix[arch] = compare_arch(folder, arch, values=False)
                again = not all(c.passed for comparisons in matrix[arch].values() for c in comparisons)
            except ValuesNeeded:
                again = True
            if again:
                values = tmp_path_factory.mktemp(f"zoo_{arch}_values")
                matrix[arch] = compare_again_with_values(folder, arch, values)
                shutil.rmtree(values)
            shutil.rmtree(folder)
        sides.wait()
    finally:
        sides.stop()
        shutil.rmtree(out, ignore_errors=True)
    report_notes.append(f"zoo matrix: {len(ARCHITECTURES)} architectures, both sides side by side, "
                        f"{time.monotonic() - start:.0f} s of wall time")
    return matrix


@pytest.mark.parametrize("quantity", ALL_QUANTITIES)
@pytest.mark.parametrize("arch", ARCHITECTURES)
def test_zoo(arch, quantity, zoo_matrix, recorder):
    check(zoo_matrix[arch][quantity], recorder)
