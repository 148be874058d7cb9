"""One line naming the machine and the library versions a benchmark ran on."""

from __future__ import annotations

import os
import platform
import sys
from importlib import metadata


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def memory_gib() -> float | None:
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemTotal:"):
                    return int(line.split()[1]) / 2**20
    except OSError:
        pass
    return None


def cpu_count() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def _version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "absent"


def describe() -> str:
    """E.g. 'AMD EPYC, 2 cores, 23.4 GiB RAM; Linux 6.1; Python 3.12.3; torch 2.14.1 (2 threads), ...'."""
    import torch  # the benchmarks need it anyway; its thread count is part of the picture

    ram = memory_gib()
    parts = [
        cpu_model(),
        f"{cpu_count()} cores",
        f"{ram:.1f} GiB RAM" if ram else "RAM unknown",
    ]
    software = [
        f"{platform.system()} {platform.release()}",
        f"Python {sys.version.split()[0]}",
        f"torch {torch.__version__} ({torch.get_num_threads()} threads)",
        f"faiss {_version('faiss-cpu')}",
        f"Pillow {_version('pillow')}",
        f"numpy {_version('numpy')}",
        f"SQLAlchemy {_version('sqlalchemy')}",
    ]
    return ", ".join(parts) + "; " + ", ".join(software)
