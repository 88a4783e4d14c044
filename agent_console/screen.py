"""The base of the consoles' main screens: banner, message log, connection, API calls."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any, cast

from rich.text import Text
from textual.css.query import NoMatches
from textual.screen import Screen
from textual.widgets import RichLog, Static

from agent_console.client import ApiClient, ApiError

if TYPE_CHECKING:
    from agent_console.app import ConsoleApp


class MainScreen(Screen[None]):
    """What the lawyer's and the supervisor's screens share: banner, log, connection."""

    def __init__(self) -> None:
        super().__init__()
        self.connected = True

    @property
    def console(self) -> ConsoleApp:
        """The app, typed."""
        return cast("ConsoleApp", self.app)

    @property
    def api(self) -> ApiClient:
        """The API client."""
        return self.console.api

    def say(self, text: str, style: str = "") -> None:
        """A line in the message log (with the time)."""
        try:
            self.query_one("#log", RichLog).write(
                Text.assemble((time.strftime("%H:%M:%S "), "dim"), (text, style)))
        except NoMatches:  # a late reply while the console closes
            pass

    async def run_api(self, method: str, path: str, body: dict[str, Any] | None = None,
                      done: str = "") -> Any:
        """Call the API; errors go to the log (never a traceback)."""
        try:
            result = await self.api.call(method, path, body)
        except ApiError as exc:
            self.say(exc.message, "bold red")
            return None
        if done:
            self.say(done, "green")
        return result

    def connection(self, up: bool, attempt: int) -> None:
        """The event stream went away or came back."""
        banner = self.query_one("#banner", Static)
        if up:
            banner.update("已重新连接服务器")
            banner.add_class("back")
            self.set_timer(3.0, lambda: banner.remove_class("shown"))
            if not self.connected:
                self.say("已重新连接服务器", "green")
        else:
            banner.remove_class("back")
            banner.add_class("shown")
            banner.update(f"与服务器的连接已断开, 正在重新连接… (第 {attempt} 次)")
            if self.connected:
                self.say("与服务器的连接已断开, 正在自动重连", "bold red")
        self.connected = up

    async def on_server_event(self, event: dict[str, Any]) -> None:
        """One event from the server (overridden)."""
