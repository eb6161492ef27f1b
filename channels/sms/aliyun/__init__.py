"""Alibaba Cloud SMS (阿里云短信, Dysmsapi 2017-05-25): SendSms, SmsReport and SmsUp pushes."""
