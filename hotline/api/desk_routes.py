"""Agent API for the lawyers' desk and their calls (``/api/v1/agent``, ``/api/v1/calls``).

Runs on the event loop of ``hotline serve`` next to the coordinator: the endpoints are
``async`` and call the :class:`~hotline.callcenter.CallCenter` directly (it is not
thread-safe). A lawyer commands only calls in which they are the lawyer; a supervisor or
an administrator may command any. A call that is not theirs is "not found" (404), so ids
reveal nothing; a command in the wrong state is 409 and changes nothing.
"""

from collections.abc import Callable
from typing import TYPE_CHECKING, Annotated, Any, Literal

from fastapi import APIRouter
from pydantic import BaseModel, Field, model_validator

from hotline.api.auth import require
from hotline.callers import mask_number
from hotline.conversation import CallControlError
from hotline.domain import Role
from hotline.errors import HotlineError
from hotline.store.callers import caller_history
from hotline.store.users import UserView

if TYPE_CHECKING:
    from hotline.callcenter import CallCenter, LiveCall


class AgentOut(BaseModel):
    """A lawyer's desk state."""

    work_id: str
    status: str
    state: str
    break_reason: str
    phone: str
    calls: int
    talk_seconds: float
    missed: int
    on_duty: bool = True  # on a shift of the roster (or the roster not in force)
    leaving: bool = False  # shift over: logged out after the current call and wrap-up


class DeskLogin(BaseModel):
    """Sign in for calls, on ``phone`` (SIP URI) or the account's own.

    ``accept_in_console``: offers wait for ``POST /offers/{call}/accept``, then the phone is
    dialled and must answer by itself (the console's softphone, an auto-answer phone);
    otherwise the phone rings at once and answering it accepts.
    """

    phone: str | None = Field(None, max_length=200, pattern=r"^sips?:[^\s]+$")
    accept_in_console: bool = False


class StatusChange(BaseModel):
    """Available (示闲) or on a break (小休) with a reason."""

    status: Literal["available", "on_break"]
    reason: str = Field("", max_length=100)


class TransferRequest(BaseModel):
    """Transfer to exactly one of these targets.

    ``target``: a SIP URI or an outside number (12345, 110...); ``lawyer``: a lawyer on duty
    by work id; ``queue``: a queue code (blind only).
    """

    target: str | None = Field(None, min_length=1, max_length=200)
    lawyer: str | None = Field(None, min_length=1, max_length=32)
    queue: str | None = Field(None, min_length=1, max_length=64)
    attended: bool = False

    @model_validator(mode="after")
    def _one_target(self) -> "TransferRequest":
        if sum(x is not None for x in (self.target, self.lawyer, self.queue)) != 1:
            raise ValueError("target / lawyer / queue 须且只能填写一项")
        return self


class LeaveRequest(BaseModel):
    """Which party leaves the conference."""

    leg: str = Field(min_length=1, max_length=32)


class CallOut(BaseModel):
    """A live call as its lawyer sees it."""

    call: str
    ticket_no: str
    caller: str
    line: str
    queue: str
    priority: str
    state: str
    legs: dict[str, str]


def desk_router(center_of: Callable[[], "CallCenter | None"],
                current_user: Callable[..., UserView]) -> APIRouter:
    """The routes, bound to the running coordinator (``center_of()`` is None without one)."""
    router = APIRouter(prefix="/api/v1")
    desk_user = require(current_user, Role.LAWYER, Role.SUPERVISOR)

    def center() -> "CallCenter":
        found = center_of()
        if found is None:
            raise HotlineError("telephony.disabled")
        return found

    def desk_row(work_id: str) -> AgentOut:
        cc = center()
        agent = cc.desk.agents.get(work_id)
        if agent is None:
            return AgentOut(work_id=work_id, status="logged_out", state="idle",
                            break_reason="", phone="", calls=0, talk_seconds=0, missed=0)
        return AgentOut(work_id=work_id, status=agent.status.value, state=agent.state.value,
                        break_reason=agent.break_reason, phone=cc.desk.phones.get(work_id, ""),
                        calls=agent.calls, talk_seconds=agent.talk_seconds,
                        missed=agent.missed, on_duty=agent.on_duty,
                        leaving=work_id in cc.desk.leaving)

    def agent_out(user: UserView) -> AgentOut:
        return desk_row(user.work_id)

    @router.get("/agent", tags=["坐席"], summary="我的坐席状态", response_model=AgentOut)
    async def agent_state(user: Annotated[UserView, desk_user]) -> AgentOut:
        return agent_out(user)

    @router.post("/agent/login", tags=["坐席"], summary="签入 (开始接听)",
                 response_model=AgentOut)
    async def agent_login(body: DeskLogin, user: Annotated[UserView, desk_user]) -> AgentOut:
        cc = center()
        cc.desk.login(user.work_id, body.phone or user.sip_uri or "", cc.now(),
                      skills=dict(user.skills), languages=frozenset(user.languages) or None,
                      accept_in_console=body.accept_in_console)
        cc.talk.route()
        return agent_out(user)

    @router.post("/agent/status", tags=["坐席"], summary="示闲 / 小休",
                 response_model=AgentOut)
    async def agent_status(body: StatusChange,
                           user: Annotated[UserView, desk_user]) -> AgentOut:
        cc = center()
        if body.status == "available":
            cc.desk.resume(user.work_id, cc.now())
            cc.talk.route()
        else:
            cc.desk.pause(user.work_id, body.reason or "小休", cc.now())
        return agent_out(user)

    @router.post("/agent/logout", tags=["坐席"], summary="签出", response_model=AgentOut)
    async def agent_logout(user: Annotated[UserView, desk_user]) -> AgentOut:
        cc = center()
        cc.desk.logout(user.work_id, cc.now())
        return agent_out(user)

    def owned(key: str, user: UserView) -> "LiveCall":
        cc = center()
        call = cc.calls.get(key)
        if call is None or call.ended:
            raise CallControlError("call.not_found", call=key)
        if user.role in (Role.SUPERVISOR, Role.ADMIN):
            return call
        offered = cc.talk.console_offers.get(user.work_id)
        if offered is not None and offered.call == key:
            return call
        if not any(leg.agent == user.work_id and leg.state != "ended"
                   for leg in call.legs.values()):
            raise CallControlError("call.not_found", call=key)
        return call

    def call_out(call: "LiveCall") -> CallOut:
        return CallOut(call=call.key, ticket_no=call.ticket_no,
                       caller=mask_number(call.caller), line=call.line, queue=call.queue,
                       priority=call.priority.value, state=center().talk.state_of(call),
                       legs={n: leg.state for n, leg in call.legs.items()})

    @router.get("/calls/mine", tags=["通话"], summary="我的通话", response_model=list[CallOut])
    async def my_calls(user: Annotated[UserView, desk_user]) -> list[CallOut]:
        return [call_out(c) for c in center().calls.values() if not c.ended and any(
            leg.agent == user.work_id and leg.state != "ended" for leg in c.legs.values())]

    def action(name: str, run: Callable[["CallCenter", str, Any], object],
               summary: str, body_model: Any = None) -> None:
        async def plain(key: str, user: Annotated[UserView, desk_user]) -> CallOut:
            call = owned(key, user)
            run(center(), key, None)
            return call_out(call)

        async def with_body(key: str, body: body_model,
                            user: Annotated[UserView, desk_user]) -> CallOut:
            call = owned(key, user)
            run(center(), key, body)
            return call_out(call)

        router.add_api_route(f"/calls/{{key}}/{name}", plain if body_model is None
                             else with_body, methods=["POST"], tags=["通话"],
                             summary=summary, response_model=CallOut, name=f"call_{name}")

    @router.get("/calls/{key}/history", tags=["通话"], summary="来电人的历史工单")
    async def history(key: str,
                      user: Annotated[UserView, desk_user]) -> list[dict[str, Any]]:
        call = owned(key, user)
        return await center().ledger.run(caller_history, call.caller, call.started)

    staff = require(current_user, Role.SUPERVISOR)

    @router.get("/agents", tags=["管理"], summary="在岗律师 (管理人员)",
                response_model=list[AgentOut])
    async def agents(_user: Annotated[UserView, staff]) -> list[AgentOut]:
        return [desk_row(work_id) for work_id in sorted(center().desk.agents)]

    @router.post("/agents/{work_id}/status", tags=["管理"],
                 summary="设置律师状态 (管理人员, 例如漏接后恢复示闲)", response_model=AgentOut)
    async def set_agent_status(work_id: str, body: StatusChange,
                               _user: Annotated[UserView, staff]) -> AgentOut:
        cc = center()
        if body.status == "available":
            cc.desk.resume(work_id, cc.now())
            cc.talk.route()
        else:
            cc.desk.pause(work_id, body.reason or "班长设置", cc.now())
        return desk_row(work_id)

    @router.get("/stats", tags=["坐席"], summary="队列与坐席实时统计 (人数, 不含来电人信息)")
    async def stats(_user: Annotated[UserView, desk_user]) -> dict[str, Any]:
        return center().stats()

    @router.post("/offers/{key}/reject", tags=["通话"], summary="拒接分配给我的来电",
                 response_model=AgentOut)
    async def reject(key: str, user: Annotated[UserView, desk_user]) -> AgentOut:
        center().talk.reject(key, user.work_id)
        return agent_out(user)

    @router.post("/offers/{key}/accept", tags=["通话"],
                 summary="接听分配给我的来电 (在工作台接听时: 随即呼叫我的话机)",
                 response_model=AgentOut)
    async def accept(key: str, user: Annotated[UserView, desk_user]) -> AgentOut:
        center().talk.accept(key, user.work_id)
        return agent_out(user)

    action("hold", lambda cc, k, _: cc.talk.hold(k), "保持 (来电人听音乐)")
    action("unhold", lambda cc, k, _: cc.talk.unhold(k), "取消保持")
    action("transfer", lambda cc, k, b: cc.talk.transfer(
        k, b.target or "", b.attended, lawyer_id=b.lawyer or "", queue=b.queue or ""),
        "转接 (盲转或咨询转: 外线号码/SIP 地址、值班律师工号或队列)", TransferRequest)
    action("complete", lambda cc, k, _: cc.talk.complete_transfer(k), "完成咨询转接")
    action("cancel", lambda cc, k, _: cc.talk.cancel_transfer(k), "取消咨询转接")
    action("conference", lambda cc, k, _: cc.talk.conference(k), "三方通话")
    action("leave", lambda cc, k, b: cc.talk.leave(k, b.leg), "退出三方通话", LeaveRequest)
    action("hangup", lambda cc, k, _: cc.talk.hangup(k), "挂断")
    return router
