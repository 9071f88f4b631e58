"""Imported last by the zygote the tracker runs fork from (tests/processes.py): botocore's
parsed data files shared and read before the fork (tests/botocore_models.py), so no run
parses them again; then every object so far frozen out of the garbage collector, so a
child's collections (and its exit's) neither walk nor copy the zygote's heap."""

import gc

from tests import botocore_models

botocore_models.warm()
gc.freeze()
