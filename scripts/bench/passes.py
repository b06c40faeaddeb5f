"""Timing shared by the reference benchmark scripts, printed like `coordinator bench`."""
import statistics
import time
from typing import Callable


def time_passes(forward: Callable[[], object], passes: int, batch: int) -> None:
    """Runs `forward` `passes` times (after the caller's warm-up), printing each pass and a last line
    `median_tile_ms: X`, the median pass divided by the tiles in a batch."""
    times = []
    for index in range(passes):
        start = time.perf_counter()
        forward()
        seconds = time.perf_counter() - start
        times.append(seconds)
        print(f"pass {index + 1}: {seconds * 1e3:.1f} ms")
    print(f"median_tile_ms: {statistics.median(times) * 1e3 / batch:.1f}")
