"""Closed vocabularies of the 12348 domain (see DOMAIN.md).

Values are stable English codes stored in the database and used in YAML flows; the Chinese term
each one stands for is on the right and is what the edges show (``Enum.label``).
"""

from __future__ import annotations

from enum import StrEnum


class _Labelled(StrEnum):
    """A StrEnum whose members carry their Chinese term in ``_LABELS``."""

    @property
    def label(self) -> str:
        """The Chinese term shown to users."""
        return _LABELS.get(type(self).__name__, {}).get(self.value, self.value)


class Role(_Labelled):
    """Who a user is; every API call checks it."""

    LAWYER = "lawyer"  # 值班律师
    SUPERVISOR = "supervisor"  # 班长/质检/管理人员
    SCHEDULER = "scheduler"  # 排班员
    ADMIN = "admin"  # 系统管理员


class Category(_Labelled):
    """Top level of the default consultation category tree (DOMAIN.md)."""

    MARRIAGE_FAMILY = "marriage_family"  # 婚姻家庭
    INHERITANCE = "inheritance"  # 继承
    LABOR = "labor"  # 劳动争议
    CONTRACT = "contract"  # 合同纠纷
    PROPERTY = "property"  # 房产/宅基地
    TRAFFIC = "traffic"  # 交通事故
    PERSONAL_INJURY = "personal_injury"  # 人身损害
    CONSUMER = "consumer"  # 消费
    DEBT = "debt"  # 债务/借贷
    PROCEDURE = "procedure"  # 诉讼程序
    CRIMINAL = "criminal"  # 刑事
    ADMINISTRATIVE = "administrative"  # 行政
    LEGAL_AID = "legal_aid"  # 法律援助
    MEDIATION = "mediation"  # 人民调解
    NOTARY = "notary"  # 公证
    FORENSIC = "forensic"  # 司法鉴定
    COMPLAINT = "complaint"  # 投诉
    SME = "sme"  # 中小企业
    OTHER = "other"  # 其他/非法律


class Disposition(_Labelled):
    """How a call was dealt with (DOMAIN.md, dispositions)."""

    ANSWERED = "answered"  # 已解答
    APPOINTMENT = "appointment"  # 约期答复
    REFERRED = "referred"  # 转办
    LEGAL_AID = "legal_aid"  # 法援引导/申请
    MEDIATION = "mediation"  # 调解预约
    EMERGENCY = "emergency"  # 紧急转接 110/120
    COMPLAINT = "complaint"  # 投诉登记
    NON_LEGAL = "non_legal"  # 非法律事项
    DROPPED = "dropped"  # 掉线/无声来电


class TicketStatus(_Labelled):
    """The closed loop 受理 → 办理 → 办结 → 回访 → 归档."""

    ACCEPTED = "accepted"  # 受理
    PROCESSING = "processing"  # 办理
    CLOSED = "closed"  # 办结
    FOLLOWED_UP = "followed_up"  # 回访
    ARCHIVED = "archived"  # 归档


class TicketKind(_Labelled):
    """Where a ticket came from."""

    CALL = "call"  # 来电
    VOICEMAIL = "voicemail"  # 留言
    CALLBACK = "callback"  # 回拨请求
    FOLLOW_UP = "follow_up"  # 回访


class Priority(_Labelled):
    """Caller priority in queues; green channel per Legal Aid Law art. 42."""

    NORMAL = "normal"  # 普通
    GREEN = "green"  # 绿色通道
    URGENT = "urgent"  # 紧急


class GreenReason(_Labelled):
    """Why a caller is on the green channel."""

    ELDERLY = "elderly"  # 老年人
    DISABLED = "disabled"  # 残疾人
    MIGRANT_WAGES = "migrant_wages"  # 农民工讨薪/工伤
    MINOR = "minor"  # 未成年人


class Language(_Labelled):
    """Languages and dialects callers choose and lawyers speak."""

    MANDARIN = "mandarin"  # 普通话
    CANTONESE = "cantonese"  # 粤语
    HAKKA = "hakka"  # 客家话
    TEOCHEW = "teochew"  # 潮汕话
    SOUTHWESTERN = "southwestern"  # 西南官话
    HUBEI = "hubei"  # 湖北话
    MINNAN = "minnan"  # 闽南语
    WU = "wu"  # 吴语
    ENGLISH = "english"  # 英语


class Speaker(_Labelled):
    """Whose leg a transcript segment comes from."""

    CALLER = "caller"  # 来电人
    LAWYER = "lawyer"  # 律师
    SYSTEM = "system"  # 系统提示


class AgentStatus(_Labelled):
    """Whether a lawyer takes calls (mod_callcenter's status)."""

    LOGGED_OUT = "logged_out"  # 未登录
    AVAILABLE = "available"  # 示闲
    ON_BREAK = "on_break"  # 小休


class AgentState(_Labelled):
    """What a lawyer is doing right now (mod_callcenter's state)."""

    IDLE = "idle"  # 空闲
    RESERVED = "reserved"  # 预占
    RINGING = "ringing"  # 振铃
    IN_CALL = "in_call"  # 通话中
    WRAP_UP = "wrap_up"  # 话后整理


class QueueStrategy(_Labelled):
    """FreeSWITCH mod_callcenter strategy names."""

    RING_ALL = "ring-all"
    LONGEST_IDLE_AGENT = "longest-idle-agent"
    ROUND_ROBIN = "round-robin"
    TOP_DOWN = "top-down"
    AGENT_WITH_LEAST_TALK_TIME = "agent-with-least-talk-time"
    AGENT_WITH_FEWEST_CALLS = "agent-with-fewest-calls"
    SEQUENTIALLY_BY_AGENT_ORDER = "sequentially-by-agent-order"
    RANDOM = "random"
    RING_PROGRESSIVELY = "ring-progressively"


class EndReason(_Labelled):
    """Why a call ended."""

    CALLER_HANGUP = "caller_hangup"  # 来电人挂机
    LAWYER_HANGUP = "lawyer_hangup"  # 律师挂机
    IVR_HANGUP = "ivr_hangup"  # 语音导航结束
    TRANSFERRED = "transferred"  # 已转接
    VOICEMAIL = "voicemail"  # 留言结束
    ABANDONED = "abandoned"  # 排队放弃
    FAILED = "failed"  # 呼叫失败
    SYSTEM_RESTART = "system_restart"  # 系统重启关闭
    WORKER_CRASH = "worker_crash"  # 媒体进程故障
    TIMEOUT = "timeout"  # 超时


class CallEventKind(StrEnum):
    """Kinds of the append-only call timeline; every KPI is computed from these."""

    OFFERED = "offered"  # INVITE received
    ANSWERED = "answered"  # IVR answered the caller
    IVR_NODE = "ivr_node"  # entered an IVR node
    IVR_NOTE = "ivr_note"  # an IVR decision: hours, branch, retry, queue result
    DIGITS = "digits"  # caller keyed digits
    FIELD_SET = "field_set"  # a ticket field was set by the flow
    PROMPT = "prompt"  # a prompt was played
    ENQUEUED = "enqueued"
    OFFER = "offer"  # offered to a lawyer
    OFFER_REJECTED = "offer_rejected"
    AGENT_ANSWERED = "agent_answered"
    HOLD = "hold"
    UNHOLD = "unhold"
    TRANSFER = "transfer"
    CONFERENCE = "conference"
    LEG_ENDED = "leg_ended"  # a lawyer's, consulted party's or transfer target's leg ended
    OVERFLOW = "overflow"
    ABANDONED = "abandoned"
    VOICEMAIL = "voicemail"
    CALLBACK_REQUESTED = "callback_requested"
    SURVEY = "survey"
    RECORDING_STARTED = "recording_started"
    RECORDING_STOPPED = "recording_stopped"
    TRANSCRIPTION = "transcription"  # live transcription on, or the call left to batch
    URGENT = "urgent"  # urgency phrases heard (self-harm, violence, ...): supervisors alerted
    ENDED = "ended"


class AgentEventKind(StrEnum):
    """Kinds of the append-only lawyer timeline (status and state changes)."""

    LOGIN = "login"
    LOGOUT = "logout"
    STATUS = "status"
    STATE = "state"


_LABELS: dict[str, dict[str, str]] = {
    "Role": {"lawyer": "值班律师", "supervisor": "管理人员", "scheduler": "排班员",
             "admin": "系统管理员"},
    "Category": {
        "marriage_family": "婚姻家庭", "inheritance": "继承", "labor": "劳动争议",
        "contract": "合同纠纷", "property": "房产/宅基地", "traffic": "交通事故",
        "personal_injury": "人身损害", "consumer": "消费", "debt": "债务/借贷",
        "procedure": "诉讼程序", "criminal": "刑事", "administrative": "行政",
        "legal_aid": "法律援助", "mediation": "人民调解", "notary": "公证",
        "forensic": "司法鉴定", "complaint": "投诉", "sme": "中小企业", "other": "其他",
    },
    "Disposition": {
        "answered": "已解答", "appointment": "约期答复", "referred": "转办",
        "legal_aid": "法援引导/申请", "mediation": "调解预约", "emergency": "紧急转接",
        "complaint": "投诉登记", "non_legal": "非法律事项", "dropped": "掉线/无声来电",
    },
    "TicketStatus": {"accepted": "受理", "processing": "办理", "closed": "办结",
                     "followed_up": "回访", "archived": "归档"},
    "TicketKind": {"call": "来电", "voicemail": "留言", "callback": "回拨请求",
                   "follow_up": "回访"},
    "Priority": {"normal": "普通", "green": "绿色通道", "urgent": "紧急"},
    "GreenReason": {"elderly": "老年人", "disabled": "残疾人", "migrant_wages": "农民工讨薪",
                    "minor": "未成年人"},
    "Language": {
        "mandarin": "普通话", "cantonese": "粤语", "hakka": "客家话", "teochew": "潮汕话",
        "southwestern": "西南官话", "hubei": "湖北话", "minnan": "闽南语", "wu": "吴语",
        "english": "英语",
    },
    "Speaker": {"caller": "来电人", "lawyer": "律师", "system": "系统提示"},
    "AgentStatus": {"logged_out": "未登录", "available": "示闲", "on_break": "小休"},
    "AgentState": {"idle": "空闲", "reserved": "预占", "ringing": "振铃",
                   "in_call": "通话中", "wrap_up": "话后整理"},
    "EndReason": {
        "caller_hangup": "来电人挂机", "lawyer_hangup": "律师挂机",
        "ivr_hangup": "语音导航结束", "transferred": "已转接", "voicemail": "留言结束",
        "abandoned": "排队放弃", "failed": "呼叫失败", "system_restart": "系统重启关闭",
        "worker_crash": "媒体进程故障", "timeout": "超时",
    },
}
