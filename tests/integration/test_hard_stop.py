"""A process whose clean shutdown hangs (a server it needs is gone) still exits after a signal."""

from __future__ import annotations

import asyncio
import signal
import sys
import textwrap

STUCK = textwrap.dedent(
    """
    import asyncio
    from orchestrator.common.runtime import wait_for_shutdown_signal

    async def main() -> None:
        print("ready", flush=True)
        await wait_for_shutdown_signal(hard_stop_after=0.5)
        await asyncio.Event().wait()  # a shutdown that never ends by itself

    asyncio.run(main())
    """
)


async def test_a_stuck_shutdown_ends_by_force_after_the_signal() -> None:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-c", STUCK, stdout=asyncio.subprocess.PIPE
    )
    assert proc.stdout is not None
    assert (await asyncio.wait_for(proc.stdout.readline(), 30)).strip() == b"ready"
    await asyncio.sleep(0.2)  # the handlers are installed right after the line
    proc.send_signal(signal.SIGTERM)
    try:
        code = await asyncio.wait_for(proc.wait(), 30)
    finally:
        if proc.returncode is None:
            proc.kill()
    assert code == 1
