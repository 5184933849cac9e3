"""Late replies must not pass for the next request's answer. Pure: `now_s` is passed in.

A device that answers after the timeout still answers: on Modbus RTU its late reply
carries no transaction id, and the next request to the same device is usually the same
request (a control loop polls the same registers), so the late reply would be read as the
next answer, one request old, and the device would look healthy. Frames from other
addresses are skipped by pymodbus' framer, so the danger is per device.

1. After a request to a device times out (or gets a reply that does not match it), no new
   request goes to that device until `holdoff_s` after the last one was sent. Whatever
   arrives meanwhile is discarded (pymodbus drops a reply nobody waits for, and clears its
   receive buffer before each request).
2. `holdoff_s` is twice the read timeout, or 1.5 times the latest reply seen from that
   device, whichever is longer (capped at `MAX_HOLDOFF_S`): a device seen answering 0.7 s
   late is given 1.05 s of quiet.
3. Bytes that arrive while no request is outstanding are a late reply: they are timed
   against the last request sent to the address they carry.
Replies later than the hold-off could still be misread; rule 2 makes that need a device
that is suddenly much slower than it was ever seen to be.
"""

from __future__ import annotations

from dataclasses import dataclass, field

HOLDOFF_TIMEOUTS = 2.0  # quiet after a timeout, in read timeouts (0.5 s reads: 1 s)
LATENESS_MARGIN = 1.5  # quiet after a timeout, in the latest reply seen
MAX_HOLDOFF_S = 10.0  # a device slower than this is as good as silent


@dataclass(slots=True)
class LateReplyGuard:
    """Rules 1-3 for one bus; `timeout_s` is the bound of one read."""

    timeout_s: float
    in_flight: int = 0
    _sent_s: dict[int, float] = field(default_factory=dict)
    _quiet_until_s: dict[int, float] = field(default_factory=dict)
    _latest_s: dict[int, float] = field(default_factory=dict)

    def sent(self, device_id: int, now_s: float) -> None:
        """A request to `device_id` went on the line."""
        self._sent_s[device_id] = now_s

    def received(self, device_id: int, now_s: float) -> None:
        """Bytes from `device_id` arrived. With no request outstanding, a late reply
        (rule 3): its lateness extends the device's quiet time (rule 2)."""
        sent_s = self._sent_s.get(device_id)
        if self.in_flight or sent_s is None:
            return
        late_s = now_s - sent_s
        self._latest_s[device_id] = max(self._latest_s.get(device_id, 0.0), late_s)
        self._quiet_until_s[device_id] = max(self._quiet_until_s.get(device_id, 0.0),
                                             sent_s + self.holdoff_s(device_id))

    def failed(self, device_id: int) -> None:
        """A request to `device_id` timed out or got a reply that was not its own (rule 1)."""
        sent_s = self._sent_s.get(device_id)
        if sent_s is not None:
            self._quiet_until_s[device_id] = max(self._quiet_until_s.get(device_id, 0.0),
                                                 sent_s + self.holdoff_s(device_id))

    def holdoff_s(self, device_id: int) -> float:
        """Rule 2: quiet time after the last request to `device_id`."""
        latest = LATENESS_MARGIN * self._latest_s.get(device_id, 0.0)
        return min(MAX_HOLDOFF_S, max(HOLDOFF_TIMEOUTS * self.timeout_s, latest))

    def wait_s(self, device_id: int, now_s: float) -> float:
        """How long until a request may go to `device_id` (0 = now)."""
        return max(0.0, self._quiet_until_s.get(device_id, 0.0) - now_s)

    def latest_s(self, device_id: int) -> float | None:
        """The latest late reply seen from `device_id` (s after its request), if any."""
        return self._latest_s.get(device_id)
