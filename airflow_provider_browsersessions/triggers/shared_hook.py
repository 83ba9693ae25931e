"""One hook per connection in an event loop, shared by every wait that uses it and closed when the last leaves.

A triggerer holding 10,000 deferred waits on one connection would otherwise read that connection 10,000
times (a ``sync_to_async`` thread hop each, all at once when the triggerer starts) and keep 10,000 hooks,
``Connection`` objects and, once they read, 10,000 HTTP clients. A hook only reads: a wait uses it for the
reads of ended sessions and its final check, the shared poll for its walks, and one async client serves
any number of concurrent requests. So the triggers and polls of one event loop lease one hook per
connection id: the first lease reads the connection, later ones wait for that same read, and the lease
that leaves last closes the hook's client. State lives per event loop, like the shared polls'.
"""

from __future__ import annotations

import asyncio
import contextlib
import weakref

from airflow_provider_browsersessions.hooks.base import BrowserSessionsHook, aget_browser_sessions_hook


class SharedHook:
    """
    The hook of one connection in one event loop, and how many waits and polls hold it.

    :param conn_id: The Airflow connection.
    """

    __slots__ = ("_hook", "conn_id", "users")

    def __init__(self, *, conn_id: str) -> None:
        self.conn_id = conn_id
        self.users = 0
        # One read of the connection for every lease that comes while it is under way.
        self._hook: asyncio.Task[BrowserSessionsHook] = asyncio.get_running_loop().create_task(
            aget_browser_sessions_hook(conn_id), name=f"shared-hook:{conn_id}"
        )

    async def get(self) -> BrowserSessionsHook:
        """The hook (reads the connection once; a lease cancelled meanwhile leaves the read to the others)."""
        return await asyncio.shield(self._hook)

    async def close(self) -> None:
        """Release the hook's client, or stop the connection read if it is still under way."""
        if not self._hook.done():
            self._hook.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._hook
            return
        if not self._hook.cancelled() and self._hook.exception() is None:
            await self._hook.result().aclose()


_HOOKS: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[str, SharedHook]] = weakref.WeakKeyDictionary()


def shared_hooks() -> dict[str, SharedHook]:
    """The running loop's shared hooks by connection id (tests read it to see what is held)."""
    loop = asyncio.get_running_loop()
    hooks = _HOOKS.get(loop)
    if hooks is None:
        hooks = _HOOKS[loop] = {}
    return hooks


class HookLease:
    """
    Hold the running loop's hook for ``conn_id`` for the duration of an ``async with``.

    A failed connection read (unknown id, wrong type) raises from the ``async with`` for every lease waiting
    on it, and the next lease reads again. Leaving, even by cancellation, never closes the hook under other
    holders. A class, not ``asynccontextmanager``: no generator frame for each of thousands of waits.

    :param conn_id: The Airflow connection.
    """

    __slots__ = ("_shared", "conn_id")

    def __init__(self, *, conn_id: str) -> None:
        self.conn_id = conn_id
        self._shared: SharedHook | None = None

    async def __aenter__(self) -> BrowserSessionsHook:
        hooks = shared_hooks()
        shared = hooks.get(self.conn_id)
        if shared is None:
            shared = hooks[self.conn_id] = SharedHook(conn_id=self.conn_id)
        shared.users += 1
        self._shared = shared
        try:
            return await shared.get()
        except BaseException as err:
            if not isinstance(err, asyncio.CancelledError) and hooks.get(self.conn_id) is shared:
                del hooks[self.conn_id]  # a failed read is not kept: whoever comes next reads afresh
            await self._release()
            raise

    async def __aexit__(self, *exc_info: object) -> None:
        await self._release()

    async def _release(self) -> None:
        shared, self._shared = self._shared, None
        if shared is None:
            return
        shared.users -= 1
        if shared.users <= 0:
            hooks = shared_hooks()
            if hooks.get(self.conn_id) is shared:
                del hooks[self.conn_id]
            await shared.close()
