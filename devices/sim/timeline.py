"""Timeline: one patient's plan played out day by day as the exact MQTT messages, in send order.

Why a generator per patient, in send order: a cohort of 1,000 patients over 90 days is
hundreds of thousands of messages, so nothing holds them all. Each patient's stream is
produced one local day at a time and kept in a small heap until its send time has passed
(a backlog waits there until its device reconnects, a resend a few seconds to minutes), and
``cohort`` merges the patients' streams by send time for a broker or a file.

A message is what a device really publishes: the v1 payload bytes (the same text
``devices.contract.encode_message`` would produce, written directly for speed), with the time
the device *believes* it is, the unit it is set to, and any artefact it measured. Beside the
bytes the simulator keeps what it knows and the ingest will have to find out: the true owner,
the expected outcome of every reading, and the label records of its faults.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterator, Sequence
from datetime import datetime
from typing import NamedTuple

from homecare import catalogue
from homecare.devices.contract import readings_topic
from homecare.devices.sim.clock import (
    DAY_MS,
    HOUR_MS,
    MINUTE_MS,
    LocalCalendar,
    LocalDay,
    from_ms,
    stamp,
    to_ms,
)
from homecare.devices.sim.config import SimConfig
from homecare.devices.sim.episodes import Extra
from homecare.devices.sim.equipment import session_types
from homecare.devices.sim.faults import GLITCH_TYPES, DevicePlan, draw_glitch
from homecare.devices.sim.physiology import Effect, Physiology, to_wire
from homecare.devices.sim.plan import PatientPlan
from homecare.devices.sim.population import stream
from homecare.devices.sim.wearable import watch_batches
from homecare.devices.traffic import Outgoing

__all__ = ["SimMessage", "patient_messages"]

_FUTURE_MS = 5 * MINUTE_MS  # the ingest's default max future skew
_TOO_OLD_MS = 400 * DAY_MS  # the ingest's default max age


class SimMessage(NamedTuple):
    """SimMessage: one publish, and what the simulator knows about it.

    ``expected`` holds one outcome per reading: ``stored``, a quarantine reason
    (``implausible_value``, ``future_time``, ``too_old``), or ``duplicate`` for every reading
    of a resend. The future/too-old outcomes assume the message is received when it is sent
    (live or accelerated publishing); a replay long afterwards moves that boundary.
    """

    sent_ms: int
    patient: str
    device_id: str
    msg_id: str
    payload: bytes
    expected: tuple[str, ...]
    resend: bool
    faults: tuple[dict[str, object], ...]

    @property
    def topic(self) -> str:
        return readings_topic(self.device_id)

    @property
    def sent_at(self) -> datetime:
        return from_ms(self.sent_ms)

    @property
    def stored(self) -> int:
        """SimMessage.stored: how many of its readings the ingest should store."""
        return sum(1 for outcome in self.expected if outcome == "stored")

    def outgoing(self) -> Outgoing:
        """SimMessage.outgoing: the message as the device publisher sends it."""
        if self.resend:
            expected = "resend"
        else:
            expected = next((o for o in self.expected if o != "stored"), "stored")
        return Outgoing(
            self.device_id, self.topic, self.payload, self.msg_id, expected, self.stored
        )


class _Session(NamedTuple):
    time_ms: int
    kind: str
    slot: str
    scheduled: bool
    tag: str
    extra: Extra | None


def patient_messages(
    plan: PatientPlan, config: SimConfig, calendar: LocalCalendar
) -> Iterator[SimMessage]:
    """patient_messages: every message of one patient's devices, in send order."""
    return _PatientStream(plan, config, calendar).run()


class _PatientStream:
    def __init__(self, plan: PatientPlan, config: SimConfig, calendar: LocalCalendar) -> None:
        self.plan = plan
        self.profile = plan.profile
        self.config = config
        self.calendar = calendar
        self.rates = config.faults
        self.start_ms = to_ms(config.start)
        self.end_ms = to_ms(config.end)
        self.rng = stream(config.seed, "messages", plan.profile.index)
        self.physiology = Physiology(plan.profile, self.rng, self.start_ms)
        self.devices = {d.device_id: d for d in plan.devices}
        self.pending: list[tuple[int, int, SimMessage]] = []
        self.seq = 0
        self.backlog: dict[str, int] = {}
        self.context = ',"context":{"on_oxygen":true}' if plan.profile.on_oxygen else ""
        self.effects: list[tuple[int, int, Effect]] = [
            *((e.onset_ms, e.er_ms, e) for e in plan.episodes),
            *((x.start_ms, x.end_ms, x) for x in plan.lookalikes if x.decay_ms),
        ]
        self.extras: dict[int, list[Extra]] = {}
        planned = [e.extras for e in plan.episodes] + [x.extras for x in plan.lookalikes]
        for extras in planned:
            for extra in extras:
                ordinal = calendar.day_of(extra.time_ms).ordinal
                self.extras.setdefault(ordinal, []).append(extra)
        self.watch_offset = self.rng.randrange(1000, 59_000)
        self.watch_gain = 0.6 if plan.profile.beta_blocker else 1.0

    def run(self) -> Iterator[SimMessage]:
        plan, profile = self.plan, self.profile
        stop_ms = min(self.end_ms, plan.monitoring_end_ms)
        for day in self.calendar.days(self.start_ms, self.end_ms):
            self.physiology.new_day()
            if day.start_ms < stop_ms:
                effects = [
                    e for begin, end, e in self.effects if begin < day.end_ms and end > day.start_ms
                ]
                days_in = (day.start_ms - self.start_ms) / DAY_MS
                share = profile.adherence_floor + (
                    profile.adherence_initial - profile.adherence_floor
                ) * 0.5 ** (max(0.0, days_in) / profile.adherence_half_life_days)
                engaged = self.rng.random() < share**0.5
                for session in self._sessions(day):
                    t = session.time_ms
                    if t < self.start_ms or t >= stop_ms or self._in_hospital(t):
                        continue
                    if session.scheduled and not (engaged and self.rng.random() < share**0.5):
                        continue
                    self._measure(session, day, effects)
                if self.config.wearable:
                    self._watch(day, effects, stop_ms)
            horizon = min(day.end_ms, self.end_ms + 1)
            pending = self.pending
            while pending and pending[0][0] < horizon:
                yield heapq.heappop(pending)[2]
        while self.pending and self.pending[0][0] <= self.end_ms:
            yield heapq.heappop(self.pending)[2]

    def _in_hospital(self, ms: int) -> bool:
        return any(s.start_ms <= ms < s.end_ms for s in self.plan.stays)

    def _sessions(self, day: LocalDay) -> list[_Session]:
        rng = self.rng
        found: list[_Session] = []
        for planned in self.profile.sessions:
            session = planned.session
            if planned.weekday is not None and planned.weekday != day.weekday:
                continue
            if session.probability < 1.0 and rng.random() >= session.probability:
                continue
            offset = round(session.hour * HOUR_MS + rng.gauss(0.0, session.sd_minutes) * MINUTE_MS)
            t = day.start_ms + min(DAY_MS - 1000, max(0, offset))
            found.append(_Session(t, session.kind, session.slot, True, "", None))
        for extra in self.extras.get(day.ordinal, ()):
            found.append(_Session(extra.time_ms, extra.kind, extra.slot, False, extra.tag, extra))
        found.sort(key=lambda s: s.time_ms)
        return found

    def _measure(self, session: _Session, day: LocalDay, effects: list[Effect]) -> None:
        kind, t = session.kind, session.time_ms
        device = self.devices[self.plan.device_for(kind, t)]
        types = session_types(kind, session.slot)
        hour = (t - day.start_ms) / HOUR_MS
        physiology = self.physiology
        noisy = session.tag == "noisy"
        session_deltas = session.extra.deltas if session.extra is not None else None
        units = device.units
        values: list[int | float] = []
        glitches: list[tuple[int, str, float]] = []
        for index, type_name in enumerate(types):
            true = physiology.true_value(type_name, t, hour, effects, session.slot, session_deltas)
            unit = units[type_name]
            if (
                type_name in GLITCH_TYPES
                and self.rates.glitch
                and self.rng.random() < self.rates.glitch
            ):
                artefact, canonical = draw_glitch(self.rng, type_name)
                values.append(to_wire(type_name, canonical, unit))
                glitches.append((index, artefact, canonical))
            else:
                values.append(physiology.read(type_name, true, unit, noisy))
        if kind == "cuff" and not any(g[0] < 2 for g in glitches):
            values[1] = min(values[1], values[0] - 10)  # a cuff never shows DBP above SBP
        readings = [
            (name, value, units[name], t) for name, value in zip(types, values, strict=True)
        ]
        self._publish(device, t, readings, glitches, self.context if kind == "oxi" else "")

    def _watch(self, day: LocalDay, effects: list[Effect], stop_ms: int) -> None:
        batches = watch_batches(
            self.physiology, day, effects, self.rng, self.watch_gain, self.watch_offset
        )
        for upload_ms, minutes in batches:
            kept = [
                (t, bpm)
                for t, bpm in minutes
                if self.start_ms <= t < stop_ms and not self._in_hospital(t)
            ]
            if not kept:
                continue
            device = self.devices[self.plan.device_for("watch", kept[0][0])]
            unit = device.units["heart_rate"]
            readings = [
                ("heart_rate", round(min(220.0, max(30.0, bpm))), unit, t) for t, bpm in kept
            ]
            self._publish(device, upload_ms, readings, [], "")

    def _publish(
        self,
        device: DevicePlan,
        t: int,
        readings: Sequence[tuple[str, int | float, str, int]],
        glitches: list[tuple[int, str, float]],
        context: str,
    ) -> None:
        rng = self.rng
        msg_id = f"{rng.getrandbits(128):032x}"
        reconnect = device.reconnects(t) if device.offline else None
        if reconnect is None:
            sent = t + rng.randrange(1000, 30_000)
        else:
            waiting = self.backlog.get(device.device_id, 0) + 1
            self.backlog[device.device_id] = waiting
            sent = reconnect + 200 * waiting
        clock = device.clock_fault(t) if device.clock else None
        time_outcome = "stored"
        faults: list[dict[str, object]] = []
        parts = []
        for name, value, unit, when in readings:
            reported = clock.reported(when) if clock is not None else when
            parts.append(
                f'{{"type":"{name}","value":{value!r},"unit":"{unit}","time":"{stamp(reported)}"}}'
            )
        if clock is not None:
            reported = clock.reported(t)
            if reported > sent + _FUTURE_MS:
                time_outcome = "future_time"
            elif reported < sent - _TOO_OLD_MS:
                time_outcome = "too_old"
            faults.append(
                {
                    "kind": clock.kind,
                    "device_id": device.device_id,
                    "msg_id": msg_id,
                    "time": stamp(t),
                    "reported_time": stamp(reported),
                    "expected": time_outcome,
                }
            )
        expected = [time_outcome] * len(readings)
        for index, artefact, canonical in glitches:
            name, value, unit, _ = readings[index]
            plausible = catalogue.CATALOGUE[name].is_plausible(canonical)
            if not plausible:
                expected[index] = "implausible_value"
            faults.append(
                {
                    "kind": "glitch",
                    "artefact": artefact,
                    "device_id": device.device_id,
                    "msg_id": msg_id,
                    "reading_index": index,
                    "type": name,
                    "value": value,
                    "unit": unit,
                    "time": stamp(t),
                    "expected": expected[index],
                }
            )
        payload = f'{{"msg_id":"{msg_id}","readings":[{",".join(parts)}]{context}}}'.encode()
        message = SimMessage(
            sent,
            self.profile.key,
            device.device_id,
            msg_id,
            payload,
            tuple(expected),
            False,
            tuple(faults),
        )
        self._push(message)
        if self.rates.resend and rng.random() < self.rates.resend:
            again = sent + rng.randrange(2_000, 600_000)
            record: dict[str, object] = {
                "kind": "resend",
                "device_id": device.device_id,
                "msg_id": msg_id,
                "sent_at": stamp(again),
                "expected": "duplicate",
            }
            self._push(
                message._replace(
                    sent_ms=again,
                    expected=("duplicate",) * len(readings),
                    resend=True,
                    faults=(record,),
                )
            )

    def _push(self, message: SimMessage) -> None:
        self.seq += 1
        heapq.heappush(self.pending, (message.sent_ms, self.seq, message))
