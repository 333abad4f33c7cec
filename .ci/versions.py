"""Print, in one short block, the versions CI resolved for the packages that decide behaviour.

Run by ``.ci/run`` after the install, so a failure on a fresh machine can be read against the
exact releases (a new Pillow wording an error differently, a new TensorFlow, ...).
"""

import platform
import shutil
import subprocess
from importlib import metadata

PACKAGES = ("tensorflow", "keras", "numpy", "pillow", "torch", "jax", "mtcnn", "faiss-cpu", "dlib-bin", "fastapi",
            "scikit-learn", "matplotlib", "av", "selenium")


def version(name: str) -> str:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "absent"


def chromium() -> str:
    path = shutil.which("chromium")
    if path is None:
        return "absent"
    try:
        return subprocess.run([path, "--version"], capture_output=True, text=True, timeout=30).stdout.strip() or path
    except (OSError, subprocess.TimeoutExpired):
        return path


if __name__ == "__main__":
    pairs = [("python", platform.python_version())] + [(name, version(name)) for name in PACKAGES]
    width = max(len(name) for name, _ in pairs)
    print("ci: installed versions")
    for name, value in pairs + [("chromium", chromium())]:
        print(f"  {name:<{width}}  {value}")
