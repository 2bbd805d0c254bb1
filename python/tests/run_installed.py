#!/usr/bin/env python3
"""ctest python_package: pip-installs ./python into a scratch --target directory (offline, no
build isolation, no dependencies) and runs test_pipeline.py against that installed copy only.

  run_installed.py --source <repo>/python --work <scratch dir>

Environment: ROUTENLP_LIBRARY (the built libroutenlp.so) and ROUTENLP_TEST_PIPELINE (the
artifact written by the c_consumer_pipeline_artifact fixture). The interpreter running this
script installs when it has pip + setuptools (+ wheel for setuptools < 70.1); else Debian's
/usr/bin/python3 (scripts/install-deps.sh installs python3-pip, -setuptools, -wheel).
"""
import argparse
import os
import shutil
import subprocess
import sys


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--source", required=True)
    ap.add_argument("--work", required=True)
    args = ap.parse_args()
    for var in ("ROUTENLP_LIBRARY", "ROUTENLP_TEST_PIPELINE"):
        if not os.environ.get(var):
            print(f"run_installed: {var} is not set", file=sys.stderr)
            return 2

    work = os.path.abspath(args.work)
    shutil.rmtree(work, ignore_errors=True)
    # Build from a copy: setuptools writes build/ and *.egg-info next to the sources it builds.
    src = os.path.join(work, "src")
    shutil.copytree(args.source, src,
                    ignore=shutil.ignore_patterns("build", "*.egg-info", "__pycache__"))
    site = os.path.join(work, "site")

    candidates = [sys.executable]
    if os.path.exists("/usr/bin/python3") and os.path.realpath("/usr/bin/python3") != \
            os.path.realpath(sys.executable):
        candidates.append("/usr/bin/python3")
    python, failures = None, []
    for exe in candidates:
        shutil.rmtree(site, ignore_errors=True)
        cmd = [exe, "-m", "pip", "install", "--no-deps", "--no-build-isolation", "--no-index",
               "--disable-pip-version-check", "--quiet", "--target", site, src]
        p = subprocess.run(cmd, capture_output=True, text=True)
        if p.returncode == 0:
            python = exe
            break
        failures.append(f"{' '.join(cmd)}\n  exit {p.returncode}: {(p.stderr or p.stdout)[-1500:]}")
    if python is None:
        print("run_installed: no interpreter could pip-install the package:\n" +
              "\n".join(failures), file=sys.stderr)
        return 1
    print(f"run_installed: installed with {python} into {site}")

    env = dict(os.environ)
    env["PYTHONPATH"] = site  # the installed copy only: not the source tree
    env["ROUTENLP_EXPECT_SITE"] = site
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    test = os.path.join(os.path.dirname(os.path.abspath(__file__)), "test_pipeline.py")
    return subprocess.run([python, test, "-v"], env=env, cwd=work).returncode


if __name__ == "__main__":
    sys.exit(main())
