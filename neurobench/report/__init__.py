"""Results people look at: HTML reports, the leaderboard site and its views, model comparison.

Stage: above the store (reads stored results; never writes the store). The package is callable:
`nb.report(out, models=[...])` is `write_report` (so `neurobench.report` is both the package and
the API's report function).
"""

import sys
import types

from .build import Written, write_leaderboard_site, write_report

__all__ = ["Written", "write_leaderboard_site", "write_report"]


class _CallableModule(types.ModuleType):
    def __call__(self, *args, **kwargs) -> Written:
        """`nb.report(out, store=None, models=None, benchmarks=None, topo=None, rdms=True)`:
        `write_report`."""
        return write_report(*args, **kwargs)


sys.modules[__name__].__class__ = _CallableModule
