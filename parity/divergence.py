"""Where a forward pass first departs: the first module, in forward order, whose output differs.

Forward order is the order of the reference's trace bundle: the replay writes each module's output in
the order the forward pass computes it (fixtures/README.md), so the suite needs no model of its own."""

from parity.compare import measure


def first_divergence(ruby_trace, python_trace, tolerance, when_all_agree="the difference arises after the forward pass"):
    """A sentence naming the first differing module of two traces (name -> output, in forward order), or
    saying none does."""
    order = list(python_trace) + [name for name in ruby_trace if name not in python_trace]
    for name in order:
        if name not in python_trace or name not in ruby_trace:
            side = "ruby" if name not in ruby_trace else "python"
            return f"first divergence: the {side} trace has no output for module {name}"
        comparison = measure(ruby_trace[name], python_trace[name], quantity=f"output of {name}", tolerance=tolerance)
        if not comparison.passed:
            return f"first divergence in forward order: module {name} ({comparison.message()})"
    return f"first divergence: every traced module output agrees, so {when_all_agree}"

