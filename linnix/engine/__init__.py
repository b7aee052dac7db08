"""The engine: events in, alerts and proposals out.  Pure and synchronous.

:mod:`.trace` defines the events, :mod:`.proctable` keeps the process tree and
its metrics, :mod:`.windows` values over time, :mod:`.evaluator` the rules'
state machines, and :mod:`.core` runs them at ticks on whatever clock the
caller gives.  No I/O, no trio: the runtime feeds it and takes ``now`` from
its own clock.
"""
