"""Stand-in for ansible-test's pip bootstrap script (get-pip.py).

ansible-test downloads get-pip.py from a CI file host this network cannot reach; it then
runs it inside each fresh sanity virtualenv as ``get_pip <pip options> <packages>``.
This shim does the same job from what we can reach: ensurepip installs the interpreter's
bundled pip, which then installs the requested packages (pinned pip, setuptools, ...) from PyPI.
The Makefile copies it to ~/.ansible/test/cache/get_pip_<version>.py before `ansible-test sanity`.
"""

import ensurepip
import importlib
import os
import runpy
import sys

saved_environ = dict(os.environ)
ensurepip.bootstrap(upgrade=True)
# ensurepip points PIP_CONFIG_FILE at /dev/null; restore the machine's pip configuration
# (index, CA bundle) for the real install below.
os.environ.clear()
os.environ.update(saved_environ)
importlib.invalidate_caches()
options = [arg for arg in sys.argv[1:] if arg not in ("--no-setuptools", "--no-wheel")]
sys.argv = ["pip", "install", *options]
runpy.run_module("pip", run_name="__main__", alter_sys=True)
