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


CPU_FLAGS = ("avx2", "avx512f", "avx512_vnni", "avx_vnni", "avx512_bf16", "amx_bf16", "amx_int8", "avx512_fp16")


def cpu_flags() -> str:
    """The vector-instruction flags that decide model speed, e.g. 'avx2 avx512f no-avx512_bf16 ...'."""
    try:
        with open("/proc/cpuinfo") as fh:
            flags = next(line for line in fh if line.startswith("flags")).split(":", 1)[1].split()
    except (OSError, StopIteration):
        return "flags unknown"
    return " ".join(f if f in flags else f"no-{f}" for f in CPU_FLAGS)


def _torch() -> str:
    try:
        import torch  # training only now; its version and threads when it is installed
    except ImportError:
        return "torch absent"
    return f"torch {torch.__version__} ({torch.get_num_threads()} threads)"


def describe() -> str:
    """E.g. 'AMD EPYC, 2 cores (avx2 no-avx512f ...), 23.4 GiB RAM; Linux 6.1; Python 3.12.3; onnxruntime 1.32.0, ...'."""
    ram = memory_gib()
    parts = [
        cpu_model(),
        f"{cpu_count()} cores ({cpu_flags()})",
        f"{ram:.1f} GiB RAM" if ram else "RAM unknown",
    ]
    software = [
        f"{platform.system()} {platform.release()}",
        f"Python {sys.version.split()[0]}",
        f"onnxruntime {_version('onnxruntime')}",
        _torch(),
        f"faiss {_version('faiss-cpu')}",
        f"Pillow {_version('pillow')}",
        f"numpy {_version('numpy')}",
        f"SQLAlchemy {_version('sqlalchemy')}",
    ]
    return ", ".join(parts) + "; " + ", ".join(software)
