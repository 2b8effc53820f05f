#!/usr/bin/env python3
"""Drive a QMP server with QEMU's own client library (PyPI qemu.qmp).

Usage: drive.py SOCKET < script.json

The script is a JSON array of steps:

  {"execute": NAME, "arguments": {...}}   run a command (arguments optional)
  {"wait_event": NAME}                    wait until the event NAME arrived
                                          (at any time since connecting)
  {"disconnect": true}                    wait for the server to hang up

Output, one JSON object per line:

  {"greeting": {...}}                      after connecting and negotiating
  {"step": I, "return": VALUE}             a command succeeded
  {"step": I, "error": {"class": C, "desc": D}}   it failed (ExecuteError)
  {"step": I, "event": NAME}               wait_event satisfied
  {"step": I, "disconnected": true}        the server hung up
  {"event": {...}}                         every event, as received, in order
  {"done": true}                           the end

QMPClient validates the greeting and negotiates capabilities itself (it
enables "oob" when the server offers it); a failure there is an exception
and a non-zero exit.
"""

import asyncio
import json
import sys

from qemu.qmp import EventListener, ExecuteError, QMPClient

# Only a guard against a hung test, not a timing assertion.
GUARD_SECONDS = 120


def emit(obj):
    print(json.dumps(obj, sort_keys=True), flush=True)


SEEN = set()


def record(event):
    SEEN.add(event["event"])
    emit({"event": dict(event)})


def drain(listener):
    for event in listener.clear():
        record(event)


async def wait_event(listener, name):
    drain(listener)
    while name not in SEEN:
        record(await asyncio.wait_for(listener.get(), GUARD_SECONDS))


async def main(path, steps):
    qmp = QMPClient("sevkit-peer-test")
    listener = EventListener()
    qmp.register_listener(listener)
    await asyncio.wait_for(qmp.connect(path), GUARD_SECONDS)
    emit({"greeting": qmp.greeting._asdict()})
    hung_up = False
    for i, step in enumerate(steps):
        if "execute" in step:
            try:
                value = await asyncio.wait_for(
                    qmp.execute(step["execute"], step.get("arguments")), GUARD_SECONDS
                )
                drain(listener)
                emit({"step": i, "return": value})
            except ExecuteError as err:
                drain(listener)
                emit({"step": i, "error": {"class": err.error_class, "desc": str(err)}})
        elif "wait_event" in step:
            await wait_event(listener, step["wait_event"])
            emit({"step": i, "event": step["wait_event"]})
        elif "disconnect" in step:
            # The server hangs up after quit: the reader task sees EOF and
            # the runstate goes to DISCONNECTING.
            while qmp.runstate.name not in ("DISCONNECTING", "IDLE"):
                await asyncio.wait_for(qmp.runstate_changed(), GUARD_SECONDS)
            hung_up = True
            drain(listener)
            emit({"step": i, "disconnected": True})
        else:
            raise ValueError(f"unknown step {step!r}")
    try:
        await qmp.disconnect()
    except EOFError:
        # disconnect() re-raises what ended the session: the server's EOF.
        if not hung_up:
            raise
    drain(listener)
    emit({"done": True})


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    asyncio.run(main(sys.argv[1], json.load(sys.stdin)))
