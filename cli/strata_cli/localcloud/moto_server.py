"""moto's server, with two caches the local cloud needs for moto to keep up with a run's events.

- moto's EventBridge hands every event to every matching rule's target through its input-transformer code, which
  compiles the same eight JSONPath expressions again for each (a fresh yacc parser every time): ~25 ms of CPU per
  event and target, more than the whole platform spends on a task.
- moto's server finds the service a request is for by listing its own package folder (a listdir and an isdir per
  entry) on every request: a third of its CPU under a run's load.

Both are constants, so they are computed once; what moto does with them is unchanged. In a 50-task fan-out moto was
the bottleneck (its one process saturated while the platform waited). Run as
`python -m strata_cli.localcloud.moto_server [moto's args]`.
"""

from __future__ import annotations

import functools
from typing import Any

import jsonpath_ng.ext
from moto import backends
from moto.server import main

# jsonpath_ng's compiled expressions are immutable trees; find() only reads them, so one may serve every thread
_jsonpath: Any = jsonpath_ng.ext  # (its parse is not in its declared exports)
_jsonpath.parse = functools.lru_cache(maxsize=256)(_jsonpath.parse)
_modules = tuple(backends.list_of_moto_modules())
backends.list_of_moto_modules = lambda: _modules

if __name__ == "__main__":
    main()
