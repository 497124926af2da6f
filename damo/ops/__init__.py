"""Operations backends ("primitives" in the seed): what kdamond drives without knowing which.

`base.Operations` is the interface; `common` holds what the virtual-address
backends share (three regions, even splitting, random sampling addresses);
`sim` answers access checks from a workload description in virtual time.

`BACKENDS` maps each `damo record --ops` name to its module.  A backend
module has `setup(targets: list[str])` returning an object with `ops` (an
`Operations`), `target_ids` and `clock`; it parses and checks its TARGET
arguments there, before any output exists.
"""

import importlib
from types import ModuleType

BACKENDS = {
    "sim": "damo.ops.sim",
}


def backend(name: str) -> ModuleType:
    return importlib.import_module(BACKENDS[name])
