"""WeCom customer groups (客户群): sync, change_external_chat events, welcome templates,
statistics, hand-over and the archived group timeline (issue 13)."""
