"""Daemon types for tests only, loaded through ``DAEMON_MODULES`` by the app and workers."""

from __future__ import annotations

import asyncio

from pydantic import Field

from stashhog.daemons.base import BaseDaemon
from stashhog.daemons.config import DaemonConfig, secret_field
from stashhog.daemons.registry import register


class BurstConfig(DaemonConfig):
    lines: int = Field(10_000, ge=0, description="Lines emitted at once after start.")


@register("TEST_BURST")
class BurstDaemon(BaseDaemon):
    """Emits ``lines`` numbered lines in one burst, then idles until stopped."""

    Config = BurstConfig
    config: BurstConfig

    async def run(self) -> None:
        for number in range(self.config.lines):
            self.info(f"line {number}")
        self.update_status(f"emitted {self.config.lines} lines")
        while not await self.sleep(3600):
            pass


class CrashConfig(DaemonConfig):
    crash_after: float = Field(0.2, ge=0, description="Seconds before run() raises.")


@register("TEST_CRASH")
class CrashDaemon(BaseDaemon):
    Config = CrashConfig
    config: CrashConfig

    async def run(self) -> None:
        await self.sleep(self.config.crash_after)
        raise RuntimeError("boom from run()")


class SlowStopConfig(DaemonConfig):
    stop_seconds: float = Field(0.5, ge=0, description="Seconds on_stop() takes.")


@register("TEST_SLOW_STOP")
class SlowStopDaemon(BaseDaemon):
    Config = SlowStopConfig
    config: SlowStopConfig

    async def run(self) -> None:
        while not await self.sleep(3600):
            pass

    async def on_stop(self) -> None:
        await asyncio.sleep(self.config.stop_seconds)
        self.info("slow on_stop finished")


class TickerConfig(DaemonConfig):
    interval: float = Field(0.05, gt=0, description="Seconds between numbered lines.")


@register("TEST_TICKER")
class TickerDaemon(BaseDaemon):
    """Logs "tick N" at a steady rate: the chaos suite counts these per generation."""

    Config = TickerConfig
    config: TickerConfig

    async def run(self) -> None:
        number = 0
        while True:
            number += 1
            self.info(f"tick {number}")
            if await self.sleep(self.config.interval):
                return


class StuckStopConfig(DaemonConfig):
    block_seconds: float = Field(60, ge=0, description="Seconds on_stop() blocks the loop.")


@register("TEST_STUCK_STOP")
class StuckStopDaemon(BaseDaemon):
    """Blocks its event loop in on_stop(): only SIGKILL ends it."""

    Config = StuckStopConfig
    config: StuckStopConfig

    async def run(self) -> None:
        while not await self.sleep(3600):
            pass

    async def on_stop(self) -> None:
        import time

        time.sleep(self.config.block_seconds)


class RateConfig(DaemonConfig):
    rate: float = Field(10_000.0, gt=0, description="Lines per second.")
    seconds: float = Field(5.0, gt=0, description="Seconds to log for, then idle until stopped.")
    tick: float = Field(0.01, gt=0, description="Seconds between chunks of lines.")


@register("TEST_RATE")
class RateDaemon(BaseDaemon):
    """Logs ``rate * seconds`` numbered lines at a steady rate (in chunks every ``tick``,
    catching up if it falls behind), then idles until stopped: the log benchmark's load."""

    Config = RateConfig
    config: RateConfig

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        total = int(self.config.rate * self.config.seconds)
        began, emitted = loop.time(), 0
        while emitted < total:
            due = min(total, int((loop.time() - began) * self.config.rate) + 1)
            for number in range(emitted, due):
                self.info(f"rate line {number}")
            emitted = due
            if await self.sleep(self.config.tick):
                return
        self.update_status(f"emitted {total} lines")
        while not await self.sleep(3600):
            pass


class CarelessConfig(DaemonConfig):
    api_key: str = secret_field(description="A secret it is careless with.")


@register("TEST_CARELESS")
class CarelessDaemon(BaseDaemon):
    """Logs its secret and shows it in its status line, as a careless daemon might."""

    Config = CarelessConfig
    config: CarelessConfig

    async def run(self) -> None:
        self.info(f"calling the webhook with key {self.config.api_key}")
        self.update_status(f"using {self.config.api_key}")
        while not await self.sleep(3600):
            pass
