"""moto's server, with the one change the local cloud needs to keep up with a run's events.

moto's EventBridge hands every event to every matching rule's target through its input-transformer code, which
compiles the same eight JSONPath expressions again for each (a fresh yacc parser every time): ~25 ms of CPU per event
and target, more than the whole platform spends on a task. The expressions are constants, so their compiled form is
cached; what moto does with them is unchanged. Run as `python -m strata_cli.localcloud.moto_server [moto's args]`.
"""

from __future__ import annotations

import functools
import sys

import jsonpath_ng.ext
from moto.server import main

# jsonpath_ng's compiled expressions are immutable trees; find() only reads them, so one may serve every thread
jsonpath_ng.ext.parse = functools.lru_cache(maxsize=256)(jsonpath_ng.ext.parse)

if __name__ == "__main__":
    sys.exit(main())
