"""The console's words in Chinese (the default: the admins are Shanghai residents'
committees and property staff) and English. A missing key shows itself, not a blank.

The words live in gettext catalogs, `locale/<zh|en>/LC_MESSAGES/console.po`, read with Babel
(msgid: a key such as `nav.audit`; msgstr: the text), so a translator edits a .po file and
new entries merge line by line. `MESSAGES` below is the table the catalogs were made from;
a key only it has still works (the catalogs win), so branches that add to it keep working
until their keys are moved to the catalogs. Domain words (feeds, fields, consumers, legal
bases) are not here: they come from the feeds', contracts' and policies' own texts
(api.admin.labels).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from functools import cache
from pathlib import Path

from babel.messages.pofile import read_po

log = logging.getLogger(__name__)
LOCALE_DIR = Path(__file__).resolve().parent / "locale"
DOMAIN = "console"
# Keys asked for that no catalog (nor the table) has: the tests crawl the console and
# require this to stay empty.
MISSING: set[str] = set()

LANGUAGES = ("zh", "en")
DEFAULT = "zh"
COOKIE = "neuron_admin_lang"

MESSAGES: dict[str, tuple[str, str]] = {
    "app.title": ("数据共享透明控制台", "Data-sharing transparency console"),
    "nav.overview": ("概览", "Overview"),
    "nav.shared": ("共享数据", "Shared data"),
    "nav.policies": ("共享规则", "Policies"),
    "nav.consumers": ("数据接收方", "Consumers"),
    "nav.audit": ("审计", "Audit"),
    "nav.consent": ("住户授权", "Consent"),
    "nav.quality": ("质量与告警", "Quality and alarms"),
    "nav.signout": ("退出", "Sign out"),
    "lang.switch": ("English", "中文"),
    "role.admin": ("管理员", "admin"),
    "role.auditor": ("审计员", "auditor"),
    "login.title": ("登录", "Sign in"),
    "login.name": ("用户名", "User name"),
    "login.password": ("密码", "Password"),
    "login.submit": ("登录", "Sign in"),
    "login.failed": (
        "登录失败：用户名或密码错误，或账户因多次失败已暂时锁定。",
        "Sign-in failed: wrong name or password, or the account is locked for a while after repeated failures.",
    ),
    "login.hint": (
        "账户由管理员在服务器上用 neuron admins add 创建。数据接收方的密钥不能登录本控制台。",
        "Accounts are created on the server with `neuron admins add`. Consumer keys cannot open this console.",
    ),
    "refused.title": ("无权执行", "Not allowed"),
    "refused.role": ("您的角色（审计员）只能查看，不能修改。", "Your role (auditor) may read but not change anything."),
    "refused.csrf": (
        "表单已失效（缺少或错误的安全令牌），请返回页面重试。",
        "The form has expired (missing or wrong security token); go back and try again.",
    ),
    "refused.signin": ("请先登录。", "Please sign in first."),
    "refused.back": ("返回概览", "Back to the overview"),
    "overview.title": ("今日概览", "Today at a glance"),
    "overview.since": ("自本地时间零点起", "Since local midnight"),
    "overview.in": ("今日接入数据（按系统，行数）", "Data in today (by system, rows)"),
    "overview.quarantined": ("今日隔离（按系统，行数）", "Quarantined today (by system, rows)"),
    "overview.out": ("今日共享数据（按接收方，行数）", "Data out today (by consumer, rows)"),
    "overview.out_feed": ("今日共享数据（按数据集，行数）", "Data out today (by feed, rows)"),
    "overview.exports": ("今日导出次数", "Exports today"),
    "overview.open_alarms": ("未关闭告警", "Open alarms"),
    "overview.quality": ("数据质量", "Data quality"),
    "overview.chain": ("审计链", "Audit chain"),
    "overview.quality_details": ("查看各数据流质量明细", "Quality of each stream"),
    "status.ok": ("正常", "ok"),
    "status.warn": ("需关注", "warning"),
    "status.fail": ("异常", "failing"),
    "status.stale": ("数据过时", "stale"),
    "state.raised": ("已发生", "raised"),
    "state.updated": ("已更新", "updated"),
    "state.acknowledged": ("已确认", "acknowledged"),
    "state.escalated": ("已升级", "escalated"),
    "state.cleared": ("已解除", "cleared"),
    "severity.low": ("低", "low"),
    "severity.medium": ("中", "medium"),
    "severity.high": ("高", "high"),
    "severity.critical": ("紧急", "critical"),
    "col.stream": ("数据流", "Stream"),
    "col.title": ("名称", "Name"),
    "col.status": ("状态", "Status"),
    "col.rows_in": ("接入行数", "Rows in"),
    "col.rows_loaded": ("入库行数", "Rows loaded"),
    "col.rows_quarantined": ("隔离行数", "Quarantined"),
    "col.quarantined_by_reason": ("隔离原因", "Quarantined by reason"),
    "col.freshness_seconds": ("数据新鲜度（秒）", "Freshness (seconds)"),
    "col.issues": ("问题", "Issues"),
    "col.alarm_id": ("告警编号", "Alarm"),
    "col.family": ("设备类别", "Device family"),
    "col.category": ("告警类型", "Category"),
    "col.severity": ("级别", "Severity"),
    "col.state": ("状态", "State"),
    "col.raised_at": ("发生时间", "Raised"),
    "col.acknowledged_at": ("确认时间", "Acknowledged"),
    "col.acknowledged_by": ("确认方", "Acknowledged by"),
    "col.cleared_at": ("解除时间", "Cleared"),
    "col.response_seconds": ("响应时间（秒）", "Response (seconds)"),
    "col.escalated": ("已升级", "Escalated"),
    "col.building": ("楼栋", "Building"),
    "common.none": ("暂无数据", "Nothing yet"),
    "common.not_available": ("暂不可用（该模块尚未安装）", "Not available (that part is not installed yet)"),
    "common.failed": ("读取失败", "Could not be read"),
    "common.intact": ("完整", "intact"),
    "common.broken": ("已损坏", "BROKEN"),
    "common.yes": ("是", "yes"),
    "common.no": ("否", "no"),
    "common.more": ("更多", "More"),
    "common.prev": ("上一页", "Previous"),
    "common.next": ("下一页", "Next"),
    "shared.title": ("共享数据记录", "Everything shared"),
    "shared.intro": (
        "审计日志中每一次向数据接收方提供数据的记录。点击序号可查看该次提供的每一行（已脱敏）。",
        "Every time a consumer received data, from the audit log. Open one to see the exact de-identified rows.",
    ),
    "shared.consumer": ("接收方", "Consumer"),
    "shared.feed": ("数据集", "Feed"),
    "shared.from": ("起始日期", "From"),
    "shared.to": ("截止日期", "To"),
    "shared.all": ("全部", "All"),
    "shared.filter": ("筛选", "Filter"),
    "shared.seq": ("序号", "Entry"),
    "shared.at": ("时间", "When"),
    "shared.partitions": ("分区", "Partitions"),
    "shared.rows": ("行数", "Rows"),
    "shared.fields": ("字段", "Fields"),
    "shared.policy": ("规则版本", "Policy version"),
    "shared.format": ("格式", "Format"),
    "export.title": ("一次数据提供的明细", "One export, row by row"),
    "export.confirmed": (
        "已核对：下列数据重新生成后与审计日志记录的摘要完全一致，即接收方收到的正是这些行。",
        "Confirmed: rendered again, these rows have exactly the digest the audit log recorded for what the "
        "consumer received.",
    ),
    "export.mismatch": (
        "注意：重新生成的数据与审计日志中的摘要不一致（分区可能已被重新发布）。",
        "Warning: these rows do not match the digest in the audit log (the partition may have been re-published).",
    ),
    "export.unchecked": ("此次提供无法按摘要核对。", "This export cannot be checked against a digest."),
    "export.missing": ("以下分区已不在数据湖中：", "These partitions are no longer in the lake:"),
    "export.shown": ("显示前 {n} 行", "Showing the first {n} rows"),
    "export.digest": ("响应摘要", "Response digest"),
    "policies.title": ("各接收方的共享规则", "Each consumer's sharing policy"),
    "policies.legal_basis": ("法律依据", "Legal basis"),
    "policies.retention": ("接收方承诺保存期限", "Retention promised"),
    "policies.days": ("天", "days"),
    "policies.fingerprint": ("规则指纹", "Fingerprint"),
    "policies.version": ("版本", "Version"),
    "policies.field": ("字段", "Field"),
    "policies.treatment": ("处理方式", "Treatment"),
    "policies.params": ("参数", "Parameters"),
    "policies.history": ("变更历史", "History of changes"),
    "policies.first_seen": ("首次出现", "First seen"),
    "policies.seen_by": ("记录者", "Seen by"),
    "policies.initial": ("首个记录的版本", "First version recorded"),
    "policies.where": ("位置", "Where"),
    "policies.before": ("变更前", "Before"),
    "policies.after": ("变更后", "After"),
    "op.keep": ("原样提供", "kept as is"),
    "op.drop": ("不提供", "dropped"),
    "op.pseudonymise": ("假名化（每个接收方不同）", "pseudonymised (per consumer)"),
    "op.mask": ("部分遮盖", "masked"),
    "op.generalise": ("泛化", "generalised"),
    "op.encrypt_to": ("加密，仅该接收方可解", "sealed to the consumer's key"),
    "op.aggregate": ("汇总（k-匿名）", "aggregated (k-anonymity)"),
    "consumers.title": ("数据接收方与密钥", "Consumers and their keys"),
    "consumers.policy": ("规则", "Policy"),
    "consumers.keys": ("签名密钥", "Signing keys"),
    "consumers.revoked": ("已吊销", "revoked"),
    "consumers.active": ("有效", "active"),
    "consumers.revoke": ("吊销该接收方", "Revoke this consumer"),
    "consumers.revoke_confirm": ("确定吊销？吊销立即生效。", "Revoke? It takes effect at once."),
    "consumers.add_key": ("登记新的公钥（PEM）", "Register a new public key (PEM)"),
    "consumers.add_key_submit": ("登记", "Register"),
    "consumers.done_revoke": ("已吊销：", "Revoked: "),
    "consumers.done_key": ("已登记密钥：", "Key registered: "),
    "consumers.done_requested": (
        "已提交，待另一位管理员确认后生效。",
        "Requested: it takes effect once a second admin confirms it.",
    ),
    "consumers.pending": ("待确认的请求", "Waiting for a second admin"),
    "consumers.pending_revoke": ("吊销", "Revoke"),
    "consumers.pending_key": ("登记密钥", "Register a key for"),
    "consumers.confirm": ("确认", "Confirm"),
    "consumers.error": ("未能完成：", "Not done: "),
    "consumers.readonly": ("审计员只能查看。", "Auditors can only read."),
    "audit.title": ("审计日志", "Audit log"),
    "audit.status": ("哈希链校验", "Hash-chain verification"),
    "audit.entries": ("条目数", "Entries"),
    "audit.last": ("最后序号", "Last entry"),
    "audit.problems": ("发现的问题", "Problems found"),
    "audit.download": ("下载签名审计归档", "Download the signed audit archive"),
    "audit.explain": (
        "归档包含全部审计条目、中心的公钥和签名清单，任何人都可以离线核验（neuron audit verify 归档文件）。",
        "The archive holds every entry, the hub's public keys and a signed manifest; anyone can check it offline "
        "(`neuron audit verify FILE`).",
    ),
    "consent.title": ("住户对可选功能的授权", "Households' consent to the optional functions"),
    "consent.function": ("功能", "Function"),
    "consent.opted_in": ("已授权住户数", "Households opted in"),
    "consent.withdrawn": ("已撤回住户数", "Households withdrawn"),
    "consent.withdrawals": ("撤回记录及其效果", "Withdrawals and their effect"),
    "consent.source": ("来源", "Source"),
    "consent.effect": ("效果", "Effect"),
    "consent.effect_text": (
        "该住户的数据自下次发布起不再共享；已立即从加密原始数据存储的 {n} 个批次中删除该户数据。",
        "Not shared from the next publish on; the household's rows were removed from {n} raw-vault batch(es) at once.",
    ),
    "fn.smoke_gas": ("户内烟感与燃气监测", "In-home smoke and gas detection"),
    "fn.elderly_care": ("老人看护（手环）", "Elderly care (wristbands)"),
    "quality.title": ("各数据流质量", "Quality per stream"),
    "alarms.title": ("告警及处置时间", "Alarms, lifecycle and response times"),
    "push.dead_letters": (
        "推送至城市大脑（NGSI-LD）未被接收的条目",
        "NGSI-LD push: entities the consumers' brokers would not take",
    ),
    "push.resend": ("重新推送全部未接收条目", "Send every open dead letter again"),
    "push.resend_requested": (
        "已请求重新推送：推送服务将在下一轮发送，结果记入审计日志。",
        "Re-send requested: the push sends them at its next round; the outcome is in the audit log.",
    ),
    "col.consumer": ("接收方", "Consumer"),
    "col.channel": ("通道", "Channel"),
    "col.feed": ("数据集", "Feed"),
    "col.entity_id": ("实体", "Entity"),
    "col.entity_type": ("实体类型", "Entity type"),
    "col.error_type": ("错误类型", "Error type"),
    "col.http_status": ("HTTP 状态", "HTTP status"),
    "col.attempts": ("尝试次数", "Attempts"),
    "col.failed_at": ("失败时间", "Failed at"),
    "system.0": ("其他", "Other"),
    "system.1": ("机动车道闸", "Vehicle gates"),
    "system.2": ("非机动车感应门", "Non-motor gates"),
    "system.3": ("电子围栏", "Electronic fence"),
    "system.4": ("门禁", "Door access"),
    "system.5": ("可视对讲与监控", "Intercom and CCTV"),
    "system.6": ("户内安全与老人看护", "Home safety and elderly care"),
    "system.7": ("环境监测", "Environment"),
    "system.8": ("路灯与井盖", "Streetlights and manholes"),
    "system.9": ("社区管理平台", "Community platform"),
}


@cache
def catalog(language: str) -> dict[str, str]:
    """The translated messages of one language's catalog, by key (empty msgstr: untranslated)."""
    path = LOCALE_DIR / language / "LC_MESSAGES" / f"{DOMAIN}.po"
    with path.open("rb") as po:
        read = read_po(po, domain=DOMAIN)
    return {str(m.id): str(m.string) for m in read if m.id and m.string}


def has(key: str, language: str = DEFAULT) -> bool:
    """Whether `key` has a text in `language`."""
    return key in catalog(language) or key in MESSAGES


def translator(language: str) -> Callable[..., str]:
    """`t(key, **values)` in `language` (falling back to Chinese, then to the key itself)."""
    language = language if language in LANGUAGES else DEFAULT
    index = LANGUAGES.index(language)
    words = catalog(language)

    def t(key: str, **values: object) -> str:
        text = words.get(key)
        if text is None:
            pair = MESSAGES.get(key)
            if pair is None:
                if key not in MISSING:
                    MISSING.add(key)
                    log.warning("console text %r has no translation", key)
                # An unknown key (a provider's new column or status) shows its last part, not a blank.
                text = key.split(".", 1)[-1]
            else:
                text = pair[index]
        return text.format(**values) if values else text

    return t
