"""Channel QR codes (渠道活码, WeCom 「联系我」 contact ways): definitions with a rota of
salespeople, source tags and their own welcome message; per-code statistics.

- `models`: the code definitions and their add/lost log;
- `rota`: which salesperson(s) a code offers right now (pure);
- `service`: create/update/delete through add/update/del_contact_way (console actions)
  and the rota refresh queued through the outbox;
- `handlers`: add_external_contact with `State` and del_follow_user;
- `stats`: new customers per day, lost customers, conversion to a tag.
"""
