"""The numba kernels are compiled once and loaded from the on-disk cache by a fresh process."""

import pytest

from neurobench.metrics import ranks


@pytest.mark.skipif(not ranks.HAVE_NUMBA, reason="numba is not installed")
def test_a_fresh_process_loads_every_kernel_from_the_disk_cache(tmp_path):
    import os

    from neurobench.perf.kernels import measure

    env = {"NUMBA_CACHE_DIR": os.environ.get("NUMBA_CACHE_DIR", str(tmp_path / "numba"))}
    measure(str(tmp_path / "home1"), env)  # compiles what the cache lacks (nothing, once warm)
    warm = measure(str(tmp_path / "home2"), env)  # another home, another process
    assert warm["compiled"] == 0 and warm["loaded"] >= 7
