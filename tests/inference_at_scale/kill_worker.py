"""``e2p predict`` whose pipeline SIGKILLs its own process at a chosen call.

argv: RANK_TO_KILL KILL_AT_CALL CLI_ARGS...; the process of rank RANK_TO_KILL (env
``RANK``, 0 when not launched) kills itself with SIGKILL when the pipeline is called for
the KILL_AT_CALL-th time (0-based), i.e. in the middle of a shard, without any clean-up.
"""

import os
import signal
import sys

from edit2perceive.cli import main
from edit2perceive.pipelines.pipeline import Edit2PerceivePipeline

rank_to_kill, kill_at = int(sys.argv[1]), int(sys.argv[2])
calls = [0]
original = Edit2PerceivePipeline.__call__


def killing_call(self, *args, **kwargs):
    if int(os.environ.get("RANK", "0")) == rank_to_kill and calls[0] == kill_at:
        os.kill(os.getpid(), signal.SIGKILL)
    calls[0] += 1
    return original(self, *args, **kwargs)


Edit2PerceivePipeline.__call__ = killing_call
sys.exit(main(sys.argv[3:]))
