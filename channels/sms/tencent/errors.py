"""Tencent SendSms error codes → outcomes. Source: the SDK's
`tencentcloud/sms/v20210111/errorcodes.py` (comments are Tencent's) and the SendSms page."""

from __future__ import annotations

from channels.sms.gateway import ErrorRule
from conversations.types import SendOutcome

FAILED, RETRY = SendOutcome.FAILED, SendOutcome.RETRY

SEND_ERRORS: dict[str, ErrorRule] = {
    "FailedOperation.InsufficientBalanceInSmsPackage": ErrorRule(
        RETRY, "套餐包余量不足，请购买套餐包 (SMS package exhausted)", 1800
    ),
    "FailedOperation.PhoneNumberInBlacklist": ErrorRule(
        FAILED, "号码在免打扰名单：用户已退订或运营商黑名单 (recipient unsubscribed / blacklisted)"
    ),
    "FailedOperation.MarketingSendTimeConstraint": ErrorRule(
        FAILED, "营销短信仅允许 08:00–22:00 发送 (marketing only 08:00–22:00)"
    ),
    "FailedOperation.SignatureIncorrectOrUnapproved": ErrorRule(
        FAILED, "签名未审批或格式错误 (signature not approved)"
    ),
    "FailedOperation.TemplateIncorrectOrUnapproved": ErrorRule(
        FAILED, "模板未审批或不存在 (template not approved)"
    ),
    "FailedOperation.ContainSensitiveWord": ErrorRule(FAILED, "内容含敏感词 (sensitive words)"),
    "FailedOperation.FailResolvePacket": ErrorRule(FAILED, "请求包解析失败 (malformed request)"),
    "FailedOperation.JsonParseFail": ErrorRule(FAILED, "请求包解析失败 (malformed request)"),
    "FailedOperation.TemplateParamSetNotMatchApprovedTemplate": ErrorRule(
        FAILED, "模板变量个数不匹配 (template parameters do not match)"
    ),
    "InvalidParameterValue.IncorrectPhoneNumber": ErrorRule(
        FAILED, "手机号格式错误 (invalid mobile number)"
    ),
    "InvalidParameterValue.TemplateParameterFormatError": ErrorRule(
        FAILED, "验证码模板参数格式错误 (verification code must be digits)"
    ),
    "InvalidParameterValue.TemplateParameterLengthLimit": ErrorRule(
        FAILED, "单个变量超出长度限制 (variable too long)"
    ),
    "InvalidParameterValue.MarketingTemplateWithoutUnsubscribe": ErrorRule(
        FAILED, "营销模板须以“拒收请回复R”结尾 (marketing template lacks 拒收请回复R)"
    ),
    "InvalidParameterValue.ProhibitedUseUrlInTemplateParameter": ErrorRule(
        FAILED, "变量中禁止使用链接 (links not allowed in variables)"
    ),
    "InvalidParameterValue.SdkAppIdNotExist": ErrorRule(FAILED, "SdkAppId 不存在 (no such app)"),
    "LimitExceeded.PhoneNumberDailyLimit": ErrorRule(
        FAILED, "单个号码日下发条数超限 (per-number daily limit)"
    ),
    "LimitExceeded.PhoneNumberOneHourLimit": ErrorRule(
        RETRY, "单个号码1小时内下发条数超限 (per-number hourly limit)", 3600
    ),
    "LimitExceeded.PhoneNumberThirtySecondLimit": ErrorRule(
        RETRY, "单个号码30秒内下发条数超限 (per-number 30 s limit)", 30
    ),
    "LimitExceeded.PhoneNumberSameContentDailyLimit": ErrorRule(
        FAILED, "同一号码相同内容日下发超限 (same content daily limit)"
    ),
    "LimitExceeded.DeliveryFrequencyLimit": ErrorRule(
        RETRY, "下发频率超限 (delivery frequency limit)", 60
    ),
    "LimitExceeded.AppDailyLimit": ErrorRule(FAILED, "应用日下发量超限 (app daily cap)"),
    "LimitExceeded.DailyLimit": ErrorRule(FAILED, "日下发量超限 (daily cap)"),
    "LimitExceeded.AppCountryOrRegionDailyLimit": ErrorRule(
        FAILED, "该国家/地区日下发量超限 (country daily cap)"
    ),
    "UnauthorizedOperation.SmsSdkAppIdVerifyFail": ErrorRule(
        FAILED, "SmsSdkAppId 校验失败 (app id does not belong to this key)"
    ),
    "UnsupportedOperation.ContainDomesticAndInternationalPhoneNumber": ErrorRule(
        FAILED, "不能同时包含国内和国际号码 (mixed domestic/international)"
    ),
    "AuthFailure.": ErrorRule(FAILED, "密钥或签名校验失败 (SecretId/SecretKey rejected)"),
    "RequestLimitExceeded": ErrorRule(RETRY, "接口请求频率超限 (API throttled)", 5),
    "InternalError.": ErrorRule(RETRY, "腾讯云内部错误，稍后重试 (gateway error)", 60),
}

DEFAULT_ERROR = ErrorRule(FAILED, "腾讯云拒绝发送 (rejected by Tencent Cloud)")
