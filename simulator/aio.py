"""asyncio helpers shared by the driver and the generator."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from typing import Any


async def gather_or_cancel(tasks: Iterable[asyncio.Future]) -> list[Any]:
    """Wait for all tasks; if one fails (or we are cancelled), cancel the rest and wait for
    them to finish, so no connection is left running behind an error or a Ctrl-C."""
    tasks = list(tasks)
    try:
        return await asyncio.gather(*tasks)
    except BaseException:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        raise
