"""Tencent Cloud SMS (腾讯云短信, API 3.0, 2021-01-11): SendSms, status and reply callbacks."""
