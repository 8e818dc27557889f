"""The agent decides every committed command record once, in log order, whatever
the transport does around it (streams.continuity).

The transport is a model of faust's: it fetches committed records into a queue
(skipping transaction markers and aborted records, so offsets have gaps), drops
queued records when it clears its queues (and says so), keeps delivering what it
fetched before a seek and drops records below the last offset it delivered (its
read offset), and at a rebalance restarts from any offset (the group's committed
offset may be before the agent's cursor or, when a transaction aborted after its
offsets were committed, past it). Decisions after the last commit roll back at
a rebalance; the cursor is restored from the last commit.
"""

from __future__ import annotations

import dataclasses

from hypothesis import given, settings
from hypothesis import strategies as st

from streams.continuity import RESEEK_SECONDS, Continuity

PARTITION = 3


@dataclasses.dataclass
class Transport:
    log: list[int]
    position: int = 0
    read_offset: int | None = None
    queue: list[int] = dataclasses.field(default_factory=list)

    def fetch(self, count: int) -> None:
        """Committed records from the position into the queue, as faust does."""
        for offset in [o for o in self.log if o >= self.position][:count]:
            self.position = offset + 1
            if self.read_offset is not None and offset < self.read_offset:
                continue  # faust: "DROPPED MESSAGE ROFF"
            self.queue.append(offset)
            self.read_offset = offset

    def seek(self, offset: int) -> None:
        self.position = offset
        self.read_offset = offset

    def first_committed(self, start: int) -> int | None:
        return min((o for o in self.log if o >= start), default=None)


@dataclasses.dataclass
class Agent:
    transport: Transport
    continuity: Continuity = dataclasses.field(default_factory=Continuity)
    decided: list[int] = dataclasses.field(default_factory=list)
    committed_decisions: int = 0
    committed_cursor: int | None = None
    now: float = 0.0

    def take(self, count: int) -> None:
        """Records from the queue's head handed to the writer as one batch."""
        batch, self.transport.queue = (
            self.transport.queue[:count],
            self.transport.queue[count:],
        )
        if not batch:
            return
        admission = self.continuity.admit(PARTITION, batch, self.now)
        if admission.check_from is not None:
            first = self.transport.first_committed(admission.check_from)
            if first is None:
                admission.seek_to = admission.check_from
            else:
                self.continuity.checked(PARTITION, first)
                admission = self.continuity.admit(PARTITION, batch, self.now)
        self.decided.extend(admission.decide)
        if admission.seek_to is not None:
            self.transport.seek(admission.seek_to)

    def clear_queue(self) -> None:
        queue, self.transport.queue = self.transport.queue, []
        if queue:
            self.continuity.dropped({PARTITION: min(queue)})

    def commit(self) -> None:
        self.committed_decisions = len(self.decided)
        self.committed_cursor = self.continuity.next_offset(PARTITION)

    def rebalance(self, restart_at: int) -> None:
        del self.decided[self.committed_decisions :]
        self.continuity.reset()
        cursors = (
            {} if self.committed_cursor is None else {PARTITION: self.committed_cursor}
        )
        self.continuity.load(cursors, cursors)
        self.transport.queue = []
        self.transport.seek(restart_at)


logs = st.lists(st.integers(1, 4), min_size=3, max_size=30).map(
    lambda gaps: [sum(gaps[: n + 1]) for n in range(len(gaps))]
)
KINDS = ["fetch"] * 3 + ["take"] * 3 + ["clear"] * 2 + ["commit"] * 2
actions = st.lists(
    st.tuples(
        st.sampled_from([*KINDS, "rebalance", "wait", "append"]), st.integers(0, 130)
    ),
    max_size=80,
)


@settings(max_examples=600, deadline=None)
@given(logs, actions)
def test_every_committed_record_is_decided_once_in_log_order(
    log: list[int], steps: list[tuple[str, int]]
) -> None:
    agent = Agent(Transport(list(log)))
    agent.rebalance(0)
    for action, value in steps:
        if action == "fetch":
            agent.transport.fetch(1 + value % 5)
        elif action == "take":
            agent.take(1 + value % 5)
        elif action == "clear":
            agent.clear_queue()
        elif action == "commit":
            agent.commit()
        elif action == "rebalance":
            agent.rebalance(min(value, agent.transport.log[-1] + 1))
        elif action == "wait":
            agent.now += value % 4
        else:
            agent.transport.log.append(agent.transport.log[-1] + 1 + value % 3)

    # Then the sale goes on: ticks keep records coming, time passes.
    for _ in range(200):
        if agent.decided == agent.transport.log:
            break
        agent.transport.log.append(agent.transport.log[-1] + 2)
        agent.transport.fetch(100)
        agent.take(100)
        agent.now += RESEEK_SECONDS

    assert agent.decided == sorted(set(agent.decided)), "each once, in log order"
    assert agent.decided == agent.transport.log, "every committed record decided"
