"""Twilio Programmable Messaging: Messages API, inbound and status webhooks."""
