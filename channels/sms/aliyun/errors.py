"""Aliyun SendSms error codes → send outcomes, and receipt codes → readable reasons.

Source: "API错误码" help.aliyun.com/document_detail/101346.html and the SendSms page.
Retry only where waiting can help (API throttling, minute/hour flow control, a top-up).
"""

from __future__ import annotations

from channels.sms.gateway import ErrorRule
from conversations.types import SendOutcome

FAILED, RETRY, UNKNOWN = SendOutcome.FAILED, SendOutcome.RETRY, SendOutcome.UNKNOWN

SEND_ERRORS: dict[str, ErrorRule] = {
    "isv.AMOUNT_NOT_ENOUGH": ErrorRule(RETRY, "账户余额不足，请充值 (insufficient balance)", 1800),
    "isv.OUT_OF_SERVICE": ErrorRule(
        RETRY, "业务停机：余额不足，请充值 (account suspended: top up)", 1800
    ),
    "isv.BUSINESS_LIMIT_CONTROL": ErrorRule(
        FAILED, "触发号码频率限制 (per-number frequency limit reached)"
    ),
    "isv.DAY_LIMIT_CONTROL": ErrorRule(FAILED, "触发日发送限额 (daily sending cap of the account)"),
    "isv.MONTH_LIMIT_CONTROL": ErrorRule(
        FAILED, "触发月发送限额 (monthly sending cap of the account)"
    ),
    "isv.MOBILE_NUMBER_ILLEGAL": ErrorRule(FAILED, "手机号码格式错误 (invalid mobile number)"),
    "isv.MOBILE_COUNT_OVER_LIMIT": ErrorRule(FAILED, "手机号码数量超过限制 (too many numbers)"),
    "isv.BLACK_KEY_CONTROL_LIMIT": ErrorRule(
        FAILED, "黑名单管控：号码或内容被拦截 (blacklisted number or content)"
    ),
    "isv.SMS_CONTENT_ILLEGAL": ErrorRule(FAILED, "短信内容包含禁止发送内容 (forbidden content)"),
    "isv.PARAM_NOT_SUPPORT_URL": ErrorRule(
        FAILED, "变量不支持链接 (links not allowed in variables)"
    ),
    "isv.PARAM_LENGTH_LIMIT": ErrorRule(FAILED, "变量超出长度限制 (variable too long)"),
    "isv.TEMPLATE_MISSING_PARAMETERS": ErrorRule(
        FAILED, "模板缺少变量 (template variable missing)"
    ),
    "isv.INVALID_JSON_PARAM": ErrorRule(FAILED, "模板变量格式错误 (variables must be strings)"),
    "isv.INVALID_PARAMETERS": ErrorRule(FAILED, "参数异常 (invalid parameters)"),
    "isv.SMS_TEMPLATE_ILLEGAL": ErrorRule(FAILED, "模板不存在或未审核通过 (template not approved)"),
    "isv.SMS_SIGNATURE_ILLEGAL": ErrorRule(
        FAILED, "签名不存在或未审核通过 (signature not approved)"
    ),
    "isv.SMS_SIGN_ILLEGAL": ErrorRule(FAILED, "签名禁止使用 (signature blocked)"),
    "isv.SIGN_STATE_ILLEGAL": ErrorRule(FAILED, "签名状态不可用 (signature unavailable)"),
    "isv.SMS_SIGNATURE_SCENE_ILLEGAL": ErrorRule(
        FAILED, "签名和模板类型不一致 (signature type does not fit the template)"
    ),
    "isv.DOMESTIC_NUMBER_NOT_SUPPORTED": ErrorRule(
        FAILED, "国际模板不支持境内号码 (international template to a mainland number)"
    ),
    "isv.DENY_IP_RANGE": ErrorRule(FAILED, "源IP地区被禁用 (sending from outside mainland China)"),
    "isv.PRODUCT_UN_SUBSCRIPT": ErrorRule(FAILED, "未开通短信服务 (SMS service not activated)"),
    "isv.ACCOUNT_NOT_EXISTS": ErrorRule(FAILED, "账户不存在 (no such account)"),
    "isv.ACCOUNT_ABNORMAL": ErrorRule(FAILED, "账户异常 (account abnormal)"),
    "isp.RAM_PERMISSION_DENY": ErrorRule(FAILED, "RAM权限不足 (grant AliyunDysmsFullAccess)"),
    "isp.SYSTEM_ERROR": ErrorRule(RETRY, "阿里云系统错误，稍后重试 (gateway error)", 60),
    "isv.SYSTEM_ERROR": ErrorRule(RETRY, "阿里云系统错误，稍后重试 (gateway error)", 60),
    "Throttling.": ErrorRule(RETRY, "接口调用频率超限 (API throttled)", 5),
    "SignatureDoesNotMatch": ErrorRule(FAILED, "签名校验失败：AccessKeySecret 错误 (bad secret)"),
    "IncompleteSignature": ErrorRule(FAILED, "签名不完整 (incomplete signature)"),
    "InvalidAccessKeyId.": ErrorRule(FAILED, "AccessKeyId 无效 (unknown or disabled access key)"),
    "InvalidTimeStamp.": ErrorRule(RETRY, "时间戳过期：请校准服务器时间 (clock skew)", 60),
    "SignatureNonceUsed": ErrorRule(RETRY, "随机数重复 (nonce reused)", 1),
}

DEFAULT_ERROR = ErrorRule(FAILED, "阿里云拒绝发送 (rejected by Aliyun)")

# BUSINESS_LIMIT_CONTROL says which window tripped; only minute/hour windows pass soon
FLOW_CONTROL_WAIT = {"分钟": 60.0, "小时": 3600.0}

# SmsReport err_code "DELIVERED" means delivered; any other code is the carrier's, and
# its err_msg is shown as the reason (the codes differ per carrier and change often)
DELIVERED = "DELIVERED"
