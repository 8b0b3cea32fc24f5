"""Median and spread of timing samples."""


def quantile(values, q):
    """The q-quantile of values, interpolating linearly between the two nearest ranks."""
    ordered = sorted(values)
    position = (len(ordered) - 1) * q
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def median(values):
    return quantile(values, 0.5)


def summary(values):
    """median, quartiles, extremes and count of a non-empty list of numbers."""
    return {"median": median(values), "p25": quantile(values, 0.25), "p75": quantile(values, 0.75),
            "min": min(values), "max": max(values), "n": len(values)}
