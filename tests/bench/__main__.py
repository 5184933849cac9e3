"""`make bench`: run the benchmarks and print their tables. Not tests: no asserts on
time (this machine is shared and noisy); read the medians and compare ratios."""

from __future__ import annotations

import platform

from tests.bench import allocation


def main() -> None:
    print(f"# io7-cluster benchmarks ({platform.python_implementation()} "
          f"{platform.python_version()}, {platform.machine()})")
    print()
    print("## Allocation time per call (steady state)")
    print()
    print("| connectors | calls | median ms | p90 ms | target |")
    print("|---:|---:|---:|---:|---|")
    for r in allocation.run():
        print(f"| {r.connectors} | {r.calls} | {r.median_ms:.3f} | {r.p90_ms:.3f} | {r.target} |")


if __name__ == "__main__":
    main()
