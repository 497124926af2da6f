"""Operations backends ("primitives" in the seed): what kdamond drives without knowing which.

`base.Operations` is the interface; `common` holds what the virtual-address
backends share (three regions, even splitting, random sampling addresses);
`vaddr` samples real processes through the BPF page sampler; `sim` answers
access checks from a workload description in virtual time.

`BACKENDS` maps each `damo record --ops` name to its module.  A backend
module has `setup(targets: list[str])` returning an object with `ops` (an
`Operations`), `target_ids` and `clock`; it parses and checks its TARGET
arguments there, before any output exists.  A backend that can hold only
so many regions says so in `MAX_NR_REGIONS`.
"""

import importlib
from types import ModuleType

BACKENDS = {
    "vaddr": "damo.ops.vaddr",
    "sim": "damo.ops.sim",
}

#: What `damo record` monitors with when --ops is not given.
DEFAULT = "vaddr"


def backend(name: str) -> ModuleType:
    return importlib.import_module(BACKENDS[name])
